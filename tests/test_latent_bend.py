"""Network bending: every op on a known tensor, channel subsets, hooks on a real generator."""

from __future__ import annotations

import pytest
import torch

from bender.errors import BenderError
from bender.latent import bend as B
from bender.latent.spaces import seeds_to_ws


def dot(h=5, w=5, y=1, x=3, c=1):
    """[1, c, h, w] zeros with a single 1 at (y, x)."""
    t = torch.zeros(1, c, h, w)
    t[:, :, y, x] = 1
    return t


ONE = torch.tensor([1.0])


def test_translate_whole_and_sub_pixel():
    x = dot()
    out = B.Translate(dx=0.4, dy=0.2)(x, ONE)  # 2 px right, 1 px down on a 5x5 map
    assert torch.equal(out, dot(y=2, x=0))  # x = 3 + 2 wraps to 0
    clipped = B.Translate(dx=0.4, dy=0.0, wrap=False)(x, ONE)
    assert clipped.sum() == 0  # shifted off the edge
    half = B.Translate(dx=0.2, dy=0.0)(x, torch.tensor([0.5]))  # 0.5 px
    assert half[0, 0, 1, 3] == pytest.approx(0.5) and half[0, 0, 1, 4] == pytest.approx(0.5)
    assert torch.equal(B.Translate(dx=0.4)(x, torch.tensor([0.0])), x)


def test_rotate_quarter_turn_is_anticlockwise():
    x = dot(y=0, x=2)  # top-centre of a 5x5 map
    out = B.Rotate(degrees=90)(x, ONE)
    assert torch.allclose(out, dot(y=2, x=0), atol=1e-5)  # moves to the left-centre
    back = B.Rotate(degrees=90)(out, torch.tensor([-1.0]))
    assert torch.allclose(back, x, atol=1e-5)
    assert torch.allclose(B.Rotate(degrees=90)(x, torch.tensor([0.0])), x, atol=1e-6)


def test_scale_zooms_about_the_centre():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3:5, 3:5] = 1  # 2x2 block in the middle
    out = B.Scale(factor=2)(x, ONE)
    inner = out[0, 0, 2:6, 2:6]  # the block now covers 4x4 (edges bilinear: 0.75 and 0.5625 at corners)
    assert torch.allclose(inner[1:3, 1:3], torch.ones(2, 2)) and (inner > 0.5).all()
    assert torch.allclose(inner, inner.flip(0)) and torch.allclose(inner, inner.T)  # centred
    assert float(out.sum()) == pytest.approx(4 * float(x.sum()))  # area grows by factor^2
    assert out[0, 0, 0].abs().sum() == 0 and out[0, 0, :, 0].abs().sum() == 0
    assert B.Scale(factor=0.5)(out, ONE)[0, 0, 3:5, 3:5].min() > 0.7  # zoom back out
    assert torch.allclose(B.Scale(factor=2)(x, torch.tensor([0.0])), x, atol=1e-6)


def test_flip():
    x = dot(y=1, x=3)
    assert torch.equal(B.Flip("x")(x, ONE), dot(y=1, x=1))
    assert torch.equal(B.Flip("y")(x, ONE), dot(y=3, x=3))
    assert torch.equal(B.Flip("x")(x, torch.tensor([0.5])), (dot(y=1, x=3) + dot(y=1, x=1)) / 2)


def test_erode_and_dilate():
    x = dot(h=7, w=7, y=3, x=3)
    dil = B.Dilate(radius=1)(x, ONE)
    assert dil.sum() == 9 and torch.equal(dil[0, 0, 2:5, 2:5], torch.ones(3, 3))
    assert torch.equal(B.Erode(radius=1)(dil, ONE), x)  # opening of the 3x3 square gives the dot back
    assert B.Erode(radius=1)(x, ONE).sum() == 0


