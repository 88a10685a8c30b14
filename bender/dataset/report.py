"""What a pack did, for people (the summary line) and for programs (the JSON report)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bender.dataset.dedup import Duplicate
from bender.dataset.rejects import REASONS, Reject


@dataclass(frozen=True)
class KeptEntry:
    name: str  # archive entry, e.g. 00000/img00000003.png
    source: str
    sha256: str  # of the source file's bytes
    label: int | None
    transform: dict

    def to_json(self) -> dict:
        return {"entry": self.name, "source": self.source, "sha256": self.sha256, "label": self.label,
                "transform": self.transform}


@dataclass
class PackReport:
    out: Path
    report_path: Path | None
    resolution: int
    channels: int
    inputs: int = 0  # image inputs considered (discovered files + manifest records)
    kept: list[KeptEntry] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # non-image files, never considered
    class_names: list[str] | None = None
    stopped_at_max: bool = False
    elapsed_s: float = 0.0

    @property
    def images(self) -> int:
        return len(self.kept)

    def rejected_by_reason(self) -> dict[str, int]:
        counts = Counter(r.reason for r in self.rejects)
        return {reason: counts[reason] for reason in REASONS if counts[reason]}

    def summary(self) -> str:
        mode = "RGB" if self.channels == 3 else "L"
        parts = [f"packed {self.images} images ({self.resolution}x{self.resolution} {mode}) "
                 f"from {self.inputs} inputs into {self.out}"]
        if self.rejects:
            why = ", ".join(f"{reason} {n}" for reason, n in self.rejected_by_reason().items())
            parts.append(f"rejected {len(self.rejects)} ({why})")
        else:
            parts.append("rejected 0")
        parts.append(f"duplicates {len(self.duplicates)}")
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} non-image files")
        if self.stopped_at_max:
            parts.append("stopped at --max-images")
        if self.report_path is not None:
            parts.append(f"report: {self.report_path}")
        return "; ".join(parts)

    def to_json(self) -> dict:
        return {
            "out": str(self.out),
            "resolution": self.resolution,
            "channels": self.channels,
            "inputs": self.inputs,
            "images": self.images,
            "rejected_by_reason": self.rejected_by_reason(),
            "class_names": self.class_names,
            "stopped_at_max": self.stopped_at_max,
            "kept": [k.to_json() for k in self.kept],
            "rejects": [r.to_json() for r in self.rejects],
            "duplicates": [d.to_json() for d in self.duplicates],
            "skipped": self.skipped,
        }

    def to_text(self) -> str:
        return json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n"
