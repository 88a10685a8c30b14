"""Geometric transforms: one decoded picture -> one or more square training images.

- `center-crop`: the largest centred square, resized. Crop arithmetic matches NVIDIA's tool
  exactly (side s = min(w, h), rows (h-s)//2 .. (h+s)//2), so outputs are pixel-identical to its
  archives.
- `center-crop-wide`: the largest centred crop with aspect resolution:wide_height, resized to that
  rectangle and letterboxed on a square canvas (NVIDIA's layout for wide subjects such as cars).
  Unlike NVIDIA's tool, small images are not silently dropped: they follow `min_size` like others.
- `pad`: the whole picture, scaled to fit, centred on a square canvas of `pad_color`.
- `tiles`: N crops of resolution x resolution source pixels (after an optional `tile_scale`), so a
  texture keeps its real scale; positions are a grid or pseudo-random with a seed derived from
  (seed, source sha256, tile index), which keeps parallel runs deterministic.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from PIL import Image

from bender.dataset.rejects import TOO_SMALL, Rejected

TRANSFORMS = ("center-crop", "center-crop-wide", "pad", "tiles")
FILTERS = {"lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX}


@dataclass(frozen=True)
class TransformSpec:
    kind: str = "center-crop"
    resolution: int = 256
    resize_filter: str = "lanczos"
    min_size: int = 64  # refuse upscaling beyond resolution/min_size (the "too small" rejection)
    pad_color: tuple[int, int, int] = (0, 0, 0)
    wide_height: int = 192  # height of the letterboxed picture for center-crop-wide
    tiles_per_image: int = 8  # tiles: how many per source (0 with grid layout = every grid cell)
    tile_layout: str = "random"  # "random" | "grid"
    tile_scale: float = 1.0  # tiles: resize the source by this factor before cutting tiles
    seed: int = 0
    fast: bool = False  # allow JPEG DCT-domain downscaling (not pixel-exact)


# --fast decodes JPEGs at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) only while the decoded
# crop stays this much larger than the output: the final LANCZOS pass then still does real
# filtering, which keeps the result within ~40+ dB of the full decode (see tests/benchmarks).
DRAFT_MARGIN = 1.15


def draft_request(spec: TransformSpec):
    """For --fast: the smallest decode size that still covers the output (None = decode fully)."""
    if not spec.fast or spec.kind == "tiles":
        return None
    res = spec.resolution

    def want(size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        if spec.kind == "center-crop":
            scale = res / min(w, h)
        elif spec.kind == "pad":
            scale = res / max(w, h)
        else:
            scale = res / _wide_crop(w, h, res, spec.wide_height)[2]
        scale = min(1.0, scale * DRAFT_MARGIN)
        return max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))

    return want


def apply_transform(img: Image.Image, full_size: tuple[int, int], spec: TransformSpec,
                    source_sha256: str) -> list[tuple[Image.Image, dict]]:
    """Return [(square image, record of what was done)]; raise Rejected when the source is too small.

    `full_size` is the source's real size; `img` may be smaller when a JPEG draft decoded less.
    """
    _check_size(full_size, spec)
    if spec.kind == "center-crop":
        return [_center_crop(img, full_size, spec)]
    if spec.kind == "center-crop-wide":
        return [_center_crop_wide(img, full_size, spec)]
    if spec.kind == "pad":
        return [_pad(img, full_size, spec)]
    if spec.kind == "tiles":
        return _tiles(img, spec, source_sha256)
    raise ValueError(f"unknown transform {spec.kind!r}")


def _check_size(size: tuple[int, int], spec: TransformSpec) -> None:
    w, h = size
    if spec.kind == "tiles":
        side = min(w, h) * spec.tile_scale
        if side < spec.resolution:
            raise Rejected(TOO_SMALL, f"{w}x{h} (x{spec.tile_scale:g}) has no room for a "
                                      f"{spec.resolution}x{spec.resolution} tile")
        return
    if spec.kind == "center-crop":
        side, what = min(w, h), "shorter side"
    elif spec.kind == "pad":
        side, what = max(w, h), "longer side"
    else:
        side, what = _wide_crop(w, h, spec.resolution, spec.wide_height)[2], "crop width"
    if side < spec.min_size:
        raise Rejected(TOO_SMALL, f"{w}x{h}: {what} {side} px < --min-size {spec.min_size} px")


def _resize(img: Image.Image, size: tuple[int, int], spec: TransformSpec) -> Image.Image:
    if img.size == size:
        return img
    return img.resize(size, FILTERS[spec.resize_filter])


def _crop_resize(img: Image.Image, full_size: tuple[int, int], box: tuple[int, int, int, int],
                 size: tuple[int, int], spec: TransformSpec) -> Image.Image:
    """Crop `box` (full-resolution coordinates) and resize it to `size`.

    At full resolution this is crop-then-resize, pixel-identical to NVIDIA's tool. When a JPEG
    draft decoded a 1/k-scale image, the box is mapped into its coordinates with sub-pixel
    precision and handed to `resize(box=...)`, so the picture is not shifted by rounding.
    """
    if img.size == full_size:
        return _resize(img.crop(box), size, spec)
    k = _draft_factor(full_size, img.size)
    return img.resize(size, FILTERS[spec.resize_filter], box=tuple(v / k for v in box))


def _draft_factor(full_size: tuple[int, int], decoded: tuple[int, int]) -> int:
    # libjpeg scales by 1/k with k in 1, 2, 4, 8, rounding sizes up
    for k in (1, 2, 4, 8):
        if all(-(-f // k) == d for f, d in zip(full_size, decoded)):
            return k
    raise ValueError(f"decoded size {decoded} is not a 1/k draft of {full_size}")


Size = tuple[int, int]
Output = tuple[Image.Image, dict]


def _center_crop(img: Image.Image, full_size: Size, spec: TransformSpec) -> Output:
    w, h = full_size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2)
    out = _crop_resize(img, full_size, box, (spec.resolution, spec.resolution), spec)
    return out, _record(spec, img, box)


def _wide_crop(w: int, h: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Largest centred crop of aspect width:height -> (left, top, crop width, crop height)."""
    if w * height >= h * width:  # source is wider than the target: cut the sides
        cw, ch = max(1, round(h * width / height)), h
    else:  # source is taller: cut top and bottom
        cw, ch = w, max(1, round(w * height / width))
    return (w - cw) // 2, (h - ch) // 2, cw, ch


