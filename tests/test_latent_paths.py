"""Paths: easing, lerp/slerp, splines, frame schedules and seeded loops (pure math, no models)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bender.latent import paths


@pytest.mark.parametrize("name", list(paths.EASINGS))
def test_easing_endpoints_monotone(name):
    us = np.linspace(0, 1, 101)
    vals = [paths.ease(name, u) for u in us]
    assert vals[0] == 0.0 and vals[-1] == 1.0
    assert all(b >= a - 1e-12 for a, b in zip(vals, vals[1:])), "easing must not go backwards"


def test_easing_shapes():
    assert paths.ease("ease-in", 0.5) == 0.25  # slow start
    assert paths.ease("ease-out", 0.5) == 0.75  # fast start
    assert paths.ease("sine", 0.5) == pytest.approx(0.5)
    assert paths.ease("cubic", 0.25) == pytest.approx(4 * 0.25**3)
    with pytest.raises(ValueError, match="easing must be one of"):
        paths.ease("bouncy", 0.3)


def test_slerp_endpoints_exact_and_constant_angular_speed():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 512, generator=g)
    assert torch.equal(paths.slerp(a, b, 0.0), a)
    assert torch.equal(paths.slerp(a, b, 1.0), b)
    a64, b64 = a.double(), b.double()
    omega = torch.arccos((a64 / a64.norm()) @ (b64 / b64.norm()))
    for t in (0.1, 0.25, 0.5, 0.9):
        p = paths.slerp(a, b, t).double()
        angle_from_a = torch.arccos((p / p.norm()) @ (a64 / a64.norm()))
        assert float(angle_from_a) == pytest.approx(float(t * omega), abs=1e-5)
        # length interpolates linearly
        assert float(p.norm()) == pytest.approx(float(a64.norm() + t * (b64.norm() - a64.norm())), rel=1e-5)
        # the point lies in the plane of a and b
        coef = torch.linalg.lstsq(torch.stack([a64, b64], 1), p[:, None]).solution
        assert float((torch.stack([a64, b64], 1) @ coef)[:, 0].sub(p).abs().max()) < 1e-4


def test_slerp_equal_norms_stays_on_sphere_and_differs_from_lerp():
    a = torch.tensor([1.0, 0.0, 0.0])
    b = torch.tensor([0.0, 1.0, 0.0])
    mid = paths.slerp(a, b, 0.5)
    assert torch.allclose(mid, torch.tensor([math.sqrt(0.5), math.sqrt(0.5), 0.0]), atol=1e-7)
    assert float(paths.lerp(a, b, 0.5).norm()) == pytest.approx(math.sqrt(0.5))


def test_slerp_degenerate_inputs_do_not_crash():
    a = torch.tensor([[1.0, 2.0, 3.0]])
    same = paths.slerp(a, a * 2, 0.3)  # parallel: falls back to lerp
    assert torch.isfinite(same).all()
    assert torch.allclose(same, a * 1.3, atol=1e-6)
    opposite = paths.slerp(a, -a, 0.5)  # antiparallel: goes round a perpendicular
    assert torch.isfinite(opposite).all()
    assert float(opposite.norm()) == pytest.approx(float(a.norm()), rel=1e-6)
    assert abs(float((opposite * a).sum())) < 1e-5
    zero = paths.slerp(torch.zeros(1, 3), a, 0.5)
    assert torch.allclose(zero, a * 0.5, atol=1e-6)


def test_slerp_batched_rows_independent_and_center():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 4, 8, generator=g)
    both = paths.slerp(a, b, 0.3)
    for i in range(4):
        assert torch.allclose(both[i], paths.slerp(a[i], b[i], 0.3), atol=1e-6)
    c = torch.randn(8, generator=g)
    centred = paths.slerp(a + c, b + c, 0.3, center=c)
    assert torch.allclose(centred - c, both, atol=1e-5)


def test_lerp_exact_endpoints():
    a, b = torch.tensor([0.1, 0.7]), torch.tensor([0.3, -1.9])
    assert torch.equal(paths.lerp(a, b, 0), a) and torch.equal(paths.lerp(a, b, 1), b)


@pytest.mark.parametrize("method", ["catmull-rom", "cubic"])
@pytest.mark.parametrize("loop", [False, True])
def test_splines_pass_through_keyframes(method, loop):
    keys = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 1.0], [4.0, -1.0]])
    segs = len(keys) if loop else len(keys) - 1
    tangents = paths.cubic_tangents(keys, loop) if method == "cubic" else None
    for s in range(segs):
        assert torch.equal(paths.interpolate(keys, s, 0.0, method, loop, tangents), keys[s % 4])
        assert torch.equal(paths.interpolate(keys, s, 1.0, method, loop, tangents), keys[(s + 1) % 4])
        mid = paths.interpolate(keys, s, 0.5, method, loop, tangents)
        assert not torch.equal(mid, (keys[s % 4] + keys[(s + 1) % 4]) / 2) or method == "catmull-rom"


def test_cubic_spline_is_c2_and_catmull_rom_c1():
    keys = torch.tensor([[0.0], [1.0], [0.0], [2.0], [1.0]], dtype=torch.float64)
    h = 1e-4

    def second_derivative(method, seg, u):
        f = [paths.interpolate(keys, seg, x, method, False, paths.cubic_tangents(keys)) for x in (u - h, u, u + h)]
        return float((f[0] - 2 * f[1] + f[2]) / h**2)

    def first_derivative(method, seg, u):
        f = [paths.interpolate(keys, seg, x, method, False, paths.cubic_tangents(keys)) for x in (u - h, u + h)]
        return float((f[1] - f[0]) / (2 * h))

    for k in (1, 2, 3):  # interior keyframes: compare limits from both sides
        left = second_derivative("cubic", k - 1, 1 - 2 * h)
        right = second_derivative("cubic", k, 2 * h)
        assert left == pytest.approx(right, abs=1e-2)
        assert first_derivative("catmull-rom", k - 1, 1 - 2 * h) == pytest.approx(
            first_derivative("catmull-rom", k, 2 * h), abs=1e-2)


def test_cubic_natural_ends_have_zero_curvature():
    keys = torch.tensor([[0.0], [1.0], [0.0], [2.0]], dtype=torch.float64)
    m = paths.cubic_tangents(keys)
    # second derivative of the Hermite segment at u = 0: 6(p1 - p0) - 4 m0 - 2 m1
    assert float(6 * (keys[1] - keys[0]) - 4 * m[0] - 2 * m[1]) == pytest.approx(0, abs=1e-12)


def test_schedule_frame_counts():
    open_walk = paths.Schedule([30, 30], ["linear", "linear"], loop=False)
    assert open_walk.num_frames == 61
    looped = paths.Schedule([30, 30, 30], ["linear"] * 3, loop=True)
    assert looped.num_frames == 90  # --seeds 1,2,3 --frames 30 --loop
    per_segment = paths.Schedule([10, 20, 5], ["linear"] * 3, loop=True)
    assert per_segment.num_frames == 35
    assert per_segment.position(10).segment == 1 and per_segment.position(10).u == 0
    assert per_segment.position(29).segment == 1 and per_segment.position(29).u == pytest.approx(19 / 20)
    assert paths.Schedule([], [], loop=False).num_frames == 1  # a single keyframe: a still


def test_loop_closure_frame_n_is_frame_0_and_not_rendered():
    s = paths.Schedule([4, 4], ["sine", "ease-in"], loop=True)
    assert s.num_frames == 8
    p0, pn = s.position(0), s.position(s.num_frames)
    assert (p0.segment, p0.u, p0.eased) == (pn.segment, pn.u, pn.eased)
    last = s.position(s.num_frames - 1)
    assert last.segment == 1 and last.u < 1  # the last rendered frame is before the return
    # Walk positions 0 .. N-1 never revisit frame 0's point
    keys = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    pts = [paths.interpolate(keys, p.segment, p.eased, "slerp", True)
           for p in (s.position(i) for i in range(s.num_frames + 1))]
    assert torch.equal(pts[0], pts[-1])
    assert all(not torch.equal(pts[0], q) for q in pts[1:-1])


def test_open_walk_ends_on_last_keyframe():
    s = paths.Schedule([3, 3], ["linear", "linear"], loop=False)
    last = s.position(s.num_frames - 1)
    assert (last.segment, last.eased) == (1, 1.0)
    with pytest.raises(IndexError):
        s.position(s.num_frames)


def test_circle_loop_closes_and_keeps_gaussian_shell():
    rs = np.random.RandomState(3)
    c, a, b = (torch.from_numpy(rs.randn(512)) for _ in range(3))
    first = paths.circle_loop(c, a, b, 0.5, 0.0)
    assert torch.equal(first, paths.circle_loop(c, a, b, 0.5, 1.0))
    norms = [float(paths.circle_loop(c, a, b, 0.5, t).norm()) for t in np.linspace(0, 1, 17)]
    assert max(norms) / min(norms) < 1.15  # stays near sqrt(512)
    assert np.mean(norms) == pytest.approx(math.sqrt(512), rel=0.1)
    # radius 1 ignores the centre; radius 0 is the centre
    assert torch.allclose(paths.circle_loop(c, a, b, 1.0, 0.25), b, atol=1e-12)
    assert torch.equal(paths.circle_loop(c, a, b, 0.0, 0.3), c)


def test_noise_loop_seeded_periodic_and_unit_variance():
    coeffs = paths.noise_loop_coefficients(7, 4096, harmonics=3, rows=2)
    assert np.array_equal(coeffs, paths.noise_loop_coefficients(7, 4096, harmonics=3, rows=2))
    p0 = paths.noise_loop(coeffs, 0.8, 0.0)
    assert np.array_equal(p0, paths.noise_loop(coeffs, 0.8, 1.0))
    for t in (0.1, 0.37, 0.8):
        p = paths.noise_loop(coeffs, 0.8, t)
        assert p.shape == (2, 4096)
        assert p.std() == pytest.approx(1.0, rel=0.05)
    # smooth: neighbouring times are close, distant ones are not
    near = np.abs(paths.noise_loop(coeffs, 1.0, 0.301) - paths.noise_loop(coeffs, 1.0, 0.3)).mean()
    far = np.abs(paths.noise_loop(coeffs, 1.0, 0.55) - paths.noise_loop(coeffs, 1.0, 0.3)).mean()
    assert near < 0.05 < far


def test_arc_reused_across_points_equals_slerp_bit_for_bit():
    """An Arc is set up once per walk segment; every point must be what slerp computes afresh,
    including opposite and parallel rows and a moved centre."""
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 3, 16, generator=g)
    b[0] = -a[0]  # opposite
    b[1] = a[1] * 2  # parallel
    c = torch.randn(16, generator=g)
    for center in (None, c):
        arc = paths.Arc(a, b, center)
        for t in (0.0, 1e-9, 0.2, 0.5, 0.7, 1.0):
            assert torch.equal(arc.at(t), paths.slerp(a, b, t, center))
