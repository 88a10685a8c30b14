"""`--stop-when SPEC`: stop a fine-tune when the bend metric says it has bent enough.

Grammar (comma-separated; training stops when ANY condition holds; `key=value` items are options):

    plateau:N[:TOL]     distance to the target has not improved on its best by more than TOL
                        (a fraction, default 0.01 = 1 %) for N snapshots in a row
    target<X            distance to the target fell below X        (also <=)
    bend>X              distance from the original rose above X    (also >=)
    target<P%  bend>P%  X as a percentage of the original model's distance to the target
                        (e.g. `target<50%`: half-way there; `bend>30%`)
    features=SPEC       feature space (default auto: mobilenet_v2 if installed, else d:original)
    samples=N           generated images per snapshot (default 256)
    max_real=N          dataset images for the target statistics (default 2000)
    psi=F               truncation psi of the samples (default 1)

Examples: `plateau:3`, `target<50%`, `bend>2.0,plateau:4:0.02,samples=128`.

Each evaluated snapshot is also written to RUN/metrics/bend.jsonl and RUN/bend_curve.png, so the
curve can be watched while training runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bender.errors import BenderError
from bender.metrics.bend import BendMeter, BendPoint, BendSettings
from bender.train.events import SnapshotEvent

THRESHOLD_RE = re.compile(r"^(target|bend)\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+(?:e[-+]?\d+)?)\s*(%?)$", re.I)
PLATEAU_RE = re.compile(r"^plateau:(\d+)(?::([0-9]*\.?[0-9]+))?$", re.I)
OPTION_RE = re.compile(r"^(features|samples|max_real|psi)=(.+)$")


@dataclass
class Threshold:
    metric: str  # 'target' (distance to the dataset) | 'bend' (distance from the original)
    op: str
    value: float
    percent: bool = False  # value is a percentage of the original's distance to the target

    def check(self, points: list[BendPoint], reference: float | None) -> str | None:
        if not points:
            return None
        p = points[-1]
        actual = p.to_target if self.metric == "target" else p.from_original
        limit = self.value / 100 * reference if self.percent else self.value
        hit = {"<": actual < limit, "<=": actual <= limit, ">": actual > limit, ">=": actual >= limit}[self.op]
        if not hit:
            return None
        what = "distance to target" if self.metric == "target" else "bend (distance from original)"
        pct = f" ({self.value:g}% of the original's {reference:.4g})" if self.percent else ""
        return f"{what} {actual:.4g} {self.op} {limit:.4g}{pct} at kimg {p.kimg:g} ({p.snapshot})"


@dataclass
class Plateau:
    patience: int
    tol: float = 0.01

    def check(self, points: list[BendPoint], reference: float | None = None) -> str | None:
        if len(points) <= self.patience:
            return None
        before, recent = points[:-self.patience], points[-self.patience:]
        best = min(before, key=lambda p: p.to_target)
        if min(p.to_target for p in recent) < best.to_target * (1 - self.tol):
            return None
        return (f"distance to target plateaued: best {best.to_target:.4g} at kimg {best.kimg:g}, not improved by "
                f"{self.tol:.0%} in the last {self.patience} snapshots (now {points[-1].to_target:.4g})")


@dataclass
class BendStop:
    """The StopCondition the trainer calls after every snapshot."""

    conditions: list
    settings: BendSettings = field(default_factory=BendSettings)
    dataset: Path | None = None
    points: list[BendPoint] = field(default_factory=list)
    meter: BendMeter | None = None

    def __call__(self, event: SnapshotEvent) -> str | None:
        import torch

        if self.meter is None:
            device = next(event.G_ema.parameters()).device
            self.meter = BendMeter(event.run_dir, self.settings, data=event.dataset or self.dataset, device=device)
            start = self.meter.original_point()
            self.points = [start] if start is not None else []
        with torch.no_grad():
            point = self.meter.measure(event.G_ema, event.kimg, Path(event.snapshot))
        self.points = [p for p in self.points if p.snapshot != point.snapshot] + [point]
        self.meter.write(self.points)
        reference = self.meter.original_to_target() if any(getattr(c, "percent", False) for c in self.conditions) \
            else None
        for cond in self.conditions:
            reason = cond.check(self.points, reference)
            if reason:
                return reason
        return None


def parse_stop_when(spec: str, dataset: Path | None = None) -> BendStop:
    """Parse a --stop-when SPEC (grammar in this module's docstring) into a stop condition."""
    conditions: list = []
    settings = BendSettings()
    for raw in (spec or "").split(","):
        item = raw.strip()
        if not item:
            continue
        if m := PLATEAU_RE.match(item):
            patience = int(m.group(1))
            if patience < 1:
                raise BenderError(f"--stop-when {item}: the plateau length must be at least 1 snapshot")
            conditions.append(Plateau(patience, float(m.group(2)) if m.group(2) else 0.01))
        elif m := THRESHOLD_RE.match(item):
            conditions.append(Threshold(m.group(1).lower(), m.group(2), float(m.group(3)), m.group(4) == "%"))
        elif m := OPTION_RE.match(item):
            _set_option(settings, m.group(1), m.group(2).strip(), item)
        else:
            raise BenderError(f"--stop-when: cannot read '{item}'; write e.g. plateau:3, target<50%, bend>2.0 "
                              "(options: features=, samples=, max_real=, psi=)")
    if not conditions:
        raise BenderError(f"--stop-when {spec!r}: no condition given; e.g. plateau:3 or target<50%")
    return BendStop(conditions, settings, dataset)


def _set_option(settings: BendSettings, key: str, value: str, item: str) -> None:
    try:
        if key == "features":
            settings.features = value
        elif key == "psi":
            settings.truncation_psi = float(value)
        else:
            number = int(value)
            if number < 2:
                raise ValueError
            setattr(settings, key, number)
    except ValueError:
        raise BenderError(f"--stop-when {item}: {key} needs a {'number' if key == 'psi' else 'whole number >= 2'}") \
            from None
