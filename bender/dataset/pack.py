"""`pack_dataset`: any image sources -> one StyleGAN2-ADA zip, in parallel, atomically.

The parent process discovers inputs, farms the per-image work out to a process pool (see
`worker.py`), and consumes results strictly in input order: dedup decisions, entry numbering and
zip writing therefore never depend on timing, and the output is byte-identical for any `jobs`.
The zip is written under a temporary name (locked while in use) and renamed only when complete;
temp files left by a killed run are removed by the next run.
"""

from __future__ import annotations

import contextlib
import glob
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bender.dataset.decode import DEFAULT_MAX_PIXELS, DecodeOptions
from bender.dataset.dedup import DEDUP_MODES, DEFAULT_THRESHOLD, DedupIndex, Duplicate
from bender.dataset.parallel import available_cores, ordered_map
from bender.dataset.provenance import attribution_markdown, provenance_line
from bender.dataset.report import KeptEntry, PackReport
from bender.dataset.sources import discover
from bender.dataset.transforms import FILTERS, TRANSFORMS, TransformSpec
from bender.dataset.worker import WorkerConfig
from bender.dataset.writer import DatasetZipWriter
from bender.errors import BenderError
from bender.fileio import atomic_path, atomic_write_text


@dataclass
class PackOptions:
    resolution: int = 256
    transform: str = "center-crop"  # center-crop | center-crop-wide | pad | tiles
    resize_filter: str = "lanczos"  # lanczos | box
    channels: int = 3  # 3 = RGB, 1 = grey
    labels: str = "none"  # none | folders | manifest
    label_field: str = "label"  # manifest field for --labels manifest (falls back to "query")
    tiles_per_image: int = 8
    tile_layout: str = "random"  # random | grid
    tile_scale: float = 1.0
    wide_height: int | None = None  # center-crop-wide picture height; None = 3/4 of resolution
    min_size: int | None = None  # smallest usable crop side; None = resolution // 4
    pad_color: tuple[int, int, int] = (0, 0, 0)
    background: tuple[int, int, int] = (255, 255, 255)  # under transparent pixels
    exif_orientation: bool = True
    fast: bool = False  # JPEG draft decoding: faster, not pixel-exact (>= 40 dB PSNR)
    dedup: bool = False
    dedup_mode: str = "near"  # exact | near
    dedup_threshold: int = DEFAULT_THRESHOLD
    mirror_check: bool = False  # mirrored copies count as duplicates (implies dedup)
    max_images: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    seed: int = 0  # random tile positions
    jobs: int | None = None  # worker processes; None = every available core
    report: Path | None = None  # report path; None = <out stem>.report.json beside the zip
    extra_json: dict = field(default_factory=dict)  # extra keys for dataset.json (ignored by NVIDIA)

    def validate(self) -> None:
        r = self.resolution
        if r < 4 or r & (r - 1):
            raise BenderError(f"--resolution {r}: StyleGAN2 needs a power of two from 4 up "
                              "(64, 128, 256, ...)")
        if self.transform not in TRANSFORMS:
            raise BenderError(f"--transform {self.transform}: expected one of {', '.join(TRANSFORMS)}")
        if self.resize_filter not in FILTERS:
            raise BenderError(f"--resize-filter {self.resize_filter}: expected one of {', '.join(FILTERS)}")
        if self.channels not in (1, 3):
            raise BenderError(f"--channels {self.channels}: expected 3 (RGB) or 1 (grey)")
        if self.tile_layout not in ("random", "grid"):
            raise BenderError(f"--tile-layout {self.tile_layout}: expected random or grid")
        if self.transform == "tiles" and self.tiles_per_image < (1 if self.tile_layout == "random" else 0):
            raise BenderError("--tiles-per-image must be at least 1 (0 means 'every cell' only with grid)")
        if self.tile_scale <= 0:
            raise BenderError("--tile-scale must be positive")
        if self.wide_height is not None and not 1 <= self.wide_height <= r:
            raise BenderError(f"--wide-height must be between 1 and the resolution ({r})")
        if self.dedup_mode not in DEDUP_MODES:
            raise BenderError(f"--dedup-mode {self.dedup_mode}: expected exact or near")
        if not 0 <= self.dedup_threshold <= 64:
            raise BenderError("--dedup-threshold is a Hamming distance between 0 and 64")
        if self.max_images is not None and self.max_images < 1:
            raise BenderError("--max-images must be at least 1")
        if self.jobs is not None and self.jobs < 1:
            raise BenderError("--jobs must be at least 1")
        if self.max_pixels < 1:
            raise BenderError("--max-pixels must be positive")

    def worker_config(self) -> WorkerConfig:
        spec = TransformSpec(
            kind=self.transform, resolution=self.resolution, resize_filter=self.resize_filter,
            min_size=self.resolution // 4 if self.min_size is None else self.min_size,
            pad_color=tuple(self.pad_color),
            wide_height=self.resolution * 3 // 4 if self.wide_height is None else self.wide_height,
            tiles_per_image=self.tiles_per_image, tile_layout=self.tile_layout,
            tile_scale=self.tile_scale, seed=self.seed, fast=self.fast)
        decode = DecodeOptions(channels=self.channels, exif_orientation=self.exif_orientation,
                               background=tuple(self.background), max_pixels=self.max_pixels)
        dedup = self.dedup or self.mirror_check
        return WorkerConfig(decode=decode, transform=spec, dedup_mode=self.dedup_mode if dedup else None,
                            mirror=self.mirror_check)


