"""The CUDA kernels against the reference ops on a GPU (run by benchmarks/gpu_check.sh).

Fresh random inputs for every case (never zeros); every dtype (float32, float16, bfloat16);
contiguous, channels_last, non-contiguous and misaligned tensors; batch 1 and odd sizes; first and
second derivatives. The reference runs in float64 on the same (already rounded) inputs. Before each
kernel call the allocator's cache is filled with NaN, so an output element a kernel forgets to
write shows up as NaN.
"""

from __future__ import annotations

import pytest
import torch

from bender.ops import bias_act, setup_filter, upfirdn2d
from bender.ops.bias_act import ACTIVATIONS
from bender.ops.upfirdn2d import upfirdn2d_ref

pytestmark = pytest.mark.cuda

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
EPS = {torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}


@pytest.fixture(scope="module")
def ops():
    from bender.ops.cuda import kernel_status, load

    loaded = load()  # must build on a GPU machine: a failure here is a failure
    assert all(state.startswith("built") for state in kernel_status().values()), kernel_status()
    return loaded


def test_every_kernel_family_passes_its_self_check_on_this_gpu(ops):
    """What bender runs before the first op on a user's GPU (bender/ops/cuda/selfcheck.py)."""
    from bender.ops.cuda.selfcheck import FAMILIES, run_self_check

    report = run_self_check(ops.ext, torch.device("cuda"))
    assert report.failures == {}, report.summary()
    assert set(report.cases) == set(FAMILIES)


def poison() -> None:
    """Fill the caching allocator's free blocks with NaN: unwritten outputs then read as NaN."""
    t = torch.full((32 << 20,), float("nan"), device="cuda")
    del t


def rand(*shape, dtype=torch.float32, scale=2.0):
    return (torch.randn(*shape, device="cuda") * scale).to(dtype)


def close(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype, factor: float = 4.0) -> None:
    assert not out.isnan().any(), "NaN in the kernel's output: an element was not written"
    eps = EPS[dtype] * factor
    scale = max(ref.abs().max().item(), 1.0)
    torch.testing.assert_close(out.double(), ref.double(), rtol=eps, atol=eps * scale)


# ------------------------------------------------------------------------------------------------
# bias_act

def bias_act_case(name: str, dtype: torch.dtype) -> tuple[torch.Tensor, int]:
    if name == "nchw_odd":
        return rand(2, 5, 3, 7, dtype=dtype), 1
    if name == "channels_last":
        return rand(2, 6, 5, 5, dtype=dtype).contiguous(memory_format=torch.channels_last), 1
    if name == "non_contiguous":
        return rand(2, 4, 6, 8, dtype=dtype)[:, :, ::2, 1:], 1
    if name == "batch1":
        return rand(1, 512, 4, 4, dtype=dtype), 1
    if name == "fully_connected":
        return rand(7, 512, dtype=dtype), 1
    if name == "last_dim":
        return rand(3, 4, 9, dtype=dtype), 2
    if name == "misaligned":
        return rand(3 * 5 * 7 + 1, dtype=dtype)[1:].view(3, 5, 7), 1
    if name == "large":
        return rand(4, 64, 128, 128, dtype=dtype), 1
    raise KeyError(name)


BIAS_CASES = ["nchw_odd", "channels_last", "non_contiguous", "batch1", "fully_connected", "last_dim", "misaligned",
              "large"]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", BIAS_CASES)
def test_bias_act_forward(ops, dtype, case):
    x, dim = bias_act_case(case, dtype)
    b = rand(x.shape[dim], dtype=dtype, scale=1.0)
    for act in ACTIVATIONS:
        for clamp in (None, 1.5):
            poison()
            out = bias_act(x, b, dim=dim, act=act, clamp=clamp, impl="cuda")
            ref = bias_act(x.double(), b.double(), dim=dim, act=act, clamp=clamp, impl="ref")
            assert out.dtype == dtype and out.shape == x.shape
            close(out, ref, dtype)
    if case == "channels_last":
        assert out.is_contiguous(memory_format=torch.channels_last)


