"""bender.ops.grid_sample: same values as PyTorch's, and differentiable twice (and more) in its input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bender.ops.grid_sample import grid_sample


def _grid(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn([n, 2, 3], generator=g, dtype=torch.float64) * 0.4 + torch.eye(2, 3, dtype=torch.float64)
    return F.affine_grid(theta, [n, 1, h, w], align_corners=False)


CASES = [(m, p, False) for m in ("bilinear", "nearest", "bicubic") for p in ("zeros", "border", "reflection")]
CASES += [(m, "zeros", True) for m in ("bilinear", "nearest", "bicubic")]


@pytest.mark.parametrize("mode,padding_mode,align_corners", CASES)
def test_matches_torch_and_passes_gradgradcheck(mode, padding_mode, align_corners):
    x = torch.randn([2, 3, 5, 6], dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    grid = _grid(2, 4, 7)

    def f(inp):
        return grid_sample(inp, grid, mode, padding_mode, align_corners)

    ref = F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    assert torch.equal(f(x), ref)
    gy = torch.randn_like(ref)
    (g_ours,) = torch.autograd.grad(f(x), x, gy)
    (g_ref,) = torch.autograd.grad(ref, x, gy)
    torch.testing.assert_close(g_ours, g_ref, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_third_order():
    x = torch.randn([1, 2, 4, 4], dtype=torch.float64, requires_grad=True)
    grid = _grid(1, 3, 3)

    def first_grad(inp):
        y = grid_sample(inp, grid)
        (g,) = torch.autograd.grad((y * y).sum(), inp, create_graph=True)
        return g

    assert torch.autograd.gradgradcheck(first_grad, (x,))


def test_second_derivative_matches_torch_where_torch_has_one():
    """Older PyTorch (ADA's crash) has no derivative of grid_sampler_2d_backward; newer ones do: agree with them."""
    x = torch.randn([2, 2, 5, 5], dtype=torch.float64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    grid = _grid(2, 6, 4, seed=3)

    def second(sample):
        (g,) = torch.autograd.grad(sample(x).pow(3).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad((g * g).sum(), x)
        return gg

    ours = second(lambda inp: grid_sample(inp, grid))
    try:
        theirs = second(lambda inp: F.grid_sample(inp, grid, align_corners=False))
    except RuntimeError:
        pytest.skip("this PyTorch cannot differentiate grid_sample twice (which is why bender has its own)")
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


def test_grid_gradients_are_refused():
    grid = _grid(1, 2, 2).requires_grad_(True)
    with pytest.raises(ValueError, match="grid"):
        grid_sample(torch.randn([1, 1, 3, 3], dtype=torch.float64), grid)


def test_bad_shapes():
    with pytest.raises(ValueError, match="expects"):
        grid_sample(torch.randn([1, 3, 3]), torch.zeros([1, 2, 2, 2]))
