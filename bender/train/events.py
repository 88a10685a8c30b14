"""What the trainer tells the outside world at each snapshot.

This is the seam between the trainer and everything that watches a run (the `--stop-when` bend
metric, the UI's timeline): a plain dataclass, and stop conditions are plain callables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass
class SnapshotEvent:
    """A snapshot has just been written (atomically) and can be read."""

    run_dir: Path
    kimg: float  # thousands of real images shown to D so far
    snapshot: Path  # the model file (.safetensors) of this snapshot
    G_ema: Any  # bender.nets.Generator in eval mode, on the training device
    stats: dict[str, Any] = field(default_factory=dict)  # the latest stats.jsonl record
    dataset: Path | None = None  # the training zip


class StopCondition(Protocol):
    """Called after every snapshot; returns a reason (one line) to stop training, or None."""

    def __call__(self, event: SnapshotEvent) -> str | None: ...
