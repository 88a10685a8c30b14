"""2-D planes: geometry, grids, coordinates, SeFa and PCA directions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bender.errors import BenderError
from bender.io import load
from bender.latent import planes, spaces


@pytest.fixture(scope="module")
def G(fixtures_dir):
    return load(fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl").G_ema


def test_plane_from_seeds_hits_the_seeds(G):
    plane = planes.Plane.from_seeds(G, [4, 5, 6])
    w = spaces.seeds_to_ws(G, [4, 5, 6])
    assert torch.equal(plane.point(0, 0), w[0])
    assert torch.equal(plane.point(1, 0), w[1])
    assert torch.equal(plane.point(0, 1), w[2])
    # affine: the midpoint of two plane points is the plane point of the mid coordinates
    mid = plane.point(0.5, 0.25)
    assert torch.allclose(mid, (plane.point(1, 0) + plane.point(0, 0.5)) / 2, atol=1e-5)
    with pytest.raises(BenderError, match="exactly 3 seeds"):
        planes.Plane.from_seeds(G, [1, 2])


def test_grid_geometry_and_orientation(G):
    plane = planes.Plane.from_seeds(G, [1, 2, 3])
    uv, ws = plane.grid(3, 5, extent=2.0)
    assert uv.shape == (15, 2) and ws.shape == (15, G.num_ws, G.w_dim)
    grid = uv.reshape(3, 5, 2)
    assert torch.equal(grid[0, 0], torch.tensor([-2.0, 2.0], dtype=torch.float64))  # top-left: u min, v max
    assert torch.equal(grid[2, 4], torch.tensor([2.0, -2.0], dtype=torch.float64))  # bottom-right
    assert torch.equal(grid[1, 2], torch.tensor([0.0, 0.0], dtype=torch.float64))  # centre
    assert torch.allclose(ws[7], plane.origin.float(), atol=1e-6)
    assert (grid[:, 1:, 0] > grid[:, :-1, 0]).all()  # u grows to the right
    assert (grid[1:, :, 1] < grid[:-1, :, 1]).all()  # v grows upward
    # equal spacing in W along a row
    steps = ws.reshape(3, 5, -1)[0].diff(dim=0)
    assert torch.allclose(steps, steps[:1].expand_as(steps), atol=1e-4)
    uv2 = planes.grid_coords(2, 2, (0, 1, 10, 20))
    assert uv2.tolist() == [[0.0, 20.0], [1.0, 20.0], [0.0, 10.0], [1.0, 10.0]]


def test_coords_round_trip(G):
    plane = planes.Plane.from_seeds(G, [7, 8, 9])
    uv = torch.tensor([[0.3, -1.2], [2.0, 0.5]])
    back = plane.coords(plane.points(uv))
    assert torch.allclose(back, uv.double(), atol=1e-4)


def test_sefa_directions_are_the_top_eigenvectors(G):
    dirs, vals = planes.sefa_directions(G, 4)
    assert dirs.shape == (4, G.w_dim)
    assert torch.allclose(dirs @ dirs.T, torch.eye(4), atol=1e-5)
    assert (vals[:-1] >= vals[1:]).all()
    a = torch.cat([aff.weight.double() * aff.weight_gain for _, _, aff in planes.style_affines(G)])
    energy = lambda d: float((a @ d.double()).square().sum())  # noqa: E731
    assert energy(dirs[0]) == pytest.approx(float(vals[0]), rel=1e-4)
    rand = torch.nn.functional.normalize(torch.randn(64, G.w_dim, generator=torch.Generator().manual_seed(0)), dim=1)
    assert all(energy(dirs[0]) >= energy(r) for r in rand)  # no random direction moves styles more
    again, _ = planes.sefa_directions(G, 4)
    assert torch.equal(again, dirs)  # sign fixed: reproducible
    coarse, _ = planes.sefa_directions(G, 2, layers=(0, 3))
    assert not torch.allclose(coarse[0].abs(), dirs[0].abs(), atol=1e-3)


def test_pca_directions(G):
    comps, stds, mean = planes.pca_directions(G, 3, samples=2000, seed=1)
    assert torch.allclose(comps @ comps.T, torch.eye(3), atol=1e-5)
    assert (stds[:-1] >= stds[1:]).all() and (stds > 0).all()
    w = planes.sample_w(G, 2000, seed=1).float()
    proj = (w - mean) @ comps.T
    np.testing.assert_allclose(proj.std(dim=0).numpy(), stds.numpy(), rtol=1e-3)
    measured = planes.direction_std(G, comps, samples=2000, seed=1)
    np.testing.assert_allclose(measured.numpy(), stds.numpy(), rtol=1e-3)
    with pytest.raises(BenderError, match="at most w_dim"):
        planes.pca_directions(G, G.w_dim + 1)


def test_to_wplus_layer_mask():
    d = torch.ones(4)
    out = planes.to_wplus(d, 6, (1, 3))
    assert out[:, 0].tolist() == [0, 1, 1, 0, 0, 0]
