"""The StyleGAN2 generator: mapping network + synthesis network."""

from __future__ import annotations

import torch
from torch import nn

from bender.nets.config import GeneratorConfig
from bender.nets.mapping import MappingNetwork
from bender.nets.synthesis import SynthesisNetwork


class Generator(nn.Module):
    """z, c -> image in [-1, 1] (not clamped). State-dict names match NVIDIA's StyleGAN2-ADA."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.z_dim = cfg.z_dim
        self.c_dim = cfg.c_dim
        self.w_dim = cfg.w_dim
        self.img_resolution = cfg.img_resolution
        self.img_channels = cfg.img_channels
        s = cfg.synthesis
        self.synthesis = SynthesisNetwork(
            w_dim=cfg.w_dim, img_resolution=cfg.img_resolution, img_channels=cfg.img_channels,
            channel_base=s.channel_base, channel_max=s.channel_max, num_fp16_res=s.num_fp16_res,
            conv_clamp=s.conv_clamp, architecture=s.architecture, resample_filter=s.resample_filter,
            fp16_channels_last=s.fp16_channels_last, use_noise=s.use_noise, kernel_size=s.kernel_size,
            activation=s.activation)
        self.num_ws = self.synthesis.num_ws
        m = cfg.mapping
        self.mapping = MappingNetwork(
            z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim, num_ws=self.num_ws, num_layers=m.num_layers,
            embed_features=m.embed_features, layer_features=m.layer_features, activation=m.activation,
            lr_multiplier=m.lr_multiplier, w_avg_beta=m.w_avg_beta)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False, **synthesis_kwargs) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, **synthesis_kwargs)
