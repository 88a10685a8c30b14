"""Rendering throughput: a 256x256 latent walk vs the raw generator at the same batch size.

    python benchmarks/render.py                      # CPU
    python benchmarks/render.py --device cuda        # GPU (add --frames 240 --batch 16 for a longer run)

Columns:
- raw G: images/s of `G(z, noise_mode="const")` on ready-made z batches (device synchronised), the
  ceiling for any renderer;
- render inline: images/s of `render_frames(prefetch=0)` (interpolation, per-frame noise,
  truncation, uint8 conversion and copy to the host) in the calling thread, like raw G; overhead is
  1 - inline / raw;
- render (prefetch): the default, batches made by a background thread while the caller consumes;
- +mp4: the whole `render_script` path including H.264 encoding and the sidecar;
- walk ms/frame: host time of `Walk.frame` (the interpolation the host does per frame while the
  device renders the previous batch).
The target (issue 7): on a GPU, render >= 80 % of raw G (rendering overhead <= 20 %).
The generator has random weights with StyleGAN2-ADA's 256x256 shape (channel_base 16384,
channel_max 512, 8 mapping layers, fp16 in the top 4 resolutions on CUDA); speed does not depend on
the weights' values.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bender.device import pick_device  # noqa: E402
from bender.io import Model, save_model  # noqa: E402
from bender.latent import script as walk_script  # noqa: E402
from bender.latent.walk import Walk  # noqa: E402
from bender.nets import Generator, GeneratorConfig  # noqa: E402
from bender.nets.config import MappingConfig, SynthesisConfig  # noqa: E402
from bender.render.frames import render_frames  # noqa: E402
from bender.render.script import render_script  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_model(res: int, path: Path) -> Path:
    cfg = GeneratorConfig(z_dim=512, w_dim=512, img_resolution=res, mapping=MappingConfig(num_layers=8),
                          synthesis=SynthesisConfig(channel_base=16384, channel_max=512, num_fp16_res=4,
                                                    conv_clamp=256))
    torch.manual_seed(0)
    return save_model(Model(G_ema=Generator(cfg).eval()), path)


@torch.no_grad()
def raw_g(G, device, batch: int, images: int) -> float:
    """images/s of the bare generator on fixed z batches."""
    z = torch.randn(batch, G.z_dim, device=device)
    G(z, None, noise_mode="const")  # warm-up
    sync(device)
    start = time.perf_counter()
    done = 0
    while done < images:
        G(z, None, noise_mode="const")
        done += batch
    sync(device)
    return done / (time.perf_counter() - start)


def render_rate(walk, device, prefetch: int) -> float:
    sync(device)
    start = time.perf_counter()
    count = sum(1 for _ in render_frames(walk, prefetch=prefetch))
    sync(device)
    return count / (time.perf_counter() - start)


def walk_script_for(model: Path, frames: int, batch: int) -> walk_script.WalkScript:
    """Built directly (no YAML parsing), so the GPU machine needs no PyYAML for the core columns."""
    keys = [walk_script.Keyframe(seed=s) for s in (1, 2, 3, 4)]
    return walk_script.WalkScript(model=str(model), loop=True, frames=max(1, frames // len(keys)), batch=batch,
                                  psi=0.7, interpolation="slerp", keyframes=keys).validate()


def can_encode() -> bool:
    """The +mp4 column needs imageio-ffmpeg and PyYAML (for the sidecar), absent on some GPU boxes."""
    try:
        import imageio_ffmpeg  # noqa: F401
        import yaml  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--batch", type=int, nargs="+", default=[8])
    ap.add_argument("--repeats", type=int, default=2, help="best of N timings")
    args = ap.parse_args()
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.machine()}, " \
        f"{torch.get_num_threads()} threads)"
    # Row by row, so a run stopped by a time limit keeps what it measured.
    print(f"\nrender benchmark: {args.res}x{args.res} walk, device {name}, torch {torch.__version__}\n")
    print("| batch | frames | raw G img/s | render inline frames/s | overhead | render (prefetch) frames/s "
          "| render+mp4 frames/s | walk ms/frame |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model(args.res, Path(tmp) / "g.safetensors")
        for batch in args.batch:
            script = walk_script_for(model, args.frames, batch)
            walk = Walk(script, device)
            n = walk.num_frames
            list(render_frames(walk, stop=min(n, batch)))  # warm-up (same shapes)
            # Best of `repeats`, raw and render measured alternately: shared machines are noisy.
            raw = inline = threaded = 0.0
            for _ in range(args.repeats):
                raw = max(raw, raw_g(walk.G, device, batch, n))
                inline = max(inline, render_rate(walk, device, prefetch=0))
                threaded = max(threaded, render_rate(walk, device, prefetch=2))
            start = time.perf_counter()
            for i in range(n):
                walk.frame(i)
            walk_ms = 1000 * (time.perf_counter() - start) / n
            mp4_rate = float("nan")
            if can_encode():
                start = time.perf_counter()
                result = render_script(script, Path(tmp) / "walk.mp4", device=device, walk=walk)
                mp4_rate = result.video.frames / (time.perf_counter() - start)
            print(f"| {batch} | {n} | {raw:.2f} | {inline:.2f} | {100 * (1 - inline / raw):+.1f} % | {threaded:.2f} "
                  f"| {mp4_rate:.2f} | {walk_ms:.3f} |", flush=True)


if __name__ == "__main__":
    main()