def default_report_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.report.json")


def pack_dataset(sources: list[Path | str], out: Path | str, options: PackOptions | None = None,
                 progress: bool = True) -> PackReport:
    """Pack `sources` into the NVIDIA zip `out`; return what was kept, rejected and dropped.

    Raises BenderError (and leaves no zip) when the options are invalid or nothing usable is found;
    individual bad inputs never raise, they are listed in the report.
    """
    options = options or PackOptions()
    options.validate()
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise BenderError(f"--out {out}: the dataset must be a .zip file (NVIDIA's loader reads zips)")
    for src in sources:
        if Path(src).exists() and Path(src).resolve() == out.resolve():
            raise BenderError(f"--out {out} is also a source; write the new dataset to another file")
    started = time.monotonic()
    found = discover(sources, options.labels, options.label_field)
    if not found.items and not found.rejects:
        raise BenderError(f"no images found in {', '.join(map(str, sources))} "
                          "(looked for .jpg, .png, .webp, .gif, .bmp, .tif, ...)")
    report = PackReport(out=out, report_path=options.report or default_report_path(out),
                        resolution=options.resolution, channels=options.channels,
                        inputs=len(found.items) + len(found.rejects), rejects=list(found.rejects),
                        skipped=found.skipped)
    config = options.worker_config()
    index = DedupIndex(options.dedup_mode, options.dedup_threshold) if config.dedup_mode else None
    jobs = options.jobs or available_cores()
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    try:
        with _locked_temp(out) as handle:
            writer = DatasetZipWriter(handle)
            try:
                records, class_keys = _write_images(found.items, config, jobs, index, writer, report,
                                                    options.max_images, progress)
            except BaseException:
                writer.close()
                raise
            if not report.kept:
                writer.close()
                raise _NothingKept()
            labels, class_names = _labels(report, class_keys, options.labels)
            report.class_names = class_names
            for record, kept in zip(records, report.kept):
                record["label"] = kept.label
            extra = dict(options.extra_json)
            if class_names is not None:
                extra["class_names"] = class_names
            side_files = {
                "provenance.jsonl": "".join(provenance_line(r) + "\n" for r in records).encode(),
                "ATTRIBUTION.md": attribution_markdown(records).encode(),
            }
            writer.finish(labels, side_files, extra)
    except _NothingKept:
        report.elapsed_s = time.monotonic() - started
        atomic_write_text(report.report_path, report.to_text())
        raise BenderError(f"no usable images: all {report.inputs} inputs were rejected or duplicates "
                          f"({_reasons(report)}); nothing written, see {report.report_path}") from None
    report.elapsed_s = time.monotonic() - started
    atomic_write_text(report.report_path, report.to_text())
    return report


