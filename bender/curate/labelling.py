"""Applying a trained classifier to a set: predictions, then labels or a filter.

Where labels go depends on the set, always without modifying an image:
- a SET with manifest.jsonl: superseding records carrying `label` (what
  `bender dataset pack --labels manifest` reads), or status `rejected` for images a filter drops;
- a plain folder: `dataset.json` in NVIDIA's format at its root (an existing one is kept as
  dataset.json.bak-<time>), and/or an exported copy with one subfolder per class;
- a dataset zip: a new zip next to it with the same images and a new dataset.json.
"""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bender.curate.classifier import Classifier
from bender.curate.sources import ImageSet
from bender.errors import BenderError
from bender.fileio import atomic_path, atomic_write_text


@dataclass
class Prediction:
    key: str
    path: str
    label: int
    class_name: str
    confidence: float
    probabilities: list[float]


def predict_set(clf: Classifier, image_set: ImageSet, device: torch.device | str, batch: int = 32,
                progress: bool = False) -> tuple[list[Prediction], dict[str, str]]:
    """Classify every image of the set -> predictions (set order) and {key: why} for unreadable images."""
    from bender.metrics.embed import decode_batches, uint8_to_tensor

    clf = clf.to(device).eval()
    errors: dict[str, str] = {}
    out: list[Prediction] = []
    from tqdm import tqdm

    bar = tqdm(total=len(image_set.items), desc="classifying", unit="img", disable=not progress, leave=False)
    for idx, arr in decode_batches(image_set, image_set.items, clf.extractor.input_size, batch, errors):
        probs = clf.predict(uint8_to_tensor(arr, device)).cpu().numpy()
        for i, p in zip(idx, probs):
            item, k = image_set.items[i], int(np.argmax(p))
            out.append(Prediction(item.key, item.path, k, clf.class_names[k], round(float(p[k]), 4),
                                  [round(float(v), 4) for v in p]))
        bar.update(len(idx))
    bar.close()
    return out, errors


def selected(pred: Prediction, keep: list[str] | None, min_confidence: float) -> bool:
    return (keep is None or pred.class_name in keep) and pred.confidence >= min_confidence


def write_predictions(preds: list[Prediction], errors: dict[str, str], path: Path) -> Path:
    lines = [json.dumps(asdict(p)) for p in preds]
    lines += [json.dumps({"key": k, "unreadable": v}) for k, v in errors.items()]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def labels_to_manifest(image_set: ImageSet, preds: list[Prediction], classifier_name: str, label_field: str = "label",
                       keep: list[str] | None = None, min_confidence: float = 0.0) -> int:
    """Append a superseding record per image: the label, or `rejected` when a filter drops it."""
    from bender.curate.decisions import append_manifest, now_iso, updated_record

    if image_set.manifest is None:
        raise BenderError(f"{image_set.root} has no manifest.jsonl")
    items = {i.key: i for i in image_set.items}
    records = []
    for p in preds:
        change = {label_field: p.class_name, "label_confidence": p.confidence, "labelled_by": classifier_name,
                  "labelled_at": now_iso()}
        if not selected(p, keep, min_confidence):
            change.update(status="rejected", reason=f"classify: predicted {p.class_name} ({p.confidence:.2f}), "
                                                    f"not kept")
        records.append(updated_record(items[p.key], **change))
    return append_manifest(image_set.manifest, records)


def nvidia_labels(preds: list[Prediction], class_names: list[str]) -> dict:
    """dataset.json content: NVIDIA's `labels` list plus `class_names` (ignored by NVIDIA's loader)."""
    return {"labels": [[p.path, p.label] for p in sorted(preds, key=lambda p: p.path)], "class_names": class_names}


def labels_to_folder(image_set: ImageSet, preds: list[Prediction], class_names: list[str]) -> Path:
    """Write SET/dataset.json; an existing one is renamed to dataset.json.bak-<time>, never lost."""
    target = image_set.root / "dataset.json"
    if target.exists():
        target.rename(target.with_name(f"dataset.json.bak-{time.strftime('%Y%m%d-%H%M%S')}"))
    atomic_write_text(target, json.dumps(nvidia_labels(preds, class_names)) + "\n")
    return target


def labels_to_zip(image_set: ImageSet, preds: list[Prediction], class_names: list[str], out_zip: Path,
                  keep: list[str] | None = None, min_confidence: float = 0.0) -> Path:
    """A copy of the dataset zip with (only the kept images and) a new dataset.json, written last as NVIDIA does."""
    if out_zip.resolve() == image_set.root.resolve():
        raise BenderError("--out-zip must differ from the input zip (sources are never modified)")
    chosen = [p for p in preds if selected(p, keep, min_confidence)]
    if not chosen:
        raise BenderError("no image passes the filter; nothing to write")
    names = {p.path for p in chosen}
    with zipfile.ZipFile(image_set.root) as src, atomic_path(out_zip) as tmp, \
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            if info.filename in names:
                dst.writestr(info, src.read(info.filename))
        dst.writestr("dataset.json", json.dumps(nvidia_labels(chosen, class_names)))
    return out_zip
