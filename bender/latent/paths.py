"""Paths through latent space: pure functions of t, and the frame schedule of a walk.

Everything here works on plain tensors (any shape; keyframes stacked on dim 0) and knows nothing
about generators, so it is cheap to test and reuse from notebooks.

Frame counts, decided once for every tool:
- a walk through K keyframes has K - 1 segments (K when it loops); segment i lasts `frames[i]` frames;
- a looping walk renders exactly sum(frames) frames, and its frame sum(frames) *would be* frame 0
  again (t wraps modulo 1), so the first frame is never repeated at the end;
- an open walk renders sum(frames) + 1 frames, ending exactly on its last keyframe.
So `--seeds 1,2,3 --frames 30 --loop` is 90 frames and the same walk without `--loop` is 61.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

INTERPOLATIONS = ("lerp", "slerp", "catmull-rom", "cubic")

# Easing curves map segment progress u in [0, 1] to [0, 1], with e(0) = 0 and e(1) = 1 exactly.
EASINGS: dict[str, Callable[[float], float]] = {
    "linear": lambda u: u,
    "ease-in": lambda u: u * u,
    "ease-out": lambda u: 1 - (1 - u) * (1 - u),
    "ease-in-out": lambda u: 2 * u * u if u < 0.5 else 1 - 2 * (1 - u) * (1 - u),
    "cubic": lambda u: 4 * u**3 if u < 0.5 else 1 - 4 * (1 - u) ** 3,
    "sine": lambda u: 0.5 - 0.5 * math.cos(math.pi * u),
}


def ease(name: str, u: float) -> float:
    """Apply easing curve `name` to u in [0, 1] (endpoints exact)."""
    if name not in EASINGS:
        raise ValueError(f"easing must be one of {', '.join(EASINGS)}, got {name!r}")
    if u <= 0:
        return 0.0
    if u >= 1:
        return 1.0
    return float(EASINGS[name](u))


# ------------------------------------------------------------------------------------------------
# Two-point interpolation


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Linear interpolation; exact at t = 0 and t = 1 (torch.lerp switches form at 0.5)."""
    return torch.lerp(a, b, float(t))


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, center: torch.Tensor | None = None,
          eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the last dimension (each row of a batch separately).

    The direction moves along the great circle from a to b at constant angular speed and the length
    is interpolated linearly, so for Gaussian z (all of length about sqrt(z_dim)) the path stays on
    the shell where the generator was trained, which a straight line leaves. Nearly parallel rows
    fall back to lerp (the formula divides by sin of the angle, which is what makes naive slerp
    crash); exactly opposite rows turn through a fixed perpendicular direction. Exact at t = 0, 1.

    `center` moves the sphere's centre: in W the natural centre is `w_avg` (W is not centred on 0).
    Many points of one segment: build an `Arc` once and ask it (same numbers, fewer ops per point).
    """
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    return Arc(a, b, center, eps).at(t)


class Arc:
    """`slerp(a, b, t, center)` with everything that does not depend on t computed once.

    A walk asks each segment for dozens of frames; per frame this leaves a dozen elementwise ops
    instead of norms, arccos and checks, which matters when the host prepares frames while a GPU
    renders the previous batch.
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, center: torch.Tensor | None = None, eps: float = 1e-7):
        self.a, self.b, self.dtype = a, b, a.dtype
        a64, b64 = a.to(torch.float64), b.to(torch.float64)
        self.center = None if center is None else center.to(torch.float64)
        if self.center is not None:
            a64, b64 = a64 - self.center, b64 - self.center
        na = a64.norm(dim=-1, keepdim=True)
        nb = b64.norm(dim=-1, keepdim=True)
        self.na, self.dn = na, nb - na
        ua = a64 / na.clamp_min(1e-30)
        ub = b64 / nb.clamp_min(1e-30)
        self.direct = _UnitArc(ua, ub, eps)
        # Opposite directions: the great circle is not unique; choose one through a fixed perpendicular.
        opposite = self.direct.small & (self.direct.dot < 0)
        self.opposite = opposite if bool(opposite.any()) else None
        if self.opposite is not None:
            basis = torch.zeros_like(ua).scatter(-1, ua.abs().argmin(-1, keepdim=True), 1.0)
            perp = basis - (basis * ua).sum(-1, keepdim=True) * ua
            perp = perp / perp.norm(dim=-1, keepdim=True)
            half = torch.where(opposite, perp, ub)
            self.first, self.second = _UnitArc(ua, half, eps), _UnitArc(half, ub, eps)

    def at(self, t: float) -> torch.Tensor:
        """The point at progress t (0 -> a, 1 -> b, exactly)."""
        if t == 0:
            return self.a.clone()
        if t == 1:
            return self.b.clone()
        direction = self.direct.at(t)
        if self.opposite is not None:
            turn = self.first.at(2 * t) if t < 0.5 else self.second.at(2 * t - 1)
            direction = torch.where(self.opposite, turn, direction)
        out = direction * (self.na + self.dn * t)
        if self.center is not None:
            out = out + self.center
        return out.to(self.dtype)


