"""Host work of one training step: PyTorch operations dispatched per step, by phase.

    python benchmarks/train_ops.py                        # CPU: the 256² step's structure, tiny channels
    python benchmarks/train_ops.py --device cuda          # on a GPU: NVIDIA's auto config, its real paths

At batch 16 a GPU runs StyleGAN2's training step faster than Python can issue it (the H100 run:
64² cost two thirds of 256²), so the step's time is mostly host time, and that grows with the number
of operations dispatched — each is argument parsing, dispatch, an allocation and usually a kernel
launch. Counting them needs no GPU, so a CPU-only session can still see what a change does to the
host's share (the CPU count differs from the GPU's where paths differ: Adam is per tensor on CPU and
multi-tensor on CUDA, resampling uses `fir_separable` on CPU and the kernels on CUDA). Every
aten-level call is counted, views included, through a `TorchDispatchMode`; autograd's backward
operations count too. Phases: the loss terms (`g_main`, `g_pl` every 4 steps, `d_main`, `d_r1` every
16 steps; ADA counted apart although it runs inside them), Adam, G_ema, the rest. With
`--cuda-graphs` the phases are one CUDA-graph replay each on a GPU; on a CPU their replays are
emulated and counted in a row of their own, so the rest is what the host still issues per step.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import train as train_bench  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from bender.train import graphs, loop  # noqa: E402
from bender.train.config import make_config  # noqa: E402


class PhaseCounter(TorchDispatchMode):
    """Counts dispatched operations under the innermost active phase label."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()
        self.stack = ["rest of the step"]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[self.stack[-1]] += 1
        return func(*args, **(kwargs or {}))

    def label(self, fn, name: str):
        def labelled(*args, **kwargs):
            self.stack.append(name)
            try:
                return fn(*args, **kwargs)
            finally:
                self.stack.pop()
        return labelled


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--aug", choices=["on", "off"], default="on")
    ap.add_argument("--steps", type=int, default=16, help="counted steps (16 = one full lazy-regularisation cycle)")
    ap.add_argument("--cuda-graphs", action="store_true", help="the step of train --cuda-graphs (emulated on a CPU)")
    args = ap.parse_args()
    cuda = args.device.startswith("cuda")
    # On a GPU the real config; on a CPU the same blocks and layers with few channels (the count
    # depends on the structure, not the widths).
    arch = dict(train_bench.ARCHS["auto"]) if cuda else dict(channel_base=512, channel_max=16, map_layers=2,
                                                               z_dim=32, w_dim=32, num_fp16_res=0, conv_clamp=256)
    with tempfile.TemporaryDirectory() as tmp:
        data = train_bench.make_zip(Path(tmp) / "d.zip", args.res, 32)
        cfg = make_config("scratch", data=str(data), out=str(Path(tmp) / "runs"), batch=16, device=args.device,
                          aug="fixed" if args.aug == "on" else "none", aug_p=0.5 if args.aug == "on" else None,
                          tick=1e9, timeline=False, mbstd_group=4, **arch)
        trainer = loop.Trainer(cfg, quiet=True)
        if args.cuda_graphs:  # on a CPU the replays are emulated: their operations are counted apart
            trainer.enable_cuda_graphs(emulate=not cuda)
        # allocator, cuDNN and the first lazy-regularisation steps out of the way (with --cuda-graphs:
        # every phase recorded, R1 at step 16)
        for _ in range(17 if args.cuda_graphs else 2):
            trainer.train_step({})
        counter = PhaseCounter()
        if args.cuda_graphs:  # (recording a graph for a new ADA padding counts here too: it is rare)
            graphs.PhaseGraph.run = counter.label(graphs.PhaseGraph.run, "recorded phases (on a GPU: one replay each)")
        else:
            for name in ("g_main", "g_pl", "d_main", "d_r1"):
                setattr(trainer.loss, name, counter.label(getattr(trainer.loss, name), name))
            if trainer.augment is not None:
                trainer.augment.forward = counter.label(trainer.augment.forward, "ADA (inside the losses)")
        for net in ("G", "D"):
            trainer.opt[net].step = counter.label(trainer.opt[net].step, "Adam")
        real_ema = loop.update_ema
        loop.update_ema = counter.label(real_ema, "G_ema")
        try:
            with counter:
                for _ in range(args.steps):
                    trainer.train_step({})
        finally:
            loop.update_ema = real_ema
    total = sum(counter.counts.values())
    where = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"# operations per training step: {args.res}², batch 16, ADA {args.aug}, {where}, torch {torch.__version__}, "
          f"{'CUDA graphs, ' if args.cuda_graphs else ''}mean over {args.steps} steps")
    print("| phase | ops/step | share |")
    print("|---|---:|---:|")
    for name, n in counter.counts.most_common():
        print(f"| {name} | {n / args.steps:.0f} | {100 * n / total:.0f} % |")
    print(f"| **total** | **{total / args.steps:.0f}** | |")


if __name__ == "__main__":
    main()
