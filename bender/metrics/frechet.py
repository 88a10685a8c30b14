"""Fréchet distance between two sets of feature vectors (the quantity behind FID).

Each set is summarised by a Gaussian (mean mu, covariance S). The squared 2-Wasserstein distance
between two Gaussians, which FID reports, is

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr( (S1 S2)^(1/2) ).

The hard term is tr((S1 S2)^(1/2)), computed in float64 without a general matrix square root
(and without scipy), in whichever of two exact ways is cheaper:
- few samples (n < dim, the usual case: 256 samples of 1280-d features): with A1, A2 the centred
  feature matrices, S1 S2 has the same non-zero eigenvalues as M M^T for M = A1 A2^T, so the term
  is the sum of M's singular values / sqrt((n1-1)(n2-1)) — a min(n1, n2)-sized problem, not dim x dim;
- otherwise: the sum of square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2) (symmetric PSD),
  from two symmetric eigendecompositions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FeatureStats:
    mu: np.ndarray  # [dim] float64
    sigma: np.ndarray  # [dim, dim] float64
    n: int
    centred: np.ndarray | None = field(default=None, repr=False)  # [n, dim] float64, when built from features
    _root: np.ndarray | None = field(default=None, repr=False)

    @property
    def sigma_root(self) -> np.ndarray:
        """S^(1/2), computed once: a set compared against many (the target) pays for it only once."""
        if self._root is None:
            self._root = psd_sqrt(self.sigma)
        return self._root

    @classmethod
    def of(cls, features: np.ndarray) -> FeatureStats:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"need at least 2 feature vectors [n, dim], got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("features contain NaN or Inf")
        mu = x.mean(axis=0)
        centred = x - mu
        return cls(mu=mu, sigma=centred.T @ centred / (len(x) - 1), n=len(x), centred=centred)


def psd_sqrt(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative round-off clipped)."""
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def trace_sqrt_product(a: FeatureStats, b: FeatureStats) -> float:
    """tr((S_a S_b)^(1/2)), by the cheaper exact route (see the module docstring)."""
    dim = a.mu.shape[0]
    if a.centred is not None and b.centred is not None and min(a.n, b.n) < dim:
        small, large = (a, b) if a.n <= b.n else (b, a)
        m = small.centred @ large.centred.T
        sv2 = np.linalg.eigvalsh(m @ m.T)  # squared singular values of M (a small x small problem)
        return float(np.sqrt(np.clip(sv2, 0, None)).sum() / np.sqrt((a.n - 1) * (b.n - 1)))
    root_a = a.sigma_root
    inner = root_a @ b.sigma @ root_a
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(eig, 0, None)).sum())


def frechet_distance(a: FeatureStats | np.ndarray, b: FeatureStats | np.ndarray) -> float:
    """Fréchet distance between two feature sets (or their stats); 0 for identical sets."""
    a = a if isinstance(a, FeatureStats) else FeatureStats.of(a)
    b = b if isinstance(b, FeatureStats) else FeatureStats.of(b)
    if a.mu.shape != b.mu.shape:
        raise ValueError(f"feature sizes differ: {a.mu.shape[0]} vs {b.mu.shape[0]}")
    diff = a.mu - b.mu
    d = float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * trace_sqrt_product(a, b))
    return max(d, 0.0)