def away_from_clamp(x: torch.Tensor, b: torch.Tensor, dim: int, act: str, gain: float, clamp: float) -> torch.Tensor:
    """Nudge elements whose output lands within rounding of the clamp: there the float64 reference
    and a float16 kernel may rightly disagree on which side of the clamp they are (gradient 0 or not)."""
    x = x.clone()  # keeps the memory format
    for _ in range(8):
        y = bias_act(x.double(), b.double(), dim=dim, act=act, gain=gain, clamp=None, impl="ref")
        z = x.double() + b.double().reshape([-1 if i == dim else 1 for i in range(x.ndim)])
        # Also x == -b exactly (it happens in float16/bfloat16): act'' of elu has a kink at 0, where
        # any value is as right as another.
        near = ((y.abs() - clamp).abs() < 0.05 * clamp) | (z.abs() < 1e-3)
        if not near.any():
            break
        x[near] += 0.2
    return x


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_bias_act_first_and_second_derivatives(ops, dtype, act):
    for case in ("nchw_odd", "channels_last", "fully_connected"):
        x0, dim = bias_act_case(case, dtype)
        b0 = rand(x0.shape[dim], dtype=dtype, scale=1.0)
        x0 = away_from_clamp(x0, b0, dim, act, gain=1.3, clamp=1.5)
        w1, w2 = torch.randn_like(x0), torch.randn_like(x0)
        grads = {}
        for impl in ("cuda", "ref"):
            x = (x0 if impl == "cuda" else x0.double()).detach().requires_grad_(True)
            b = (b0 if impl == "cuda" else b0.double()).detach().requires_grad_(True)
            y = bias_act(x, b, dim=dim, act=act, gain=1.3, clamp=1.5, impl=impl)
            gx, gb = torch.autograd.grad((y * w1.to(y.dtype)).sum(), [x, b], create_graph=True)
            # Second order: what R1 does — a loss on the gradient, differentiated again. For linear
            # the gradient does not depend on x or b at all (autograd then has nothing to differentiate).
            loss2 = (gx * w2.to(gx.dtype)).sum() + gb.sum()
            second = (torch.autograd.grad(loss2, [x, b], allow_unused=True) if loss2.requires_grad
                      else (None, None))
            grads[impl] = (gx, gb, *[s if s is not None else torch.zeros_like(t) for s, t in zip(second, [x, b])])
        for got, want in zip(grads["cuda"], grads["ref"]):
            close(got, want, dtype, factor=16 if got.ndim == 1 else 8)  # bias grads sum many terms


def test_bias_act_output_does_not_alias_its_input(ops):
    x = rand(4, 8, 16, 16)
    b = rand(8, scale=1.0)
    y = bias_act(x, b, act="lrelu", impl="cuda")
    x.add_(1.0)  # the op must not alias its input
    assert not torch.equal(y, bias_act(x, b, act="lrelu", impl="cuda"))


# ------------------------------------------------------------------------------------------------
# upfirdn2d

def upfirdn_case(mem: str, shape, dtype) -> torch.Tensor:
    x = rand(*shape, dtype=dtype)
    if mem == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if mem == "non_contiguous":
        wide = rand(*shape[:3], shape[3] * 2 + 1, dtype=dtype)
        return wide[..., 1::2][..., : shape[3]]
    return x


