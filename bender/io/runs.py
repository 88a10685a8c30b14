"""Locating models inside training-run folders (written by `bender train`)."""

from __future__ import annotations

import re
from pathlib import Path

from bender.errors import BenderError

SNAPSHOT_RE = re.compile(r"snapshot-(\d+(?:\.\d+)?)\.safetensors$")


def list_snapshots(run: str | Path) -> list[Path]:
    """A run's snapshot files in training order (by kimg in the name)."""
    run = Path(run)
    found = [p for p in (run / "checkpoints").glob("snapshot-*.safetensors") if SNAPSHOT_RE.search(p.name)]
    return sorted(found, key=lambda p: float(SNAPSHOT_RE.search(p.name).group(1)))


def latest_snapshot(run: str | Path) -> Path:
    snaps = list_snapshots(run)
    if not snaps:
        raise BenderError(f"{run}: a folder without checkpoints/snapshot-*.safetensors; pass a model file "
                          "or a run folder written by `bender train`")
    return snaps[-1]
