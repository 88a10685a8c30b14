"""Contact sheets: a grid of thumbnails with a caption under each, to look at a cluster or a list."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

from bender.curate.sources import ImageItem, ImageSet, UnreadableImage
from bender.fileio import atomic_path
from bender.metrics.plot import font


def contact_sheet(image_set: ImageSet, items: list[ImageItem], path: str | Path, captions: list[str] | None = None,
                  thumb: int = 112, cols: int = 8, title: str = "") -> Path:
    """Write a PNG grid of `items` (unreadable ones shown as grey tiles)."""
    cols = max(1, min(cols, len(items) or 1))
    rows = max(1, math.ceil(len(items) / cols))
    cap_h, pad, head = 16, 4, 26 if title else 0
    sheet = Image.new("RGB", (cols * (thumb + pad) + pad, head + rows * (thumb + cap_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    small = font(11)
    if title:
        draw.text((pad, 6), title, fill="black", font=font(14))
    for n, item in enumerate(items):
        r, c = divmod(n, cols)
        x, y = pad + c * (thumb + pad), head + pad + r * (thumb + cap_h + pad)
        try:
            tile = Image.fromarray(image_set.read(item, thumb))
        except UnreadableImage:
            tile = Image.new("RGB", (thumb, thumb), (160, 160, 160))
        sheet.paste(tile, (x, y))
        text = captions[n] if captions else item.path.rsplit("/", 1)[-1]
        while text and draw.textlength(text, font=small) > thumb:
            text = text[:-2] + "…" if len(text) > 2 else ""
        draw.text((x, y + thumb + 2), text, fill="black", font=small)
    path = Path(path)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
