"""2-D planes through W: the "map" of a latent space from the lecture, and where its axes come from.

A `Plane` is an origin and two axes in W+ (`[num_ws, w_dim]` each); the point at coordinates
(u, v) is `origin + u * u_axis + v * v_axis`. Axes can come from:

- three seeds (`Plane.from_seeds`): origin w0, axes w1 - w0 and w2 - w0, so (1, 0) is seed 1 and
  (0, 1) is seed 2 exactly;
- SeFa (Shen & Zhou 2021, "Closed-Form Factorization of Latent Semantics in GANs"): the
  eigenvectors of AᵀA, where A stacks the weights of the affine layers that turn w into styles.
  They are the unit directions that change the styles most, found without sampling;
- PCA of sampled w (Härkönen et al. 2020, "GANSpace"): the principal axes of the mapping network's
  output distribution.

Direction axes are scaled to one standard deviation of W along them, so u = ±1 means "one σ" for
every kind of axis, and they can be restricted to a layer range (e.g. only the coarse ws 0-3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bender.errors import BenderError
from bender.latent.spaces import map_z, seeds_to_ws


@dataclass
class Plane:
    """origin + u * u_axis + v * v_axis, all [num_ws, w_dim] (W+).

    Stored in float64 so a plane through seeds reproduces each seed's w exactly at (1, 0) and (0, 1);
    `points` returns float32 like every other latent.
    """

    origin: torch.Tensor
    u_axis: torch.Tensor
    v_axis: torch.Tensor

    def __post_init__(self) -> None:
        if not (self.origin.shape == self.u_axis.shape == self.v_axis.shape) or self.origin.ndim != 2:
            raise ValueError("origin and axes must all be [num_ws, w_dim]")
        self.origin, self.u_axis, self.v_axis = (t.to(torch.float64) for t in (self.origin, self.u_axis, self.v_axis))

    @classmethod
    def from_seeds(cls, G: torch.nn.Module, seeds: list[int], class_idx: int | None = None) -> Plane:
        """Origin w(seeds[0]); axes w(seeds[1]) - w0 and w(seeds[2]) - w0 (untruncated W)."""
        if len(seeds) != 3:
            raise BenderError(f"a plane from seeds needs exactly 3 seeds (origin, u, v), got {len(seeds)}")
        w0, w1, w2 = seeds_to_ws(G, list(seeds), class_idx).to(torch.float64)  # exact differences
        return cls(w0, w1 - w0, w2 - w0)

    def point(self, u: float, v: float) -> torch.Tensor:
        """The W+ latent [num_ws, w_dim] at (u, v)."""
        return self.points(torch.tensor([[float(u), float(v)]]))[0]

    def points(self, uv: torch.Tensor | list) -> torch.Tensor:
        """[N, 2] coordinates -> [N, num_ws, w_dim] latents (computed in float64, returned float32)."""
        uv = torch.as_tensor(uv, dtype=torch.float64).reshape(-1, 2).to(self.origin.device)
        o, a, b = (t.to(torch.float64) for t in (self.origin, self.u_axis, self.v_axis))
        out = o[None] + uv[:, 0, None, None] * a[None] + uv[:, 1, None, None] * b[None]
        return out.to(torch.float32)

    def coords(self, ws: torch.Tensor) -> torch.Tensor:
        """Least-squares (u, v) of latents [N, num_ws, w_dim] (or one [num_ws, w_dim]) -> [N, 2]."""
        ws = ws.reshape(-1, *self.origin.shape).to(self.origin)
        basis = torch.stack([self.u_axis.flatten(), self.v_axis.flatten()], dim=1)
        rhs = (ws - self.origin).reshape(ws.shape[0], -1).T
        return torch.linalg.lstsq(basis.cpu(), rhs.cpu()).solution.T

    def grid(self, rows: int, cols: int, extent: float | tuple[float, float, float, float] = 1.0
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """An N x M map of the plane: (uv [rows*cols, 2], latents [rows*cols, num_ws, w_dim]).

        Row-major like an image: u grows left to right, v grows bottom to top (the top row has
        the largest v). `extent` is e (square [-e, e]^2) or (u_min, u_max, v_min, v_max).
        """
        uv = grid_coords(rows, cols, extent)
        return uv, self.points(uv)


def grid_coords(rows: int, cols: int, extent: float | tuple[float, float, float, float] = 1.0) -> torch.Tensor:
    """Row-major (u, v) coordinates of a rows x cols grid (see `Plane.grid`)."""
    if rows < 1 or cols < 1:
        raise BenderError(f"a plane grid needs at least 1x1 cells, got {rows}x{cols}")
    if isinstance(extent, (int, float)):
        u0, u1, v0, v1 = -float(extent), float(extent), -float(extent), float(extent)
    else:
        u0, u1, v0, v1 = (float(e) for e in extent)
    us = torch.linspace(u0, u1, cols, dtype=torch.float64) if cols > 1 else torch.tensor([(u0 + u1) / 2],
                                                                                           dtype=torch.float64)
    vs = torch.linspace(v1, v0, rows, dtype=torch.float64) if rows > 1 else torch.tensor([(v0 + v1) / 2],
                                                                                           dtype=torch.float64)
    vv, uu = torch.meshgrid(vs, us, indexing="ij")
    return torch.stack([uu.flatten(), vv.flatten()], dim=1)


# ------------------------------------------------------------------------------------------------
# Directions


def style_affines(G: torch.nn.Module) -> list[tuple[int, str, torch.nn.Module]]:
    """(ws index, layer name, affine) for every modulated conv of the synthesis network."""
    out = []
    for block, (start, _count) in zip(G.synthesis.blocks(), G.synthesis.ws_ranges()):
        idx = start
        for conv in ("conv0", "conv1"):
            layer = getattr(block, conv, None)
            if layer is not None:
                out.append((idx, f"synthesis.b{block.resolution}.{conv}", layer.affine))
                idx += 1
    return out


def _fix_sign(vectors: np.ndarray) -> np.ndarray:
    """Make each row's largest-magnitude entry positive, so directions never flip between runs."""
    idx = np.abs(vectors).argmax(axis=1)
    signs = np.sign(vectors[np.arange(len(vectors)), idx])
    signs[signs == 0] = 1
    return vectors * signs[:, None]


