"""A "rocks & foliage" photo set built from scikit-image's bundled, public-domain/CC0 textures.

The lecture bends a face generator toward rocks, trees and foliage scraped from the web. The demo
must run offline, so it uses the texture photographs that ship inside scikit-image (gravel, grass,
brick, the moon's craters), tinted into plausible earth and leaf colours and cut into tiles by the
dataset packer's `tiles` transform.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bender.errors import BenderError

# name -> (skimage.data function, tints as RGB multipliers: a few variations per texture)
TEXTURES = {
    "gravel": ("gravel", [(0.95, 0.88, 0.78), (0.75, 0.74, 0.72), (0.85, 0.72, 0.58)]),
    "grass": ("grass", [(0.45, 0.85, 0.35), (0.55, 0.75, 0.30), (0.35, 0.65, 0.40)]),
    "brick": ("brick", [(0.90, 0.55, 0.42), (0.80, 0.62, 0.50)]),
    "moon": ("moon", [(0.80, 0.78, 0.74), (0.70, 0.66, 0.60)]),
}
SOURCE = "scikit-image sample data (skimage.data), public domain / CC0"


def texture_photos() -> dict[str, np.ndarray]:
    """Tinted RGB uint8 photos, keyed 'gravel-0', 'grass-1', ..."""
    try:
        import skimage.data as data
    except ImportError:
        raise BenderError("the demo's textures come from scikit-image: pip install scikit-image") from None
    out = {}
    for name, (func, tints) in TEXTURES.items():
        grey = getattr(data, func)().astype(np.float32)
        grey = (grey - grey.min()) / max(1.0, float(grey.max() - grey.min())) * 255
        for i, tint in enumerate(tints):
            rgb = np.clip(grey[..., None] * np.asarray(tint, dtype=np.float32)[None, None], 0, 255)
            out[f"{name}-{i}"] = rgb.astype(np.uint8)
    return out


def write_texture_set(folder: Path) -> Path:
    """Write the tinted photos as PNGs plus a manifest.jsonl carrying their licence and source."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "images").mkdir(exist_ok=True)
    lines = []
    for key, rgb in texture_photos().items():
        rel = f"images/{key}.png"
        Image.fromarray(rgb).save(folder / rel)
        lines.append(json.dumps({
            "id": key, "status": "kept", "reason": None, "path": rel, "query": key.split("-")[0],
            "provider": "skimage", "license": "cc0", "creator": "scikit-image contributors",
            "title": key, "attribution": f"{key}: {SOURCE}", "width": rgb.shape[1], "height": rgb.shape[0],
        }))
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return folder
