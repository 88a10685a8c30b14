"""The bend slider (weight blending) and the snapshot timeline."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from bender.errors import BenderError
from bender.io import Model, load, save_model
from bender.latent.blend import BlendProfile, Timeline, WeightBlender
from bender.latent.seeds import zs_from_seeds


def perturbed(model, seed: int, scale: float = 0.3):
    """A 'fine-tuned' copy: same architecture, every float tensor of G_ema moved."""
    out = model.clone()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in out.G_ema.state_dict().items():
            if t.is_floating_point() and "resample_filter" not in name:
                t.add_(torch.randn(t.shape, generator=g) * scale)
    return out


def copy_of(model) -> Model:
    """G_ema only: the snapshots of a bender run hold bender models, not NVIDIA skeletons."""
    return Model(G_ema=copy.deepcopy(model.G_ema), lineage=dataclasses.replace(model.lineage))


@pytest.fixture(scope="module")
def pair(fixtures_dir):
    a = load(fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl")
    return a, perturbed(a, 1)


def _images(G, seeds=(1, 2)):
    z = zs_from_seeds(list(seeds), G.z_dim)
    with torch.no_grad():
        return G(z, None, noise_mode="const")


def test_alpha_0_and_1_reproduce_the_models_exactly(pair):
    a, b = pair
    blender = WeightBlender(a, b)
    for alpha, model in ((0.0, a), (1.0, b), (0.0, a)):
        G = blender.set(alpha)
        for k, v in G.state_dict().items():
            assert torch.equal(v, model.G_ema.state_dict()[k]), (alpha, k)
        assert torch.equal(_images(G), _images(model.G_ema))


def test_alpha_between_and_beyond(pair):
    a, b = pair
    blender = WeightBlender(a, b)
    sa, sb = a.G_ema.state_dict(), b.G_ema.state_dict()
    for alpha in (0.25, -0.5, 1.5):
        G = blender.set(alpha)
        w = G.state_dict()["synthesis.b16.conv0.weight"]
        expected = sa["synthesis.b16.conv0.weight"] + alpha * (sb["synthesis.b16.conv0.weight"] -
                                                              sa["synthesis.b16.conv0.weight"])
        assert torch.allclose(w, expected, atol=1e-6)
    # over-bend goes further from A than B does
    img_a = _images(a.G_ema)
    d_b = (_images(blender.set(1.0)) - img_a).abs().mean()
    d_over = (_images(blender.set(2.0)) - img_a).abs().mean()
    assert d_over > d_b


def test_per_resolution_profile(pair):
    a, b = pair
    blender = WeightBlender(a, b)
    G = blender.set(BlendProfile(coarse=0.0, fine=1.0, center=16, width=0))
    sd, sa, sb = G.state_dict(), a.G_ema.state_dict(), b.G_ema.state_dict()
    assert torch.equal(sd["synthesis.b4.conv1.weight"], sa["synthesis.b4.conv1.weight"])
    assert torch.equal(sd["synthesis.b8.conv1.weight"], sa["synthesis.b8.conv1.weight"])
    assert torch.equal(sd["synthesis.b32.conv1.weight"], sb["synthesis.b32.conv1.weight"])
    assert torch.equal(sd["mapping.fc0.weight"], sa["mapping.fc0.weight"])  # mapping follows the coarsest
    smooth = BlendProfile(coarse=0.0, fine=1.0, center=16, width=0.5)
    alphas = [smooth.alpha_at(r) for r in (4, 8, 16, 32)]
    assert alphas == sorted(alphas) and alphas[2] == pytest.approx(0.5) and 0 < alphas[0] < 0.05
    explicit = BlendProfile(alpha=0.3, per_resolution={32: 1.0})
    assert explicit.alpha_at(32) == 1.0 and explicit.alpha_at(8) == 0.3
    with pytest.raises(BenderError, match="coarse"):
        BlendProfile(coarse=0.0)


def test_blender_caches_unchanged_tensors(pair, monkeypatch):
    a, b = pair
    blender = WeightBlender(a, b)
    calls = []
    real_lerp = torch.lerp

    def counting_lerp(*args, **kwargs):
        calls.append(1)
        return real_lerp(*args, **kwargs)

    monkeypatch.setattr(torch, "lerp", counting_lerp)
    blender.set(0.5)
    first = len(calls)
    assert first > 0
    blender.set(0.5)
    assert len(calls) == first  # nothing re-blended
    blender.set(BlendProfile(alpha=0.5, per_resolution={32: 0.7}))
    touched = len(calls) - first
    assert 0 < touched < first  # only the 32x32 block


def test_blend_refuses_different_architectures(pair, fixtures_dir):
    a, _ = pair
    other = load(fixtures_dir / "networks" / "sg2ada-res64-fp16-cond.pkl")
    with pytest.raises(BenderError, match="different architectures"):
        WeightBlender(a, other)


def test_to_model_saves_a_loadable_blend(pair, tmp_path):
    a, b = pair
    blender = WeightBlender(a, b)
    blender.set(0.5)
    path = save_model(blender.to_model(), tmp_path / "blend.safetensors")
    again = load(path)
    assert torch.equal(_images(again.G_ema), _images(blender.generator))
    assert again.lineage.notes["blend"]["alpha"] == 0.5


@pytest.fixture(scope="module")
def run_dir(pair, tmp_path_factory):
    a, _ = pair
    run = tmp_path_factory.mktemp("run")
    for i, kimg in enumerate((0.0, 4.0, 12.0)):
        m = perturbed(a, 10 + i) if i else copy_of(a)
        m.lineage.kimg = kimg
        save_model(m, run / "checkpoints" / f"snapshot-{kimg:010.3f}.safetensors")
    return run


def test_timeline_hits_each_snapshot_exactly(run_dir):
    tl = Timeline(run_dir)
    assert len(tl) == 3 and tl.positions == [0.0, 0.5, 1.0]
    for t, snap in zip((0.0, 0.5, 1.0), tl.snapshots):
        G = tl.generator_at(t)
        expected = load(snap).G_ema.state_dict()
        for k, v in G.state_dict().items():
            assert torch.equal(v, expected[k]), (t, k)
    # between snapshots: the lerp of the neighbours
    i, j, alpha = tl.locate(0.75)
    assert (i, j, alpha) == (1, 2, pytest.approx(0.5))
    G = tl.generator_at(0.75)
    s1, s2 = (load(p).G_ema.state_dict() for p in tl.snapshots[1:])
    assert torch.allclose(G.state_dict()["synthesis.b8.conv0.weight"],
                          (s1["synthesis.b8.conv0.weight"] + s2["synthesis.b8.conv0.weight"]) / 2, atol=1e-6)
    assert tl.kimg_at(0.75) == pytest.approx(8.0)


def test_timeline_by_kimg(run_dir):
    tl = Timeline(run_dir, by="kimg")
    assert tl.positions == [0.0, pytest.approx(1 / 3), 1.0]
    G = tl.generator_at(1 / 3)
    expected = load(tl.snapshots[1]).G_ema.state_dict()
    assert torch.equal(G.state_dict()["mapping.fc0.weight"], expected["mapping.fc0.weight"])


def test_timeline_errors(tmp_path):
    with pytest.raises(BenderError, match="no checkpoints"):
        Timeline(tmp_path)


def test_timeline_refuses_mixed_architectures(pair, fixtures_dir, tmp_path):
    a, _ = pair
    other = load(fixtures_dir / "networks" / "sg2ada-res64-fp16-cond.pkl")
    save_model(copy_of(a), tmp_path / "checkpoints" / "snapshot-000000.000.safetensors")
    save_model(other, tmp_path / "checkpoints" / "snapshot-000004.000.safetensors")
    tl = Timeline(tmp_path)
    with pytest.raises(BenderError, match="different architecture"):
        tl.generator_at(1.0)
