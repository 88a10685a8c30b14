"""Where a training step's time goes: GPU kernel time by kind, against the step's wall time.

    python benchmarks/train_profile.py --device cuda                  # NVIDIA's auto config, 256², ADA
    python benchmarks/train_profile.py --device cuda --cuda-graphs    # the same, phases replayed as graphs
    python benchmarks/train_profile.py --device cpu --res 32          # tiny networks: CPU operator time

#6's target (3.0 s/kimg at 256²) is a question of what the step's time is made of. If the GPU's
kernels add up to much less than the wall time, the step is bound by the host issuing work (what
--cuda-graphs removes); if they add up to about the wall time, the table says which kernels to
speed up. The step runs under torch.profiler for `--steps` steps (16: one full lazy-regularisation
cycle) after a warm-up; kernels are grouped by name into kinds (convolutions and GEMMs, layout
transforms, upfirdn2d, bias_act, ADA's grid sampling, the optimizer, reductions, element-wise,
copies), each with its time per step and share, then the 25 most expensive kernels. On a CPU the
same table lists operators' own CPU time (there are no kernels).
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import train as train_bench  # noqa: E402
from torch.autograd import DeviceType  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from bender.train import loop  # noqa: E402
from bender.train.config import make_config  # noqa: E402

# (kind, pattern on the kernel's name), first match wins.
KINDS = [
    ("upfirdn2d (bender)", r"upfirdn2d|fir1d|fir_"),
    ("bias_act (bender)", r"bias_act"),
    ("layout transforms", r"nchwToNhwc|nhwcToNchw|convert.*layout|transpose|permute"),
    ("convolutions / GEMMs", r"gemm|conv|cutlass|xmma|implicit|wgrad|dgrad|fprop|cudnn|sm\d\d_|Kernel2|winograd"),
    ("ADA grid sampling", r"grid_sampler|affine_grid"),
    ("optimizer", r"multi_tensor|adam|foreach"),
    ("reductions", r"reduce|norm|sum|mean|softmax"),
    ("copies / casts", r"copy|cast|fill|memset|memcpy|aten::(cat|stack|clone|contiguous|to|zeros|empty)"),
    ("element-wise", r"elementwise|vectorized|unrolled|pointwise|index|"
                     r"aten::(mul|add|sub|div|lerp|where|clamp|leaky|sigmoid|exp|sqrt|rsqrt|neg|abs|pow|square)"),
]


def kind_of(name: str) -> str:
    low = name.lower()
    for kind, pattern in KINDS:
        if re.search(pattern.lower(), low):
            return kind
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--arch", choices=sorted(train_bench.ARCHS), default=None, help="[cuda: auto; cpu: tiny]")
    ap.add_argument("--aug", choices=["on", "off"], default="on")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=16, help="profiled steps (16 = one lazy-regularisation cycle)")
    ap.add_argument("--warmup", type=int, default=20, help="steps before profiling (cuDNN autotuning, graphs)")
    ap.add_argument("--cuda-graphs", action="store_true", help="record each phase as a CUDA graph first")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    cuda = args.device.startswith("cuda")
    arch_name = args.arch or ("auto" if cuda else "tiny")
    arch = dict(train_bench.ARCHS[arch_name])
    if arch_name == "auto":
        arch["mbstd_group"] = min(4, args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        data = train_bench.make_zip(Path(tmp) / "d.zip", args.res, 32)
        cfg = make_config("scratch", data=str(data), out=str(Path(tmp) / "runs"), batch=args.batch,
                          device=args.device, aug="fixed" if args.aug == "on" else "none",
                          aug_p=0.5 if args.aug == "on" else None, tick=1e9, timeline=False,
                          cuda_graphs=args.cuda_graphs and cuda, **arch)
        trainer = loop.Trainer(cfg, quiet=True)
        for _ in range(args.warmup):
            trainer.train_step({})

        def sync() -> None:
            if cuda:
                torch.cuda.synchronize(trainer.device)

        sync()
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            start = time.perf_counter()
            for _ in range(args.steps):
                trainer.train_step({})
            sync()
            wall = time.perf_counter() - start
    per_kernel: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
    for e in prof.events():
        on_device = e.device_type != DeviceType.CPU
        if on_device != cuda:
            continue
        us = e.time_range.elapsed_us() if on_device else e.self_cpu_time_total
        per_kernel[e.name][0] += us / 1e3
        per_kernel[e.name][1] += 1
    busy = sum(ms for ms, _ in per_kernel.values())
    kinds: dict[str, float] = collections.Counter()
    for name, (ms, _) in per_kernel.items():
        kinds[kind_of(name)] += ms
    steps = args.steps
    where = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    what = "GPU kernel time" if cuda else "operators' own CPU time"
    print(f"# training step profile: {args.res}², batch {args.batch}, ADA {args.aug}, "
          f"{'CUDA graphs' if args.cuda_graphs and cuda else 'eager'}, {where}, torch {torch.__version__}, "
          f"{steps} steps after {args.warmup}")
    print(f"wall: {1e3 * wall / steps:.1f} ms/step ({wall / (steps * args.batch / 1000):.2f} s/kimg); "
          f"{what}: {busy / steps:.1f} ms/step = {100 * busy / (1e3 * wall):.0f} % of wall")
    print(f"| kind | ms/step | share of {what} |")
    print("|---|---:|---:|")
    for kind, ms in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {ms / steps:.2f} | {100 * ms / max(busy, 1e-9):.1f} % |")
    print(f"\n| top {args.top} by time | kind | calls/step | ms/step | share |")
    print("|---|---|---:|---:|---:|")
    for name, (ms, n) in sorted(per_kernel.items(), key=lambda kv: -kv[1][0])[: args.top]:
        short = name if len(name) <= 90 else name[:87] + "..."
        share = 100 * ms / max(busy, 1e-9)
        print(f"| `{short}` | {kind_of(name)} | {n / steps:.1f} | {ms / steps:.3f} | {share:.1f} % |")


if __name__ == "__main__":
    main()
