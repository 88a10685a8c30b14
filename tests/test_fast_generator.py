"""bender.nets.fast: the opt-in inference path (half blocks, channels_last, CUDA graphs)."""

from __future__ import annotations

import pytest
import torch

from bender.latent.seeds import zs_from_seeds
from bender.nets import Generator
from bender.nets.config import GeneratorConfig, MappingConfig, SynthesisConfig
from bender.nets.fast import FastGenerator, FastOptions


def small_generator(resolution: int = 32, num_fp16_res: int = 2, c_dim: int = 0) -> Generator:
    torch.manual_seed(3)
    cfg = GeneratorConfig(z_dim=32, c_dim=c_dim, w_dim=32, img_resolution=resolution,
                          mapping=MappingConfig(num_layers=2),
                          synthesis=SynthesisConfig(channel_base=1024, channel_max=64, num_fp16_res=num_fp16_res,
                                                    conv_clamp=256))
    G = Generator(cfg).eval()
    with torch.no_grad():  # non-zero biases and noise strengths, so every op matters
        for name, p in G.named_parameters():
            if name.endswith(("bias", "noise_strength")):
                p.add_(torch.randn_like(p) * 0.1)
    return G


def test_options_are_checked():
    with pytest.raises(ValueError, match="half"):
        FastOptions(half="float8")
    with pytest.raises(ValueError, match="noise_mode"):
        FastOptions(noise_mode="loud")


def test_cpu_runs_the_plain_generator_and_leaves_the_source_model_alone():
    G = small_generator()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    fast = FastGenerator(G, FastOptions(), device="cpu")
    z = zs_from_seeds([1, 2, 3], G.z_dim, "cpu")
    with torch.no_grad():
        ref = G(z, None, truncation_psi=0.7, noise_mode="const")
        ref_ws = G.synthesis(G.mapping(z, None), noise_mode="const")
    torch.testing.assert_close(fast(z, truncation_psi=0.7), ref, rtol=0, atol=0)
    torch.testing.assert_close(fast.synthesize(G.mapping(z, None)), ref_ws, rtol=0, atol=0)
    for k, v in G.state_dict().items():
        assert torch.equal(v, before[k]), k
    # fused_modconv is handed to G as it is (None: G's own choice, which on a CPU is not to fuse;
    # fusing rounds differently, so the two outputs tell which one ran).
    fused = FastGenerator(G, FastOptions(fused_modconv=True), device="cpu")
    with torch.no_grad():
        ref_fused = G(z, None, truncation_psi=0.7, noise_mode="const", fused_modconv=True)
    assert not torch.equal(ref_fused, ref)
    torch.testing.assert_close(fused(z, truncation_psi=0.7), ref_fused, rtol=0, atol=0)


@pytest.mark.cuda
@pytest.mark.parametrize("half", ["float16", "bfloat16"])
@pytest.mark.parametrize("fused", [None, False])
def test_cuda_fast_path_stays_within_half_precision_of_fp32(half, fused):
    G = small_generator(resolution=64, num_fp16_res=3).cuda()
    z = zs_from_seeds(list(range(8)), G.z_dim, "cuda")
    with torch.no_grad():
        ref32 = G(z, None, truncation_psi=0.8, noise_mode="const", force_fp32=True)
        plain_half = G(z, None, truncation_psi=0.8, noise_mode="const", half_dtype=getattr(torch, half))
    fast = FastGenerator(G, FastOptions(half=half, fused_modconv=fused))
    out = fast(z, truncation_psi=0.8)
    again = fast(z, truncation_psi=0.8)  # a replay of the captured graph
    assert out.dtype == torch.float32 and out.shape == ref32.shape and out.is_contiguous()
    assert torch.equal(out, again)
    assert len(fast._graphs) == 1
    scale = ref32.abs().mean().item()
    tol = 0.02 if half == "float16" else 0.06  # mean abs error relative to the image's mean magnitude
    assert (out - ref32).abs().mean().item() < tol * scale
    assert (plain_half - ref32).abs().mean().item() < tol * scale
    # Same precision, different layout and launch: nearly the same numbers.
    assert (out - plain_half).abs().mean().item() < tol * scale / 2
    ws = G.mapping(z, None, truncation_psi=0.8)
    torch.testing.assert_close(fast.synthesize(ws), out, rtol=0.05, atol=0.05 * scale)


@pytest.mark.cuda
def test_cuda_graph_outputs_are_not_overwritten_by_the_next_call():
    G = small_generator().cuda()
    fast = FastGenerator(G, FastOptions(half="float16"))
    a = fast(zs_from_seeds([1, 2], G.z_dim, "cuda"))
    a_copy = a.clone()
    b = fast(zs_from_seeds([3, 4], G.z_dim, "cuda"))
    assert torch.equal(a, a_copy) and not torch.equal(a, b)
