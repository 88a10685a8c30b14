"""The training timeline video: fixed seeds, watched as the weights move through a run's snapshots.

The trainer calls `render_timeline(run_dir)` when a run ends (writing RUN/timeline.mp4); the UI and
`bender render timeline` call it too. It is an ordinary walk script (space Z, the same seeds on
both keyframes, t going 0 -> 1), so it gets the sidecar script and metadata like any render.
Each seed's image at snapshot k is exactly what that snapshot's G_ema makes for the seed.
`timeline_strip` shows the same keyframes as one still picture (a column per snapshot), for model
cards, READMEs and prints.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bender.errors import BenderError
from bender.io.runs import list_snapshots
from bender.latent.script import Keyframe, WalkScript
from bender.latent.walk import Walk
from bender.render.frames import render_frames
from bender.render.images import make_grid, save_png
from bender.render.script import RenderResult, render_script


def timeline_script(run_dir: str | Path, seeds: list[int] = (0, 1, 2, 3), fps: float = 24.0,
                    frames_per_snapshot: int = 12, psi: float = 0.7, size: int | None = None,
                    by: str = "index", class_idx: int | None = None, noise: str = "const",
                    cols: int | None = None) -> WalkScript:
    """The walk script of a timeline video (validated)."""
    run_dir = Path(run_dir).resolve()
    n = len(list_snapshots(run_dir))
    if n == 0:
        raise BenderError(f"{run_dir}: no checkpoints/snapshot-*.safetensors to make a timeline from")
    seeds = [int(s) for s in seeds]
    keyframes = [Keyframe(seeds=list(seeds), t=0.0)]
    if n > 1:
        keyframes.append(Keyframe(seeds=list(seeds), t=1.0))
    script = WalkScript(run=str(run_dir), timeline_by=by, space="z", interpolation="lerp",
                        frames=max(1, int(frames_per_snapshot)) * max(1, n - 1), loop=False, psi=float(psi),
                        noise=noise, class_idx=class_idx, fps=float(fps), size=size, cols=cols,
                        keyframes=keyframes)
    return script.validate()


def render_timeline(run_dir: str | Path, out_path: str | Path | None = None, seeds: list[int] = (0, 1, 2, 3),
                    fps: float = 24.0, frames_per_snapshot: int = 12, psi: float = 0.7, size: int | None = None,
                    device: torch.device | str = "cpu", preview: bool = False, by: str = "index",
                    class_idx: int | None = None, progress: Callable[[int], None] | None = None) -> RenderResult:
    """Render RUN/timeline.mp4 (or `out_path`): a grid of `seeds` morphing from the first snapshot to the last."""
    run_dir = Path(run_dir)
    script = timeline_script(run_dir, seeds, fps, frames_per_snapshot, psi, size, by, class_idx)
    out = Path(out_path) if out_path is not None else run_dir / "timeline.mp4"
    return render_script(script, out, device=device, preview=preview, progress=progress)


def timeline_strip(run_dir: str | Path, out_path: str | Path | None = None, seeds: list[int] = (0, 1, 2, 3),
                   psi: float = 0.7, device: torch.device | str = "cpu", pad: int = 2,
                   class_idx: int | None = None) -> Path:
    """Write RUN/timeline.png (or `out_path`): a row per seed, a column per snapshot, first to last.

    Each tile is exactly what that snapshot's G_ema makes for the seed (const noise), the same
    pictures as the timeline video's keyframes.
    """
    run_dir = Path(run_dir).resolve()
    snapshots = list_snapshots(run_dir)
    if not snapshots:
        raise BenderError(f"{run_dir}: no checkpoints/snapshot-*.safetensors to make a timeline from")
    columns = []
    for snap in snapshots:
        script = WalkScript(model=str(snap), space="z", psi=float(psi), noise="const", cols=1,
                            class_idx=class_idx, keyframes=[Keyframe(seeds=[int(s) for s in seeds])]).validate()
        (column,) = render_frames(Walk(script, device=device), prefetch=0)
        columns.append(column)
    strip = make_grid(np.stack(columns), cols=len(columns), pad=pad, pad_value=255)
    out = Path(out_path) if out_path is not None else run_dir / "timeline.png"
    return save_png(strip, out, metadata={"bender:timeline": str(run_dir), "bender:seeds": ",".join(map(str, seeds)),
                                          "bender:snapshots": ",".join(p.name for p in snapshots)})