FAST_CONFIGS = [  # (up, down, padding) as StyleGAN2 calls them, plus odd paddings
    (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (1, 1, (1, 1, 1, 1)), (1, 1, (2, 2, 2, 2)),
    (2, 1, (1, 2, 0, 3)), (1, 2, (0, 3, 2, 1)), (1, 1, (-1, 2, 3, 0)),
]
SHAPES = [(1, 1, 4, 4), (2, 3, 9, 7), (4, 64, 16, 16), (1, 40, 33, 35), (2, 8, 128, 128), (1, 3, 21, 257)]


def expected_kernel(x: torch.Tensor, up: int, down: int, pad: tuple, path: int) -> int:
    """The kernel ops.h's `path` should pick: 0 generic, 1 tiled, 2 row-streaming (-1: an error).
    Row-streaming covers up 1 with down 1 or 2, and up 2 with down 1, with 4x4 filters: planar
    unit-stride rows of a 16-byte aligned x, or channels_last with 8-byte channel groups; path 4
    takes it only for planes with at least a thread's rows (8 at down 2, else 16)."""
    channels_fastest = x.shape[1] > 1 and x.stride(1) == 1 and not x.is_contiguous()
    cv = 8 // x.element_size()
    if channels_fastest:
        layout_ok = x.shape[1] % cv == 0 and all(s % cv == 0 for s in (x.stride(0), x.stride(2), x.stride(3))) \
            and x.data_ptr() % 8 == 0
    else:
        layout_ok = x.stride(3) == 1 and x.data_ptr() % 16 == 0
    rows = (up, down) in ((1, 1), (1, 2), (2, 1)) and layout_ok
    tall = (x.shape[2] * up + pad[2] + pad[3] - 4) // down + 1 >= (16 if down == 1 else 8)
    return {0: 1, 1: 0, 2: 1, 3: 2 if rows else -1, 4: 2 if rows and tall else 1}[path]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mem", ["contiguous", "channels_last", "non_contiguous"])
def test_upfirdn2d_fast_paths(ops, dtype, mem):
    f_binomial = setup_filter([1, 3, 3, 1]).cuda()
    f_random = torch.rand(4, 4, device="cuda") + 0.1
    f_sep = torch.rand(4, device="cuda") + 0.1
    for up, down, pad in FAST_CONFIGS:
        for shape in SHAPES:
            x = upfirdn_case(mem, shape, dtype)
            for f, flip in ((f_binomial, False), (f_random, False), (f_random, True), (f_sep, False)):
                ref = upfirdn2d_ref(x.double(), f.double(), (up, up), (down, down), pad, flip, 1.7)
                for path in (0, 1, 2, 3, 4):
                    poison()
                    want = expected_kernel(x, up, down, pad, path)
                    if want < 0:
                        with pytest.raises(RuntimeError, match="no row-streaming kernel"):
                            ops.ext.upfirdn2d(x, f, up, up, down, down, *pad, flip, 1.7, path)
                        continue
                    out, kernel = ops.ext.upfirdn2d(x, f, up, up, down, down, *pad, flip, 1.7, path)
                    assert kernel == want, f"path {path} for up {up} down {down} ran kernel {kernel}"
                    close(out, ref, dtype)
                    if mem == "channels_last" and shape[1] > 1:
                        assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_upfirdn2d_generic_path(ops, dtype):
    cases = [((3, 3), (2, 2), (0, 1, 2, -1), (2, 3)), ((2, 1), (1, 3), (1, 1, 0, 0), (5,)),
             ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1)), ((4, 4), (4, 4), (3, 3, 3, 3), (8, 8)),
             ((1, 2), (2, 1), (2, 2, 1, 1), (3, 3))]
    for up, down, pad, fshape in cases:
        f = torch.rand(*fshape, device="cuda") + 0.1
        for mem in ("contiguous", "channels_last", "non_contiguous"):
            x = upfirdn_case(mem, (2, 5, 11, 9), dtype)
            poison()
            out, kernel = ops.ext.upfirdn2d(x, f, *up, *down, *pad, False, 0.9, 0)
            assert kernel == 0
            ref = upfirdn2d_ref(x.double(), f.double(), up, down, pad, False, 0.9)
            close(out, ref, dtype, factor=8)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("up,down,pad", [(2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (1, 1, (1, 2, 2, 1)),
                                         (3, 2, (0, 1, 2, -1))])
@pytest.mark.parametrize("kernels", ["tiled", "rows"])
def test_upfirdn2d_first_and_second_derivatives(ops, monkeypatch, dtype, up, down, pad, kernels):
    monkeypatch.setenv("BENDER_UPFIRDN2D_KERNEL", kernels)
    f = setup_filter([1, 3, 3, 1]).cuda()
    x0 = rand(2, 6, 13, 11, dtype=dtype)
    grads = {}
    for impl in ("cuda", "ref"):
        x = (x0 if impl == "cuda" else x0.double()).detach().requires_grad_(True)
        y = upfirdn2d(x, f if impl == "cuda" else f.double(), up=up, down=down, padding=pad, gain=2.0, impl=impl)
        w = torch.randn(y.shape, device="cuda", generator=torch.Generator("cuda").manual_seed(5)).to(y.dtype)
        # y * y: the gradient depends on x, so there is a second derivative to take (as in R1).
        (gx,) = torch.autograd.grad((y * y * w).sum(), x, create_graph=True)
        (ggx,) = torch.autograd.grad((gx * gx).sum(), x)
        grads[impl] = (y, gx, ggx)
    for got, want in zip(grads["cuda"], grads["ref"]):
        close(got, want, dtype, factor=8)


# ------------------------------------------------------------------------------------------------
# Whole networks: kernels vs reference ops, forward and R1.

def nets(res=64):
    from bender.nets import Discriminator, Generator
    from bender.nets.config import DiscriminatorConfig, GeneratorConfig, MappingConfig, SynthesisConfig

    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=64, w_dim=64, img_resolution=res, mapping=MappingConfig(num_layers=2),
                                  synthesis=SynthesisConfig(channel_base=2048, channel_max=128, num_fp16_res=2,
                                                            conv_clamp=256))).cuda()
    D = Discriminator(DiscriminatorConfig(img_resolution=res, channel_base=2048, channel_max=128, num_fp16_res=2,
                                          conv_clamp=256)).cuda()
    with torch.no_grad():
        for p in [*G.parameters(), *D.parameters()]:
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.1)
    return G, D


@pytest.mark.parametrize("force_fp32", [True, False])
@pytest.mark.parametrize("kernels", ["tiled", "rows"])
def test_generator_and_r1_match_reference_ops(ops, monkeypatch, force_fp32, kernels):
    monkeypatch.setenv("BENDER_UPFIRDN2D_KERNEL", kernels)
    # TF32 would make the reference path (its FIR filters run as cuDNN convolutions) the inexact one.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    G, D = nets()
    z = torch.randn(4, G.z_dim, device="cuda")
    results = {}
    for mode in ("cuda", "ref"):
        monkeypatch.setenv("BENDER_OPS", mode)
        img = G(z, None, noise_mode="const", force_fp32=force_fp32)
        real = img.detach().requires_grad_(True)
        logits = D(real, force_fp32=force_fp32)
        (r1_grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
        r1 = r1_grad.square().sum()
        D.zero_grad(set_to_none=True)
        r1.backward()
        results[mode] = (img.detach(), logits.detach(), r1.detach(),
                         torch.cat([p.grad.flatten() for p in D.parameters() if p.grad is not None]))
    tol = 1e-4 if force_fp32 else 2e-2
    for got, want in zip(results["cuda"], results["ref"]):
        scale = want.abs().max().item() + 1e-6
        assert (got - want).abs().max().item() <= tol * scale, (got - want).abs().max().item() / scale
