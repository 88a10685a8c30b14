"""Training speed: seconds per kimg (after warm-up) and peak GPU memory, with and without ADA.

    # GPU, NVIDIA's 'auto' config for one GPU (batch 16, channel_base 16384 below 512², 2 mapping
    # layers, gamma = 0.0002 res² / batch), ADA at a fixed p:
    python benchmarks/train.py --device cuda --res 64 256 1024 --kimg 0.5
    # the same with each phase replayed as a CUDA graph (train --cuda-graphs):
    python benchmarks/train.py --device cuda --res 256 64 1024 --aug on --cuda-graphs --warmup 48
    # CPU, tiny networks (what the tests use) and the small 64² model class of the embedded default:
    python benchmarks/train.py --device cpu --arch tiny small64 --res 32 64 --kimg 0.064

Each row builds a synthetic dataset at that resolution, sets up the real trainer (G, D, G_ema,
ADA, lazy R1 and path length, EMA), runs `--warmup` steps, then times windows of whole steps (a
multiple of 16, so the lazy regularisers run their fair share, covering `--kimg` thousand images)
and reports the fastest of `--repeat` windows. Snapshots are not part of the timing.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bender.train.config import make_config  # noqa: E402
from bender.train.loop import Trainer  # noqa: E402

ARCHS = {
    # NVIDIA's --cfg auto for one GPU (channel_base chosen by resolution inside bender).
    "auto": dict(channel_max=512, map_layers=2, z_dim=512, w_dim=512, num_fp16_res=4, conv_clamp=256),
    # The class of model the embedded default is (64², small channels).
    "small64": dict(channel_base=4096, channel_max=128, map_layers=2, z_dim=128, w_dim=128, num_fp16_res=0,
                    conv_clamp=0),
    "mini64": dict(channel_base=2048, channel_max=64, map_layers=2, z_dim=64, w_dim=64, num_fp16_res=0,
                   conv_clamp=0),
    # The tests' networks.
    "tiny": dict(channel_base=256, channel_max=32, map_layers=2, z_dim=32, w_dim=32, num_fp16_res=0, conv_clamp=0),
}


def make_zip(path: Path, res: int, count: int = 64) -> Path:
    rng = np.random.RandomState(0)
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(count):
            small = rng.randint(0, 256, [8, 8, 3], dtype=np.uint8)
            img = Image.fromarray(small).resize((res, res), Image.BICUBIC)
            buf = io.BytesIO()
            img.save(buf, format="PNG", compress_level=1)
            zf.writestr(f"00000/img{i:08d}.png", buf.getvalue())
        zf.writestr("dataset.json", '{"labels": null}')
    return path


def measure(args, arch: str, res: int, aug: bool, tmp: Path) -> dict:
    data = make_zip(tmp / f"data-{res}.zip", res)
    arch_opts = dict(ARCHS[arch])
    if arch == "auto":
        arch_opts["mbstd_group"] = min(4, args.batch)
    cfg = make_config("scratch", data=str(data), out=str(tmp / "runs"), batch=args.batch, device=args.device,
                      aug="fixed" if aug else "none", aug_p=args.aug_p if aug else None, precision=args.precision,
                      channels_last=args.channels_last, compile=args.compile, compile_mode=args.compile_mode,
                      cuda_graphs=args.cuda_graphs, tick=1e9, timeline=False,
                      **arch_opts)
    trainer = Trainer(cfg, quiet=True)
    cuda = trainer.device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(trainer.device)

    start = time.perf_counter()
    for _ in range(args.warmup):  # with --compile this includes compiling; --compile and --cuda-graphs record
        trainer.train_step({})
    sync()
    warmup_s = time.perf_counter() - start
    recorded = len(trainer._phase_graphs) if trainer._phase_graphs is not None else None
    if cuda:
        torch.cuda.reset_peak_memory_stats(trainer.device)
    steps = max(16, math.ceil(args.kimg * 1000 / args.batch / 16) * 16)
    windows = []
    for _ in range(args.repeat):  # best of N windows: the machine may be shared
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step({})
        sync()
        windows.append(time.perf_counter() - start)
    seconds = min(windows)
    kimg = steps * args.batch / 1000
    return {
        "arch": arch, "res": res, "aug": f"ADA p={args.aug_p:g}" if aug else "off", "batch": args.batch,
        "mode": f"compile:{args.compile_mode}" if args.compile else "cuda-graphs" if args.cuda_graphs else "eager",
        "warm-up s": warmup_s,
        "s/kimg": seconds / kimg, "kimg/s": kimg / seconds, "steps": steps,
        "peak GB": torch.cuda.max_memory_allocated(trainer.device) / 2**30 if cuda else float("nan"),
        "G params (M)": sum(p.numel() for p in trainer.G.parameters()) / 1e6,
        # CUDA graphs recorded by the end of the warm-up -> by the end (recording in a window slows it)
        "graphs": f"{recorded}->{len(trainer._phase_graphs)}" if recorded is not None else "–",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--res", type=int, nargs="+", default=None, help="[cuda: 64 256 1024; cpu: 32 64]")
    parser.add_argument("--arch", nargs="+", default=None, choices=sorted(ARCHS), help="[cuda: auto; cpu: tiny]")
    parser.add_argument("--kimg", type=float, default=0.5, help="timed kimg per row (rounded up to 16 steps)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (cudnn autotune, allocator)")
    parser.add_argument("--repeat", type=int, default=3, help="timed windows per row; the fastest is reported")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--aug", choices=["both", "on", "off"], default="both")
    parser.add_argument("--aug-p", type=float, default=0.5, help="fixed ADA p while timing")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--compile", action="store_true", help="torch.compile G's synthesis and D (train --compile)")
    parser.add_argument("--compile-mode", default="auto", help="[auto: reduce-overhead on CUDA, default on CPU]")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="record each phase as a CUDA graph (train --cuda-graphs)")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    args.res = args.res or ([64, 256, 1024] if cuda else [32, 64])
    args.arch = args.arch or (["auto"] if cuda else ["tiny"])
    augs = {"both": [False, True], "on": [True], "off": [False]}[args.aug]

    device_name = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"# bender train benchmark: {device_name}, torch {torch.__version__}, precision {args.precision}, "
          f"batch {args.batch}, warm-up {args.warmup} steps, best of {args.repeat} windows", flush=True)
    header = ["arch", "res", "aug", "mode", "batch", "steps", "s/kimg", "kimg/s", "peak GB", "G params (M)",
              "warm-up s", "graphs"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.arch:
            for res in args.res:
                for aug in augs:
                    row = measure(args, arch, res, aug, Path(tmp))
                    cells = [f"{row[h]:.3f}" if isinstance(row[h], float) else str(row[h]) for h in header]
                    print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
