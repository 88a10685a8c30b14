"""Acting on curation/labelling decisions without ever touching a source image.

- `append_manifest`: new records appended to a SET's manifest.jsonl (the latest record per id wins,
  so a decision is undone by appending another). One `os.write` of whole lines, then fsync — the
  scrapers' crash-safety rule.
- `export_items`: copies of the chosen images into a new folder (optionally one subfolder per class
  or cluster, which `bender dataset pack --labels folders` reads as labels).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from bender.curate.sources import ImageItem, ImageSet, zip_member
from bender.errors import BenderError
from bender.fileio import atomic_path, atomic_write_bytes


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def append_manifest(manifest: Path, records: list[dict]) -> int:
    """Append records (each a full manifest record) crash-safely; returns how many were written."""
    if not records:
        return 0
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    fd = os.open(manifest, os.O_WRONLY | os.O_APPEND)
    try:
        if os.fstat(fd).st_size:
            with open(manifest, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    data = b"\n" + data  # never glue our line onto a torn one
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(records)


def updated_record(item: ImageItem, **changes) -> dict:
    """The item's latest manifest record with `changes` applied (a superseding record)."""
    record = dict(item.record or {"id": item.key, "path": item.path})
    record.update(changes)
    return record


def export_items(image_set: ImageSet, items: list[ImageItem], out_dir: Path,
                 subfolders: list[str] | None = None) -> int:
    """Copy `items` into out_dir (flat, or into the given per-item subfolders); returns the count.

    Names keep the source file name; clashes get the image key's hash appended. Existing files in
    out_dir are never overwritten.
    """
    out_dir = Path(out_dir)
    if image_set.kind != "zip" and out_dir.resolve() == image_set.root.resolve():
        raise BenderError("--export: choose a folder other than the set itself")
    out_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for n, item in enumerate(items):
        folder = out_dir / subfolders[n] if subfolders else out_dir
        folder.mkdir(parents=True, exist_ok=True)
        name = item.path.rsplit("/", 1)[-1]
        target = folder / name
        if target.exists():
            stem, dot, ext = name.rpartition(".")
            tag = hashlib.sha1(item.key.encode()).hexdigest()[:8]
            target = folder / f"{stem or ext}-{tag}{dot}{ext if stem else ''}"
            if target.exists():
                continue
        if image_set.kind == "zip":
            atomic_write_bytes(target, zip_member(image_set.root, item.path))
        else:
            with atomic_path(target) as tmp:
                shutil.copy2(image_set.root / item.path, tmp)
        count += 1
    return count
