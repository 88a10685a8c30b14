"""The synthesis network: per-layer ws -> image, built from resolution blocks 4x4 ... R x R."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from bender.nets.cache import DerivedWeights, channels_last_weight
from bender.nets.config import channels_at, fp16_resolution
from bender.nets.layers import Conv2dLayer, FullyConnectedLayer, modulated_conv2d
from bender.ops import bias_act, setup_filter, upsample2d
from bender.ops.bias_act import ACTIVATIONS

NOISE_MODES = ("const", "random", "none")


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling x2) + per-pixel noise + bias/lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 kernel_size: int = 3, up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: list[float] | None = None, conv_clamp: float | None = None,
                 channels_last: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation].def_gain

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size])
                                   .to(memory_format=fmt))
        if use_noise:
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("resample_filter", setup_filter(resample_filter or [1, 3, 3, 1]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self._derived = DerivedWeights()

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool = True,
                gain: float = 1.0, noise_gain: float = 1.0, generator: torch.Generator | None = None,
                noise_input: torch.Tensor | None = None) -> torch.Tensor:
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode != "none" and noise_gain != 0:
            if noise_input is not None:  # drawn by the caller (see SynthesisNetwork.draw_noise)
                noise = noise_input * self.noise_strength
            elif noise_mode == "random":
                shape = [x.shape[0], 1, self.resolution, self.resolution]
                noise = torch.randn(shape, device=x.device, generator=generator) * self.noise_strength
            elif noise_mode == "const":
                noise = self.noise_const * self.noise_strength
            else:
                raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
            if noise_gain != 1:
                noise = noise * noise_gain
        weight = self.weight
        if not fused_modconv and x.device.type == "cpu" and x.is_contiguous(memory_format=torch.channels_last):
            weight = self._derived.get(f"cl-{x.dtype}", weight,
                                       lambda w: channels_last_weight(w, transposed=self.up > 1).to(x.dtype))
        w2 = self._derived.get("w2", self.weight, lambda w: w.square().sum(dim=[2, 3]))
        x = modulated_conv2d(x, weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv, w2=w2)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp,
                        inplace=True)


class ToRGBLayer(nn.Module):
    """1x1 modulated (not demodulated) convolution to image channels."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size])
                                   .to(memory_format=fmt))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp, inplace=True)


