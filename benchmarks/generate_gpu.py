"""Generator inference throughput on CUDA: bender's paths next to NVIDIA's published numbers.

    python benchmarks/generate_gpu.py [--res 256 1024] [--batches 20] [--compile] [--json out.json]

NVIDIA's configurations with random weights (speed does not depend on the weights): 256² =
channel_base 16384, channel_max 512, 8 mapping layers, num_fp16_res 4, conv_clamp 256, batch 64;
1024² = channel_base 32768, batch 32. NVIDIA's code, measured on one H100 (torch 2.11, its plugins
working): 1523 img/s at 256², 310 img/s at 1024². Variants, each on top of the previous idea:

  ref ops            the reference PyTorch ops (BENDER_OPS=ref), fp16 blocks — what you get
                     when the kernels do not build
  kernels            bender's CUDA kernels, fp16 blocks: the same computation as NVIDIA's code
  +channels_last     FastGenerator without graphs: NHWC activations/weights in the half blocks
  +bf16              ... with bfloat16 instead of float16 in those blocks
  +CUDA graph        ... replayed from one captured graph (fp16 and bf16)
  +torch.compile     (--compile) Inductor-fused reference ops, in a CUDA graph

Noise is "const" everywhere. Throughput is images per second over `--batches` batches after
warm-up, timed with CUDA events.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bender.nets import Generator  # noqa: E402
from bender.nets.config import GeneratorConfig, MappingConfig, SynthesisConfig  # noqa: E402
from bender.nets.fast import FastGenerator, FastOptions  # noqa: E402

NVIDIA_H100_IMG_PER_S = {256: 1523.0, 1024: 310.0}
CONFIGS = {256: (16384, 64), 1024: (32768, 32)}  # resolution: (channel_base, batch)


def make_generator(res: int) -> Generator:
    channel_base, _ = CONFIGS[res]
    cfg = GeneratorConfig(z_dim=512, w_dim=512, img_resolution=res, mapping=MappingConfig(num_layers=8),
                          synthesis=SynthesisConfig(channel_base=channel_base, channel_max=512, num_fp16_res=4,
                                                    conv_clamp=256))
    torch.manual_seed(0)
    return Generator(cfg).cuda().eval().requires_grad_(False)


def plain(G: Generator):
    def run(z):
        with torch.no_grad():
            return G(z, None, noise_mode="const")
    return run


def throughput(run, batch: int, batches: int, z_dim: int) -> tuple[float, float]:
    """(images per second, ms per batch)."""
    zs = [torch.randn(batch, z_dim, device="cuda") for _ in range(4)]
    for i in range(3):
        run(zs[i % 4])
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for i in range(batches):
        run(zs[i % 4])
    end.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(end) / batches
    return batch * 1000.0 / ms, ms


def variants(G: Generator, with_compile: bool):
    yield "ref ops, fp16 blocks", "ref", lambda: plain(G)
    yield "kernels, fp16 blocks", "auto", lambda: plain(G)
    yield "kernels +channels_last", "auto", lambda: FastGenerator(G, FastOptions(half="float16", cuda_graph=False))
    yield "kernels +channels_last +bf16", "auto", lambda: FastGenerator(G, FastOptions(half="bfloat16",
                                                                                        cuda_graph=False))
    yield "kernels +channels_last +CUDA graph", "auto", lambda: FastGenerator(G, FastOptions(half="float16"))
    yield "kernels +channels_last +bf16 +CUDA graph", "auto", lambda: FastGenerator(G, FastOptions(half="bfloat16"))
    if with_compile:
        yield "torch.compile +channels_last +bf16 +graph", "auto", lambda: FastGenerator(
            G, FastOptions(half="bfloat16", compile=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--res", type=int, nargs="+", default=[256, 1024], choices=sorted(CONFIGS))
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes to warm up)")
    parser.add_argument("--device", default="cuda", help="only cuda is meaningful here")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available() or not args.device.startswith("cuda"):
        print("benchmarks/generate_gpu.py measures CUDA inference; no CUDA GPU here.")
        return 2
    device = torch.cuda.get_device_name(0)
    rows = []
    for res in args.res:
        G = make_generator(res)
        _, batch = CONFIGS[res]
        for name, ops_mode, build in variants(G, args.compile):
            os.environ["BENDER_OPS"] = ops_mode
            torch.backends.cudnn.benchmark = False  # FastGenerator turns it on for its own variants
            t0 = time.perf_counter()
            try:
                img_s, ms = throughput(build(), batch, args.batches, G.z_dim)
                rows.append(dict(res=res, variant=name, batch=batch, img_per_s=img_s, ms_per_batch=ms,
                                 vs_nvidia=img_s / NVIDIA_H100_IMG_PER_S[res], seconds=time.perf_counter() - t0))
            except Exception as e:  # noqa: BLE001 - one variant failing must not hide the others
                rows.append(dict(res=res, variant=name, batch=batch, error=f"{type(e).__name__}: {e}"[:200]))
            torch.cuda.empty_cache()
        os.environ.pop("BENDER_OPS", None)
        del G
        torch.cuda.empty_cache()

    print(f"{device}, torch {torch.__version__}, CUDA {torch.version.cuda}; NVIDIA's reference numbers are "
          f"from one H100 ({NVIDIA_H100_IMG_PER_S[256]:.0f} img/s at 256², {NVIDIA_H100_IMG_PER_S[1024]:.0f} at 1024²)")
    head = f"{'res':>5} {'batch':>5} {'variant':<44} {'img/s':>8} {'ms/batch':>9} {'x NVIDIA':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['res']:>5} {r['batch']:>5} {r['variant']:<44} FAILED: {r['error']}")
        else:
            print(f"{r['res']:>5} {r['batch']:>5} {r['variant']:<44} {r['img_per_s']:8.0f} {r['ms_per_batch']:9.2f} "
                  f"{r['vs_nvidia']:7.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"device": device, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
