"""A saved image classifier: feature extractor + softmax head, in one self-contained .safetensors file.

The file holds every weight (backbone included, even when it was frozen), so applying a classifier
never depends on finding the same ImageNet weights or model file again. The header's metadata
holds the architecture, the class names and the training report, as JSON.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bender.errors import BenderError
from bender.fileio import atomic_path
from bender.nets.cnn import (
    VGG,
    AllConvConfig,
    AllConvNet,
    BackboneFeatures,
    DiscriminatorFeatures,
    FeatureExtractor,
    MobileNetV2,
    MobileNetV2Config,
    ResNet,
    ResNetConfig,
    VGGConfig,
)

FORMAT = "bender-classifier"
ARCHS: dict[str, tuple[type, type]] = {
    "MobileNetV2": (MobileNetV2, MobileNetV2Config), "ResNet": (ResNet, ResNetConfig), "VGG": (VGG, VGGConfig),
    "AllConvNet": (AllConvNet, AllConvConfig),
}


@dataclass
class ClassifierInfo:
    backbone: str  # what the user asked for: mobilenet_v2 | resnet18 | d:MODEL | allconv
    class_names: list[str]
    finetuned: bool = False
    dropout: float = 0.2
    report: dict[str, Any] = field(default_factory=dict)  # accuracy, confusion matrix, split sizes...


class Classifier(nn.Module):
    """images [N, C, H, W] in [-1, 1] -> class logits [N, K]; `predict` gives softmax probabilities."""

    def __init__(self, extractor: FeatureExtractor, info: ClassifierInfo):
        super().__init__()
        self.extractor = extractor
        self.info = info
        self.head = nn.Sequential(nn.Dropout(info.dropout), nn.Linear(extractor.dim, len(info.class_names)))

    @property
    def class_names(self) -> list[str]:
        return self.info.class_names

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.extractor(images))

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.forward(images), dim=1)


def extractor_spec(ext: FeatureExtractor) -> dict[str, Any]:
    """What is needed to rebuild the extractor's architecture (its weights go in the tensors)."""
    if isinstance(ext, DiscriminatorFeatures):
        from bender.nets.config import to_dict

        return {"kind": "d", "name": ext.name, "d_config": to_dict(ext.D.cfg)}
    net = ext.backbone
    return {"kind": "backbone", "name": ext.name, "arch": type(net).__name__, "config": dataclasses.asdict(net.cfg),
            "input_size": ext.input_size, "imagenet_norm": ext.imagenet_norm, "in_channels": ext.in_channels}


def build_extractor(spec: dict[str, Any]) -> FeatureExtractor:
    if spec["kind"] == "d":
        from bender.nets import Discriminator, DiscriminatorConfig
        from bender.nets.config import from_dict

        return DiscriminatorFeatures(Discriminator(from_dict(DiscriminatorConfig, spec["d_config"])), spec["name"])
    if spec.get("arch") not in ARCHS:
        raise BenderError(f"unknown classifier backbone architecture {spec.get('arch')!r}")
    cls, cfg_cls = ARCHS[spec["arch"]]
    net = cls(cfg_cls(**spec["config"]))
    return BackboneFeatures(net, spec["name"], input_size=spec["input_size"], imagenet_norm=spec["imagenet_norm"],
                            in_channels=spec["in_channels"])


def save_classifier(clf: Classifier, path: str | Path) -> Path:
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in clf.state_dict().items()}
    meta = {"format": FORMAT, "version": "1", "extractor": json.dumps(extractor_spec(clf.extractor)),
            "info": json.dumps(dataclasses.asdict(clf.info))}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> Classifier:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise BenderError(f"{path}: no such classifier file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception:  # noqa: BLE001 - safetensors raises several types for foreign files
        raise BenderError(f"{path}: not a classifier saved by `bender classify train`") from None
    if meta.get("format") != FORMAT:
        raise BenderError(f"{path}: not a classifier saved by `bender classify train`")
    spec = json.loads(meta["extractor"])
    info = ClassifierInfo(**json.loads(meta["info"]))
    clf = Classifier(build_extractor(spec), info)
    try:
        clf.load_state_dict(load_file(str(path)), strict=True)
    except RuntimeError as e:
        raise BenderError(f"{path}: weights do not match the stored architecture ({str(e).splitlines()[0]})") from None
    clf.extractor.key = f"classifier-{_sha12(path)}"
    return clf.to(device).eval()


def _sha12(path: Path) -> str:
    from bender.metrics.features import file_sha256

    return file_sha256(path)[:12]
