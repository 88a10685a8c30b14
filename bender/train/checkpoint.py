"""The run folder: where each snapshot's files go, and how they are written so a crash cannot hurt.

    RUN/config.json                                  the TrainConfig (+ what was resolved at start)
    RUN/checkpoints/state-000004.000.pt              optimisers, ADA p, pl_mean, counters, RNG
    RUN/checkpoints/snapshot-000004.000.safetensors  G, G_ema, D (a normal bender model file)
    RUN/previews/preview-000004.000.png              the fixed preview seeds through G_ema
    RUN/stats.jsonl                                  one JSON record per snapshot
    RUN/timeline.mp4                                 the preview seeds through every snapshot

Every file is written to a temporary name and renamed (bender.fileio), and a snapshot is written
*after* its state file: so a snapshot whose name exists always has its state, and `--continue`
picks the newest snapshot with a state. A kill -9 in between leaves a stray state file that the
next snapshot of that kimg simply replaces. State is read with `torch.load(weights_only=True)`:
plain tensors and containers, never code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from bender.errors import BenderError
from bender.fileio import atomic_path, atomic_write_text
from bender.io.runs import list_snapshots
from bender.train.config import kimg_label

STATE_FORMAT = "bender-train-state"
STATE_VERSION = 1
_KIMG_RE = re.compile(r"-(\d+(?:\.\d+)?)\.[a-z]+$")


def snapshot_path(run: Path, kimg: float) -> Path:
    return run / "checkpoints" / f"snapshot-{kimg_label(kimg)}.safetensors"


def state_path(run: Path, kimg: float) -> Path:
    return run / "checkpoints" / f"state-{kimg_label(kimg)}.pt"


def preview_path(run: Path, kimg: float) -> Path:
    return run / "previews" / f"preview-{kimg_label(kimg)}.png"


def kimg_of(path: Path) -> float:
    m = _KIMG_RE.search(path.name)
    if not m:
        raise ValueError(f"no kimg in {path.name}")
    return float(m.group(1))


def new_run_dir(out: Path, name: str) -> Path:
    """OUT/00003-NAME: the next free number, like NVIDIA's runs (so folders sort by start)."""
    out.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name[:5]) for p in out.iterdir() if p.is_dir() and re.match(r"\d{5}-", p.name)]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "run"
    run = out / f"{max(numbers, default=-1) + 1:05d}-{safe}"
    run.mkdir()
    return run


def latest_resumable(run: Path) -> tuple[float, Path, Path]:
    """(kimg, snapshot, state) of the newest snapshot that has its state file."""
    if not (run / "config.json").is_file():
        raise BenderError(f"{run}: not a training run (no config.json); pass the folder `bender train` created")
    for snap in reversed(list_snapshots(run)):
        kimg = kimg_of(snap)
        state = state_path(run, kimg)
        if state.is_file():
            return kimg, snap, state
    raise BenderError(f"{run}: no complete snapshot to continue from (it was stopped before the first one); "
                      "start it again with the same options")


def remove_partial_files(run: Path) -> list[Path]:
    """Delete temporary files a killed process left behind (the finished files are untouched)."""
    removed = []
    for folder in (run / "checkpoints", run / "previews", run):
        for path in folder.glob(".*.tmp*"):
            if path.is_file():
                path.unlink()
                removed.append(path)
    return removed


def save_state(path: Path, state: dict[str, Any]) -> None:
    state = {"format": STATE_FORMAT, "version": STATE_VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for damaged files
        raise BenderError(f"{path}: unreadable training state ({type(e).__name__}); continue from an earlier "
                          "snapshot by deleting this one's snapshot and state files") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise BenderError(f"{path}: not a bender training state file")
    if state.get("version", 0) > STATE_VERSION:
        raise BenderError(f"{path}: written by a newer bender (state version {state['version']}); upgrade bender")
    return state


def read_stats(run: Path) -> list[dict[str, Any]]:
    path = run / "stats.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_stats(run: Path, records: list[dict[str, Any]]) -> None:
    """Rewrite stats.jsonl whole (it is small), atomically: no half lines after a crash."""
    atomic_write_text(run / "stats.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def append_stats(run: Path, record: dict[str, Any]) -> None:
    """Add a snapshot's record, dropping any from a crashed attempt at or beyond its kimg."""
    records = [r for r in read_stats(run) if r.get("kimg", 0) < record["kimg"]]
    write_stats(run, records + [record])
