"""VGG (Simonyan & Zisserman 2015): stacks of 3x3 convolutions, max-pooling between stages.

State-dict names follow torchvision's `vgg11/13/16/19[_bn]` (`features.N`, `classifier.N`), so a
local torchvision checkpoint loads with `strict=True`. `vgg_stage` is the lecture's "VGG block":
n 3x3 convolutions (two 3x3s see as far as one 5x5 with fewer weights) and a 2x2 max-pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

# Channels per stage and convolutions per stage of the four published depths.
VGG_DEPTHS: dict[int, list[int]] = {11: [1, 1, 2, 2, 2], 13: [2, 2, 2, 2, 2], 16: [2, 2, 3, 3, 3],
                                    19: [2, 2, 4, 4, 4]}


@dataclass
class VGGConfig:
    depth: int = 16  # 11, 13, 16 or 19
    num_classes: int = 1000
    in_channels: int = 3
    stage_channels: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 512])
    batch_norm: bool = False
    hidden: int = 4096  # width of the two fully-connected layers
    pool_size: int = 7  # the conv features are average-pooled to pool_size x pool_size
    dropout: float = 0.5


def vgg_stage(in_ch: int, out_ch: int, num_convs: int, batch_norm: bool) -> list[nn.Module]:
    """num_convs x (3x3 conv [+ BN] + ReLU), then 2x2 max-pool; a flat list so indices match torchvision."""
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers.append(nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_ch))
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.MaxPool2d(2, 2))
    return layers


class VGG(nn.Module):
    """image [N, 3, H, W] -> logits [N, num_classes]."""

    def __init__(self, cfg: VGGConfig):
        super().__init__()
        if cfg.depth not in VGG_DEPTHS:
            raise ValueError(f"VGG depth must be one of {sorted(VGG_DEPTHS)}, got {cfg.depth}")
        self.cfg = cfg
        layers: list[nn.Module] = []
        in_ch = cfg.in_channels
        for out_ch, n in zip(cfg.stage_channels, VGG_DEPTHS[cfg.depth]):
            layers += vgg_stage(in_ch, out_ch, n, cfg.batch_norm)
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(cfg.pool_size)
        self.classifier = nn.Sequential(
            nn.Linear(in_ch * cfg.pool_size**2, cfg.hidden), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.num_classes),
        )
        self.feature_dim = cfg.hidden

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate fully-connected activations [N, hidden] ("fc7")."""
        x = self.avgpool(self.features(x)).flatten(1)
        return self.classifier[:-1](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[-1](self.forward_features(x))
