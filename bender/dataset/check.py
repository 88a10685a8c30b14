"""`check_dataset`: will NVIDIA's `ImageFolderDataset` + training loop accept this zip?

Checks every image, not only the first (NVIDIA's loader infers the shape from image 0 and fails
much later, mid-training, on an odd one out), and collects every problem before reporting, so one
run tells the artist everything to fix. Problems make the dataset unusable; warnings do not.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from bender.dataset.reader import nvidia_image_names

_EXAMPLES = 3


@dataclass
class CheckReport:
    path: Path
    images: int = 0
    resolution: int | None = None
    channels: int | None = None
    sizes: Counter = field(default_factory=Counter)  # (w, h) -> count
    modes: Counter = field(default_factory=Counter)  # Pillow mode -> count
    labels: str = "none"  # "none" | "integer" | "vector" | "broken"
    classes: dict[int, int] = field(default_factory=dict)  # label -> count (integer labels)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if not self.ok:
            return f"{self.path}: {len(self.problems)} problem(s); NVIDIA's training would not accept it"
        mode = {1: "grey", 3: "RGB"}.get(self.channels, f"{self.channels}-channel")
        labels = "unlabelled" if self.labels == "none" else f"{self.labels} labels"
        if self.classes:
            labels += f", {len(self.classes)} classes"
        return (f"{self.path}: OK, {self.images} images, {self.resolution}x{self.resolution} {mode}, "
                f"{labels}")


def _examples(names: list[str]) -> str:
    shown = ", ".join(names[:_EXAMPLES])
    return shown + (f" and {len(names) - _EXAMPLES} more" if len(names) > _EXAMPLES else "")


def check_dataset(path: str | Path) -> CheckReport:
    report = CheckReport(path=Path(path))
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        report.problems.append("file not found")
        return report
    except (OSError, zipfile.BadZipFile) as e:
        report.problems.append(f"not a readable zip file ({e})")
        return report
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        counts = Counter(i.filename for i in infos)
        repeated = sorted(n for n, c in counts.items() if c > 1)
        if repeated:
            report.problems.append(f"{len(repeated)} member names appear more than once: "
                                   f"{_examples(repeated)}")
        names = nvidia_image_names(list(counts))
        report.images = len(names)
        if not names:
            report.problems.append("no images: NVIDIA's loader needs at least one .png/.jpg member")
        compressed = [i.filename for i in infos if i.filename in set(names) and i.compress_type != 0]
        if compressed:
            report.warnings.append(f"{len(compressed)} images are zip-compressed (NVIDIA writes them "
                                   "stored); readable but slower")
        _check_images(zf, names, report)
        _check_labels(zf, names, counts, report)
    return report


def _check_images(zf: zipfile.ZipFile, names: list[str], report: CheckReport) -> None:
    broken: list[str] = []
    by_size: dict[tuple[int, int], list[str]] = {}
    by_mode: dict[str, list[str]] = {}
    for name in names:
        try:
            with Image.open(io.BytesIO(zf.read(name))) as img:
                img.load()
                size, mode = img.size, img.mode
        except Exception as e:  # noqa: BLE001 - any failure means NVIDIA's loader would crash here
            broken.append(f"{name} ({type(e).__name__})")
            continue
        by_size.setdefault(size, []).append(name)
        by_mode.setdefault(mode, []).append(name)
    report.sizes = Counter({s: len(v) for s, v in by_size.items()})
    report.modes = Counter({m: len(v) for m, v in by_mode.items()})
    if broken:
        report.problems.append(f"{len(broken)} images cannot be decoded: {_examples(broken)}")
    if len(by_size) > 1:
        common = max(by_size, key=lambda s: len(by_size[s]))
        odd = [n for s, v in by_size.items() if s != common for n in v]
        report.problems.append(f"images differ in size: {len(by_size[common])} are {common[0]}x{common[1]}, "
                               f"{len(odd)} are not ({_examples(odd)}); every image must be the same size")
    if by_size:
        w, h = max(by_size, key=lambda s: len(by_size[s]))
        if w != h:
            report.problems.append(f"images are {w}x{h}; StyleGAN2 needs square images")
        elif w < 4 or w & (w - 1):
            report.problems.append(f"images are {w}x{h}; the resolution must be a power of two (>= 4)")
        else:
            report.resolution = w
    channels = {"L": 1, "RGB": 3}
    bad_modes = {m: v for m, v in by_mode.items() if m not in channels}
    for mode, members in sorted(bad_modes.items()):
        why = {"P": "palette images would be read as raw palette indices",
               "RGBA": "4 channels (alpha) do not fit a 1- or 3-channel generator",
               "I;16": "16-bit pixels do not fit NVIDIA's uint8 pipeline"}.get(mode, "not 8-bit grey or RGB")
        report.problems.append(f"{len(members)} images are mode {mode}: {why} ({_examples(members)})")
    good = {m: v for m, v in by_mode.items() if m in channels}
    if len(good) > 1:
        report.problems.append("images mix grey and RGB: " + ", ".join(
            f"{len(v)} {m} ({_examples(v)})" for m, v in sorted(good.items())) + "; every image needs the "
            "same number of channels")
    elif len(good) == 1 and not bad_modes:
        report.channels = channels[next(iter(good))]


def _check_labels(zf: zipfile.ZipFile, names: list[str], counts: Counter, report: CheckReport) -> None:
    if "dataset.json" not in counts:
        return  # NVIDIA's loader: no dataset.json means unlabelled
    try:
        meta = json.loads(zf.read("dataset.json"))
    except (ValueError, UnicodeDecodeError) as e:
        report.labels = "broken"
        report.problems.append(f"dataset.json is not valid JSON ({e})")
        return
    if not isinstance(meta, dict) or "labels" not in meta:
        report.labels = "broken"
        report.problems.append('dataset.json must be an object with a "labels" key (null when unlabelled)')
        return
    raw = meta["labels"]
    if raw is None:
        return
    if not isinstance(raw, list) or not all(isinstance(p, list) and len(p) == 2 for p in raw):
        report.labels = "broken"
        report.problems.append('dataset.json "labels" must be null or a list of [entry name, label] pairs')
        return
    by_name: dict[str, object] = {}
    for name, value in raw:
        by_name[str(name).replace("\\", "/")] = value
    missing = [n for n in names if n not in by_name]
    if missing:
        report.problems.append(f"{len(missing)} of {len(names)} images have no label in dataset.json "
                               f"({_examples(missing)}); NVIDIA's loader fails with KeyError")
    unknown = sorted(set(by_name) - set(names))
    if unknown:
        report.warnings.append(f"dataset.json labels {len(unknown)} names that are not images in the zip "
                               f"({_examples(unknown)})")
    values = [by_name[n] for n in names if n in by_name]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        negative = [n for n in names if n in by_name and by_name[n] < 0]
        if negative:
            report.labels = "broken"
            report.problems.append(f"{len(negative)} labels are negative ({_examples(negative)}); "
                                   "class labels are 0, 1, 2, ...")
            return
        report.labels = "integer"
        report.classes = dict(sorted(Counter(values).items()))
        names_list = meta.get("class_names")
        if isinstance(names_list, list) and values and max(values) >= len(names_list):
            report.warnings.append(f"class_names lists {len(names_list)} names but labels go up to "
                                   f"{max(values)}")
    elif all(isinstance(v, list) and all(isinstance(x, (int, float)) for x in v) for v in values):
        lengths = {len(v) for v in values}
        if len(lengths) > 1:
            report.labels = "broken"
            report.problems.append(f"vector labels have different lengths {sorted(lengths)}")
            return
        report.labels = "vector"
    else:
        report.labels = "broken"
        report.problems.append("labels mix types: use integers (classes) or equal-length number lists")