class SynthesisBlock(nn.Module):
    """One resolution: (const | upsampling conv) + conv, and the image path ('skip'/'resnet'/'orig')."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter: list[float] | None = None,
                 conv_clamp: float | None = None, use_fp16: bool = False, fp16_channels_last: bool = False,
                 use_noise: bool = True, kernel_size: int = 3, activation: str = "lrelu"):
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter or [1, 3, 3, 1]))
        self.num_conv = 0
        self.num_torgb = 0
        layer = dict(w_dim=w_dim, resample_filter=resample_filter, conv_clamp=conv_clamp,
                     channels_last=self.channels_last, kernel_size=kernel_size, use_noise=use_noise,
                     activation=activation)

        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, resolution=resolution, up=2, **layer)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, resolution=resolution, **layer)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                force_fp32: bool = False, fused_modconv: bool | None = None, noise_mode: str = "random",
                noise_gain: float = 1.0, generator: torch.Generator | None = None,
                half_dtype: torch.dtype = torch.float16, noise: Sequence[torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        w_iter = iter(ws.unbind(dim=1))
        noise_iter = iter(noise if noise is not None else [None] * self.num_conv)
        on_cuda = ws.device.type == "cuda"
        # The network's reduced-precision blocks: float16 only on CUDA (CPUs are slow at it and
        # NVIDIA's CPU path differs from its GPU path anyway); bfloat16 on request, also on CPUs.
        use_half = self.use_fp16 and not force_fp32 and (on_cuda or half_dtype == torch.bfloat16)
        dtype = half_dtype if use_half else torch.float32
        # channels_last: NVIDIA's choice for fp16 layers on GPUs; on CPUs oneDNN's convolutions are
        # 2-3x faster in NHWC at every size StyleGAN uses, so CPU inference always uses it.
        cl = (self.channels_last and dtype != torch.float32) or not on_cuda
        fmt = torch.channels_last if cl else torch.contiguous_format
        if fused_modconv is None:
            # Per-sample weights + grouped conv pay off on GPUs; on CPUs modulating the activations
            # measured faster at every StyleGAN shape (static, cached conv weights; no weight reorder).
            fused_modconv = (not self.training) and on_cuda and (dtype == torch.float32 or ws.shape[0] == 1)
        layer_kw = dict(fused_modconv=fused_modconv, noise_mode=noise_mode, noise_gain=noise_gain,
                        generator=generator)

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1]).to(memory_format=fmt)
            x = self.conv1(x, next(w_iter), noise_input=next(noise_iter), **layer_kw)
        elif self.architecture == "resnet":
            x = x.to(dtype=dtype, memory_format=fmt)
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_input=next(noise_iter), **layer_kw)
            x = self.conv1(x, next(w_iter), gain=np.sqrt(0.5), noise_input=next(noise_iter), **layer_kw)
            x = y.add_(x)
        else:
            x = x.to(dtype=dtype, memory_format=fmt)
            x = self.conv0(x, next(w_iter), noise_input=next(noise_iter), **layer_kw)
            x = self.conv1(x, next(w_iter), noise_input=next(noise_iter), **layer_kw)

        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img.add_(y) if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """Stack of SynthesisBlocks; consumes `num_ws` ws (each block's ToRGB shares the next block's first w)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, conv_clamp: float | None = None,
                 architecture: str = "skip", resample_filter: list[float] | None = None,
                 fp16_channels_last: bool = False, use_noise: bool = True, kernel_size: int = 3,
                 activation: str = "lrelu"):
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        log2 = img_resolution.bit_length() - 1
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        fp16_res = fp16_resolution(img_resolution, num_fp16_res)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = channels_at(channel_base, channel_max, res // 2) if res > 4 else 0
            block = SynthesisBlock(in_ch, channels_at(channel_base, channel_max, res), w_dim=w_dim,
                                   resolution=res, img_channels=img_channels, is_last=(res == img_resolution),
                                   architecture=architecture, resample_filter=resample_filter,
                                   conv_clamp=conv_clamp, use_fp16=(res >= fp16_res),
                                   fp16_channels_last=fp16_channels_last, use_noise=use_noise,
                                   kernel_size=kernel_size, activation=activation)
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def ws_ranges(self) -> list[tuple[int, int]]:
        """(first w index, count) of the ws each block consumes."""
        out, idx = [], 0
        for block in self.blocks():
            out.append((idx, block.num_conv + block.num_torgb))
            idx += block.num_conv
        return out

    def draw_noise(self, batch: int, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> list[torch.Tensor]:
        """Unscaled per-pixel noise for every conv layer, [batch, 1, r, r] each, in forward order.

        The same draws, from the same generator in the same order, as `noise_mode="random"` makes
        inside the layers, so `forward(ws, noise=draw_noise(n, gen))` gives the same image as
        `forward(ws, generator=gen)`. Drawing outside lets `torch.compile` see the synthesis network
        as one graph (a call with an explicit generator inside it breaks the graph at every layer).
        """
        device = device if device is not None else self.b4.const.device
        out = []
        for block in self.blocks():
            for layer in (getattr(block, "conv0", None), block.conv1):
                if layer is not None:
                    out.append(torch.randn([batch, 1, layer.resolution, layer.resolution], device=device,
                                           generator=generator) if layer.use_noise else None)
        return out

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False,
                fused_modconv: bool | None = None, noise_gain: float = 1.0,
                generator: torch.Generator | None = None, half_dtype: torch.dtype = torch.float16,
                noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> images [N, C, R, R]. `noise` (from `draw_noise`) replaces the
        noise that `noise_mode` would make, except that 'none' still means none."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        blocks = self.blocks()
        if noise is not None and len(noise) != sum(b.num_conv for b in blocks):
            raise ValueError(f"noise must hold one tensor per conv layer ({sum(b.num_conv for b in blocks)}), "
                             f"got {len(noise)}; make it with draw_noise()")
        ws = ws.to(torch.float32)
        x = img = None
        first = 0
        for block, (start, count) in zip(blocks, self.ws_ranges()):
            x, img = block(x, img, ws.narrow(1, start, count), force_fp32=force_fp32,
                           fused_modconv=fused_modconv, noise_mode=noise_mode, noise_gain=noise_gain,
                           generator=generator, half_dtype=half_dtype,
                           noise=noise[first:first + block.num_conv] if noise is not None else None)
            first += block.num_conv
        return img
