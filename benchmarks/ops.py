"""Kernel time vs reference time vs the bandwidth floor, for each CUDA op at StyleGAN2 shapes.

    python benchmarks/ops.py [--json results.json] [--reps 20] [--only 256]

Shapes are the largest of each op in NVIDIA's configurations: 256² (channel_base 16384, batch 64:
64 channels at 256², 128 at 128²) and 1024² (channel_base 32768, batch 32: 32 channels at 1024²).
The floor is the fewest bytes the op must move (each input read once, each output written once)
divided by the bandwidth of a large device-to-device copy measured here (bytes read + written), so
"% of floor" is how close a kernel gets to what the memory system allows. Times are medians of CUDA
event timings after warm-up, over inputs rotated so that none fits in L2 between uses.

Each upfirdn2d shape is timed with the tiled kernels (`BENDER_UPFIRDN2D_KERNEL=tiled`) and, where
they cover it, with the row-streaming ones (the default); the `path` column says which ran. The
"worst kernel" line takes bender's default per shape.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bender.ops import backend, setup_filter  # noqa: E402
from bender.ops.bias_act import bias_act, bias_act_ref  # noqa: E402
from bender.ops.upfirdn2d import upfirdn2d, upfirdn2d_ref  # noqa: E402

SQRT2 = math.sqrt(2)


@dataclass
class Row:
    op: str
    config: str
    shape: str
    dtype: str
    kernel_ms: float
    ref_ms: float | None
    floor_ms: float
    path: str = ""

    @property
    def pct_of_floor(self) -> float:
        return 100 * self.floor_ms / self.kernel_ms

    @property
    def speedup(self) -> float | None:
        return self.ref_ms / self.kernel_ms if self.ref_ms else None


def median_ms(fn: Callable[[int], object], n_inputs: int, reps: int, warmup: int = 3) -> float:
    for i in range(warmup):
        fn(i % n_inputs)
    torch.cuda.synchronize()
    events = []
    for i in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(i % n_inputs)
        end.record()
        events.append((start, end))
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in events)


def copy_bandwidth(reps: int) -> float:
    """Bytes per ms of a large device-to-device copy, counting bytes read and written."""
    n = 1 << 30
    src = torch.empty(n, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    ms = median_ms(lambda i: dst.copy_(src), 1, reps)
    return 2 * n / ms


def input_sets(make: Callable[[], tuple], nbytes: int, l2_bytes: int) -> list[tuple]:
    """Enough independent input sets that cycling through them overflows L2 (>= 2x its size)."""
    count = max(1, min(8, math.ceil(2 * l2_bytes / max(nbytes, 1))))
    return [make() for _ in range(count)]


def bench_bias_act(cfg: str, shape: tuple, dtype: torch.dtype, fmt, bw: float, reps: int, l2: int,
                   backward: bool = True) -> list[Row]:
    def make():
        x = (torch.randn(shape, device="cuda") * 2).to(dtype).contiguous(memory_format=fmt)
        b = torch.randn(shape[1], device="cuda").to(dtype)
        dy = torch.randn_like(x)
        return x, b, dy

    nbytes = math.prod(shape) * torch.finfo(dtype).bits // 8
    sets = input_sets(make, 3 * nbytes, l2)
    layout = "NHWC" if fmt == torch.channels_last else "NCHW"
    name = f"{tuple(shape)} {layout}"
    rows = []
    with torch.no_grad():
        k = median_ms(lambda i: bias_act(sets[i][0], sets[i][1], act="lrelu", gain=SQRT2, clamp=256, impl="cuda"),
                      len(sets), reps)
        r = median_ms(lambda i: bias_act_ref(sets[i][0], sets[i][1], 1, "lrelu", 0.2, SQRT2, 256.0), len(sets), reps)
        rows.append(Row("bias_act lrelu+clamp", cfg, name, str(dtype).replace("torch.", ""), k, r, 2 * nbytes / bw))
        if not backward:
            return rows
        from bender.ops.cuda import load

        ext = load().ext
        k = median_ms(lambda i: ext.bias_act(sets[i][0], sets[i][1], sets[i][2], None, 1, 3, 0.2, SQRT2, 256.0, 1),
                      len(sets), reps)
        rows.append(Row("bias_act backward", cfg, name, str(dtype).replace("torch.", ""), k, None, 3 * nbytes / bw))
    return rows


KERNEL_NAMES = {0: "generic", 1: "tiled", 2: "rows"}


def bench_upfirdn2d(op: str, cfg: str, shape: tuple, dtype: torch.dtype, up: int, down: int, pad: tuple, gain: float,
                    bw: float, reps: int, l2: int, fmt: torch.memory_format = torch.contiguous_format) -> list[Row]:
    """The tiled kernel, then the row-streaming one where it covers the call (bender's default), each
    timed through the public op on the same inputs."""
    f = setup_filter([1, 3, 3, 1]).cuda()

    def make():
        return ((torch.randn(shape, device="cuda")).to(dtype).contiguous(memory_format=fmt),)

    elem = torch.finfo(dtype).bits // 8
    n, c, h, w = shape
    ho = (h * up + pad[2] + pad[3] - 4) // down + 1
    wo = (w * up + pad[0] + pad[1] - 4) // down + 1
    nbytes = (n * c * h * w + n * c * ho * wo) * elem
    sets = input_sets(make, nbytes, l2)
    from bender.ops.cuda import load

    ext = load().ext
    rows = []
    with torch.no_grad():
        r = median_ms(lambda i: upfirdn2d_ref(sets[i][0], f, (up, up), (down, down), pad, False, gain),
                      len(sets), reps)
        for choice in backend.UPFIRDN2D_KERNELS:
            path = backend.UPFIRDN2D_KERNELS[choice]
            _, kernel = ext.upfirdn2d(sets[0][0], f, up, up, down, down, *pad, False, gain, path)
            if choice != "tiled" and kernel != 2:
                continue  # the row kernels do not cover this call: the default row says it all
            os.environ["BENDER_UPFIRDN2D_KERNEL"] = choice
            try:
                k = median_ms(lambda i: upfirdn2d(sets[i][0], f, up=up, down=down, padding=pad, gain=gain,
                                                  impl="cuda"), len(sets), reps)
            finally:
                os.environ.pop("BENDER_UPFIRDN2D_KERNEL", None)
            layout = " NHWC" if fmt == torch.channels_last else ""
            rows.append(Row(op, cfg, f"{tuple(shape)}->{ho}x{wo}{layout}", str(dtype).replace("torch.", ""), k, r,
                            nbytes / bw, KERNEL_NAMES[kernel]))
    return rows


def run(reps: int, only: str | None) -> tuple[list[Row], float]:
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 50 << 20)
    bw = copy_bandwidth(reps)
    f16 = torch.float16
    configs = {
        # name: (batch, channels at the top resolution, resolution)
        "256": (64, 64, 256),
        "1024": (32, 32, 1024),
    }
    rows: list[Row] = []
    for cfg, (n, c_top, res) in configs.items():
        if only and cfg != only:
            continue
        label = f"{res}²"
        rows += bench_bias_act(label, (n, c_top, res, res), f16, torch.contiguous_format, bw, reps, l2)
        rows += bench_bias_act(label, (n, c_top, res, res), f16, torch.channels_last, bw, reps, l2, backward=False)
        rows += bench_bias_act(label, (n, c_top, res, res), torch.float32, torch.contiguous_format, bw, reps, l2,
                               backward=False)
        # G: the FIR after the transposed 3x3 conv of each upsampling layer (input 2r+1), and the image skip.
        rows += bench_upfirdn2d("upfirdn2d 1x (G conv0)", label, (n, c_top, res + 1, res + 1), f16, 1, 1,
                                (1, 1, 1, 1), 4.0, bw, reps, l2)
        rows += bench_upfirdn2d("upsample2d 2x (G img)", label, (n, 3, res // 2, res // 2), torch.float32, 2, 1,
                                (2, 1, 2, 1), 4.0, bw, reps, l2)
        # D: the FIR before each strided conv, and the 2x downsampling of the skip/image path.
        rows += bench_upfirdn2d("upfirdn2d 1x (D conv1)", label, (n, c_top, res, res), f16, 1, 1,
                                (2, 2, 2, 2), 1.0, bw, reps, l2)
        rows += bench_upfirdn2d("downsample2d 2x (D skip)", label, (n, c_top, res, res), f16, 1, 2,
                                (1, 1, 1, 1), 1.0, bw, reps, l2)
        # The same two on channels_last tensors: what training runs (its fp16 layers are NHWC).
        rows += bench_upfirdn2d("upfirdn2d 1x (G conv0)", label, (n, c_top, res + 1, res + 1), f16, 1, 1,
                                (1, 1, 1, 1), 4.0, bw, reps, l2, torch.channels_last)
        rows += bench_upfirdn2d("downsample2d 2x (D skip)", label, (n, c_top, res, res), f16, 1, 2,
                                (1, 1, 1, 1), 1.0, bw, reps, l2, torch.channels_last)
        # ...and the 2x downsampling's gradient in D's backward pass: a 2x upsampling.
        rows += bench_upfirdn2d("upsample2d 2x (D grad)", label, (n, c_top, res // 2, res // 2), f16, 2, 1,
                                (2, 1, 2, 1), 4.0, bw, reps, l2, torch.channels_last)
        torch.cuda.empty_cache()
    return rows, bw


def table(rows: list[Row], bw: float) -> str:
    head = f"{'op':<26} {'config':<6} {'shape':<34} {'dtype':<8} {'path':<7} {'kernel ms':>9} {'ref ms':>8} " \
           f"{'speed-up':>8} {'floor ms':>8} {'% floor':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ref = f"{r.ref_ms:8.3f}" if r.ref_ms else f"{'-':>8}"
        sp = f"{r.speedup:7.1f}x" if r.speedup else f"{'-':>8}"
        lines.append(f"{r.op:<26} {r.config:<6} {r.shape:<34} {r.dtype:<8} {r.path:<7} {r.kernel_ms:9.3f} {ref} {sp} "
                     f"{r.floor_ms:8.3f} {r.pct_of_floor:6.0f}%")
    # bender's default: the row-streaming kernel where it covers the shape, else the tiled one.
    tiled = [r for r in rows if r.path != "rows"]
    alt = {(r.op, r.config, r.shape): r for r in rows if r.path == "rows"}
    default = [alt.get((r.op, r.config, r.shape), r) for r in tiled]
    worst = min(r.pct_of_floor for r in default)
    lines.append(f"device-to-device copy: {bw / 1e9:.2f} TB/s (read+write); worst kernel at {worst:.0f}% of its "
                 f"floor (target >= 70%)")
    if alt:
        lines.append(f"with BENDER_UPFIRDN2D_KERNEL=tiled (the kernels before the row-streaming ones): worst at "
                     f"{min(r.pct_of_floor for r in tiled):.0f}%")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--only", choices=["256", "1024"], default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("benchmarks/ops.py needs a CUDA GPU (the kernels are CUDA-only); nothing to measure here.")
        return 2
    rows, bw = run(args.reps, args.only)
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    print(table(rows, bw))
    if args.json:
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(0), "copy_bytes_per_ms": bw,
                                         "rows": [dict(asdict(r), pct_of_floor=r.pct_of_floor) for r in rows]},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