class _NothingKept(Exception):
    pass


def _reasons(report: PackReport) -> str:
    parts = [f"{reason} {n}" for reason, n in report.rejected_by_reason().items()]
    if report.duplicates:
        parts.append(f"duplicate {len(report.duplicates)}")
    return ", ".join(parts) or "none"


def _write_images(items, config: WorkerConfig, jobs: int, index: DedupIndex | None,
                  writer: DatasetZipWriter, report: PackReport, max_images: int | None,
                  progress: bool) -> tuple[list[dict], list]:
    """Consume worker results in input order; return provenance records and class keys per entry."""
    records: list[dict] = []
    class_keys: list = []
    bar = _progress_bar(len(items), progress)
    results = ordered_map(items, config, jobs)
    try:
        for result in results:
            bar.update(1)
            if result.reject is not None:
                report.rejects.append(result.reject)
                continue
            item = result.item
            if index is not None:
                match = index.match(result.fingerprint)
                if match is not None:
                    kept, kind, distance = match
                    report.duplicates.append(Duplicate(item.source, kept, kind, distance))
                    continue
                index.add(result.fingerprint, item.source)
            for png, transform in result.outputs:
                name = writer.add_image(png)
                report.kept.append(KeptEntry(name, item.source, result.sha256, None, transform))
                class_keys.append(item.class_key)
                record = {"entry": name, "source": item.source, "sha256": result.sha256,
                          "source_size": list(result.source_size), "source_mode": result.source_mode,
                          "transform": transform, "class": item.class_key}
                record.update(item.meta)
                records.append(record)
                if max_images is not None and writer.count >= max_images:
                    report.stopped_at_max = True
                    return records, class_keys
    finally:
        results.close()  # terminates the pool when we stop early or fail
        bar.close()
    return records, class_keys


def _labels(report: PackReport, class_keys: list, mode: str) -> tuple[list | None, list[str] | None]:
    """Map class keys to integers: integer keys (from NVIDIA zips) stay, names go by sorted order."""
    if mode == "none":
        return None, None
    if all(isinstance(k, int) for k in class_keys):
        mapping, names = {k: k for k in set(class_keys)}, None
    else:
        names = sorted({str(k) for k in class_keys})
        mapping = {k: names.index(str(k)) for k in set(class_keys)}
    labels = []
    for i, (kept, key) in enumerate(zip(report.kept, class_keys)):
        report.kept[i] = KeptEntry(kept.name, kept.source, kept.sha256, mapping[key], kept.transform)
        labels.append([kept.name, mapping[key]])
    return labels, names


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="img", desc="packing", leave=False, dynamic_ncols=True)


# --- temp files of interrupted runs -------------------------------------------------------------

@contextlib.contextmanager
def _locked_temp(out: Path) -> Iterator[BinaryIO]:
    """An open, locked temp file that becomes `out` when the block succeeds.

    The lock is held until after the rename (POSIX allows renaming an open file), so another run
    can never take our finished-but-not-yet-renamed file for a stale one.
    """
    handle = None
    try:
        with atomic_path(out) as tmp:
            handle = open(tmp, "r+b")
            _lock(handle)
            yield handle
            handle.flush()
            if os.name != "posix":  # Windows cannot rename an open file
                handle.close()
    finally:
        if handle is not None:
            handle.close()


def _lock(handle) -> None:
    """Hold an exclusive lock on our temp file so that no other run mistakes it for a stale one."""
    with contextlib.suppress(ImportError, OSError):
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def remove_stale_temps(out: Path) -> list[Path]:
    """Delete temp files that a killed pack to `out` left behind (unlocked = its writer is gone)."""
    removed = []
    pattern = os.path.join(glob.escape(str(out.parent)), f".{glob.escape(out.name)}.*.tmp{out.suffix}")
    for name in glob.glob(pattern):
        path = Path(name)
        try:
            with open(path, "rb") as f:
                import fcntl

                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while a live run holds it
                path.unlink()
                removed.append(path)
        except (OSError, ImportError):
            continue
    return removed
