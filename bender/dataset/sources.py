"""Finding the inputs of a pack: folders, zips (plain or NVIDIA datasets) and scraper manifests.

Discovery only lists; it never decodes. Each source is expanded into `Item`s in a fixed order
(byte-wise sorted relative paths, like NVIDIA's tool), sources in the order they were given, so the
entry numbering of the output zip depends only on the inputs. Items are small picklable records:
worker processes read the bytes themselves.

Manifest format (shared with the scrapers): `manifest.jsonl`, one JSON object per line, append-only;
a later record with the same `id` supersedes an earlier one. Only the latest record per id with
`status == "kept"` and an existing `path` (relative to the manifest's folder) is packed; its licence,
creator and URL fields travel into the dataset's provenance.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from bender.dataset.rejects import CORRUPT, MISSING, NO_LABEL, Reject
from bender.errors import BenderError

# A fixed list (not Pillow's registry, which changes between versions) keeps discovery reproducible.
# HEIC is listed so that iPhone photos are reported as undecodable instead of silently skipped.
IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .apng .webp .gif .bmp .dib .tif .tiff .tga .ppm .pgm .pbm .pnm "
    ".qoi .avif .jp2 .j2k .heic .heif".split())
MANIFEST_NAME = "manifest.jsonl"
PROVENANCE_FIELDS = ("query", "provider", "provider_id", "image_url", "final_url", "landing_url", "license",
                     "license_version", "license_url", "creator", "creator_url", "title", "attribution",
                     "fetched_at")


@dataclass(frozen=True)
class Item:
    """One input image: where its bytes are, how to name it, its class and known provenance."""

    source: str  # display name: "<source folder name>/<relative path>" or "<zip name>:<member>"
    path: str  # file to read (the zip itself for zip members)
    member: str | None = None  # member name inside the zip at `path`
    class_key: str | int | None = None  # label before mapping to an integer
    meta: dict = field(default_factory=dict, compare=False)  # licence/creator/URLs from a manifest


@dataclass
class Discovery:
    items: list[Item]
    rejects: list[Reject]  # inputs refused before decoding (missing file, no label)
    skipped: list[str]  # files ignored because their extension is not an image extension
    sources: list[str]  # the source arguments, as display names


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def discover(sources: list[str | Path], labels: str = "none", label_field: str = "label") -> Discovery:
    """Expand source arguments into items. `labels` is "none", "folders" or "manifest"."""
    if labels not in ("none", "folders", "manifest"):
        raise BenderError(f"--labels {labels}: expected folders, manifest or none")
    found = Discovery(items=[], rejects=[], skipped=[], sources=[])
    if not sources:
        raise BenderError("no sources given: name one or more folders, zips or manifest.jsonl files")
    for src in sources:
        path = Path(src)
        found.sources.append(path.name or str(path))
        if not path.exists():
            raise BenderError(f"source not found: {src}")
        if path.is_dir() and (path / MANIFEST_NAME).is_file():
            _manifest(path / MANIFEST_NAME, labels, label_field, found)
        elif path.is_dir():
            if labels == "manifest":
                raise BenderError(f"--labels manifest needs a manifest, but {src} has no {MANIFEST_NAME}")
            _folder(path, labels, found)
        elif path.suffix.lower() == ".jsonl":
            _manifest(path, labels, label_field, found)
        elif path.suffix.lower() == ".zip":
            if labels == "manifest":
                raise BenderError(f"--labels manifest needs a manifest, but {src} is a zip")
            _zip(path, labels, found)
        elif is_image_name(path.name):
            if labels != "none":
                raise BenderError(f"--labels {labels}: a single file ({src}) has no class; pack a folder")
            found.items.append(Item(source=path.name, path=str(path.resolve())))
        else:
            raise BenderError(f"don't know how to read {src}: give a folder, a .zip, a manifest.jsonl "
                              "or an image file")
    _drop_unlabelled(found, labels)
    return found


def _drop_unlabelled(found: Discovery, labels: str) -> None:
    if labels == "none":
        return
    keep = []
    for item in found.items:
        if item.class_key is None:
            why = ("not inside a class folder" if labels == "folders"
                   else "the manifest record has no label field and no query")
            found.rejects.append(Reject(item.source, NO_LABEL, why))
        else:
            keep.append(item)
    found.items = keep


def _hidden(name: str) -> bool:
    # Dot-files (incl. macOS "._x.jpg" resource forks and our own temp files) and macOS zip litter.
    return name.startswith(".") or name == "__MACOSX"


def _folder(root: Path, labels: str, found: Discovery) -> None:
    rel_paths = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames:
            if _hidden(name):
                continue
            rel = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
            rel_paths.append(rel)
    label_root = root.name or str(root)
    for rel in sorted(rel_paths):
        shown = f"{label_root}/{rel}"
        if not is_image_name(rel):
            found.skipped.append(shown)
            continue
        class_key = rel.split("/", 1)[0] if labels == "folders" and "/" in rel else None
        found.items.append(Item(source=shown, path=str((root / rel).resolve()), class_key=class_key))


def _zip(path: Path, labels: str, found: Discovery) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
            dataset_json = _read_dataset_json(zf, path) if "dataset.json" in names else None
    except zipfile.BadZipFile:
        raise BenderError(f"{path} is not a readable zip file") from None
    nvidia_labels, class_names = None, None
    if dataset_json is not None and labels == "folders":
        nvidia_labels = {k.replace("\\", "/"): v for k, v in (dataset_json.get("labels") or [])}
        class_names = dataset_json.get("class_names")
    for name in sorted(names):
        parts = name.split("/")
        if any(_hidden(p) for p in parts):
            continue
        shown = f"{path.name}:{name}"
        if not is_image_name(name):
            if name != "dataset.json":
                found.skipped.append(shown)
            continue
        class_key = None
        if nvidia_labels is not None:
            class_key = _nvidia_class(nvidia_labels.get(name), class_names, path)
        elif labels == "folders" and dataset_json is None and len(parts) > 1:
            class_key = parts[0]
        found.items.append(Item(source=shown, path=str(path.resolve()), member=name, class_key=class_key))


def _read_dataset_json(zf: zipfile.ZipFile, path: Path) -> dict:
    try:
        meta = json.loads(zf.read("dataset.json"))
    except (ValueError, UnicodeDecodeError):
        raise BenderError(f"{path}: dataset.json is not valid JSON; "
                          f"run `bender dataset check {path}`") from None
    if not isinstance(meta, dict):
        raise BenderError(f"{path}: dataset.json should be an object like {{\"labels\": ...}}")
    return meta


def _nvidia_class(label, class_names, path: Path):
    """An NVIDIA zip's integer label -> class key (its class name when the zip recorded names)."""
    if label is None:
        return None
    if isinstance(label, list) or not isinstance(label, int):
        raise BenderError(f"{path}: only integer class labels can be re-packed (found {label!r})")
    if isinstance(class_names, list) and 0 <= label < len(class_names):
        return str(class_names[label])
    return label


