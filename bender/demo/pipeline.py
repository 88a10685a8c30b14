"""`bender demo`: the lecture's faces -> rocks bend, end to end, offline, on the embedded model.

Every step is one of bender's own commands, run in-process and echoed as the shell line a user can
copy, so the demo doubles as a guided tour: build a texture set, pack it, fine-tune the default
face model on it (preset `bend`), then render the bend timeline and a looping walk and draw the
bend-distance curve.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from bender.errors import BenderError


@dataclass
class DemoResult:
    out: Path
    run: Path
    artefacts: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def bender(*args: str, echo: bool = True) -> None:
    """Run `bender ARGS...` in this process, echoing the command line first."""
    from bender.cli import main

    if echo:
        click.secho("$ bender " + " ".join(shlex.quote(a) for a in args), fg="cyan", err=True)
    try:
        main.main(args=list(args), prog_name="bender", standalone_mode=False)
    except click.ClickException as e:
        raise BenderError(f"demo step `bender {args[0]}` failed: {e.format_message()}") from None


def run_demo(out: Path, kimg: float = 6.0, model: str = "default", device: str = "auto", seeds: str = "0-15",
             walk_frames: int = 24, metric_samples: int = 128) -> DemoResult:
    """Build, pack, fine-tune, render and measure; returns where everything is."""
    from bender.demo.textures import write_texture_set
    from bender.io.runs import list_snapshots

    start = time.time()
    out = Path(out)
    if (out / "runs").exists() and any((out / "runs").iterdir()):
        raise BenderError(f"{out} already holds a demo run; pick a new --out folder (or delete {out / 'runs'})")
    out.mkdir(parents=True, exist_ok=True)

    click.secho("1/5 a 'rocks & foliage' photo set from scikit-image's bundled CC0 textures", bold=True, err=True)
    textures = write_texture_set(out / "textures")
    dataset = out / "rocks-foliage-64.zip"
    bender("dataset", "pack", str(textures), "--out", str(dataset), "--resolution", "64", "--transform", "tiles",
           "--tiles-per-image", "40", "--tile-scale", "0.5", "--quiet")

    click.secho(f"2/5 fine-tune the {model} face model on it for {kimg:g} kimg (preset bend)", bold=True, err=True)
    snap = max(kimg / 4, 0.25)
    bender("train", "--data", str(dataset), "--resume", model, "--preset", "bend", "--kimg", f"{kimg:g}",
           "--snap", f"{snap:g}", "--batch", "16", "--preview-seeds", seeds, "--out", str(out / "runs"),
           "--device", device, "--tick", "30")
    runs = sorted(p for p in (out / "runs").iterdir() if (p / "config.json").exists())
    if not runs:
        raise BenderError("training wrote no run folder")
    run = runs[-1]

    click.secho("3/5 a looping latent walk through the bent model", bold=True, err=True)
    walk = out / "walk-loop.mp4"
    bender("render", "walk", str(run), "--seeds", "1,2,3", "--frames", str(walk_frames), "--loop", "--fps", "24",
           "--out", str(walk), "--device", device, "--quiet")

    click.secho("4/5 the bend distance of every snapshot (how far from faces, how close to rocks), and the bend "
                "as one picture", bold=True, err=True)
    bender("metrics", str(run), "--samples", str(metric_samples), "--max-real", "500", "--device", device, "--quiet")

    strip = out / "bend-timeline.png"
    bender("render", "timeline", str(run), "--still", "--seeds", "0-3", "--out", str(strip), "--device", device,
           "--quiet")

    click.secho("5/5 done", bold=True, err=True)
    snapshots = list_snapshots(run)
    previews = sorted((run / "previews").glob("preview-*.png"))
    result = DemoResult(out=out, run=run, seconds=time.time() - start)
    result.artefacts = {
        "dataset": dataset,
        "first preview (the original faces)": previews[0],
        "last preview (bent)": previews[-1],
        "bend timeline video": run / "timeline.mp4",
        "bend timeline picture": strip,
        "looping walk video": walk,
        "bend curve": run / "bend_curve.png",
        "latest model": snapshots[-1],
    }
    missing = [name for name, path in result.artefacts.items() if not Path(path).exists()]
    if missing:
        raise BenderError(f"the demo finished but did not produce: {', '.join(missing)}")
    return result


def summary(result: DemoResult) -> str:
    lines = [f"bender demo finished in {result.seconds / 60:.1f} min; everything is in {result.out}/", ""]
    width = max(len(k) for k in result.artefacts)
    lines += [f"  {name:<{width}}  {path}" for name, path in result.artefacts.items()]
    run = result.run
    lines += ["", "next, try:",
              "  # explore the bent model in the browser: bend slider, 2-D plane, timeline",
              f"  bender ui {run}",
              "  # bend further, then render the timeline again",
              f"  bender train --continue {run} --kimg 40",
              f"  bender render timeline {run} --seeds 0-7 --out timeline.mp4",
              "  # your own images (needs internet), then the same steps",
              "  bender dataset build \"mossy rocks\" \"tree bark\" --out sets/moss -r 64 --transform tiles"]
    return "\n".join(lines)
