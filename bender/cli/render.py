"""`bender render ...`: latent walks, loops, grids, plane maps, training timelines and walk scripts.

Every subcommand builds a walk script and renders it through `bender.render.script.render_script`,
so each output gets its replayable `<out>.yaml` next to it. The command bodies only parse options.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bender.cli.common import IntList
from bender.errors import BenderError


def _output_options(default_out: str | None):
    """Options shared by every render subcommand."""

    def decorate(f):
        opts = [
            click.option("--out", "-o", type=click.Path(path_type=Path), default=default_out,
                         required=default_out is None,
                         help="Output: .mp4 (H.264), .webm (VP9), .gif, .png (one image) or a folder (PNG sequence)."),
            click.option("--fps", type=float, default=24.0, show_default=True, help="Frames per second."),
            click.option("--size", type=int, default=None, help="Pixels per image (default: the model's resolution)."),
            click.option("--crf", type=int, default=18, show_default=True,
                         help="Video quality: lower is better (H.264 0-51, VP9 0-63)."),
            click.option("--codec", type=click.Choice(["auto", "h264", "vp9", "gif", "png"]), default="auto",
                         show_default=True, help="Force a codec (default: from the output's extension)."),
            click.option("--batch", type=int, default=8, show_default=True,
                         help="Images generated together (part of the script: it fixes the exact bits)."),
            click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
            click.option("--preview", is_flag=True, help="Fast low-resolution render (stops G at 1/4 resolution)."),
            click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
        ]
        for opt in reversed(opts):
            f = opt(f)
        return f

    return decorate


def _latent_options(f):
    opts = [
        click.option("--psi", type=float, default=1.0, show_default=True, help="Truncation ψ (1 = off)."),
        click.option("--cutoff", type=int, default=None, help="Truncate only the first N ws (coarse layers)."),
        click.option("--noise", type=click.Choice(["const", "random", "none"]), default="const", show_default=True,
                     help="Per-pixel noise: the model's stored noise, fresh seeded noise per frame, or none."),
        click.option("--noise-strength", type=float, default=1.0, show_default=True,
                     help="Multiplier on every layer's noise strength."),
        click.option("--class", "class_idx", type=int, default=None, help="Class index for conditional models."),
        click.option("--seed", "render_seed", type=int, default=0, show_default=True,
                     help="Seed for 'random' noise (and loops)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _render(script, out: Path, device: str, preview: bool, quiet: bool) -> None:
    """Render `script` with a progress bar and print a one-line summary."""
    from tqdm import tqdm

    from bender.device import pick_device
    from bender.render.script import render_script

    dev = pick_device(device)
    bar = None

    def on_start(walk):
        nonlocal bar
        bar = tqdm(total=walk.num_frames, unit="frame", disable=quiet, file=sys.stderr, desc=out.name)

    try:
        result = render_script(script, out, device=dev, preview=preview, on_start=on_start,
                               progress=lambda n: bar.update(n) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    v = result.video
    rate = v.frames / result.seconds if result.seconds > 0 else float("inf")
    click.echo(f"wrote {v.path} ({v.frames} frame{'s' if v.frames != 1 else ''}, {v.width}x{v.height}, "
               f"{script.fps:g} fps, {result.seconds:.1f} s, {rate:.1f} frames/s); script {result.script_path.name} "
               f"sha256 {result.script_sha256[:12]}")


def _common_script_fields(psi, cutoff, noise, noise_strength, class_idx, render_seed, fps, size, crf, codec, batch):
    return dict(psi=psi, truncation_cutoff=cutoff, noise=noise, noise_strength=noise_strength, class_idx=class_idx,
                seed=render_seed, fps=fps, size=size, crf=crf, codec=codec, batch=batch)


@click.group()
def render() -> None:
    """Render latent walks, loops, grids, plane maps and training timelines (videos or images)."""


@render.command()
@click.argument("model")
@click.option("--seeds", type=IntList(), required=True, help="Keyframe seeds, e.g. 1,2,3 or 0-7.")
@click.option("--frames", type=int, default=30, show_default=True, help="Frames per segment.")
@click.option("--loop", is_flag=True, help="Return to the first seed (exactly seeds x frames frames).")
@click.option("--space", type=click.Choice(["w", "z"]), default="w", show_default=True)
@click.option("--interp", type=click.Choice(["lerp", "slerp", "catmull-rom", "cubic"]), default="slerp",
              show_default=True)
@click.option("--easing", type=click.Choice(["linear", "ease-in", "ease-out", "ease-in-out", "cubic", "sine"]),
              default="linear", show_default=True)
@click.option("--model-b", default=None, help="A second model of the same architecture to blend with.")
@click.option("--alpha", type=float, default=None, help="Blend α toward --model-b (0 = MODEL, 1 = model B).")
@_latent_options
@_output_options(None)
def walk(model, seeds, frames, loop, space, interp, easing, model_b, alpha, psi, cutoff, noise, noise_strength,
         class_idx, render_seed, out, fps, size, crf, codec, batch, device, preview, quiet):
    """Walk through seeds: `bender render walk MODEL --seeds 1,2,3 --frames 30 --loop --out walk.mp4`."""
    from bender.latent.script import Keyframe, WalkScript

    if (alpha is not None) != bool(model_b):
        raise BenderError("blending needs both --model-b PATH and --alpha A (0 = MODEL, 1 = model B)")
    script = WalkScript(model=model, model_b=model_b, alpha=alpha if alpha is not None else 0.0,
                        space=space, interpolation=interp, easing=easing, frames=frames, loop=loop,
                        keyframes=[Keyframe(seed=s) for s in seeds],
                        **_common_script_fields(psi, cutoff, noise, noise_strength, class_idx, render_seed, fps,
                                                size, crf, codec, batch))
    _render(script.resolve_paths(Path.cwd()).validate(), out, device, preview, quiet)


@render.command()
@click.argument("model")
@click.option("--kind", type=click.Choice(["circle", "noise"]), default="circle", show_default=True,
              help="circle: a circle in Z; noise: a smooth random periodic wiggle.")
@click.option("--frames", type=int, default=120, show_default=True, help="Frames in the loop.")
@click.option("--loop-seed", type=int, default=0, show_default=True, help="Seed of the loop's random vectors.")
@click.option("--radius", type=float, default=1.0, show_default=True, help="0-1: how far the loop strays.")
@click.option("--tiles", type=int, default=1, show_default=True, help="Independent loops shown side by side.")
@click.option("--harmonics", type=int, default=4, show_default=True, help="Noise loop: wiggles per loop.")
@_latent_options
@_output_options(None)
def loop(model, kind, frames, loop_seed, radius, tiles, harmonics, psi, cutoff, noise, noise_strength, class_idx,
         render_seed, out, fps, size, crf, codec, batch, device, preview, quiet):
    """A seamless seeded loop: `bender render loop MODEL --kind circle --frames 120 --out loop.mp4`."""
    from bender.latent.script import PathSpec, WalkScript

    path = PathSpec(kind="circle" if kind == "circle" else "noise-loop", frames=frames, seed=loop_seed,
                    radius=radius, harmonics=harmonics, tiles=tiles)
    script = WalkScript(model=model, path=path,
                        **_common_script_fields(psi, cutoff, noise, noise_strength, class_idx, render_seed, fps,
                                                size, crf, codec, batch))
    _render(script.resolve_paths(Path.cwd()).validate(), out, device, preview, quiet)


@render.command()
@click.argument("model")
@click.option("--seeds", type=IntList(), default="0-15", show_default=True, help="Seeds, one image each.")
@click.option("--cols", type=int, default=None, help="Images per row (default: square).")
@click.option("--mix-seeds", type=IntList(), default=None,
              help="Style-mixing grid: rows are --seeds, columns take --mix-layers from these seeds.")
@click.option("--mix-layers", default="0-3", show_default=True, help="ws range the mix seeds provide.")
@_latent_options
@_output_options("grid.png")
def grid(model, seeds, cols, mix_seeds, mix_layers, psi, cutoff, noise, noise_strength, class_idx, render_seed,
         out, fps, size, crf, codec, batch, device, preview, quiet):
    """A grid of seeds in one image: `bender render grid MODEL --seeds 0-15 --psi 0.7 --out grid.png`."""
    from bender.latent.script import Keyframe, MixSpec, WalkScript

    if mix_seeds:
        rows = [s for s in seeds for _ in mix_seeds]
        keyframe = Keyframe(seeds=rows, mix=MixSpec(seeds=[m for _ in seeds for m in mix_seeds], layers=mix_layers))
        cols = len(mix_seeds)
    else:
        keyframe = Keyframe(seeds=list(seeds))
    script = WalkScript(model=model, space="w", cols=cols, keyframes=[keyframe],
                        **_common_script_fields(psi, cutoff, noise, noise_strength, class_idx, render_seed, fps,
                                                size, crf, codec, batch))
    _render(script.resolve_paths(Path.cwd()).validate(), out, device, preview, quiet)


def _parse_path(text: str) -> list[list[float]]:
    points = []
    for part in text.replace(";", " ").split():
        try:
            u, v = (float(x) for x in part.split(","))
        except ValueError:
            raise BenderError(f"--path: '{part}' is not a point like 0.5,-1 (write points as u,v separated by "
                              "spaces or ';')") from None
        points.append([u, v])
    if not points:
        raise BenderError("--path: no points given")
    return points


def _parse_grid(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise BenderError(f"--grid: expected ROWSxCOLS like 5x7, got {text!r}") from None
    if rows < 1 or cols < 1 or rows * cols > 1024:
        raise BenderError("--grid: between 1x1 and 1024 cells")
    return rows, cols


@render.command()
@click.argument("model")
@click.option("--seeds", type=IntList(), default=None, help="Plane through 3 seeds: origin, u axis end, v axis end.")
@click.option("--sefa", type=IntList(), default=None, help="Axes from SeFa directions I,J (0 = strongest).")
@click.option("--pca", type=IntList(), default=None, help="Axes from PCA (GANSpace) components I,J.")
@click.option("--origin-seed", type=int, default=None, help="Origin of a direction plane (default: the mean w).")
@click.option("--layers", default=None, help="Apply direction axes only to this ws range, e.g. 0-3.")
@click.option("--grid", "grid_size", default="5x5", show_default=True, help="ROWSxCOLS thumbnails of the plane map.")
@click.option("--extent", type=float, default=1.0, show_default=True,
              help="Map covers u, v in [-extent, extent] (direction axes: in standard deviations).")
@click.option("--path", "path_text", default=None,
              help="Render a walk through plane points instead of the map: '0,0 1,0 1,1 0,1'.")
@click.option("--frames", type=int, default=30, show_default=True, help="With --path: frames per segment.")
@click.option("--loop", is_flag=True, help="With --path: close the path.")
@click.option("--interp", type=click.Choice(["lerp", "slerp", "catmull-rom", "cubic"]), default="catmull-rom",
              show_default=True, help="With --path: how to move between points.")
@_latent_options
@_output_options("plane.png")
def plane(model, seeds, sefa, pca, origin_seed, layers, grid_size, extent, path_text, frames, loop, interp, psi,
          cutoff, noise, noise_strength, class_idx, render_seed, out, fps, size, crf, codec, batch, device, preview,
          quiet):
    """A 2-D map of W (or a walk drawn on it): `bender render plane MODEL --seeds 0,1,2 --grid 7x7 --out map.png`."""
    from bender.latent.planes import grid_coords
    from bender.latent.script import DirectionSpec, Keyframe, PlaneSpec, WalkScript

    given = [n for n, v in (("--seeds", seeds), ("--sefa", sefa), ("--pca", pca)) if v]
    if len(given) != 1:
        raise BenderError("choose the plane's axes with exactly one of --seeds A,B,C, --sefa I,J or --pca I,J")
    directions = {}
    if seeds:
        if len(seeds) != 3:
            raise BenderError("--seeds: a plane needs exactly 3 seeds (origin, u, v)")
        spec = PlaneSpec(seeds=list(seeds))
    else:
        idx = sefa or pca
        if len(idx) != 2:
            raise BenderError(f"{given[0]}: give two direction indices, e.g. 0,1")
        kind = "sefa" if sefa else "pca"
        directions = {"u": DirectionSpec(kind=kind, index=idx[0], layers=layers),
                      "v": DirectionSpec(kind=kind, index=idx[1], layers=layers)}
        spec = PlaneSpec(origin_seed=origin_seed, u="u", v="v")
    if path_text:
        keyframes = [Keyframe(plane=p) for p in _parse_path(path_text)]
        cols = None
        if out == Path("plane.png"):
            out = Path("plane-walk.mp4")
    else:
        rows, cols = _parse_grid(grid_size)
        keyframes = [Keyframe(points=grid_coords(rows, cols, extent).tolist())]
    script = WalkScript(model=model, space="w", interpolation=interp, frames=frames, loop=loop, cols=cols,
                        directions=directions, plane=spec, keyframes=keyframes,
                        **_common_script_fields(psi, cutoff, noise, noise_strength, class_idx, render_seed, fps,
                                                size, crf, codec, batch))
    _render(script.resolve_paths(Path.cwd()).validate(), out, device, preview, quiet)


@render.command()
@click.argument("run", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--seeds", type=IntList(), default="0-3", show_default=True, help="Seeds shown side by side.")
@click.option("--frames-per-snapshot", type=int, default=12, show_default=True)
@click.option("--by", type=click.Choice(["index", "kimg"]), default="index", show_default=True,
              help="Space snapshots evenly, or by training progress.")
@click.option("--psi", type=float, default=0.7, show_default=True)
@click.option("--class", "class_idx", type=int, default=None)
@click.option("--still", is_flag=True,
              help="Write one picture instead: a row per seed, a column per snapshot (default RUN/timeline.png).")
@_output_options("")
def timeline(run, seeds, frames_per_snapshot, by, psi, class_idx, still, out, fps, size, crf, codec, batch, device,
             preview, quiet):
    """Watch a training run: fixed seeds morphing through every snapshot (default RUN/timeline.mp4)."""
    from bender.render.timeline import timeline_script, timeline_strip

    out = None if str(out) in ("", ".") else out
    if still:
        from bender.device import pick_device

        path = timeline_strip(run, out, list(seeds), psi, pick_device(device), class_idx=class_idx)
        if not quiet:
            click.echo(f"wrote {path}")
        return
    script = timeline_script(run, list(seeds), fps, frames_per_snapshot, psi, size, by, class_idx)
    script.crf, script.codec, script.batch = crf, codec, batch
    out = out or run / "timeline.mp4"
    _render(script.validate(), out, device, preview, quiet)


_RENDER_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".gif", ".png")


@render.command("script")
@click.argument("script_path", metavar="SCRIPT", type=click.Path(path_type=Path, exists=True))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Output (default: next to the script, named after it, .mp4).")
@click.option("--device", default="auto", show_default=True)
@click.option("--preview", is_flag=True, help="Fast low-resolution render.")
@click.option("--quiet", "-q", is_flag=True)
def script_cmd(script_path, out, device, preview, quiet):
    """Render a walk script (YAML), or re-render the script embedded in an earlier render's file."""
    from bender.latent import script as walk_script

    if script_path.suffix.lower() in _RENDER_SUFFIXES or script_path.is_dir():
        from bender.render.video import read_metadata

        text = read_metadata(script_path).get("bender_script")
        if not text:
            raise BenderError(f"{script_path.name}: no bender walk script in its metadata")
        script = walk_script.loads(text, base=script_path.resolve().parent, where=script_path.name)
        default_out = script_path.with_name(script_path.stem + "-again" + script_path.suffix)
    else:
        script = walk_script.load(script_path)
        name = script_path.name
        for suffix in (".yaml", ".yml", ".json"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        default_out = script_path.with_name(name if Path(name).suffix in _RENDER_SUFFIXES else name + ".mp4")
    _render(script, out or default_out, device, preview, quiet)


@render.command()
@click.argument("model")
def layers(model):
    """List the layers a bend can target, with their resolution and channel count."""
    from bender.io import load
    from bender.latent.bend import bendable_layers

    G = load(model).G_ema
    modules = dict(G.named_modules())
    for name in bendable_layers(G):
        m = modules[name]
        if hasattr(m, "out_channels"):
            channels = m.out_channels
        elif hasattr(m, "conv1"):
            channels = m.conv1.out_channels
        else:  # ToRGB
            channels = m.weight.shape[0]
        res = int(name.split(".")[1][1:])
        click.echo(f"{name:28s} {res:>5d}x{res:<5d} {channels:>5d} channels")
