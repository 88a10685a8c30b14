"""The StyleGAN2 discriminator (residual by default) with minibatch-stddev and projection conditioning."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bender.nets.config import DiscriminatorConfig, channels_at, fp16_resolution
from bender.nets.layers import Conv2dLayer, FullyConnectedLayer
from bender.nets.mapping import MappingNetwork
from bender.ops import downsample2d, setup_filter


class DiscriminatorBlock(nn.Module):
    """One resolution: (fromrgb) + conv + downsampling conv, with a residual or skip image path."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int,
                 img_channels: int, first_layer_idx: int, architecture: str = "resnet",
                 activation: str = "lrelu", resample_filter: list[float] | None = None,
                 conv_clamp: float | None = None, use_fp16: bool = False, fp16_channels_last: bool = False,
                 freeze_layers: int = 0):
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter or [1, 3, 3, 1]))
        self.num_layers = 0

        def trainable() -> bool:  # layer index decides Freeze-D
            idx = first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= freeze_layers

        common = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2,
                                 resample_filter=resample_filter, trainable=trainable(), **common)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter, trainable=trainable(),
                                    channels_last=self.channels_last)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, force_fp32: bool = False,
                half_dtype: torch.dtype = torch.float16) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = (x if x is not None else img).device
        use_half = self.use_fp16 and not force_fp32 and (device.type == "cuda" or half_dtype == torch.bfloat16)
        dtype = half_dtype if use_half else torch.float32
        fmt = torch.channels_last if (self.channels_last and dtype != torch.float32) else torch.contiguous_format
        if x is not None:
            x = x.to(dtype=dtype, memory_format=fmt)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=fmt)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None

        if self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = y.add_(x)
        else:
            x = self.conv0(x)
            x = self.conv1(x)
        return x, img


class MinibatchStdLayer(nn.Module):
    """Appends the standard deviation across groups of samples as extra feature maps.

    Lets D see batch statistics, so G is penalised for producing too little variety
    (Karras et al. 2018). Sample i belongs to group i % (N / group_size).
    """

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g:
            raise ValueError(f"batch size {n} must be a multiple of the minibatch-std group size {g}")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1)
        y = y.repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 head: (fromrgb) + minibatch-stddev + conv + fc (features) + out (logit or projection)."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: float | None = None):
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def features(self, x: torch.Tensor, img: torch.Tensor | None) -> torch.Tensor:
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        return self.fc(x.flatten(1))

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None) -> torch.Tensor:
        x = self.out(self.features(x, img))
        if cmap is not None:  # projection discriminator (Miyato & Koyama 2018)
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """image, c -> realness logit [N, 1]. State-dict names match NVIDIA's StyleGAN2-ADA."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.c_dim = cfg.c_dim
        self.img_resolution = cfg.img_resolution
        self.img_channels = cfg.img_channels
        log2 = cfg.img_resolution.bit_length() - 1
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        ch = {res: channels_at(cfg.channel_base, cfg.channel_max, res) for res in self.block_resolutions + [4]}
        fp16_res = fp16_resolution(cfg.img_resolution, cfg.num_fp16_res)
        cmap_dim = ch[4] if cfg.cmap_dim is None else cfg.cmap_dim
        if cfg.c_dim == 0:
            cmap_dim = 0

        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                ch[res] if res < cfg.img_resolution else 0, ch[res], ch[res // 2], resolution=res,
                img_channels=cfg.img_channels, first_layer_idx=layer_idx, architecture=cfg.architecture,
                activation=cfg.activation, resample_filter=cfg.resample_filter, conv_clamp=cfg.conv_clamp,
                use_fp16=(res >= fp16_res), fp16_channels_last=cfg.fp16_channels_last,
                freeze_layers=cfg.freeze_layers)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if cfg.c_dim > 0:
            m = cfg.mapping
            self.mapping = MappingNetwork(z_dim=0, c_dim=cfg.c_dim, w_dim=cmap_dim, num_ws=None,
                                          num_layers=m.num_layers, embed_features=m.embed_features,
                                          layer_features=m.layer_features, activation=m.activation,
                                          lr_multiplier=m.lr_multiplier, w_avg_beta=None)
        self.b4 = DiscriminatorEpilogue(ch[4], cmap_dim=cmap_dim, resolution=4, img_channels=cfg.img_channels,
                                        architecture=cfg.architecture, mbstd_group_size=cfg.mbstd_group_size,
                                        mbstd_num_channels=cfg.mbstd_num_channels, activation=cfg.activation,
                                        conv_clamp=cfg.conv_clamp)

    def blocks(self) -> list[DiscriminatorBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def _trunk(self, img: torch.Tensor, force_fp32: bool, half_dtype: torch.dtype):
        if img.ndim != 4 or img.shape[1:] != (self.img_channels, self.img_resolution, self.img_resolution):
            raise ValueError(f"D expects images [N, {self.img_channels}, {self.img_resolution}, "
                             f"{self.img_resolution}], got {tuple(img.shape)}")
        x = None
        for block in self.blocks():
            x, img = block(x, img, force_fp32=force_fp32, half_dtype=half_dtype)
        return x, img

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False,
                half_dtype: torch.dtype = torch.float16) -> torch.Tensor:
        x, img = self._trunk(img, force_fp32, half_dtype)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

    def features(self, img: torch.Tensor, force_fp32: bool = True) -> torch.Tensor:
        """Penultimate activations [N, channels at 4x4]: a feature space every model carries for free.

        Computed before the class projection, so conditional and unconditional models work alike.
        """
        x, img = self._trunk(img, force_fp32, torch.float16)
        return self.b4.features(x, img)

    def freeze(self, num_layers: int) -> None:
        """Freeze-D (Mo et al. 2020): stop training the first `num_layers` layers (from the image side)."""
        for block in self.blocks():
            for i, name in enumerate(n for n in ("fromrgb", "conv0", "conv1", "skip") if hasattr(block, n)):
                getattr(block, name).requires_grad_(block.first_layer_idx + i >= num_layers)