def test_blur_spreads_and_conserves_mass():
    x = dot(h=9, w=9, y=4, x=4)
    out = B.Blur(sigma=1.0)(x, ONE)
    assert out.sum() == pytest.approx(1.0, abs=1e-5)
    assert out[0, 0, 4, 4] < 0.2 and out[0, 0, 4, 5] > 0.05
    assert out[0, 0, 4, 3] == pytest.approx(out[0, 0, 4, 5]) and out[0, 0, 3, 4] == pytest.approx(out[0, 0, 5, 4])
    k = B.gaussian_kernel(1.0)
    assert out[0, 0, 4, 4] == pytest.approx(float(k[k.numel() // 2] ** 2), rel=1e-5)
    assert torch.equal(B.Blur(sigma=1.0)(x, torch.tensor([0.0])), x)


def test_threshold_invert_ablate_multiply():
    x = torch.tensor([[[[0.0, 1.0], [3.0, 4.0]]]])
    assert B.Threshold(level=0.5)(x, ONE).flatten().tolist() == [0.0, 0.0, 4.0, 4.0]  # cut at 2 of [0, 4]
    assert B.Invert()(x, ONE).flatten().tolist() == [4.0, 3.0, 1.0, 0.0]
    assert B.Ablate()(x, ONE).abs().sum() == 0
    assert B.Ablate()(x, torch.tensor([0.25])).flatten().tolist() == [0.0, 0.75, 2.25, 3.0]
    assert B.Multiply(factor=3)(x, ONE).flatten().tolist() == [0.0, 3.0, 9.0, 12.0]
    assert B.Multiply(factor=3)(x, torch.tensor([0.5])).flatten().tolist() == [0.0, 2.0, 6.0, 8.0]


def test_per_sample_amounts_in_one_batch():
    x = dot().repeat(3, 1, 1, 1)
    out = B.Translate(dx=0.2)(x, torch.tensor([0.0, 1.0, 2.0]))
    assert torch.equal(out[0], x[0]) and torch.equal(out[1], dot(y=1, x=4)[0]) and torch.equal(out[2], dot(y=1, x=0)[0])
    blurred = B.Blur(sigma=1.0)(x, torch.tensor([1.0, 0.0, 1.0]))
    assert torch.equal(blurred[1], x[1]) and torch.equal(blurred[0], blurred[2]) and not torch.equal(blurred[0], x[0])


def test_channel_subsets():
    x = torch.ones(1, 4, 2, 2)
    bend = B.Bend(layer="l", op=B.Ablate(), channels=[1, 3])
    out = bend.apply(x, ONE)
    assert out[0, :, 0, 0].tolist() == [1.0, 0.0, 1.0, 0.0]
    frac = B.Bend(layer="l", op="ablate", channel_fraction=0.5, channel_seed=3)
    first, second = frac.apply(torch.ones(1, 8, 2, 2), ONE), frac.apply(torch.ones(1, 8, 2, 2), ONE)
    assert torch.equal(first, second) and int((first[0, :, 0, 0] == 0).sum()) == 4
    with pytest.raises(BenderError, match="do not exist"):
        B.Bend(layer="l", op="ablate", channels=[9]).apply(x, ONE)


def test_bend_dicts_and_errors():
    bend = B.Bend.from_dict({"layer": "synthesis.b8.conv1", "op": "rotate", "degrees": 30, "channels": [0, 2]})
    assert isinstance(bend.op, B.Rotate) and bend.op.degrees == 30.0 and bend.name == "rotate@synthesis.b8.conv1"
    again = B.Bend.from_dict(bend.to_dict())
    assert again.to_dict() == bend.to_dict()
    with pytest.raises(BenderError, match="unknown bend op 'twist'"):
        B.Bend.from_dict({"layer": "x", "op": "twist"})
    with pytest.raises(BenderError, match="has no parameter sigma"):
        B.Bend.from_dict({"layer": "x", "op": "rotate", "sigma": 2})
    with pytest.raises(BenderError, match="axis must be"):
        B.Bend.from_dict({"layer": "x", "op": "flip", "axis": "z"})
    with pytest.raises(BenderError, match="must be a number"):
        B.Bend.from_dict({"layer": "x", "op": "scale", "factor": "big"})


@pytest.fixture(scope="module")
def G(fixtures_dir):
    from bender.io import load

    return load(fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl").G_ema


def test_hooks_bend_a_real_generator_and_come_off(G):
    ws = seeds_to_ws(G, [1, 2])
    clean = G.synthesis(ws, noise_mode="const")
    bends = B.BendSet([B.Bend(layer="synthesis.b16.conv1", op=B.Rotate(degrees=90), name="spin")])
    with bends.attach(G):
        bent = G.synthesis(ws, noise_mode="const")
        bends.amounts = torch.tensor([[0.0, 1.0]])
        mixed = G.synthesis(ws, noise_mode="const")
    bends.amounts = None
    assert (bent - clean).abs().max() > 0.1
    assert torch.allclose(mixed[0], clean[0], atol=1e-6) and torch.allclose(mixed[1], bent[1], atol=1e-6)
    assert torch.equal(G.synthesis(ws, noise_mode="const"), clean)  # hooks removed


def test_block_level_bend_and_layer_validation(G):
    ws = seeds_to_ws(G, [3])
    clean = G.synthesis(ws, noise_mode="const")
    bends = B.BendSet([B.Bend(layer="synthesis.b8", op=B.Ablate())])
    with bends.attach(G):
        ablated = G.synthesis(ws, noise_mode="const")
    assert not torch.allclose(ablated, clean)
    assert "synthesis.b32.torgb" in B.bendable_layers(G)
    with pytest.raises(BenderError, match="no layer 'synthesis.b64.conv1'"):
        with B.BendSet([B.Bend(layer="synthesis.b64.conv1", op=B.Ablate())]).attach(G):
            pass


def test_bend_keeps_dtype_and_memory_layout():
    x = torch.randn(2, 4, 6, 6).to(memory_format=torch.channels_last)
    out = B.Bend(layer="l", op=B.Blur(sigma=1.0)).apply(x, torch.ones(2))
    assert out.is_contiguous(memory_format=torch.channels_last) and out.dtype == x.dtype
    half = B.Bend(layer="l", op=B.Multiply(factor=2.0)).apply(x.to(torch.bfloat16), torch.ones(2))
    assert half.dtype == torch.bfloat16
