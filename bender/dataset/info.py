"""`dataset_info`: a quick description of a dataset zip from headers only (no pixel decoding)."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from bender.dataset.reader import nvidia_image_names
from bender.errors import BenderError


@dataclass
class DatasetInfo:
    path: Path
    bytes: int
    images: int
    sizes: Counter  # (w, h) -> count
    modes: Counter  # Pillow mode -> count
    labels: str  # "none" | "integer" | "vector" | "unreadable"
    classes: dict = field(default_factory=dict)  # class name (or number) -> count
    licences: Counter = field(default_factory=Counter)  # from provenance.jsonl
    sources: int | None = None  # distinct source images in provenance.jsonl
    extra_files: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        shapes = ", ".join(f"{n} x {w}x{h}" for (w, h), n in self.sizes.most_common())
        modes = ", ".join(f"{n} x {m}" for m, n in self.modes.most_common())
        out = [f"{self.path}: {self.images} images, {self.bytes / 2**20:.1f} MiB",
               f"  size: {shapes or '-'}", f"  mode: {modes or '-'}", f"  labels: {self.labels}"]
        out += [f"    {name}: {n}" for name, n in self.classes.items()]
        if self.sources is not None:
            out.append(f"  provenance: {self.sources} source images")
            out += [f"    {lic}: {n} entries" for lic, n in self.licences.most_common()]
        else:
            out.append("  provenance: none (not packed by bender?)")
        if self.extra_files:
            out.append(f"  other files: {', '.join(self.extra_files)}")
        return out


def dataset_info(path: str | Path) -> DatasetInfo:
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise BenderError(f"cannot open dataset {path}: {e}") from None
    with zf:
        members = [i.filename for i in zf.infolist() if not i.is_dir()]
        names = nvidia_image_names(members)
        sizes: Counter = Counter()
        modes: Counter = Counter()
        for name in names:
            try:
                with Image.open(io.BytesIO(zf.read(name))) as img:  # header only: no .load()
                    sizes[img.size] += 1
                    modes[img.mode] += 1
            except Exception:  # noqa: BLE001 - unreadable images are `check`'s business
                modes["unreadable"] += 1
        info = DatasetInfo(path=path, bytes=path.stat().st_size, images=len(names), sizes=sizes,
                           modes=modes, labels="none",
                           extra_files=[m for m in members if m not in set(names) and m != "dataset.json"])
        if "dataset.json" in members:
            _labels(zf, info)
        if "provenance.jsonl" in members:
            _provenance(zf, info)
    return info


def _labels(zf: zipfile.ZipFile, info: DatasetInfo) -> None:
    try:
        meta = json.loads(zf.read("dataset.json"))
        raw = meta.get("labels")
    except (ValueError, AttributeError):
        info.labels = "unreadable"
        return
    if raw is None:
        return
    values = [v for _, v in raw]
    if values and all(isinstance(v, int) for v in values):
        info.labels = "integer"
        names = meta.get("class_names") or []
        counts = Counter(values)
        info.classes = {(names[k] if 0 <= k < len(names) else k): counts[k] for k in sorted(counts)}
    else:
        info.labels = "vector"


def _provenance(zf: zipfile.ZipFile, info: DatasetInfo) -> None:
    sources = set()
    for line in zf.read("provenance.jsonl").decode("utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        sources.add(record.get("source"))
        info.licences[record.get("license") or "unknown licence"] += 1
    info.sources = len(sources)
