"""Runtime behaviour of the networks beyond the fixtures: precision modes, caches, training paths."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from bender.io import load
from bender.nets import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig, SynthesisConfig


def tiny_g(arch: str = "skip", res: int = 16, c_dim: int = 0) -> Generator:
    torch.manual_seed(0)
    cfg = GeneratorConfig(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=res, mapping=MappingConfig(num_layers=2),
                          synthesis=SynthesisConfig(channel_base=128, channel_max=16, architecture=arch,
                                                    num_fp16_res=2, conv_clamp=256))
    return Generator(cfg).eval()


@pytest.fixture(scope="module")
def cond_model(fixtures_dir):
    return load(fixtures_dir / "networks" / "sg2ada-res64-fp16-cond.pkl")


def test_bf16_blocks_on_cpu_stay_close_to_fp32(cond_model, fixtures_dir):
    ref = np.load(fixtures_dir / "networks" / "sg2ada-res64-fp16-cond.npz")
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    with torch.no_grad():
        img = cond_model.G_ema(z, c, noise_mode="const", half_dtype=torch.bfloat16)
        exact = cond_model.G_ema(z, c, noise_mode="const")
    scale = float(np.abs(ref["img_const"]).max())
    err = float((img - exact).abs().max())
    assert 0 < err < 0.02 * scale  # really ran reduced precision, and stayed within 2% of the range
    np.testing.assert_allclose(exact.numpy(), ref["img_const"], rtol=1e-5, atol=1e-5 * scale)


def test_fused_and_modulated_activation_paths_agree():
    G = tiny_g()
    z = torch.randn(3, 16)
    with torch.no_grad():
        a = G(z, noise_mode="const", fused_modconv=True)
        b = G(z, noise_mode="const", fused_modconv=False)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)


def test_inference_cache_follows_weight_changes():
    G = tiny_g()
    z = torch.randn(2, 16)
    with torch.no_grad():
        before = G(z, noise_mode="const")
        G.synthesis.b16.conv1.weight.mul_(1.5).add_(0.1)  # in place: version bump
        after_inplace = G(z, noise_mode="const")
        fresh = copy.deepcopy(G)
        layer = G.synthesis.b16.conv0
        layer.weight = torch.nn.Parameter(layer.weight.detach().flip(0), requires_grad=False)  # swapped
        after_swap = G(z, noise_mode="const")
        fresh.synthesis.b16.conv0.weight.copy_(layer.weight)
        expected = fresh(z, noise_mode="const")
    assert not torch.allclose(before, after_inplace)
    assert not torch.allclose(after_inplace, after_swap)
    torch.testing.assert_close(after_swap, expected)


def test_gradients_flow_to_all_trainable_parameters_and_twice_to_inputs():
    G = tiny_g("resnet").train()
    D = Discriminator(DiscriminatorConfig(img_resolution=16, channel_base=128, channel_max=16, mbstd_group_size=2))
    z = torch.randn(2, 16)
    img = G(z)
    logits = D(img)
    logits.sum().backward()
    for name, p in list(G.named_parameters()) + list(D.named_parameters()):
        if "noise_strength" in name:
            continue  # starts at zero; its gradient may legitimately be zero only by chance
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # R1-style second derivative through D
    real = torch.randn(2, 3, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
    grad.square().sum().backward()
    assert all(p.grad is not None for p in D.parameters() if p.requires_grad)


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
def test_every_architecture_builds_and_runs(arch):
    G = tiny_g(arch, c_dim=3)
    D = Discriminator(DiscriminatorConfig(img_resolution=16, c_dim=3, architecture=arch, channel_base=128,
                                          channel_max=16))
    z, c = torch.randn(4, 16), torch.eye(3)[[0, 1, 2, 0]]
    with torch.no_grad():
        img = G(z, c, noise_mode="random", generator=torch.Generator().manual_seed(1))
        again = G(z, c, noise_mode="random", generator=torch.Generator().manual_seed(1))
        assert torch.equal(img, again)  # seeded random noise is reproducible
        assert D(img, c).shape == (4, 1)
        assert D.features(img).shape == (4, 16)


def test_freeze_d_and_truncation_cutoff():
    D = Discriminator(DiscriminatorConfig(img_resolution=16, channel_base=128, channel_max=16, freeze_layers=3))
    frozen = [n for n, p in D.named_parameters() if not p.requires_grad]
    assert frozen == ["b16.fromrgb.weight", "b16.fromrgb.bias", "b16.conv0.weight", "b16.conv0.bias",
                      "b16.conv1.weight", "b16.conv1.bias"]
    D.freeze(0)
    assert all(p.requires_grad for p in D.parameters())
    G = tiny_g()
    z = torch.randn(2, 16)
    with torch.no_grad():
        ws = G.mapping(z, None)
        cut = G.mapping(z, None, truncation_psi=0.0, truncation_cutoff=2)
    assert torch.allclose(cut[:, :2], G.mapping.w_avg.expand(2, 2, -1))
    assert torch.equal(cut[:, 2:], ws[:, 2:])


def test_shape_errors_are_clear():
    G = tiny_g()
    with pytest.raises(ValueError, match="ws must be"):
        G.synthesis(torch.randn(1, 3, 16))
    with pytest.raises(ValueError, match="noise_mode"):
        G(torch.randn(1, 16), noise_mode="loud")


def test_weights_created_under_inference_mode_are_not_cached_but_work():
    G = tiny_g()
    z = torch.randn(2, 16)
    with torch.inference_mode():
        layer = G.synthesis.b16.conv1
        expected = G(z, noise_mode="const")
        original = layer.weight.detach().clone()
        layer.weight = torch.nn.Parameter(original.flip(0), requires_grad=False)
        assert layer.weight.is_inference()
        flipped = G(z, noise_mode="const")
        layer.weight.copy_(original)  # in-place inside inference mode: must be seen, not a stale cache
        back = G(z, noise_mode="const")
    assert not torch.allclose(expected, flipped)
    torch.testing.assert_close(back, expected)
