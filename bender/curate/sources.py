"""Image sets for curation, labelling and metrics: a scraped SET folder, a plain folder, or a zip.

A SET folder written by the scrapers holds `manifest.jsonl` (append-only; the latest record per
`id` wins; only `kept` records whose file exists are images of the set). A plain folder is read
recursively. A zip is a StyleGAN2-ADA dataset (images + optional `dataset.json` labels).
Nothing here ever modifies or deletes a source file.
"""

from __future__ import annotations

import io
import json
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from bender.errors import BenderError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
LABEL_MODES = ("none", "folders", "manifest", "dataset")


class UnreadableImage(Exception):
    """An image file that cannot be decoded (truncated, not an image, a decompression bomb...)."""


@dataclass
class ImageItem:
    key: str  # manifest id, or the path relative to the set root, or the zip member name
    path: str  # relative to the set root (a member name for zips)
    label: str | None = None  # class name when the set is labelled
    record: dict | None = None  # latest manifest record (manifest sets only)


@dataclass
class ImageSet:
    root: Path  # the folder, or the zip file
    kind: str  # 'manifest' | 'folder' | 'zip'
    items: list[ImageItem] = field(default_factory=list)

    @property
    def manifest(self) -> Path | None:
        return self.root / "manifest.jsonl" if self.kind == "manifest" else None

    @property
    def class_names(self) -> list[str]:
        return sorted({i.label for i in self.items if i.label is not None})

    def stamp(self, item: ImageItem) -> str:
        """Changes when the image file changes (size + mtime); cached embeddings check it."""
        if self.kind == "zip":
            st = self.root.stat()
            return f"zip:{st.st_size}:{st.st_mtime_ns}"
        st = (self.root / item.path).stat()
        return f"{st.st_size}:{st.st_mtime_ns}"

    def read(self, item: ImageItem, size: int | None = None) -> np.ndarray:
        """[H, W, 3] uint8 RGB; with `size`, centre-cropped to a square and resized to size x size."""
        if self.kind == "zip":
            return load_rgb(io.BytesIO(zip_member(self.root, item.path)), size, name=item.path)
        return load_rgb(self.root / item.path, size, name=item.path)


_ZIPS = threading.local()  # one open handle per zip per thread (no shared file offsets); closed with the thread


def zip_member(path: Path, name: str) -> bytes:
    import zipfile

    handles = _ZIPS.__dict__.setdefault("handles", {})
    key = (str(path), os.getpid())
    if key not in handles:
        handles[key] = zipfile.ZipFile(path)
    return handles[key].read(name)


