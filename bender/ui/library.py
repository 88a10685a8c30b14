"""The model picker's catalogue: which models the UI may load, and a small cache of loaded ones.

Sources, in picker order: the embedded default model (when this installation has it), the files
and run folders named on the command line, the models folder (rescanned on every refresh: model
files and run folders one level down), and uploads. Every load goes through `bender.io.load`, the
safe loader (nothing in a pickle is executed), and uploads are size-limited before they are read.

The browser only ever sends back an opaque key that must name a catalogue entry, so a visitor can
never make the server open a path of their choosing.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bender.errors import BenderError
from bender.io import Model, default_model_path, load
from bender.io.runs import SNAPSHOT_RE, list_snapshots

MODEL_SUFFIXES = (".pkl", ".safetensors")
DEFAULT_KEY = "default"


@dataclass(frozen=True)
class ModelEntry:
    """One pickable model. `kind`: default | file | snapshot | upload."""

    key: str
    label: str
    kind: str
    path: Path
    run: Path | None = None
    kimg: float | None = None


@dataclass(frozen=True)
class RunEntry:
    key: str
    label: str
    path: Path


def _key(prefix: str, path: Path) -> str:
    return f"{prefix}-{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"


def is_run(path: Path) -> bool:
    return path.is_dir() and bool(list_snapshots(path))


def _kimg(snapshot: Path) -> float:
    return float(SNAPSHOT_RE.search(snapshot.name).group(1))


@dataclass
class LoadedModel:
    """A model ready to render with: `G` is its G_ema in eval mode on the UI's device.

    `derived` caches things computed from the weights (SeFa/PCA directions, ...) for as long as the
    model stays loaded.
    """

    entry: ModelEntry
    model: Model
    G: torch.nn.Module
    derived: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def resolution(self) -> int:
        return int(self.G.img_resolution)

    @property
    def sha256(self) -> str:
        return self.model.lineage.source_sha256

    def metadata(self) -> dict[str, str]:
        """What every PNG rendered from this model records about it."""
        return {"model": self.entry.label, "model_sha256": self.sha256}

    def describe_markdown(self) -> str:
        """Resolution, conditioning and lineage, for the picker's info panel."""
        d = self.model.describe()
        lin = d["lineage"]
        kind = f"conditional, {d['c_dim']} classes" if d["c_dim"] else "unconditional"
        channels = {1: "greyscale", 3: "RGB"}.get(d["img_channels"], f"{d['img_channels']} channels")
        lines = [f"**{self.entry.label}** — {d['resolution']}×{d['resolution']} {channels}, {kind}; "
                 f"z {d['z_dim']}, w {d['w_dim']}, {d['num_ws']} ws ({d['G_architecture']})"]
        facts = [f"from {lin['source_format']} `{lin['source_name']}`" if lin.get("source_name") else None,
                 f"sha256 `{lin['source_sha256'][:12]}`" if lin.get("source_sha256") else None,
                 f"fine-tuned from `{str(lin['fine_tuned_from'])[:12]}`" if lin.get("fine_tuned_from") else None,
                 f"{lin['kimg']:g} kimg" if lin.get("kimg") else None,
                 f"dataset {lin['dataset_name']}" if lin.get("dataset_name") else None,
                 f"dataset sha256 `{lin['dataset_fingerprint'][:12]}`" if lin.get("dataset_fingerprint") else None,
                 f"ADA p {d['augment_p']:.3f}" if d.get("augment_p") is not None else None]
        facts = [f for f in facts if f]
        if facts:
            lines.append("Lineage: " + " · ".join(facts))
        return "\n\n".join(lines)


