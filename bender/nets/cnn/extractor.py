"""Feature extractors: a backbone plus the preprocessing it expects, behind one calling convention.

Every extractor takes images the way the rest of bender holds them — float [N, C, H, W] in [-1, 1],
any size, 1 or 3 channels — and returns one feature vector per image [N, dim]. Generated samples
and dataset images therefore go through exactly the same path, which a Fréchet distance needs.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop to a square, then resize (antialiased) to size x size."""
    h, w = x.shape[-2:]
    if h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        x = x[..., top:top + s, left:left + s]
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, channels, -1, -1)
    if channels == 1:  # ITU-R 601 luma
        weights = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (x[:, :3] * weights).sum(dim=1, keepdim=True)
    raise ValueError(f"cannot feed {x.shape[1]}-channel images to a {channels}-channel network")


class FeatureExtractor(nn.Module):
    """Base class: `name` (how to ask for it again), `dim`, `input_size`; forward -> [N, dim]."""

    name: str = "features"
    key: str = ""  # name + weights hash, set by the loader; cached features are filed under it
    dim: int = 0
    input_size: int = 224

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(self.preprocess(images.to(torch.float32)))


class BackboneFeatures(FeatureExtractor):
    """A classifier CNN (anything with `forward_features` and `feature_dim`) with its input normalisation.

    ImageNet backbones expect RGB in [0, 1] normalised by the ImageNet mean/std at 224x224; a
    backbone trained here (all-conv) gets [-1, 1] at its training size (`imagenet_norm=False`).
    """

    def __init__(self, backbone: nn.Module, name: str, input_size: int = 224, imagenet_norm: bool = True,
                 in_channels: int = 3):
        super().__init__()
        self.backbone = backbone
        self.name = name
        self.dim = backbone.feature_dim
        self.input_size = input_size
        self.in_channels = in_channels
        self.imagenet_norm = imagenet_norm
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = match_channels(resize_square(images, self.input_size), self.in_channels)
        if self.imagenet_norm:
            x = ((x + 1) / 2 - self.mean) / self.std
        return x

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """The backbone's own class logits (e.g. ImageNet's 1000)."""
        return self.backbone(self.preprocess(images.to(torch.float32)))


class DiscriminatorFeatures(FeatureExtractor):
    """A StyleGAN2 discriminator's penultimate activations: a feature space every model carries.

    The minibatch-stddev layer normally mixes statistics of a group of images into each image's
    features, which would make an embedding depend on its batch neighbours. Here each image forms
    its own group (group size 1: the extra channel is the same constant for every image), so an
    image's features depend on that image alone — equal to feeding a group of identical copies.
    """

    def __init__(self, D: nn.Module, name: str):
        super().__init__()
        self.D = copy.deepcopy(D).eval().requires_grad_(False)
        if getattr(self.D.b4, "mbstd", None) is not None:
            self.D.b4.mbstd.group_size = 1
        self.name = name
        self.input_size = self.D.img_resolution
        self.dim = self.D.b4.fc.weight.shape[0]

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        return match_channels(resize_square(images, self.input_size), self.D.img_channels)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.D.features(x, force_fp32=True)
