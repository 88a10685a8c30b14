"""Render the same set of pictures and videos for several models, through bender's library.

For each MODEL (an NVIDIA .pkl, a bender .safetensors, a training-run folder, or `default`) this
writes into OUT/<model name>/:

    seeds/seed-0003.png   one PNG per seed (recipe in the PNG's text chunks)
    grid.png              all seeds in one picture
    walk.mp4              a looping walk through the seeds (+ walk.mp4.yaml: its walk script)
    timeline.mp4          for a run folder: the seeds through every snapshot of the run

Same seeds, ψ and noise for every model, so the folders can be compared side by side. Models are
rendered one after another and only one is in memory at a time. Example:

    python examples/batch_render.py default runs/00000-rocks-64-bend --seeds 0-7 --out renders
    python examples/batch_render.py ~/models/*.pkl --seeds 1,5,9 --psi 0.5 --no-walk --device cuda
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import torch

from bender.cli.common import parse_int_list
from bender.device import pick_device
from bender.errors import BenderError
from bender.io import load
from bender.io.runs import list_snapshots
from bender.latent.generate import images_for_seeds
from bender.latent.script import Keyframe, WalkScript
from bender.render.images import make_grid, save_png
from bender.render.script import render_script
from bender.render.timeline import render_timeline


def folder_name(model: str) -> str:
    """A readable, file-system-safe folder name for a model argument."""
    path = Path(model)
    name = path.name if path.is_dir() else path.stem or model
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "model"


def render_model(model: str, out: Path, seeds: list[int], args: argparse.Namespace, device: torch.device) -> list[Path]:
    """Everything for one model; returns the files written."""
    written: list[Path] = []
    loaded = load(model, device=str(device))
    G = loaded.G_ema.eval().requires_grad_(False)
    images = images_for_seeds(G, seeds, truncation_psi=args.psi, noise_mode=args.noise, device=device)
    recipe = {"model": model, "model_sha256": loaded.lineage.source_sha256, "truncation_psi": args.psi,
              "noise_mode": args.noise}
    for seed, image in zip(seeds, images):
        written.append(save_png(image, out / "seeds" / f"seed-{seed:04d}.png", {**recipe, "seed": seed}))
    written.append(save_png(make_grid(images, cols=args.cols), out / "grid.png",
                            {**recipe, "seeds": ",".join(map(str, seeds))}))
    del loaded, G  # the walk and the timeline load what they need themselves

    if args.walk_frames > 0 and len(seeds) > 1:
        script = WalkScript(model=model, keyframes=[Keyframe(seed=s) for s in seeds], frames=args.walk_frames,
                            loop=True, interpolation="slerp", easing="sine", psi=args.psi, noise=args.noise,
                            fps=args.fps)
        result = render_script(script.resolve_paths(Path.cwd()).validate(), out / "walk.mp4", device=device,
                               preview=args.preview)
        written += [result.video.path, result.script_path]

    if args.timeline and Path(model).is_dir() and len(list_snapshots(model)) > 1:
        result = render_timeline(model, out / "timeline.mp4", seeds=seeds[:args.timeline_seeds], psi=args.psi,
                                 fps=args.fps, device=device, preview=args.preview)
        written += [result.video.path, result.script_path]
    return written


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model files, run folders, or 'default'")
    ap.add_argument("--out", type=Path, default=Path("renders"), help="output folder (default: renders/)")
    ap.add_argument("--seeds", default="0-7", help="seeds, e.g. 0-7 or 1,5,9 (default: 0-7)")
    ap.add_argument("--psi", type=float, default=0.7, help="truncation psi (default: 0.7)")
    ap.add_argument("--noise", choices=["const", "random", "none"], default="const")
    ap.add_argument("--cols", type=int, default=None, help="grid columns (default: square)")
    ap.add_argument("--walk-frames", type=int, default=24, help="frames per walk segment; 0: no walk")
    ap.add_argument("--no-walk", dest="walk_frames", action="store_const", const=0)
    ap.add_argument("--no-timeline", dest="timeline", action="store_false", help="skip run folders' timelines")
    ap.add_argument("--timeline-seeds", type=int, default=4, help="first N seeds in the timeline (default: 4)")
    ap.add_argument("--fps", type=float, default=24.0)
    ap.add_argument("--preview", action="store_true", help="quick low-resolution videos")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        seeds = parse_int_list(args.seeds)
        device = pick_device(args.device)
        names = [folder_name(m) for m in args.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise BenderError(f"two models would share the output folder {dupes[0]!r}; render them separately")
        for model, name in zip(args.models, names):
            start = time.perf_counter()
            files = render_model(model, args.out / name, seeds, args, device)
            print(f"{model}: {len(files)} files in {args.out / name} ({time.perf_counter() - start:.1f} s)")
    except BenderError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
