"""Embedding speed: images/s for 256x256 images through each feature extractor, on CPU and GPU.

    python benchmarks/embed.py                       # CPU (and CUDA too when present)
    python benchmarks/embed.py --device cuda --n 2048 --batch 128 --amp

Rows:
- mobilenet_v2, resnet18, vgg16: ImageNet backbones at 224x224 (the 256x256 input is resized on the
  device). Timing does not depend on the weights, so resnet18/vgg16 use random ones when no local
  weights are configured;
- d:256 — a StyleGAN2 discriminator for 256x256 (channel_base 16384, as NVIDIA's `paper256` config),
  random weights, at its native 256x256;
- allconv — the all-convolutional net (width 32) at its default 64x64 training size;
- pipeline — mobilenet_v2 from 256x256 JPEG files on disk: threaded decode + resize + embed, which is
  what `bender dataset curate` does.

Each row: one warm-up batch, then `--n` images (uint8 arrays already in memory, except `pipeline`),
timed with a device synchronise. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bender.metrics.embed import uint8_to_tensor  # noqa: E402
from bender.nets.cnn import (  # noqa: E402
    VGG,
    AllConvConfig,
    AllConvNet,
    BackboneFeatures,
    DiscriminatorFeatures,
    MobileNetV2,
    VGGConfig,
    resnet18,
)


def extractors() -> dict[str, callable]:
    from bender.metrics.features import load_feature_extractor, mobilenet_available
    from bender.nets import Discriminator, DiscriminatorConfig

    def imagenet(name, make):
        try:
            return load_feature_extractor(name)
        except Exception:  # noqa: BLE001 - no local weights: same architecture, random weights
            return BackboneFeatures(make(), f"{name} (random)")

    return {
        "mobilenet_v2": lambda: load_feature_extractor("mobilenet_v2") if mobilenet_available()
        else BackboneFeatures(MobileNetV2(), "mobilenet_v2 (random)"),
        "resnet18": lambda: imagenet("resnet18", resnet18),
        "vgg16": lambda: BackboneFeatures(VGG(VGGConfig(depth=16)), "vgg16 (random)"),
        "d:256": lambda: DiscriminatorFeatures(
            Discriminator(DiscriminatorConfig(img_resolution=256, channel_base=16384, channel_max=512)), "d:256"),
        "allconv": lambda: BackboneFeatures(AllConvNet(AllConvConfig(num_classes=0, width=32)), "allconv",
                                            input_size=64, imagenet_norm=False),
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def time_in_memory(ext, images: np.ndarray, batch: int, device: torch.device, amp: bool) -> float:
    ext = ext.to(device).eval()
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda" else _null()
    with ctx:
        ext(uint8_to_tensor(images[:batch], device))  # warm-up (cuDNN autotune, allocator)
        sync(device)
        start = time.perf_counter()
        for s in range(0, len(images), batch):
            ext(uint8_to_tensor(images[s:s + batch], device))
        sync(device)
    return len(images) / (time.perf_counter() - start)


def time_pipeline(ext, images: np.ndarray, batch: int, device: torch.device) -> float:
    from PIL import Image

    from bender.curate.sources import open_image_set
    from bender.metrics.embed import embed_image_set

    with tempfile.TemporaryDirectory() as tmp:
        for i, arr in enumerate(images):
            Image.fromarray(arr).save(Path(tmp) / f"{i:05d}.jpg", quality=90)
        image_set = open_image_set(tmp)
        ext = ext.to(device).eval()
        embed_image_set(ext, image_set, image_set.items[:batch], device, batch)  # warm-up
        sync(device)
        start = time.perf_counter()
        feats, _, errors = embed_image_set(ext, image_set, image_set.items, device, batch)
        sync(device)
        assert len(feats) == len(images) and not errors
    return len(images) / (time.perf_counter() - start)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cpu, plus cuda when present) | cpu | cuda")
    parser.add_argument("--n", type=int, default=None, help="images per row [default: 128 on CPU, 2048 on GPU]")
    parser.add_argument("--batch", type=int, default=None, help="[default: 32 on CPU, 128 on GPU]")
    parser.add_argument("--backbones", default="mobilenet_v2,resnet18,vgg16,d:256,allconv,pipeline")
    parser.add_argument("--amp", action="store_true", help="also time bf16 autocast on CUDA")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads [default: torch's choice]")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    devices = ["cpu", "cuda"] if args.device == "auto" and torch.cuda.is_available() else \
        ["cpu" if args.device == "auto" else args.device]
    rng = np.random.RandomState(0)
    makers = extractors()
    rows = []
    for dev_name in devices:
        device = torch.device(dev_name)
        n = args.n or (2048 if device.type == "cuda" else 128)
        batch = args.batch or (128 if device.type == "cuda" else 32)
        images = rng.randint(0, 256, (n, 256, 256, 3), dtype=np.uint8)
        for name in args.backbones.split(","):
            if name == "pipeline":
                ext = makers["mobilenet_v2"]()
                rows.append(("pipeline: JPEG files -> " + ext.name, dev_name, "fp32", batch,
                             time_pipeline(ext, images, batch, device)))
                continue
            ext = makers[name]()
            rows.append((ext.name, dev_name, "fp32", batch, time_in_memory(ext, images, batch, device, False)))
            if args.amp and device.type == "cuda":
                rows.append((ext.name, dev_name, "bf16 autocast", batch,
                             time_in_memory(ext, images, batch, device, True)))
            print(f"  {rows[-1][0]:<28} {dev_name:<5} {rows[-1][-1]:9.1f} img/s", file=sys.stderr, flush=True)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-"
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} CPU threads, GPU: {gpu}\n")
    print("| extractor | device | precision | batch | images/s |")
    print("|---|---|---|---:|---:|")
    for name, dev, prec, batch, ips in rows:
        print(f"| {name} | {dev} | {prec} | {batch} | {ips:.1f} |")


if __name__ == "__main__":
    main()
