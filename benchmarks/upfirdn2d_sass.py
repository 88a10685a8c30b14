"""Instructions per output of the upfirdn2d kernels, read from their machine code (no GPU needed).

    python benchmarks/upfirdn2d_sass.py [--copy-tbs 4.25 --sms 132 --clock-ghz 1.98]

A static model for machines without a GPU (numbers in BENCHMARKS.md, "CUDA kernels"). A copy of
bender/ops/cuda is compiled with nvcc (-O3, sm_90) after pinning every run-time branch to the one an
interior thread of a large image takes (planar: 16-byte loads, one load pass, one plane per block,
aligned wide stores, window inside the row, the separable filter, the first alignment case;
channels_last: the tiled kernels' channels_last paths); the source edits are listed in ROWS,
TILED_PLANAR and TILED_CL, and each must apply, so the script fails loudly when the kernels change
shape. Then, from cuobjdump's SASS:

* tiled kernels: the instructions of the main loop's body (one tile per iteration) divided by the
  outputs one thread computes per tile (SX * SY);
* row-streaming kernels: the whole kernel (it has no loop) divided by the outputs one thread
  computes (RS rows * OX), setup included.

"budget" is how many instructions per output an SM can issue (4 warp instructions per cycle) while
its share of DRAM traffic runs at the floor: (4 * 32) / (outputs per cycle at the floor); a kernel
above it is bound by instruction issue at "ceiling" = budget / instructions of the floor.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CUDA_DIR = Path(__file__).resolve().parents[1] / "bender" / "ops" / "cuda"

# (file, text, replacement): pin each run-time branch to the interior thread's side. ROWS for both
# layouts of the row-streaming kernels; TILED_PLANAR / TILED_CL for the tiled kernels' two layouts.
ROWS = [
    ("upfirdn2d_rows.cuh", "        switch (r.s) {",
     "        window_at<0>(r.w, v);\n        if (false) switch (r.s) {"),
    ("upfirdn2d_rows.cuh", "        if (!cols_inside) {", "        if (false) {"),
    ("upfirdn2d_rows.cuh", "        if (p.rows_vec_store) {", "        if (true) {"),
    ("upfirdn2d_rows.cuh",
     "            if (ox0 >= 0 && ox0 + OUT <= p.wo && (dst - static_cast<T*>(p.y)) % OUT == 0) {",
     "            if (true) {"),
    ("upfirdn2d_rows.cuh", "    else\n        rows_walk<U, D, K, RS, false>(l, oy0, iy0, taps, fy, fx);", ""),
]
TILED_PLANAR = [
    ("upfirdn2d.cuh", "    if (p.vec_load) {", "    if (true) {"),
    ("upfirdn2d.cuh", "    for (int pass = 1; pass < p.load_passes; pass++) {",
     "    for (int pass = 1; pass < 1; pass++) {"),
    ("upfirdn2d.cuh", "    if (!p.channels_fastest) {\n        tx = tid % p.bx",
     "    if (true) {\n        tx = tid % p.bx"),
    ("upfirdn2d.cuh", "    if (!p.channels_fastest) {\n        const float* src",
     "    if (true) {\n        const float* src"),
    ("upfirdn2d.cuh", "        if (row_vec && (row + ox0) % SX == 0) {", "        if (true) {"),
    ("upfirdn2d.cuh", "    const int pl = p.bp > 1 ? row / p.tih : 0;", "    const int pl = 0;"),
]
TILED_CL = [
    ("upfirdn2d.cuh", "    if (p.vec_load) {", "    if (false) {"),
    ("upfirdn2d.cuh", "    } else if (!p.channels_fastest) {", "    } else if (false) {"),
    ("upfirdn2d.cuh", "    for (int pass = 1; pass < p.load_passes; pass++) {",
     "    for (int pass = 1; pass < 1; pass++) {"),
    ("upfirdn2d.cuh", "    if (!p.channels_fastest) {\n        tx = tid % p.bx",
     "    if (false) {\n        tx = tid % p.bx"),
    ("upfirdn2d.cuh", "    if (!p.channels_fastest) {\n        const float* src",
     "    if (false) {\n        const float* src"),
    ("upfirdn2d.cuh", "        if (row_vec && (row + ox0) % SX == 0) {", "        if (false) {"),
]
PIN = ROWS + TILED_PLANAR + TILED_CL  # every edit the model makes (tests check they all still apply)
VARIANTS = {"planar": ROWS + TILED_PLANAR, "channels_last": ROWS + TILED_CL}


@dataclass
class Case:
    op: str
    variant: str  # which pinned build (VARIANTS)
    kernel: str  # mangled-name fragment
    outputs: int  # outputs per thread (per tile for the tiled kernels)
    bytes_per_output: float  # DRAM bytes per output at the floor
    loop: bool


CASES = [
    Case("1x filter, fp16, NCHW, tiled", "planar", "tiled_kernelI6__halfLi1ELi1ELi4ELi4ELi4E", 16, 4.0, True),
    Case("1x filter, fp16, NCHW, rows", "planar", "rows_kernelI6__halfLi1ELi1ELi4ELi16ELb0E", 16 * 8, 4.0, False),
    Case("2x down, fp16, NCHW, tiled", "planar", "tiled_kernelI6__halfLi1ELi2ELi4ELi2ELi2E", 4, 10.0, True),
    Case("2x down, fp16, NCHW, rows", "planar", "rows_kernelI6__halfLi1ELi2ELi4ELi8ELb0E", 8 * 8, 10.0, False),
    Case("2x up, fp32, NCHW, tiled", "planar", "tiled_kernelIfLi2ELi1ELi4ELi4ELi4E", 16, 5.0, True),
    Case("2x up, fp32, NCHW, rows", "planar", "rows_kernelIfLi2ELi1ELi4ELi16ELb0E", 16 * 4, 5.0, False),
    Case("1x filter, fp32, NCHW, rows", "planar", "rows_kernelIfLi1ELi1ELi4ELi16ELb0E", 16 * 4, 8.0, False),
    Case("1x filter, fp16, NHWC, tiled", "channels_last", "tiled_kernelI6__halfLi1ELi1ELi4ELi4ELi4E", 16, 4.0, True),
    Case("1x filter, fp16, NHWC, rows", "channels_last", "rows_kernelI6__halfLi1ELi1ELi4ELi16ELb1E", 16 * 8, 4.0,
         False),
    Case("2x down, fp16, NHWC, tiled", "channels_last", "tiled_kernelI6__halfLi1ELi2ELi4ELi2ELi2E", 4, 10.0, True),
    Case("2x down, fp16, NHWC, rows", "channels_last", "rows_kernelI6__halfLi1ELi2ELi4ELi8ELb1E", 8 * 8, 10.0, False),
    Case("2x up, fp16, NHWC, tiled", "channels_last", "tiled_kernelI6__halfLi2ELi1ELi4ELi4ELi4E", 16, 2.5, True),
    Case("2x up, fp16, NHWC, rows", "channels_last", "rows_kernelI6__halfLi2ELi1ELi4ELi16ELb1E", 16 * 8, 2.5, False),
]


def find_cuobjdump() -> str:
    found = shutil.which("cuobjdump")
    if found:
        return found
    home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    for cand in [Path(home) / "bin" / "cuobjdump", *Path(sys.prefix).glob("lib/python*/site-packages/triton/backends/"
                                                                          "nvidia/bin/cuobjdump")]:
        if cand.exists():
            return str(cand)
    sys.exit("cuobjdump not found: put the CUDA toolkit's bin on PATH (or install triton, which bundles one)")


def functions(sass: str) -> dict[str, list[tuple[int, str]]]:
    out = {}
    for chunk in re.split(r"\n\s*Function : ", sass)[1:]:
        name = chunk.split("\n", 1)[0].strip()
        ins = []
        for line in chunk.splitlines():
            m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
            if m:
                ins.append((int(m.group(1), 16), m.group(2)))
        out[name] = ins
    return out


def opcode(text: str) -> str:
    return re.sub(r"^@!?U?P\w+\s+", "", text).split()[0].split(".")[0]


def loop_body(ins: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The longest backward branch's body: the tiled kernels' loop over tiles."""
    index = {a: i for i, (a, _) in enumerate(ins)}
    best: list[tuple[int, str]] = []
    for i, (addr, text) in enumerate(ins):
        m = re.search(r"\bBRA\b.*?0x([0-9a-f]+)", text)
        if m and int(m.group(1), 16) < addr and int(m.group(1), 16) in index:
            body = ins[index[int(m.group(1), 16)]: i + 1]
            if len(body) > len(best):
                best = body
    return best


