"""Small generated datasets and tiny architectures for the trainer's tests."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

# A 32x32 model small enough for many CPU steps per second.
TINY_ARCH = dict(channel_base=256, channel_max=32, map_layers=2, z_dim=32, w_dim=32, num_fp16_res=0,
                 conv_clamp=None, mbstd_group=4)


def make_dataset(path: Path, count: int = 24, resolution: int = 32, channels: int = 3, classes: int = 0,
                 seed: int = 0) -> Path:
    """A zip in NVIDIA's layout: soft coloured blobs on a gradient, optionally labelled by class."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:resolution, 0:resolution] / resolution
    labels = []
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(count):
            cx, cy, r = rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.75), rng.uniform(0.1, 0.3)
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
            colour = rng.uniform(0, 1, 3)
            img = (0.3 * yy[..., None] + blob[..., None] * colour) * 255
            img = np.clip(img, 0, 255).astype(np.uint8)
            name = f"{i // 1000:05d}/img{i:08d}.png"
            pil = Image.fromarray(img, "RGB") if channels == 3 else Image.fromarray(img.mean(axis=2).astype(np.uint8))
            buf = io.BytesIO()
            pil.save(buf, format="PNG")
            zf.writestr(name, buf.getvalue())
            labels.append([name, i % classes] if classes else None)
        zf.writestr("dataset.json", json.dumps({"labels": labels if classes else None}))
    return path