def _center_crop_wide(img: Image.Image, full_size: Size, spec: TransformSpec) -> Output:
    res, wh = spec.resolution, spec.wide_height
    left, top, cw, ch = _wide_crop(*full_size, res, wh)
    box = (left, top, left + cw, top + ch)
    picture = _crop_resize(img, full_size, box, (res, wh), spec)
    canvas = Image.new(img.mode, (res, res), _fill(spec.pad_color, img.mode))
    canvas.paste(picture, (0, (res - wh) // 2))
    return canvas, _record(spec, img, box)


def _pad(img: Image.Image, full_size: Size, spec: TransformSpec) -> Output:
    # Scale first, then pad: the filter never blends picture pixels with the pad colour.
    res = spec.resolution
    w, h = full_size
    m = max(w, h)
    size = (max(1, round(w * res / m)), max(1, round(h * res / m)))
    picture = _crop_resize(img, full_size, (0, 0, w, h), size, spec)
    canvas = Image.new(img.mode, (res, res), _fill(spec.pad_color, img.mode))
    canvas.paste(picture, ((res - size[0]) // 2, (res - size[1]) // 2))
    return canvas, _record(spec, img, (0, 0, w, h))


def _tiles(img: Image.Image, spec: TransformSpec, source_sha256: str) -> list[tuple[Image.Image, dict]]:
    res = spec.resolution
    if spec.tile_scale != 1.0:
        w, h = img.size
        img = _resize(img, (max(1, round(w * spec.tile_scale)), max(1, round(h * spec.tile_scale))), spec)
    w, h = img.size
    if spec.tile_layout == "grid":
        corners = _grid_corners(w, h, res, spec.tiles_per_image)
    else:
        corners = [_random_corner(w, h, res, spec.seed, source_sha256, i)
                   for i in range(spec.tiles_per_image)]
    out = []
    for i, (x, y) in enumerate(corners):
        box = (x, y, x + res, y + res)
        record = _record(spec, img, box)
        record["tile"] = i
        out.append((img.crop(box), record))
    return out


def _grid_corners(w: int, h: int, res: int, count: int) -> list[tuple[int, int]]:
    cols, rows = w // res, h // res
    x0, y0 = (w - cols * res) // 2, (h - rows * res) // 2
    cells = [(x0 + c * res, y0 + r * res) for r in range(rows) for c in range(cols)]
    if count <= 0 or count >= len(cells):
        return cells
    return [cells[i * len(cells) // count] for i in range(count)]  # evenly spread over the grid


def _random_corner(w: int, h: int, res: int, seed: int, sha: str, index: int) -> tuple[int, int]:
    # A hash, not a RNG object: identical on every platform, worker and Python version.
    digest = hashlib.sha256(f"{seed}:{sha}:{index}".encode()).digest()
    x = int.from_bytes(digest[:8], "big") % (w - res + 1)
    y = int.from_bytes(digest[8:16], "big") % (h - res + 1)
    return x, y


def _fill(color: tuple[int, int, int], mode: str):
    if mode == "L":  # ITU-R 601-2 luma, as Pillow's own RGB -> L conversion
        r, g, b = color
        return (r * 299 + g * 587 + b * 114) // 1000
    return tuple(color)


def _record(spec: TransformSpec, img: Image.Image, box: tuple[int, int, int, int]) -> dict:
    record = {"kind": spec.kind, "resolution": spec.resolution, "filter": spec.resize_filter,
              "box": list(box)}
    if spec.fast:
        record["fast"] = True
        record["decoded_size"] = list(img.size)
    return record
