"""`contact_sheet`: a grid of dataset images in one PNG, to eyeball a dataset before training on it."""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw

from bender.dataset.reader import ZipDataset
from bender.errors import BenderError
from bender.fileio import atomic_path


def contact_sheet(dataset: str | Path, out: str | Path, count: int = 64, columns: int | None = None,
                  thumb: int | None = None, seed: int | None = None, captions: bool = True) -> Path:
    """Write a grid of `count` images (the first ones, or a seeded random sample) to `out`."""
    if count < 1:
        raise BenderError("--count must be at least 1")
    with ZipDataset(dataset) as ds:
        if len(ds) == 0:
            raise BenderError(f"{dataset} has no images")
        indices = list(range(len(ds)))
        if seed is not None:
            indices = sorted(random.Random(seed).sample(indices, min(count, len(ds))))
        indices = indices[:count]
        thumb = thumb or min(ds.image(indices[0]).shape[1], 128)
        columns = columns or math.ceil(math.sqrt(len(indices)))
        rows = math.ceil(len(indices) / columns)
        gap = 2
        sheet = Image.new("RGB", (columns * (thumb + gap) + gap, rows * (thumb + gap) + gap), (32, 32, 32))
        draw = ImageDraw.Draw(sheet)
        for slot, index in enumerate(indices):
            pixels = ds.image(index)
            img = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).convert("RGB")
            img = img.resize((thumb, thumb), Image.Resampling.LANCZOS) if img.size != (thumb, thumb) else img
            x, y = gap + (slot % columns) * (thumb + gap), gap + (slot // columns) * (thumb + gap)
            sheet.paste(img, (x, y))
            if captions:
                label = ds.label(index)
                text = str(index) if label is None else f"{index}: {_class_name(ds, label)}"
                draw.text((x + 3, y + 2), text, fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
    out = Path(out)
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out


def _class_name(ds: ZipDataset, label) -> str:
    if isinstance(label, int) and ds.class_names and 0 <= label < len(ds.class_names):
        return str(ds.class_names[label])
    return str(label)
