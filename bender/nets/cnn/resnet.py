"""ResNet with basic blocks (He et al. 2016): ResNet-18 and ResNet-34.

The skip connection lets each block learn a residual `F(x)` added to its input, so very deep nets
still train: the gradient has a short path back. State-dict names follow torchvision
(`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample.0`, `fc`), so local torchvision
checkpoints load with `strict=True`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

RESNET_LAYERS: dict[str, list[int]] = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}


@dataclass
class ResNetConfig:
    layers: list[int] = field(default_factory=lambda: [2, 2, 2, 2])  # basic blocks per stage
    num_classes: int = 1000
    in_channels: int = 3
    width: int = 64  # channels of the first stage; doubled at each later stage


class BasicBlock(nn.Module):
    """x -> relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x)); the first conv may stride 2."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:  # a 1x1 projection makes the shortcut's shape match
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + shortcut)


class ResNet(nn.Module):
    """image [N, 3, H, W] -> logits [N, num_classes]."""

    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.conv1 = nn.Conv2d(cfg.in_channels, w, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_ch = w
        for i, n in enumerate(cfg.layers):
            out_ch = w * 2**i
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(in_ch, out_ch, stride)] + [BasicBlock(out_ch, out_ch) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            in_ch = out_ch
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, cfg.num_classes)
        self.feature_dim = in_ch

    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{i + 1}") for i in range(len(self.cfg.layers))]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled activations of the last stage [N, 512 for ResNet-18]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in self.stages():
            x = stage(x)
        return self.avgpool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def resnet18(num_classes: int = 1000) -> ResNet:
    return ResNet(ResNetConfig(layers=RESNET_LAYERS["resnet18"], num_classes=num_classes))


def resnet34(num_classes: int = 1000) -> ResNet:
    return ResNet(ResNetConfig(layers=RESNET_LAYERS["resnet34"], num_classes=num_classes))
