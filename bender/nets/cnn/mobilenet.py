"""MobileNetV2 (Sandler et al. 2018): inverted residual blocks with linear bottlenecks.

Each block expands the channels t-fold with a 1x1 conv, filters each channel separately with a
3x3 depthwise conv, and projects back down with a 1x1 conv *without* an activation (ReLU in a
narrow space destroys information). A skip connection joins blocks of equal shape. Cheap enough
to embed images on a CPU. State-dict names follow torchvision's `mobilenet_v2` (`features.N...`,
`classifier.1`), so its ImageNet checkpoint loads with `strict=True`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2.
MOBILENET_V2_SETTINGS: list[tuple[int, int, int, int]] = [
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
]


@dataclass
class MobileNetV2Config:
    num_classes: int = 1000
    in_channels: int = 3
    width_mult: float = 1.0
    dropout: float = 0.2
    last_channels: int = 1280


def round_channels(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of 8, never dropping more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn_relu6(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """1x1 expand -> 3x3 depthwise -> 1x1 linear projection (+ input when shapes match)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(in_ch * expand_ratio))
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn_relu6(in_ch, hidden, kernel=1))
        layers += [conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """image [N, 3, H, W] -> logits [N, num_classes] (ImageNet: 224x224, normalised RGB)."""

    def __init__(self, cfg: MobileNetV2Config | None = None):
        super().__init__()
        cfg = cfg or MobileNetV2Config()
        self.cfg = cfg
        in_ch = round_channels(32 * cfg.width_mult)
        last = round_channels(cfg.last_channels * max(1.0, cfg.width_mult))
        layers: list[nn.Module] = [conv_bn_relu6(cfg.in_channels, in_ch, stride=2)]
        for t, c, n, s in MOBILENET_V2_SETTINGS:
            out_ch = round_channels(c * cfg.width_mult)
            for i in range(n):
                layers.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t))
                in_ch = out_ch
        layers.append(conv_bn_relu6(in_ch, last, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(last, cfg.num_classes))
        self.feature_dim = last

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally averaged activations of the last 1x1 conv [N, 1280]."""
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))
