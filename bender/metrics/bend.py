"""The bend distance: how far a fine-tune has moved, measured in a CNN's feature space.

For every snapshot of a run, N samples from fixed seeds are embedded and compared by Fréchet
distance with (a) the dataset the run trains on — `to_target`, which falls as the model learns
the new images — and (b) the same seeds rendered by the original model — `from_original`, which
grows as the model bends away from where it started. Together they show when a fine-tune has
bent "just the right amount".

Per-snapshot features are cached under RUN/metrics/cache/ (keyed by the feature extractor's
weights, the sample settings and the snapshot file's size and time), so rerunning after new
snapshots only embeds the new ones. Results: RUN/metrics/bend.jsonl and RUN/bend_curve.png.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bender.errors import BenderError
from bender.fileio import atomic_path, atomic_write_text
from bender.io.runs import SNAPSHOT_RE, list_snapshots
from bender.metrics.frechet import FeatureStats, frechet_distance

DATA_KEYS = ("data", "dataset", "data_path", "dataset_path")
ORIGINAL_KEYS = ("resume", "resume_from", "resume_pkl")


@dataclass
class BendSettings:
    features: str = "auto"  # see bender.metrics.features; auto = mobilenet_v2 if installed, else d:original
    samples: int = 256  # generated images per snapshot (seeds seed_start .. seed_start + samples - 1)
    max_real: int = 2000  # dataset images embedded for the target (evenly spread over the zip)
    batch: int = 32
    truncation_psi: float = 1.0
    seed_start: int = 0
    device: str = "auto"


@dataclass
class BendPoint:
    kimg: float
    snapshot: str  # snapshot file name, or 'original'
    to_target: float  # Fréchet distance between the samples and the dataset
    from_original: float  # Fréchet distance between the samples and the original model's samples

    def to_json(self) -> dict:
        return asdict(self)


def read_run_config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise BenderError(f"{path}: not valid JSON") from None


def config_values(config: dict, keys: tuple[str, ...]) -> list[str]:
    """Values of `keys` in config.json, at the top level or one level down (bender train writes
    {"train": {"data": ..., "resume": ...}, "resolved": {"dataset": {"path": ...}}}), in that order."""
    scopes = [config] + [v for v in config.values() if isinstance(v, dict)]
    found = []
    for scope in scopes:
        for key in keys:
            value = scope.get(key)
            if isinstance(value, dict):
                value = value.get("path")
            if isinstance(value, str) and value and value not in found:
                found.append(value)
    return found


def resolve_path(candidates: list[str], run_dir: Path) -> Path | None:
    """The first candidate that exists (as given, or relative to the run folder), else None."""
    for c in candidates:
        for p in (Path(c), run_dir / c):
            if p.exists():
                return p
    return None


def snapshot_kimg(path: Path) -> float:
    m = SNAPSHOT_RE.search(path.name)
    return float(m.group(1)) if m else 0.0


def file_stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


class BendMeter:
    """Measures bend points for a run; features of the target, the original and each snapshot are cached."""

    def __init__(self, run_dir: str | Path, settings: BendSettings | None = None, data: str | Path | None = None,
                 original: str | None = None, device: torch.device | str | None = None, progress: bool = False):
        from bender.device import pick_device

        self.run_dir = Path(run_dir)
        self.settings = settings or BendSettings()
        self.progress = progress
        self.device = torch.device(device) if device is not None else pick_device(self.settings.device)
        config = read_run_config(self.run_dir)
        if data is None:
            candidates = config_values(config, DATA_KEYS)
            if not candidates:
                raise BenderError(f"{self.run_dir}: config.json names no dataset; pass --data ZIP")
            found = resolve_path(candidates, self.run_dir)
            if found is None:
                raise BenderError(f"dataset {candidates[0]} (named in {self.run_dir}/config.json) not found; "
                                  "pass --data ZIP")
            data = found
        self.data = Path(data)
        if not self.data.exists():
            raise BenderError(f"dataset {self.data} not found; pass --data ZIP")
        # The start model: --original, else config.json's resume (when the file is still there), else snapshot 0.
        self.original_spec = original
        if original is None:
            resume = config_values(config, ORIGINAL_KEYS)
            from bender.io.load import DEFAULT_MODEL_NAMES

            if resume and resume[0] in DEFAULT_MODEL_NAMES:
                self.original_spec = resume[0]
            elif resume:
                found = resolve_path(resume, self.run_dir)
                self.original_spec = str(found) if found is not None else None
        self._extractor = None
        self._target: FeatureStats | None = None
        self._original: np.ndarray | None = None
        self._original_stats: FeatureStats | None = None
        self._original_model = None

    # -- the fixed references -------------------------------------------------------------------

    def original_path(self) -> Path:
        """The model the run started from: --original / config.json 'resume', else the first snapshot."""
        from bender.io.load import DEFAULT_MODEL_NAMES, default_model_path
        from bender.io.runs import latest_snapshot

        spec = self.original_spec
        if spec in DEFAULT_MODEL_NAMES:
            return default_model_path()
        if spec:
            path = Path(spec)
            if path.is_dir():
                return latest_snapshot(path)
            if path.is_file():
                return path
            raise BenderError(f"original model {spec} not found; pass --original MODEL")
        snaps = list_snapshots(self.run_dir)
        if not snaps:
            raise BenderError(f"{self.run_dir}: no snapshots yet (checkpoints/snapshot-*.safetensors)")
        return snaps[0]

    def original_model(self):
        if self._original_model is None:
            from bender.io import load

            self._original_model = load(self.original_path())
        return self._original_model

    @property
    def extractor(self):
        if self._extractor is None:
            from bender.metrics.features import load_feature_extractor

            spec = self.settings.features
            if spec in ("d:original", "auto"):
                fallback = f"d:{self._d_source()}"
                spec = fallback if spec == "d:original" else spec
                self._extractor = load_feature_extractor(spec, self.device, fallback=fallback)
            else:
                self._extractor = load_feature_extractor(spec, self.device)
        return self._extractor

    def _d_source(self) -> Path:
        """The original's D when it has one, else the first snapshot's: a feature space that stays fixed."""
        if self.original_model().D is not None:
            return self.original_path()
        snaps = list_snapshots(self.run_dir)
        if snaps:
            return snaps[0]
        raise BenderError("the original model has no discriminator and the run has no snapshot; pass --features")

    @property
    def cache_dir(self) -> Path:
        s = self.settings
        tag = hashlib.sha256(f"{s.samples}:{s.seed_start}:{s.truncation_psi}".encode()).hexdigest()[:8]
        return self.run_dir / "metrics" / "cache" / f"{self.extractor.key}-{tag}"

    def target_stats(self) -> FeatureStats:
        if self._target is None:
            feats = self._cached(f"target-{self.data.stem}", file_stamp(self.data) + f":{self.settings.max_real}",
                                 self._embed_target)
            self._target = FeatureStats.of(feats)
        return self._target

    def original_features(self) -> np.ndarray:
        if self._original is None:
            path = self.original_path()
            self._original = self.generator_features(lambda: self.original_model().G_ema, f"original-{path.stem}",
                                                     file_stamp(path))
        return self._original

    def original_stats(self) -> FeatureStats:
        if self._original_stats is None:
            self._original_stats = FeatureStats.of(self.original_features())
        return self._original_stats

    def original_to_target(self) -> float:
        return frechet_distance(self.target_stats(), self.original_features())

    # -- measuring --------------------------------------------------------------------------------

    def generator_features(self, get_G, tag: str, stamp: str) -> np.ndarray:
        """Features of a generator's samples; `get_G()` is only called (e.g. a file loaded) on a cache miss."""
        from bender.metrics.embed import embed_generator

        s = self.settings

        def compute() -> np.ndarray:
            G = get_G().to(self.device).eval()
            return embed_generator(self.extractor, G, range(s.seed_start, s.seed_start + s.samples),
                                   self.device, s.batch, s.truncation_psi, progress=self.progress)

        return self._cached(tag, stamp, compute)

    def point(self, get_G, kimg: float, snapshot: Path) -> BendPoint:
        feats = self.generator_features(get_G, snapshot.stem, file_stamp(snapshot))
        return BendPoint(kimg=kimg, snapshot=snapshot.name,
                         to_target=frechet_distance(self.target_stats(), feats),
                         from_original=frechet_distance(self.original_stats(), feats))

    def measure(self, G: torch.nn.Module, kimg: float, snapshot: Path) -> BendPoint:
        """The point of a generator in memory (the trainer's G_ema) whose snapshot file is `snapshot`."""
        return self.point(lambda: G, kimg, snapshot)

    def original_point(self) -> BendPoint | None:
        """The starting point (from_original = 0), unless the original is itself a snapshot of this run."""
        path = self.original_path()
        if path.resolve() in {p.resolve() for p in list_snapshots(self.run_dir)}:
            return None
        first = list_snapshots(self.run_dir)
        kimg = float(self.original_model().lineage.kimg or 0.0)
        if first and kimg > snapshot_kimg(first[0]):
            kimg = 0.0
        return BendPoint(kimg=kimg, snapshot="original", to_target=self.original_to_target(), from_original=0.0)

    def measure_run(self) -> list[BendPoint]:
        """A point for the original (when outside the run) and for every snapshot, in training order."""
        from bender.io import load

        snaps = list_snapshots(self.run_dir)
        if not snaps:
            raise BenderError(f"{self.run_dir}: no snapshots (checkpoints/snapshot-*.safetensors); is it a run folder?")
        points = [p for p in [self.original_point()] if p is not None]
        for path in snaps:
            points.append(self.point(lambda path=path: load(path).G_ema, snapshot_kimg(path), path))
        return points

    # -- output -------------------------------------------------------------------------------------

    def write(self, points: list[BendPoint]) -> tuple[Path, Path]:
        """RUN/metrics/bend.jsonl (one line per point, with the settings) and RUN/bend_curve.png."""
        from bender.metrics.plot import draw_bend_curve

        header = {"features": self.extractor.name, "features_key": self.extractor.key,
                  "samples": self.settings.samples, "dataset": str(self.data), "original": str(self.original_path()),
                  "written": time.strftime("%Y-%m-%dT%H:%M:%S")}
        lines = [json.dumps({**p.to_json(), **header}) for p in points]
        jsonl = self.run_dir / "metrics" / "bend.jsonl"
        atomic_write_text(jsonl, "\n".join(lines) + "\n")
        png = self.run_dir / "bend_curve.png"
        draw_bend_curve(points, png, title=f"{self.run_dir.name}: bend in {self.extractor.name} features "
                                           f"({self.settings.samples} samples)")
        return jsonl, png

    # -- cache --------------------------------------------------------------------------------------

    def _cache_file(self, tag: str) -> Path:
        return self.cache_dir / f"{tag}.npz"

    @staticmethod
    def _cache_valid(path: Path, stamp: str) -> bool:
        if not path.is_file():
            return False
        try:
            with np.load(path) as z:
                return str(z["stamp"]) == stamp
        except (OSError, ValueError, KeyError):
            return False

    def _cached(self, tag: str, stamp: str, compute) -> np.ndarray:
        path = self._cache_file(tag)
        if self._cache_valid(path, stamp):
            with np.load(path) as z:
                return z["features"]
        feats = compute()
        with atomic_path(path) as tmp:
            np.savez(tmp, features=feats, stamp=np.array(stamp))
        return feats

    def _embed_target(self) -> np.ndarray:
        from bender.curate.sources import open_image_set
        from bender.metrics.embed import embed_image_set

        image_set = open_image_set(self.data)
        items = image_set.items
        if len(items) > self.settings.max_real:
            pick = np.linspace(0, len(items) - 1, self.settings.max_real).round().astype(int)
            items = [items[i] for i in pick]
        feats, _, errors = embed_image_set(self.extractor, image_set, items, self.device, self.settings.batch,
                                           progress=self.progress, size=None)
        if len(feats) < 2:
            raise BenderError(f"{self.data}: fewer than 2 readable images ({len(errors)} unreadable)")
        return feats


def read_bend_log(run_dir: str | Path) -> list[BendPoint]:
    """The bend points last written for a run (for the UI's timeline); [] when none yet."""
    path = Path(run_dir) / "metrics" / "bend.jsonl"
    if not path.is_file():
        return []
    points = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            d = json.loads(line)
            points.append(BendPoint(float(d["kimg"]), str(d["snapshot"]), float(d["to_target"]),
                                    float(d["from_original"])))
        except (ValueError, KeyError, TypeError):
            continue
    return points
