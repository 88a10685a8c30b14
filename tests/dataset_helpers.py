"""Helpers shared by the dataset tests: reading zips, making images, the README's crop arithmetic."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def zip_pixels(zip_path: Path, name: str) -> np.ndarray:
    with zipfile.ZipFile(zip_path) as zf:
        return np.asarray(Image.open(io.BytesIO(zf.read(name))))


def center_crop_lanczos(img: Image.Image, res: int) -> np.ndarray:
    """The fixture README's definition: square s=min(h,w) at rows (h-s)//2.., then Pillow LANCZOS."""
    a = np.asarray(img)
    h, w = a.shape[:2]
    s = min(h, w)
    a = a[(h - s) // 2:(h + s) // 2, (w - s) // 2:(w + s) // 2]
    return np.asarray(Image.fromarray(a).resize((res, res), Image.Resampling.LANCZOS))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def texture(width: int, height: int, seed: int) -> Image.Image:
    """A deterministic photo-like RGB picture (smooth gradients + detail), no two seeds alike."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        for _ in range(4):
            fx, fy = rng.uniform(0.005, 0.08, 2)
            img[..., c] += np.sin(x * fx + y * fy + rng.uniform(0, 6)) * 28
    img += rng.normal(0, 6, img.shape) + 128
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def write_jpegs(folder: Path, count: int, size: tuple[int, int] = (160, 120), start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + count):
        path = folder / f"img-{i:04d}.jpg"
        texture(*size, seed=i).save(path, quality=90)
        paths.append(path)
    return paths
