"""Z / W / W+: mapping, truncation with cutoff, style mixing, saved W files, noise inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bender.errors import BenderError
from bender.io import load
from bender.latent import noise, spaces
from bender.latent.seeds import zs_from_seeds


@pytest.fixture(scope="module")
def model(fixtures_dir):
    return load(fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl")


@pytest.fixture(scope="module")
def ref(fixtures_dir):
    return np.load(fixtures_dir / "networks" / "sg2ada-res32-fp32.npz")


def test_map_and_truncate_match_nvidia_reference(model, ref):
    G = model.G_ema
    z = torch.from_numpy(ref["z"])
    ws = spaces.map_z(G, z)
    np.testing.assert_allclose(ws.numpy(), ref["ws"], rtol=1e-5, atol=1e-5)
    ws05 = spaces.truncate(ws, G.mapping.w_avg, 0.5)
    np.testing.assert_allclose(ws05.numpy(), ref["ws_psi05"], rtol=1e-5, atol=1e-5)


def test_truncate_per_sample_psi_and_cutoff(model):
    G = model.G_ema
    ws = spaces.seeds_to_ws(G, [1, 2, 3])
    psi = torch.tensor([1.0, 0.5, 0.0])
    out = spaces.truncate(ws, G.mapping.w_avg, psi, cutoff=4)
    assert torch.equal(out[0], ws[0])  # psi 1 is exact
    assert torch.allclose(out[2, :4], G.mapping.w_avg.expand(4, -1))  # psi 0: the mean
    assert torch.equal(out[:, 4:], ws[:, 4:])  # layers past the cutoff untouched
    assert torch.allclose(out[1, :4], G.mapping.truncate(ws[1:2], 0.5, 4)[0, :4], atol=1e-6)
    assert spaces.truncate(ws, G.mapping.w_avg, 1.0) is ws


def test_seeds_are_deterministic_and_cross_device_safe(model):
    a = zs_from_seeds([5, 6], model.G_ema.z_dim)
    b = zs_from_seeds([5, 6], model.G_ema.z_dim)
    assert torch.equal(a, b)
    expected = np.random.RandomState(6).randn(1, model.G_ema.z_dim).astype(np.float32)
    assert np.array_equal(a[1:].numpy(), expected)


def test_style_mix_copies_only_the_layer_range(model):
    G = model.G_ema
    ws = spaces.seeds_to_ws(G, [1])
    other = spaces.seeds_to_ws(G, [2])
    lo, hi = spaces.parse_layer_range("2-4", G.num_ws)
    assert (lo, hi) == (2, 5)
    mixed = spaces.style_mix(ws, other, (lo, hi))
    assert torch.equal(mixed[:, 2:5], other[:, 2:5])
    assert torch.equal(mixed[:, :2], ws[:, :2]) and torch.equal(mixed[:, 5:], ws[:, 5:])
    img_a = G.synthesis(ws, noise_mode="const")
    img_m = G.synthesis(mixed, noise_mode="const")
    assert (img_a - img_m).abs().max() > 0.1


def test_layer_range_errors(model):
    n = model.G_ema.num_ws
    assert spaces.parse_layer_range(None, n) == (0, n)
    assert spaces.parse_layer_range(3, n) == (3, 4)
    assert spaces.parse_layer_range([0, 1], n) == (0, 2)
    for bad in ("3-99", "x", "5-2"):
        with pytest.raises(BenderError, match="layer range"):
            spaces.parse_layer_range(bad, n)


def test_save_and_load_ws_shapes(model, tmp_path):
    G = model.G_ema
    ws = spaces.seeds_to_ws(G, [1, 2])
    spaces.save_ws(tmp_path / "two.npy", ws)
    assert torch.equal(spaces.load_ws(tmp_path / "two.npy", G.num_ws, G.w_dim), ws)
    spaces.save_ws(tmp_path / "one.npy", ws[0])
    assert torch.equal(spaces.load_ws(tmp_path / "one.npy", G.num_ws, G.w_dim), ws[:1])
    np.save(tmp_path / "plain.npy", ws[0, 0].numpy())  # a single w: broadcast to every layer
    plain = spaces.load_ws(tmp_path / "plain.npy", G.num_ws, G.w_dim)
    assert plain.shape == (1, G.num_ws, G.w_dim) and torch.equal(plain[0, 3], ws[0, 0])
    np.savez(tmp_path / "projected_w.npz", w=ws[:1].numpy())  # NVIDIA projector output
    assert torch.equal(spaces.load_ws(tmp_path / "projected_w.npz", G.num_ws, G.w_dim), ws[:1])
    np.save(tmp_path / "wrong.npy", np.zeros([3, 7]))
    with pytest.raises(BenderError, match="w_dim"):
        spaces.load_ws(tmp_path / "wrong.npy", G.num_ws, G.w_dim)
    (tmp_path / "text.npy").write_text("hello")
    with pytest.raises(BenderError, match="not a numpy"):
        spaces.load_ws(tmp_path / "text.npy", G.num_ws, G.w_dim)
    with pytest.raises(BenderError, match="no such W file"):
        spaces.load_ws(tmp_path / "missing.npy", G.num_ws, G.w_dim)


def test_noise_const_matches_generator_const_mode(model):
    G = model.G_ema
    ws = spaces.seeds_to_ws(G, [1, 2])
    with noise.noise_inputs(G, noise.make_noise(G, [0, 1], "const", [1.0, 1.0])):
        ours = G.synthesis(ws, noise_mode="const")
    theirs = G.synthesis(ws, noise_mode="const")
    assert torch.allclose(ours, theirs, atol=1e-6)
    # buffers are restored
    assert all(m.noise_const.ndim == 2 for m in noise.noise_layers(G).values())


def test_noise_strength_per_sample(model):
    G = model.G_ema
    ws = spaces.seeds_to_ws(G, [1, 1, 1])
    with noise.noise_inputs(G, noise.make_noise(G, [0, 1, 2], "const", [0.0, 1.0, 2.0])):
        out = G.synthesis(ws, noise_mode="const")
    assert torch.allclose(out[0], G.synthesis(ws[:1], noise_mode="none")[0], atol=1e-5)
    assert torch.allclose(out[1], G.synthesis(ws[:1], noise_mode="const")[0], atol=1e-5)
    assert torch.allclose(out[2], G.synthesis(ws[:1], noise_mode="const", noise_gain=2.0)[0], atol=1e-5)


def test_random_noise_is_per_frame_not_per_batch(model):
    G = model.G_ema
    together = noise.make_noise(G, [3, 4, 5], "random", [1.0, 1.0, 1.0], seed=9)
    alone = noise.make_noise(G, [4], "random", [1.0], seed=9)
    other_seed = noise.make_noise(G, [4], "random", [1.0], seed=10)
    for name in together:
        assert torch.equal(together[name][1], alone[name][0])
        assert not torch.equal(alone[name][0], other_seed[name][0])
        assert not torch.equal(together[name][0], together[name][1])