def compiled_sass(nvcc: str, cuobjdump: str, pins: list[tuple[str, str, str]]) -> str:
    """SASS of the upfirdn2d kernels (float and half), compiled from a copy of the sources with `pins`
    applied."""
    with tempfile.TemporaryDirectory() as tmp:
        for f in CUDA_DIR.iterdir():
            if f.suffix in (".cu", ".cuh", ".h"):
                shutil.copy(f, tmp)
        for name, old, new in pins:
            path = Path(tmp) / name
            text = path.read_text()
            if old not in text:
                sys.exit(f"{name} changed: cannot pin {old.strip()!r}; update the pins in {Path(__file__).name}")
            path.write_text(text.replace(old, new, 1))
        sass = []
        for src in ("upfirdn2d.cu", "upfirdn2d_rows_f32.cu", "upfirdn2d_rows_f16.cu"):
            obj = Path(tmp) / (src + ".o")
            subprocess.run([nvcc, "-c", "-std=c++17", "-O3", "-arch=sm_90", "-diag-suppress", "177",
                            str(Path(tmp) / src), "-o", str(obj)], check=True)
            sass.append(subprocess.run([cuobjdump, "-sass", str(obj)], check=True, capture_output=True,
                                       text=True).stdout)
        return "\n".join(sass)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copy-tbs", type=float, default=4.25, help="device copy bandwidth, read+write (H200: 4.25)")
    parser.add_argument("--sms", type=int, default=132)
    parser.add_argument("--clock-ghz", type=float, default=1.98)
    args = parser.parse_args()
    nvcc = shutil.which("nvcc")
    if not nvcc:
        sys.exit("nvcc not found: this model compiles the kernels")
    cuobjdump = find_cuobjdump()
    sass = {name: compiled_sass(nvcc, cuobjdump, pins) for name, pins in VARIANTS.items()}
    funcs = {name: functions(text) for name, text in sass.items()}
    bytes_per_cycle = args.copy_tbs * 1e12 / args.sms / (args.clock_ghz * 1e9)
    print(f"floor: {bytes_per_cycle:.1f} DRAM bytes per SM cycle ({args.copy_tbs} TB/s, {args.sms} SMs, "
          f"{args.clock_ghz} GHz); issue: 128 thread instructions per SM cycle")
    print("| kernel (interior thread) | instructions | outputs | per output | FFMA per output | budget | ceiling |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for case in CASES:
        variant = funcs[case.variant]
        name = next((n for n in variant if case.kernel in n), None)
        if name is None:
            sys.exit(f"no kernel matching {case.kernel}")
        ins = loop_body(variant[name]) if case.loop else variant[name]
        ffma = sum(1 for _, t in ins if opcode(t) == "FFMA")
        per = len(ins) / case.outputs
        budget = 128 / (bytes_per_cycle / case.bytes_per_output)
        print(f"| {case.op} | {len(ins)} | {case.outputs} | {per:.1f} | {ffma / case.outputs:.1f} | {budget:.0f} | "
              f"{min(100 * budget / per, 999):.0f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