class _UnitArc:
    """Great-circle interpolation between unit rows, falling back to a renormalised lerp where they
    are nearly parallel (sin of the angle under eps)."""

    def __init__(self, ua: torch.Tensor, ub: torch.Tensor, eps: float):
        self.dot = (ua * ub).sum(-1, keepdim=True).clamp(-1, 1)
        self.omega = torch.arccos(self.dot)
        so = torch.sin(self.omega)
        self.small = so < eps
        self.safe = torch.where(self.small, torch.ones_like(so), so)
        self.zero = 0 * so
        self.ua, self.ub = ua, ub

    def at(self, t: float) -> torch.Tensor:
        s_out = torch.where(self.small, 1 - t + self.zero, torch.sin((1 - t) * self.omega) / self.safe)
        s_in = torch.where(self.small, t + self.zero, torch.sin(t * self.omega) / self.safe)
        out = s_out * self.ua + s_in * self.ub
        # The lerp fallback leaves the unit sphere slightly; renormalise so only the length sets the size.
        return out / out.norm(dim=-1, keepdim=True).clamp_min(1e-30)


# ------------------------------------------------------------------------------------------------
# Splines through keyframes (uniform parameter: each segment is one unit)


def _neighbours(keys: torch.Tensor, i: int, loop: bool) -> tuple[torch.Tensor, ...]:
    k = keys.shape[0]
    if loop:
        return keys[(i - 1) % k], keys[i % k], keys[(i + 1) % k], keys[(i + 2) % k]
    p1, p2 = keys[i], keys[min(i + 1, k - 1)]
    # Open ends: mirror the neighbour so the end tangent points along the first/last segment.
    p0 = keys[i - 1] if i > 0 else 2 * p1 - p2
    p3 = keys[i + 2] if i + 2 < k else 2 * p2 - p1
    return p0, p1, p2, p3


def _hermite(p1, p2, m1, m2, u: float):
    u2, u3 = u * u, u * u * u
    h00 = 2 * u3 - 3 * u2 + 1
    h10 = u3 - 2 * u2 + u
    h01 = -2 * u3 + 3 * u2
    h11 = u3 - u2
    return h00 * p1 + h10 * m1 + h01 * p2 + h11 * m2


def catmull_rom(keys: torch.Tensor, segment: int, u: float, loop: bool = False) -> torch.Tensor:
    """Uniform Catmull-Rom spline through `keys` [K, ...]: C1, passes through every keyframe."""
    if u == 0:
        return keys[segment % keys.shape[0]].clone()
    if u == 1:
        return keys[(segment + 1) % keys.shape[0]].clone()
    p0, p1, p2, p3 = (p.to(torch.float64) for p in _neighbours(keys, segment, loop))
    return _hermite(p1, p2, (p2 - p0) / 2, (p3 - p1) / 2, u).to(keys.dtype)


def cubic_tangents(keys: torch.Tensor, loop: bool = False) -> torch.Tensor:
    """Tangents of the C2 cubic spline through `keys` (natural ends, or periodic when looping).

    Solves the standard tridiagonal system m[i-1] + 4 m[i] + m[i+1] = 3 (p[i+1] - p[i-1]); for open
    ends the natural condition (zero second derivative) gives 2 m0 + m1 = 3 (p1 - p0).
    """
    k = keys.shape[0]
    p = keys.to(torch.float64).reshape(k, -1).cpu().numpy()
    if k == 1:
        return torch.zeros_like(keys, dtype=torch.float64)
    a = np.zeros([k, k])
    rhs = np.zeros_like(p)
    for i in range(k):
        if loop:
            a[i, (i - 1) % k] += 1
            a[i, i] += 4
            a[i, (i + 1) % k] += 1
            rhs[i] = 3 * (p[(i + 1) % k] - p[(i - 1) % k])
        elif i == 0:
            a[0, 0], a[0, 1] = 2, 1
            rhs[0] = 3 * (p[1] - p[0])
        elif i == k - 1:
            a[i, i - 1], a[i, i] = 1, 2
            rhs[i] = 3 * (p[i] - p[i - 1])
        else:
            a[i, i - 1], a[i, i], a[i, i + 1] = 1, 4, 1
            rhs[i] = 3 * (p[i + 1] - p[i - 1])
    m = np.linalg.solve(a, rhs)
    return torch.from_numpy(m).reshape(keys.shape).to(keys.device)


def cubic(keys: torch.Tensor, segment: int, u: float, loop: bool = False,
          tangents: torch.Tensor | None = None) -> torch.Tensor:
    """C2 cubic spline through `keys` [K, ...]; pass precomputed `tangents` to avoid re-solving."""
    k = keys.shape[0]
    if u == 0:
        return keys[segment % k].clone()
    if u == 1:
        return keys[(segment + 1) % k].clone()
    m = cubic_tangents(keys, loop) if tangents is None else tangents
    i, j = segment % k, (segment + 1) % k
    return _hermite(keys[i].to(torch.float64), keys[j].to(torch.float64), m[i], m[j], u).to(keys.dtype)


