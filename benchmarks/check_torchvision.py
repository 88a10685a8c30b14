"""Cross-check bender's CNNs against torchvision's, where torchvision is installed (not in bender's own
environment: its wheel conflicts with our torch pin; the GPU machines have it).

For each architecture: build torchvision's model with random weights, load its state dict into
bender's with strict=True (same names, same shapes), and compare logits on the same input.

    python benchmarks/check_torchvision.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bender.nets.cnn import VGG, MobileNetV2, VGGConfig, resnet18, resnet34  # noqa: E402


def main() -> int:
    try:
        import torchvision
    except ImportError:
        print("torchvision is not installed here: nothing to compare against")
        return 0
    pairs = {
        "resnet18": (torchvision.models.resnet18, resnet18),
        "resnet34": (torchvision.models.resnet34, resnet34),
        "mobilenet_v2": (torchvision.models.mobilenet_v2, MobileNetV2),
        "vgg11_bn": (torchvision.models.vgg11_bn, lambda: VGG(VGGConfig(depth=11, batch_norm=True))),
        "vgg16": (torchvision.models.vgg16, lambda: VGG(VGGConfig(depth=16))),
    }
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}\n")
    print("| architecture | tensors | strict load | max abs diff of logits | logit scale |")
    print("|---|---:|---|---:|---:|")
    failures = 0
    for name, (tv_make, ours_make) in pairs.items():
        tv = tv_make(weights=None).eval()
        for m in tv.modules():  # non-trivial BN statistics, so buffers matter
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
        ours = ours_make().eval()
        sd = tv.state_dict()
        same_order = list(sd) == list(ours.state_dict())
        ours.load_state_dict(sd, strict=True)
        with torch.no_grad():
            a, b = tv(x), ours(x)
        diff = float((a - b).abs().max())
        ok = diff <= 1e-4 * max(1.0, float(a.abs().max())) and same_order
        failures += not ok
        print(f"| {name} | {len(sd)} | {'ok' + (', same order' if same_order else ', ORDER DIFFERS')} | "
              f"{diff:.2e} | {float(a.abs().max()):.3g} |")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
