"""Fused bias + activation + gain + clamp.

StyleGAN2 applies `clamp(act(x + b) * gain)` after nearly every convolution and fully connected
layer. Written as one function so the CUDA kernel (bender/ops/cuda) can do it in a single pass over
memory; the reference below is plain PyTorch, so autograd gives exact first and second derivatives
(R1 and path-length regularisation differentiate through it twice).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bender.ops import backend


@dataclass(frozen=True)
class Activation:
    """How an activation is computed and its default slope/gain.

    `def_gain` keeps activations' variance roughly unchanged for unit-variance inputs
    (sqrt(2) for ReLU-like functions, as in He initialisation), which equalised learning rate
    relies on.
    """

    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float = 0.0
    def_gain: float = 1.0
    cuda_idx: int = 0  # index understood by the CUDA kernel
    func_: Callable[[torch.Tensor, float], torch.Tensor] | None = None  # in-place variant, if any


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0, 1, lambda x, a: x),
    "relu": Activation(lambda x, a: F.relu(x), 0.0, math.sqrt(2), 2, lambda x, a: x.relu_()),
    "lrelu": Activation(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2), 3, lambda x, a: F.leaky_relu_(x, a)),
    "tanh": Activation(lambda x, a: torch.tanh(x), 0.0, 1.0, 4, lambda x, a: x.tanh_()),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0, 5, lambda x, a: x.sigmoid_()),
    "elu": Activation(lambda x, a: F.elu(x), 0.0, 1.0, 6, lambda x, a: F.elu_(x)),
    "selu": Activation(lambda x, a: F.selu(x), 0.0, 1.0, 7, lambda x, a: torch.selu_(x)),
    "softplus": Activation(lambda x, a: F.softplus(x), 0.0, 1.0, 8),
    "swish": Activation(lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2), 9),
}


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
    impl: str | None = None,
    inplace: bool = False,
) -> torch.Tensor:
    """Return `clamp(act(x + b[broadcast along dim], alpha) * gain, -clamp, clamp)`.

    `alpha` and `gain` default to the activation's own; `clamp=None` means no clamping.
    `impl` forces 'ref' or 'cuda' (normally chosen by `bender.ops.backend`).
    `inplace` lets the reference path overwrite `x` (for callers that own it) when autograd is not
    recording; on CPUs that saves the allocation and page faults of four full-size temporaries.
    """
    spec = _spec(act)
    alpha = spec.def_alpha if alpha is None else float(alpha)
    gain = spec.def_gain if gain is None else float(gain)
    clamp = -1.0 if clamp is None else float(clamp)
    if backend.use_cuda("bias_act", x, impl):
        return backend.cuda_module().bias_act(x, b, dim, act, alpha, gain, clamp)
    if inplace and not (torch.is_grad_enabled() and x.requires_grad) and spec.func_ is not None:
        return _bias_act_inplace(x, b, dim, spec, alpha, gain, clamp)
    return bias_act_ref(x, b, dim, act, alpha, gain, clamp)


def _bias_act_inplace(x: torch.Tensor, b: torch.Tensor | None, dim: int, spec: Activation, alpha: float,
                      gain: float, clamp: float) -> torch.Tensor:
    if b is not None:
        x.add_(b.reshape([-1 if i == dim else 1 for i in range(x.ndim)]))
    x = spec.func_(x, alpha)
    if gain != 1:
        x.mul_(gain)
    if clamp >= 0:
        x.clamp_(-clamp, clamp)
    return x


def bias_act_ref(
    x: torch.Tensor,
    b: torch.Tensor | None,
    dim: int,
    act: str,
    alpha: float,
    gain: float,
    clamp: float,
) -> torch.Tensor:
    """Reference: the same arithmetic in plain PyTorch ops (clamp < 0 means no clamp)."""
    if b is not None:
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias of shape {tuple(b.shape)} does not match dim {dim} of {tuple(x.shape)}")
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = _spec(act).func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def _spec(act: str) -> Activation:
    try:
        return ACTIVATIONS[act]
    except KeyError:
        raise ValueError(f"unknown activation '{act}'; choose from {', '.join(ACTIVATIONS)}") from None