class ModelLibrary:
    """See module docs. Thread-safe: Gradio calls handlers from a thread pool."""

    def __init__(self, models: list[str] | None = None, models_dir: Path | None = None, device: str = "auto",
                 uploads_dir: Path | None = None, max_upload_bytes: int = 1 << 30, cache_size: int = 3):
        from bender.device import pick_device

        self.device = pick_device(device)
        self.models_dir = Path(models_dir) if models_dir is not None else None
        if self.models_dir is not None and not self.models_dir.is_dir():
            raise BenderError(f"--models-dir {self.models_dir}: no such folder")
        self.uploads_dir = Path(uploads_dir) if uploads_dir is not None else None
        self.max_upload_bytes = int(max_upload_bytes)
        self.cache_size = max(1, int(cache_size))
        self._lock = threading.RLock()
        self._cache: OrderedDict[str, LoadedModel] = OrderedDict()
        self._uploads: list[ModelEntry] = []
        self._given_files: list[Path] = []
        self._given_runs: list[Path] = []
        self._given_first: Path | None = None  # what the user named first is what the UI opens on
        self._include_default = default_model_path().exists()
        for name in models or []:
            if str(name) in ("default", "builtin", "bender:default"):
                if not default_model_path().exists():
                    raise BenderError("the embedded default model is missing from this installation; "
                                      "pass a model file or run folder instead")
                continue
            path = Path(name).expanduser().resolve()
            if self._given_first is None and (is_run(path) or path.is_file()):
                self._given_first = path
            if is_run(path):
                self._given_runs.append(path)
            elif path.is_dir():
                raise BenderError(f"{name}: a folder without checkpoints/snapshot-*.safetensors; pass a model "
                                  "file, a run folder written by `bender train`, or use --models-dir")
            elif path.is_file():
                self._given_files.append(path)
            else:
                raise BenderError(f"{name}: no such file or folder")

    # -- catalogue -------------------------------------------------------------------------------

    def _scan_dir(self) -> tuple[list[Path], list[Path]]:
        if self.models_dir is None or not self.models_dir.is_dir():
            return [], []
        files, runs = [], []
        if is_run(self.models_dir):
            runs.append(self.models_dir.resolve())
        for p in sorted(self.models_dir.iterdir()):
            if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES and not p.name.startswith("."):
                files.append(p.resolve())
            elif is_run(p):
                runs.append(p.resolve())
        return files, runs

    def runs(self) -> list[RunEntry]:
        """Training runs (for the timeline), from the command line and the models folder."""
        _, scanned = self._scan_dir()
        out, seen = [], set()
        for run in [*self._given_runs, *scanned]:
            if run not in seen:
                seen.add(run)
                out.append(RunEntry(_key("run", run), run.name, run))
        return out

    def entries(self) -> list[ModelEntry]:
        """Every pickable model, in picker order (rescans the models folder)."""
        out: list[ModelEntry] = []
        if self._include_default:
            out.append(ModelEntry(DEFAULT_KEY, "default (embedded)", "default", default_model_path()))
        files, _ = self._scan_dir()
        seen = set()
        for f in [*self._given_files, *files]:
            if f not in seen:
                seen.add(f)
                out.append(ModelEntry(_key("file", f), f.name, "file", f))
        for run in self.runs():
            for snap in list_snapshots(run.path):
                kimg = _kimg(snap)
                out.append(ModelEntry(_key("snap", snap.resolve()), f"{run.label} @ {kimg:g} kimg", "snapshot",
                                      snap.resolve(), run=run.path, kimg=kimg))
        with self._lock:
            out.extend(self._uploads)
        return out

    def choices(self) -> list[tuple[str, str]]:
        """(label, key) pairs for a Gradio dropdown."""
        return [(e.label, e.key) for e in self.entries()]

    def default_key(self) -> str | None:
        """The model the UI opens on: the first one named on the command line (a run: its latest
        snapshot, the bent model), else the first in the list (the embedded default, when present)."""
        entries = self.entries()
        first = self._given_first
        if first is not None:
            picks = [e for e in entries if e.path == first or e.run == first]
            if picks:
                return picks[-1].key  # a run's snapshots are listed oldest first
        return entries[0].key if entries else None

    def entry(self, key: str | None) -> ModelEntry:
        for e in self.entries():
            if e.key == key:
                return e
        raise BenderError("pick a model first (the model list is empty: start bender ui with a model file, "
                          "a run folder or --models-dir, or upload one)" if not key else
                          f"model {key!r} is not in the list any more; press refresh and pick again")

    def run(self, key: str | None) -> RunEntry:
        for r in self.runs():
            if r.key == key:
                return r
        raise BenderError("pick a training run (start bender ui with a run folder or a --models-dir holding runs)")

    # -- loading ---------------------------------------------------------------------------------

    def get(self, key: str | None) -> LoadedModel:
        """The loaded model for a catalogue key (loaded once, kept in a small LRU cache)."""
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        entry = self.entry(key)
        with self._lock:
            if key in self._cache:  # loaded by another thread meanwhile
                return self._cache[key]
            loaded = self._load(entry)
            self._cache[key] = loaded
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return loaded

    def _load(self, entry: ModelEntry) -> LoadedModel:
        model = load(entry.path, device=self.device)
        model.G, model.D = None, None  # rendering needs only G_ema; keeps big models' memory down
        model.eval()
        return LoadedModel(entry, model, model.G_ema)

    # -- uploads ---------------------------------------------------------------------------------

    def add_upload(self, path: str | Path, name: str | None = None) -> ModelEntry:
        """Check, copy and load an uploaded file; returns its new catalogue entry.

        The size limit is checked before reading; the file is read only by the safe loader, and a
        file that does not load is deleted again.
        """
        if self.uploads_dir is None:
            raise BenderError("uploads are switched off for this server")
        path = Path(path)
        name = Path(name or path.name).name
        size = path.stat().st_size
        if size > self.max_upload_bytes:
            raise BenderError(f"{name} is {size / 2**20:.1f} MB; this server accepts uploads up to "
                              f"{self.max_upload_bytes / 2**20:.0f} MB (restart with --max-upload-mb to change)")
        if size == 0:
            raise BenderError(f"{name}: empty file (0 bytes)")
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        sha = digest.hexdigest()
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[-80:] or "model"
        target = (self.uploads_dir / f"{sha[:12]}-{safe}").resolve()
        key = f"upload-{sha[:12]}"
        with self._lock:
            for e in self._uploads:
                if e.key == key:
                    return e
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        from bender.fileio import atomic_path

        with atomic_path(target) as tmp:
            shutil.copyfile(path, tmp)
        entry = ModelEntry(key, f"upload: {name}", "upload", target)
        try:
            loaded = self._load(entry)
        except Exception as e:
            target.unlink(missing_ok=True)
            if isinstance(e, BenderError):  # name the file as the visitor knows it
                raise BenderError(str(e).replace(target.name, name)) from None
            raise BenderError(f"{name}: could not be read as a model ({type(e).__name__}: {e})") from None
        with self._lock:
            self._uploads.append(entry)
            self._cache[key] = loaded
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return entry
