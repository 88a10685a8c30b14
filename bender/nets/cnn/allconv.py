"""The all-convolutional classifier (Springenberg et al. 2015, "Striving for Simplicity", All-CNN-C).

The lecture's example of a CNN with no pooling and no fully-connected layers: down-sampling is a
stride-2 convolution (the network learns how to pool), dropout follows each down-sampling step,
and the class scores are a 1x1 convolution averaged over the image, fed to a softmax. It trains
from scratch in seconds on small images, which is why `bender classify --backbone allconv` uses it
when no pretrained weights are wanted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class AllConvConfig:
    num_classes: int = 10  # 0: no class layer (a feature trunk for a separate head)
    in_channels: int = 3
    width: int = 96  # channels of the first stage; the second stage has twice as many (96/192 in the paper)
    dropout: float = 0.5  # after each strided convolution, as in the paper
    batch_norm: bool = True  # not in the paper; makes CPU training converge in a few epochs


def conv_unit(in_ch: int, out_ch: int, kernel: int, stride: int, batch_norm: bool) -> nn.Sequential:
    """conv -> (batch norm) -> ReLU; the padding keeps the size unless the stride halves it."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2,
                                         bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class AllConvNet(nn.Module):
    """image [N, C, H, W] -> class logits [N, num_classes]; apply softmax for probabilities."""

    def __init__(self, cfg: AllConvConfig):
        super().__init__()
        self.cfg = cfg
        w, bn = cfg.width, cfg.batch_norm
        self.features = nn.Sequential(
            conv_unit(cfg.in_channels, w, 3, 1, bn),
            conv_unit(w, w, 3, 1, bn),
            conv_unit(w, w, 3, 2, bn),  # replaces 2x2 max-pooling
            nn.Dropout(cfg.dropout),
            conv_unit(w, 2 * w, 3, 1, bn),
            conv_unit(2 * w, 2 * w, 3, 1, bn),
            conv_unit(2 * w, 2 * w, 3, 2, bn),  # replaces 2x2 max-pooling
            nn.Dropout(cfg.dropout),
            conv_unit(2 * w, 2 * w, 3, 1, bn),
            conv_unit(2 * w, 2 * w, 1, 1, bn),
        )
        # Per-position class scores. Averaging them over the image equals a linear layer on the averaged
        # features, which is why a trunk without it (num_classes=0) plus nn.Linear is the same network.
        self.classifier = nn.Conv2d(2 * w, cfg.num_classes, 1) if cfg.num_classes else None
        self.feature_dim = 2 * w

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled activations before the class layer [N, 2 * width]."""
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.classifier is None:
            return self.forward_features(x)
        return self.classifier(self.features(x)).mean(dim=(2, 3))
