"""Generated tensors -> 8-bit pixels and PNG files, NVIDIA-compatible.

Pixels follow NVIDIA's tools: `x * 127.5 + 128`, clamped to [0, 255], truncated toward zero.
PNGs are written atomically and carry their recipe (seed, psi, model hash...) as text chunks, so a
picture can always be traced back and regenerated.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from bender.fileio import atomic_path


def uint8_nhwc(img: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] float images (about [-1, 1]) -> [N, H, W, C] uint8, on img's device."""
    x = (img.detach().to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] float images (about [-1, 1]) -> [N, H, W, C] uint8 numpy."""
    return uint8_nhwc(img).cpu().numpy()


def to_pil(array: np.ndarray) -> Image.Image:
    """[H, W, C] uint8 with C = 1 or 3 -> PIL image."""
    if array.ndim == 3 and array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0], "L")
    return Image.fromarray(array, "RGB")


def save_png(array: np.ndarray | Image.Image, path: str | Path, metadata: dict | None = None) -> Path:
    """Write a PNG atomically with `metadata` as tEXt chunks (values stringified)."""
    image = array if isinstance(array, Image.Image) else to_pil(array)
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_text(str(key), str(value))
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", pnginfo=info)
    return path


def read_png_metadata(path: str | Path) -> dict[str, str]:
    with Image.open(path) as im:
        return dict(getattr(im, "text", {}) or {})


def make_grid(images: np.ndarray, cols: int | None = None, pad: int = 0, pad_value: int = 0) -> np.ndarray:
    """[N, H, W, C] uint8 -> one [rows*H, cols*W, C] mosaic (row-major)."""
    n, h, w, c = images.shape
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = np.full([rows * (h + pad) - pad, cols * (w + pad) - pad, c], pad_value, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        grid[r * (h + pad): r * (h + pad) + h, col * (w + pad): col * (w + pad) + w] = images[i]
    return grid
