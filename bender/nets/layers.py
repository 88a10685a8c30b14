"""Building blocks shared by G and D: equalised-lr layers and the modulated convolution.

Equalised learning rate (Karras et al. 2018, "Progressive Growing of GANs"): parameters are stored
at unit scale and multiplied by their He-init constant at run time, so that Adam's per-parameter
step sizes mean the same for every layer. The stored weights of pretrained networks are in this
convention, which is why the gains below must be applied exactly as written.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bender.nets.cache import DerivedWeights, channels_last_weight
from bender.ops import bias_act, conv2d_resample, setup_filter
from bender.ops.bias_act import ACTIVATIONS


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit root-mean-square (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """Linear layer with equalised learning rate and a fused activation."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self._derived = DerivedWeights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The equalised-lr scaling depends only on the weights: at inference it is done once.
        w = self._derived.get(f"w-{x.dtype}", self.weight, lambda w: w.to(x.dtype) * self.weight_gain)
        b = self.bias
        if b is not None:
            b = self._derived.get(f"b-{x.dtype}", b, lambda b: b.to(x.dtype) * self.bias_gain
                                  if self.bias_gain != 1 else b.to(x.dtype))
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


class Conv2dLayer(nn.Module):
    """Convolution with equalised learning rate, FIR resampling, fused bias/activation/clamp."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter: list[float] | None = None, conv_clamp: float | None = None,
                 channels_last: bool = False, trainable: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.channels_last = channels_last
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation].def_gain
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size])
                                   .to(memory_format=fmt))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        self.register_buffer("resample_filter", setup_filter(resample_filter or [1, 3, 3, 1]))
        self.requires_grad_(trainable)
        self._derived = DerivedWeights()

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self._derived.get("w", self.weight, lambda w: w * self.weight_gain)
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w.to(x.dtype), self.resample_filter, up=self.up, down=self.down,
                            padding=self.padding, flip_weight=(self.up == 1))
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp, inplace=True)

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, out={self.out_channels}, act={self.activation}, "
                f"up={self.up}, down={self.down}")


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor, eps: float = 1e-8,
                              w2: torch.Tensor | None = None) -> torch.Tensor:
    """[B, O] = 1 / sqrt(sum_{i,kh,kw} (weight[o, i, kh, kw] * styles[b, i])^2 + eps).

    Computed as (styles^2) @ (sum over the kernel of weight^2)^T: the same sum regrouped, so the
    [B, O, I, kh, kw] modulated weights are never materialised just to be squared. `w2` may pass
    in that kernel sum, precomputed.
    """
    if w2 is None:
        w2 = weight.square().sum(dim=[2, 3])
    return (styles.square() @ w2.t().to(styles.dtype) + eps).rsqrt()


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
    w2: torch.Tensor | None = None,
) -> torch.Tensor:
    """StyleGAN2's weight (de)modulation (Karras et al. 2020, eqs. 1-3).

    Each sample scales the input channels of the shared weights by its style s, and — with
    `demodulate` — rescales each output channel by 1/sqrt(sum((w*s)^2)) so activations keep unit
    variance without instance normalisation (which caused StyleGAN's "droplet" artefacts).

    Two equivalent computations: `fused_modconv` builds per-sample weights and runs one grouped
    convolution (fast for inference); otherwise the styles scale the activations before and after
    a shared convolution (cheaper gradients, used in training).

    `w2` optionally gives `weight.square().sum([2, 3])`, which depends only on the weights.
    """
    batch = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape

    if x.dtype == torch.float16 and demodulate:
        # Pre-scale so that fp16 intermediate products cannot overflow; cancelled by demodulation.
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
        w2 = None  # the weights were rescaled

    dcoefs = demodulation_coefficients(weight, styles, w2=w2) if demodulate else None
    if fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)
        if demodulate:
            w = w * dcoefs.reshape(batch, -1, 1, 1, 1)

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight)
        # x is this function's own tensor: overwrite it when autograd is not watching (compiled
        # code fuses this anyway, and dynamo cannot trace `out=` into a channels_last tensor).
        reuse = not (torch.is_grad_enabled() and x.requires_grad) and not torch.compiler.is_compiling()
        out = x if reuse else None
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(batch, -1, 1, 1), out=out)
        if demodulate:
            return torch.mul(x, dcoefs.to(x.dtype).reshape(batch, -1, 1, 1), out=out)
        if noise is not None:
            return x.add_(noise.to(x.dtype))
        return x

    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw).to(x.dtype)
    if channels_last and batch == 1:  # match x's layout, or the convolution converts x instead
        w = channels_last_weight(w, transposed=up > 1)
    x = conv2d_resample(x, w, resample_filter, up=up, down=down, padding=padding,
                        groups=batch, flip_weight=flip_weight)
    x = x.reshape(batch, -1, *x.shape[2:])
    if noise is not None:
        x = x.add_(noise)
    return x