def load_rgb(source, size: int | None = None, name: str = "") -> np.ndarray:
    """Decode any Pillow-readable image into RGB uint8, upright (EXIF orientation applied).

    Decompression bombs, truncated and non-image files raise `UnreadableImage` with the reason.
    JPEGs are decoded at reduced scale when a small `size` is asked for (much faster, same result
    after the resize up to rounding).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                if size and im.format == "JPEG":
                    im.draft("RGB", (size, size))
                im = ImageOps.exif_transpose(im)
                im = to_rgb(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise UnreadableImage(f"{name}: {type(e).__name__}: {str(e)[:120]}") from None
    if size:
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        if s != size:
            im = im.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
    return np.asarray(im, dtype=np.uint8)


def to_rgb(im: Image.Image) -> Image.Image:
    if im.mode.startswith("I;16") or im.mode == "I":  # 16-bit grey: keep the top 8 bits
        arr = np.asarray(im).astype(np.uint32)
        top = 65535 if im.mode.startswith("I;16") or arr.max() > 255 else 255
        return Image.fromarray((arr * 255 // max(top, 1)).astype(np.uint8), "L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return im.convert("RGB")


def read_manifest(path: Path) -> dict[str, dict]:
    """Latest record per id, in first-seen order; a torn last line (crash while appending) is ignored."""
    latest: dict[str, dict] = {}
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if n >= len(lines) - 2:
                continue
            raise BenderError(f"{path}: line {n + 1} is not JSON; fix or remove it") from None
        if isinstance(record, dict) and "id" in record:
            latest[str(record["id"])] = record
    return latest


def open_image_set(path: str | os.PathLike, labels: str = "none", label_field: str = "label") -> ImageSet:
    """Open a SET folder (with manifest.jsonl), a plain image folder, or a dataset zip."""
    root = Path(path)
    if labels not in LABEL_MODES:
        raise BenderError(f"--labels {labels}: expected one of {', '.join(LABEL_MODES)}")
    if not root.exists():
        raise BenderError(f"{root}: no such folder or file")
    if root.is_file():
        return _zip_set(root, labels)
    if (root / "manifest.jsonl").is_file():
        image_set = ImageSet(root, "manifest")
        for key, rec in read_manifest(root / "manifest.jsonl").items():
            rel = rec.get("path")
            if rec.get("status") != "kept" or not rel or not (root / rel).is_file():
                continue
            image_set.items.append(ImageItem(key, str(rel), record=rec))
    else:
        image_set = ImageSet(root, "folder")
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(root)
            if p.suffix.lower() in IMAGE_EXTS and p.is_file() and not any(s.startswith(".") for s in rel.parts):
                if rel.parts[0] in ("curation", "classify") and len(rel.parts) > 1:
                    continue  # bender's own reports inside the set
                image_set.items.append(ImageItem(rel.as_posix(), rel.as_posix()))
    if not image_set.items:
        raise BenderError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_EXTS))}"
                          f"{' with status kept in manifest.jsonl' if image_set.kind == 'manifest' else ''})")
    _assign_labels(image_set, labels, label_field)
    return image_set


def _assign_labels(image_set: ImageSet, labels: str, label_field: str) -> None:
    if labels == "none":
        return
    if labels == "folders":
        loose = [i.path for i in image_set.items if "/" not in i.path]
        if loose:
            raise BenderError(f"--labels folders: {loose[0]} is not inside a class folder "
                              f"({len(loose)} such images); put each class in its own subfolder")
        for item in image_set.items:
            item.label = item.path.split("/")[0]
    elif labels == "manifest":
        if image_set.kind != "manifest":
            raise BenderError(f"--labels manifest: {image_set.root} has no manifest.jsonl")
        for item in image_set.items:
            value = item.record.get(label_field)
            if value is None and label_field == "label":
                value = item.record.get("query")
            item.label = None if value is None else str(value)
        missing = [i.key for i in image_set.items if i.label is None]
        if missing:
            raise BenderError(f"--labels manifest: {len(missing)} records have no '{label_field}' (e.g. {missing[0]})")
    elif labels == "dataset":
        meta_path = image_set.root / "dataset.json"
        if not meta_path.is_file():
            raise BenderError(f"--labels dataset: {meta_path} not found")
        _labels_from_dataset_json(image_set, json.loads(meta_path.read_text(encoding="utf-8")))
    if len(image_set.class_names) < 2:
        raise BenderError(f"--labels {labels}: found {len(image_set.class_names)} class(es); need at least 2")


def _labels_from_dataset_json(image_set: ImageSet, meta: dict) -> None:
    raw = meta.get("labels")
    if not raw:
        raise BenderError(f"{image_set.root}: dataset.json has no labels")
    names = meta.get("class_names")
    by_path = {str(k).replace("\\", "/"): v for k, v in raw}
    for item in image_set.items:
        if item.path not in by_path:
            raise BenderError(f"{image_set.root}: dataset.json has no label for {item.path}")
        v = by_path[item.path]
        item.label = str(names[v]) if names and isinstance(v, int) and 0 <= v < len(names) else f"{v}"


def _zip_set(path: Path, labels: str) -> ImageSet:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
            meta = json.loads(zf.read("dataset.json")) if "dataset.json" in names else {}
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        raise BenderError(f"{path}: not a readable dataset zip ({e})") from None
    image_set = ImageSet(path, "zip", [ImageItem(n, n) for n in sorted(names)
                                       if os.path.splitext(n)[1].lower() in IMAGE_EXTS])
    if not image_set.items:
        raise BenderError(f"{path}: the zip holds no images")
    if labels == "dataset":
        _labels_from_dataset_json(image_set, meta)
        if len(image_set.class_names) < 2:
            raise BenderError(f"{path}: dataset.json labels name fewer than 2 classes")
    elif labels != "none":
        raise BenderError(f"--labels {labels}: a zip carries its labels in dataset.json; use --labels dataset")
    return image_set