def interpolate(keys: torch.Tensor, segment: int, u: float, method: str = "lerp", loop: bool = False,
                tangents: torch.Tensor | None = None, center: torch.Tensor | None = None) -> torch.Tensor:
    """Point at progress u of `segment` (from keyframe `segment` to the next) by `method`.

    `center` is slerp's sphere centre (None = the origin, right for Z; w_avg for W).
    """
    k = keys.shape[0]
    a, b = keys[segment % k], keys[(segment + 1) % k]
    if method == "lerp":
        return lerp(a, b, u)
    if method == "slerp":
        return slerp(a, b, u, center)
    if method == "catmull-rom":
        return catmull_rom(keys, segment, u, loop)
    if method == "cubic":
        return cubic(keys, segment, u, loop, tangents)
    raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {method!r}")


# ------------------------------------------------------------------------------------------------
# The frame schedule


@dataclass(frozen=True)
class FramePosition:
    """Where a frame sits: segment i (keyframe i -> i+1), raw progress u and eased progress."""

    frame: int
    segment: int
    u: float
    eased: float


@dataclass
class Schedule:
    """Frame timing of a walk: per-segment frame counts and easings, open or looping."""

    segment_frames: list[int]
    easings: list[str]
    loop: bool = False

    def __post_init__(self) -> None:
        if len(self.segment_frames) != len(self.easings):
            raise ValueError("one easing per segment is needed")
        if any(int(f) < 1 for f in self.segment_frames):
            raise ValueError("every segment needs at least 1 frame")
        for e in self.easings:
            ease(e, 0.5)
        self._starts = np.cumsum([0] + [int(f) for f in self.segment_frames])

    @property
    def num_frames(self) -> int:
        total = int(self._starts[-1])
        return total if self.loop else total + 1

    def position(self, frame: int) -> FramePosition:
        """Segment and progress of `frame`; in a loop, frame num_frames is frame 0 again."""
        total = int(self._starts[-1])
        if self.loop:
            frame = frame % total if total else 0
        elif not 0 <= frame <= total:
            raise IndexError(f"frame {frame} outside 0..{total}")
        if not self.loop and frame == total:
            if not self.segment_frames:
                return FramePosition(frame, 0, 0.0, 0.0)
            seg = len(self.segment_frames) - 1
            return FramePosition(frame, seg, 1.0, 1.0)
        seg = int(np.searchsorted(self._starts, frame, side="right") - 1)
        u = (frame - int(self._starts[seg])) / int(self.segment_frames[seg])
        return FramePosition(frame, seg, u, ease(self.easings[seg], u))


# ------------------------------------------------------------------------------------------------
# Closed loops that keep z Gaussian (seeded)


def circle_loop(center: torch.Tensor, a: torch.Tensor, b: torch.Tensor, radius: float, t: float) -> torch.Tensor:
    """Point at t of a circular loop in Z: sqrt(1 - r^2) c + r (cos 2πt a + sin 2πt b).

    With c, a, b independent standard Gaussians every point is again standard Gaussian (the
    weights' squares sum to 1), so the loop never leaves the region the generator knows. radius 1 is
    the widest loop (a great circle through a and b); small radii wobble around c. t is taken
    modulo 1, so t = 1 gives exactly the point at t = 0.
    """
    angle = 2 * math.pi * (t % 1.0)
    r = float(radius)
    return math.sqrt(max(0.0, 1 - r * r)) * center + r * (math.cos(angle) * a + math.sin(angle) * b)


def noise_loop_coefficients(seed: int, dim: int, harmonics: int = 4, rows: int = 1) -> np.ndarray:
    """Random coefficients [rows, 2 * harmonics + 1, dim] for `noise_loop` (seeded, float64)."""
    return np.random.RandomState(int(seed)).randn(rows, 2 * harmonics + 1, dim)


def noise_loop(coefficients: np.ndarray, radius: float, t: float, falloff: float = 1.0) -> np.ndarray:
    """A smooth random periodic path: per dimension a random Fourier series in t, period 1.

    Harmonic k gets weight k^-falloff (higher falloff = smoother, fewer wiggles); the sum is
    normalised so every point is standard Gaussian, like `circle_loop` (the first coefficient row is
    the centre). Returns [rows, dim] float64; t = 1 gives exactly the point at t = 0.
    """
    harmonics = (coefficients.shape[1] - 1) // 2
    k = np.arange(1, harmonics + 1, dtype=np.float64)
    weights = k ** (-float(falloff))
    weights = weights / np.sqrt((weights**2).sum())
    angle = 2 * math.pi * (t % 1.0)
    basis = np.concatenate([weights * np.cos(k * angle), weights * np.sin(k * angle)])
    wiggle = np.einsum("h,rhd->rd", basis, np.concatenate([coefficients[:, 1:1 + harmonics],
                                                           coefficients[:, 1 + harmonics:]], axis=1))
    r = float(radius)
    return math.sqrt(max(0.0, 1 - r * r)) * coefficients[:, 0] + r * wiggle
