"""grid_sample whose gradient with respect to its input can itself be differentiated (any order).

ADA augments the real images before D, and the R1 penalty differentiates D's output with respect
to those reals, then training differentiates that penalty again. The chain therefore needs the
second derivative of `grid_sample` with respect to its input, which PyTorch does not have
(`grid_sampler_2d_backward` is not differentiable).

It does not need to be hard: for a fixed grid, sampling is a linear map A of the input (every
interpolation mode is a fixed weighted sum of input pixels). So

    forward:              y  = A x                       (F.grid_sample)
    backward:             gx = A^T gy                    (PyTorch's grid_sampler_2d_backward)
    backward of backward: g(gy) = (A^T)^T ggx = A ggx    (F.grid_sample again)

Each step is one of two autograd Functions that name the other as its derivative, so the chain
continues to any order. Gradients with respect to the grid are not provided (ADA's grids are built
from random numbers and need none): passing a grid that requires grad is an error.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_MODES = {"bilinear": 0, "nearest": 1, "bicubic": 2}
_PADDING = {"zeros": 0, "border": 1, "reflection": 2}


def grid_sample(input: torch.Tensor, grid: torch.Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool = False) -> torch.Tensor:
    """Like `torch.nn.functional.grid_sample` (4-D only), but differentiable twice (and more) in `input`."""
    if input.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2:
        raise ValueError(f"grid_sample expects input [N, C, H, W] and grid [N, H', W', 2]; got "
                         f"{tuple(input.shape)} and {tuple(grid.shape)}")
    if mode not in _MODES or padding_mode not in _PADDING:
        raise ValueError(f"mode must be one of {sorted(_MODES)} and padding_mode one of {sorted(_PADDING)}")
    if grid.requires_grad:
        raise ValueError("bender.ops.grid_sample has no gradient with respect to the grid; "
                         "detach the grid or use torch.nn.functional.grid_sample")
    return _Sample.apply(input, grid, mode, padding_mode, align_corners)


class _Sample(torch.autograd.Function):
    """y = A x."""

    @staticmethod
    def forward(ctx, x, grid, mode, padding_mode, align_corners):
        ctx.save_for_backward(grid)
        ctx.args = (mode, padding_mode, align_corners)
        ctx.input_shape = x.shape
        return F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)

    @staticmethod
    def backward(ctx, gy):
        (grid,) = ctx.saved_tensors
        gx = None
        if ctx.needs_input_grad[0]:
            gx = _Adjoint.apply(gy, grid, ctx.input_shape, *ctx.args)
        return gx, None, None, None, None


class _Adjoint(torch.autograd.Function):
    """gx = A^T gy (the backward of sampling), whose own derivative is sampling again."""

    @staticmethod
    def forward(ctx, gy, grid, input_shape, mode, padding_mode, align_corners):
        ctx.save_for_backward(grid)
        ctx.args = (mode, padding_mode, align_corners)
        # The kernel reads `input` only for its shape and for the grid gradient (masked off here):
        # zeros of the right shape stand in, so the real input need not be kept alive.
        stand_in = gy.new_zeros(input_shape)
        gx, _ = torch.ops.aten.grid_sampler_2d_backward(
            gy.contiguous(), stand_in, grid, _MODES[mode], _PADDING[padding_mode], align_corners, [True, False])
        return gx

    @staticmethod
    def backward(ctx, ggx):
        (grid,) = ctx.saved_tensors
        ggy = None
        if ctx.needs_input_grad[0]:
            ggy = _Sample.apply(ggx, grid, *ctx.args)
        return ggy, None, None, None, None, None
