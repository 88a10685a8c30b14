"""The autograd around the CUDA kernels (bender/ops/cuda/functions.py), checked on CPU.

The compiled extension is a set of forward maps with a small contract (bindings.cpp / ops.h). Here
that contract is implemented independently in plain PyTorch — derivatives from autograd, not from
the kernels' formulas — and the real autograd Functions are driven with it in float64, so
gradcheck/gradgradcheck verify the backward wiring, the second-order paths and the transposed
upfirdn2d used as its own gradient. The kernels' arithmetic is checked separately (emulated on CPU
in test_ops_cuda_emulated.py, and on a GPU by test_ops_cuda.py).
"""

from __future__ import annotations

import pytest
import torch

from bender.ops import setup_filter
from bender.ops.bias_act import ACTIVATIONS, bias_act_ref
from bender.ops.cuda.functions import (
    BiasAct,
    BiasActSpec,
    CudaOps,
    Upfirdn2d,
    UpfirdnSpec,
)
from bender.ops.upfirdn2d import upfirdn2d_ref

ACT_BY_IDX = {spec.cuda_idx: name for name, spec in ACTIVATIONS.items()}


class TorchExtension:
    """The extension's contract in plain PyTorch; outputs are detached, like a kernel's."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []

    def bias_act(self, x, b, g, gg, dim, act_idx, alpha, gain, clamp, mode):
        self.calls.append(("bias_act", mode))
        act = ACT_BY_IDX[act_idx]
        with torch.enable_grad():
            z = x.detach().clone()
            if b is not None:
                z = z + b.detach().reshape([-1 if i == dim else 1 for i in range(x.ndim)])
            z = z.detach().requires_grad_(True)
            v = ACTIVATIONS[act].func(z, alpha)
            (d,) = torch.autograd.grad(v.sum(), z, create_graph=True)
            d2 = torch.autograd.grad(d.sum(), z, allow_unused=True)[0] if d.requires_grad else None
        v, d = v.detach() * gain, d.detach()
        d2 = torch.zeros_like(d) if d2 is None else d2.detach()
        mask = torch.ones_like(v) if clamp < 0 else ((v >= -clamp) & (v <= clamp)).to(v.dtype)
        if mode == 0:
            return v if clamp < 0 else v.clamp(-clamp, clamp)
        if mode == 1:
            return g.detach() * d * gain * mask
        return g.detach() * gg.detach() * d2 * gain * mask

    def upfirdn2d(self, x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip, gain, path):
        self.calls.append(("upfirdn2d", path))
        y = upfirdn2d_ref(x.detach(), f, (upx, upy), (downx, downy), (px0, px1, py0, py1), flip, gain)
        return y, 0  # (y, the kernel that ran: 0 generic, 1 tiled, 2 row-streaming)


def bias_act_fn(ext, dim, act, alpha=0.2, gain=1.3, clamp=-1.0):
    spec = BiasActSpec(dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    return lambda x, b: BiasAct.apply(x, b, ext, spec)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("clamp", [-1.0, 1.1])
def test_bias_act_first_and_second_derivatives(act, clamp):
    ext = TorchExtension()
    x = (torch.randn(2, 3, 4, dtype=torch.float64) * 1.5).requires_grad_(True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    fn = bias_act_fn(ext, 1, act, clamp=clamp)
    torch.testing.assert_close(fn(x, b), bias_act_ref(x, b, 1, act, 0.2, 1.3, clamp))
    assert torch.autograd.gradcheck(fn, (x, b), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x, b), fast_mode=True)
    modes = {mode for op, mode in ext.calls if op == "bias_act"}
    if act in ("linear", "relu", "lrelu"):
        assert 2 not in modes  # act'' = 0: the second-order kernel is never needed
    else:
        assert modes == {0, 1, 2}


def test_bias_act_without_bias_and_on_another_dim():
    ext = TorchExtension()
    x = torch.randn(3, 2, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: BiasAct.apply(x, None, ext, BiasActSpec(2, "swish", 0, 1.0, -1)),
                                        (x,), fast_mode=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(bias_act_fn(ext, 2, "tanh", clamp=0.5), (x, b), fast_mode=True)


def test_bias_act_third_derivative_is_refused_loudly():
    ext = TorchExtension()
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = bias_act_fn(ext, 1, "tanh")(x, None).sum()
    (g1,) = torch.autograd.grad(y, x, create_graph=True)
    (g2,) = torch.autograd.grad(g1.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="third derivatives|once_differentiable|differentiate"):
        torch.autograd.grad(g2.sum(), x)


def test_bias_act_lrelu_derivatives_of_every_order_stay_on_the_kernels():
    """R1 differentiates D (all lrelu) twice; with a piecewise-linear activation even a third
    derivative is available (it is zero)."""
    ext = TorchExtension()
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    y = bias_act_fn(ext, 1, "lrelu")(x, b)
    (g1,) = torch.autograd.grad((y * y).sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad((g1 * g1).sum(), x, create_graph=True)
    (g3,) = torch.autograd.grad(g2.sum(), b)
    xr, br = x.detach().requires_grad_(True), b.detach().requires_grad_(True)
    yr = bias_act_ref(xr, br, 1, "lrelu", 0.2, 1.3, -1)
    (r1,) = torch.autograd.grad((yr * yr).sum(), xr, create_graph=True)
    (r2,) = torch.autograd.grad((r1 * r1).sum(), xr, create_graph=True)
    (r3,) = torch.autograd.grad(r2.sum(), br)
    torch.testing.assert_close(g2, r2)
    torch.testing.assert_close(g3, r3)


UPFIRDN_CASES = [  # up, down, padding, flip_filter, filter kind
    ((2, 2), (1, 1), (2, 1, 2, 1), False, "2d"),   # StyleGAN2 upsample2d
    ((1, 1), (2, 2), (1, 1, 1, 1), False, "1d"),   # downsample2d
    ((1, 1), (1, 1), (1, 1, 1, 1), True, "2d"),    # filter after the transposed conv
    ((1, 1), (2, 2), (2, 2, 2, 2), True, "1d"),    # D's filter-then-stride
    ((3, 2), (2, 3), (0, 1, 2, -1), False, "2d"),  # odd factors; out * down overshoots the filtered length
    ((1, 1), (3, 3), (-1, 0, 1, 2), True, "2d"),   # negative padding crops
    ((2, 2), (2, 2), (1, 0, 0, 1), False, "1d"),
]


@pytest.mark.parametrize("up,down,pad,flip,fkind", UPFIRDN_CASES)
def test_upfirdn2d_gradient_is_the_transposed_upfirdn2d(up, down, pad, flip, fkind):
    ext = TorchExtension()
    f = torch.rand(4, 3, dtype=torch.float64) + 0.1 if fkind == "2d" else torch.rand(4, dtype=torch.float64) + 0.1
    spec = UpfirdnSpec(*up, *down, *pad, flip, 1.6)
    x = torch.randn(1, 2, 7, 5, dtype=torch.float64, requires_grad=True)
    fn = lambda x: Upfirdn2d.apply(x, f, ext, spec)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)


def test_transposed_spec_swaps_factors_flips_and_transposes_padding():
    spec = UpfirdnSpec(3, 2, 1, 2, 0, 1, 2, -1, False, 1.0)
    # x: 6 * 3 + 0 + 1 - 3 taps + 1 = 17 outputs; y: (7 * 2 + 2 - 1 - 4) // 2 + 1 = 6.
    t = spec.transposed(in_h=7, in_w=6, out_h=6, out_w=17, fh=4, fw=3)
    assert (t.upx, t.upy, t.downx, t.downy, t.flip, t.gain) == (1, 2, 3, 2, True, 1.0)
    assert (t.px0, t.px1, t.py0, t.py1) == (3 - 1 - 0, 6 * 3 + 0 - 17, 4 - 1 - 2, 7 * 2 + 2 - 6 * 2)


def test_cuda_ops_sends_what_the_kernels_do_not_cover_to_the_reference(monkeypatch):
    """float64, filters that need gradients and oversized filters never reach the extension; what
    does reaches it with the kernel choice of BENDER_UPFIRDN2D_KERNEL (ops.h's `path`)."""
    monkeypatch.delenv("BENDER_UPFIRDN2D_KERNEL", raising=False)
    ext = TorchExtension()
    ops = CudaOps(ext)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    ops.bias_act(x, None, 1, "lrelu", 0.2, 1.0, -1.0)
    ops.upfirdn2d(x, setup_filter([1, 3, 3, 1]).double(), 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0)
    ops.upfirdn2d(x.float(), torch.rand(4, 4, requires_grad=True), 1, 1, 1, 1, 1, 2, 1, 2, False, 1.0)
    ops.upfirdn2d(x.float(), torch.rand(80, 80), 1, 1, 1, 1, 40, 39, 40, 39, False, 1.0)
    assert ext.calls == []
    ops.bias_act(x.float(), torch.zeros(2, dtype=torch.float64), -3, "relu", 0.0, 1.0, -1.0)
    ops.upfirdn2d(x.float(), setup_filter([1, 3, 3, 1]), 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0)
    assert ext.calls == [("bias_act", 0), ("upfirdn2d", 4)]  # row-streaming first, then tiled, then generic
    monkeypatch.setenv("BENDER_UPFIRDN2D_KERNEL", "tiled")
    y = ops.upfirdn2d(x.float().requires_grad_(True), setup_filter([1, 3, 3, 1]), 1, 1, 2, 2, 1, 1, 1, 1, False, 1.0)
    y.sum().backward()  # the gradient's upfirdn2d keeps the forward's choice
    assert ext.calls[2:] == [("upfirdn2d", 0), ("upfirdn2d", 0)]
