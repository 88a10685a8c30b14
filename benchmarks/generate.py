"""Generator throughput: images/s for StyleGAN2 G at 64², 256², 1024² on CPU (and CUDA if present).

NVIDIA's standard configs (random weights; speed does not depend on the values): z = w = 512,
8 mapping layers, channel_base 16384 up to 256² and 32768 from 512² (64² also measured with 8192,
the CPU target's config), channel_max 512, num_fp16_res 4, conv_clamp 256.

    python benchmarks/generate.py                     # CPU, batch 1, all resolutions
    python benchmarks/generate.py --device cuda       # GPU, NVIDIA's batch sizes (64 / 32)
    python benchmarks/generate.py --device cuda --configs 256,1024 --compile   # + torch.compile row

GPU rows: `native` (fp16 blocks, bender's CUDA kernels: the computation NVIDIA's code does),
`ref-ops` (the same with BENDER_OPS=ref, i.e. when the kernels do not build), `bf16`, `fp32`, and
bender.nets.fast.FastGenerator — channels_last half blocks replayed from a CUDA graph —
as `fast-fp16` / `fast-bf16` (`fast-compile`: also torch.compile, with --compile).

Prints one table. Targets (CPU, batch 1, this repo's 2-core machine kind): 256² <= 120 ms/image,
64² (channel_base 8192) <= 35 ms/image. NVIDIA's code, same weights: 351 ms and 101 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bender.nets import Generator, GeneratorConfig, MappingConfig, SynthesisConfig  # noqa: E402

CONFIGS = {  # name: (resolution, channel_base, CPU target ms/img, NVIDIA CPU ms/img)
    "64-cb8192": (64, 8192, 35.0, 101.0),
    "64": (64, 16384, None, None),
    "256": (256, 16384, 120.0, 351.0),
    "1024": (1024, 32768, None, None),
}
GPU_BATCH = {64: 64, 256: 64, 1024: 32}
NVIDIA_GPU = {256: 1523.0, 1024: 310.0}  # img/s, 1xH100, NVIDIA's code with its plugins (issue 3)


def make_generator(res: int, channel_base: int) -> Generator:
    cfg = GeneratorConfig(z_dim=512, w_dim=512, img_resolution=res, mapping=MappingConfig(num_layers=8),
                          synthesis=SynthesisConfig(channel_base=channel_base, channel_max=512, num_fp16_res=4,
                                                    conv_clamp=256))
    return Generator(cfg).eval().requires_grad_(False)


FAST = {  # row name -> FastOptions
    "fast-fp16": dict(half="float16"),
    "fast-bf16": dict(half="bfloat16"),
    "fast-bf16-unfused": dict(half="bfloat16", fused_modconv=False),  # float32 layers: plain convolutions
    "fast-compile": dict(half="bfloat16", compile=True),
}


def make_runner(G: Generator, precision: str):
    """z -> images for one row. precision: 'fp32' (force_fp32), 'native' (fp16 blocks in fp16; CUDA),
    'bf16' (fp16 blocks in bf16), 'ref-ops' (native with the reference ops), or a FastGenerator row."""
    torch.backends.cudnn.benchmark = False  # FastGenerator turns it on for its own rows
    if precision in FAST:
        from bender.nets.fast import FastGenerator, FastOptions

        return FastGenerator(G, FastOptions(**FAST[precision]))
    kwargs = {"force_fp32": precision == "fp32",
              "half_dtype": torch.bfloat16 if precision == "bf16" else torch.float16}
    return lambda z: G(z, noise_mode="const", **kwargs)


def time_generator(G: Generator, batch: int, device: torch.device, repeats: int, warmup: int,
                   precision: str) -> list[float]:
    run = make_runner(G, precision)
    z = torch.randn(batch, G.z_dim, device=device)
    times = []
    previous_ops = os.environ.get("BENDER_OPS")
    if precision == "ref-ops":
        os.environ["BENDER_OPS"] = "ref"
    try:
        with torch.inference_mode():
            for i in range(warmup + repeats):
                if device.type == "cuda":
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    run(z)
                    end.record()
                    torch.cuda.synchronize()
                    elapsed = start.elapsed_time(end) / 1e3
                else:
                    t0 = time.perf_counter()
                    run(z)
                    elapsed = time.perf_counter() - t0
                if i >= warmup:
                    times.append(elapsed)
    finally:
        if previous_ops is None:
            os.environ.pop("BENDER_OPS", None)
        else:
            os.environ["BENDER_OPS"] = previous_ops
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, or all")
    ap.add_argument("--configs", default="64-cb8192,64,256,1024", help=f"comma list of {', '.join(CONFIGS)}")
    ap.add_argument("--batch", type=int, default=None, help="override batch size")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--compile", action="store_true", help="GPU: also time FastGenerator with torch.compile")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("CUDA not available; skipping GPU rows")
        devices = [d for d in devices if d != "cuda"]

    # The table is printed row by row, so a run stopped by a time limit keeps what it measured.
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}")
    head = ("config", "device", "precision", "batch", "ms/img", "img/s", "target", "vs NVIDIA")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|", flush=True)
    for dev_name in devices:
        device = torch.device(dev_name)
        for name in args.configs.split(","):
            res, cb, target, nvidia = CONFIGS[name]
            G = make_generator(res, cb).to(device)
            batch = args.batch or (1 if dev_name == "cpu" else GPU_BATCH[res])
            repeats = args.repeats or (5 if dev_name == "cpu" and res >= 1024 else 20)
            gpu_rows = ["ref-ops", "native", "bf16", "fp32", "fast-fp16", "fast-bf16", "fast-bf16-unfused"]
            gpu_rows += ["fast-compile"] if args.compile else []
            for precision in (["fp32", "bf16"] if dev_name == "cpu" else gpu_rows):
                fp32 = precision == "fp32"
                try:
                    times = time_generator(G, batch, device, repeats, warmup=2 if dev_name == "cpu" else 5,
                                           precision=precision)
                except Exception as e:  # noqa: BLE001 - one failing row must not hide the others
                    print(f"{name} {dev_name} {precision}: FAILED {type(e).__name__}: {str(e)[:200]}")
                    continue
                med = statistics.median(times)
                ms_img = med / batch * 1e3
                ref = nvidia if dev_name == "cpu" else NVIDIA_GPU.get(res)
                if dev_name == "cpu":
                    vs = f"{ref / ms_img:.2f}x faster" if ref else ""
                    goal = f"<= {target:.0f} ms" if target else ""
                else:
                    vs = f"{batch / med / ref:.2f}x NVIDIA" if ref else ""
                    goal = ">= 2x NVIDIA" if ref and not fp32 else ""
                print(f"| {name} | {dev_name} | {precision} | {batch} | {ms_img:.1f} | {batch / med:.1f} | {goal} "
                      f"| {vs} |", flush=True)
            del G


if __name__ == "__main__":
    main()