@torch.no_grad()
def sefa_directions(G: torch.nn.Module, count: int = 8, layers: tuple[int, int] | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Top `count` SeFa directions: (unit vectors [count, w_dim], eigenvalues [count]).

    A stacks the effective (gain-applied) affine weights of the convolutions whose ws index lies in
    `layers` ([first, last), default all); the directions are the leading eigenvectors of AᵀA.
    """
    rows = [aff.weight.detach().to("cpu", torch.float64) * float(aff.weight_gain)
            for idx, _name, aff in style_affines(G) if layers is None or layers[0] <= idx < layers[1]]
    if not rows:
        raise BenderError(f"no style layers in ws range {layers}")
    a = torch.cat(rows, dim=0).numpy()
    eigval, eigvec = np.linalg.eigh(a.T @ a)
    order = np.argsort(eigval)[::-1][:count]
    if count > len(eigval):
        raise BenderError(f"SeFa has only {len(eigval)} directions (w_dim), asked for {count}")
    vectors = _fix_sign(eigvec[:, order].T)
    return torch.from_numpy(vectors.astype(np.float32)), torch.from_numpy(eigval[order].astype(np.float32))


@torch.no_grad()
def sample_w(G: torch.nn.Module, samples: int = 4096, seed: int = 0, class_idx: int | None = None,
             batch: int = 1024) -> torch.Tensor:
    """[samples, w_dim] untruncated w from z ~ N(0, I) drawn with numpy RandomState(seed)."""
    device = G.mapping.w_avg.device
    z = np.random.RandomState(int(seed)).randn(samples, G.z_dim)
    out = []
    for i in range(0, samples, batch):
        chunk = torch.from_numpy(z[i:i + batch]).to(device=device, dtype=torch.float32)
        out.append(map_z(G, chunk, class_idx)[:, 0].to("cpu", torch.float64))
    return torch.cat(out)


@torch.no_grad()
def pca_directions(G: torch.nn.Module, count: int = 8, samples: int = 4096, seed: int = 0,
                   class_idx: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GANSpace-style PCA of sampled w: (unit components [count, w_dim], stds [count], mean [w_dim])."""
    if count > G.w_dim:
        raise BenderError(f"PCA gives at most w_dim = {G.w_dim} directions, asked for {count}")
    if samples < count + 1:
        raise BenderError(f"PCA needs more samples than directions ({samples} <= {count})")
    w = sample_w(G, samples, seed, class_idx).numpy()
    mean = w.mean(axis=0)
    _, s, vt = np.linalg.svd(w - mean, full_matrices=False)
    comps = _fix_sign(vt[:count])
    stds = s[:count] / np.sqrt(samples - 1)
    return (torch.from_numpy(comps.astype(np.float32)), torch.from_numpy(stds.astype(np.float32)),
            torch.from_numpy(mean.astype(np.float32)))


@torch.no_grad()
def direction_std(G: torch.nn.Module, directions: torch.Tensor, samples: int = 4096, seed: int = 0,
                  class_idx: int | None = None) -> torch.Tensor:
    """Standard deviation of sampled w projected on each unit direction ([count])."""
    w = sample_w(G, samples, seed, class_idx)
    proj = w @ directions.to(torch.float64).T
    return proj.std(dim=0).to(torch.float32)


def to_wplus(direction: torch.Tensor, num_ws: int, layers: tuple[int, int] | None = None) -> torch.Tensor:
    """A w_dim direction as a W+ offset [num_ws, w_dim], zero outside the ws range [first, last)."""
    out = direction.reshape(1, -1).repeat(num_ws, 1)
    if layers is not None:
        mask = torch.zeros(num_ws, 1, dtype=out.dtype, device=out.device)
        mask[layers[0]:layers[1]] = 1
        out = out * mask
    return out