def read_manifest(manifest: Path) -> tuple[list[dict], list[Reject]]:
    """Latest record per id, in first-seen order; unparseable lines become rejects, not errors."""
    latest: dict[str, dict] = {}
    problems: list[Reject] = []
    with open(manifest, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                problems.append(Reject(f"{manifest.name}:{n}", CORRUPT, "line is not valid JSON "
                                       "(an interrupted write?); skipped"))
                continue
            if not isinstance(record, dict) or "id" not in record:
                problems.append(Reject(f"{manifest.name}:{n}", CORRUPT, "record has no \"id\"; skipped"))
                continue
            latest[str(record["id"])] = record
    return list(latest.values()), problems


def _manifest(manifest: Path, labels: str, label_field: str, found: Discovery) -> None:
    root = manifest.parent
    records, problems = read_manifest(manifest)
    found.rejects.extend(problems)
    kept = [r for r in records if r.get("status") == "kept" and r.get("path")]
    rels = [str(r["path"]).replace("\\", "/") for r in kept]
    entries = []
    for record, rel in zip(kept, rels):
        shown = f"{root.name}/{rel}"
        file = root / rel
        if not file.is_file():
            found.rejects.append(Reject(shown, MISSING, f"listed as kept in {manifest.name} (id "
                                        f"{record['id']}) but the file is not there"))
            continue
        class_key = None
        if labels == "manifest":
            value = record.get(label_field)
            value = record.get("query") if value is None else value
            class_key = None if value is None else str(value)
        elif labels == "folders":
            # scraper sets keep files under images/; the class is the first folder below that
            below = rel[len("images/"):] if rel.startswith("images/") else rel
            class_key = below.split("/", 1)[0] if "/" in below else None
        meta = {k: record.get(k) for k in PROVENANCE_FIELDS if record.get(k) is not None}
        meta["id"] = str(record["id"])
        entries.append(Item(source=shown, path=str(file.resolve()), class_key=class_key, meta=meta))
    found.items.extend(sorted(entries, key=lambda it: it.source))
