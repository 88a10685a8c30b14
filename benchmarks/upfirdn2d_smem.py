"""Shared-memory wavefronts of the tiled upfirdn2d kernels per tile, from their store/load addresses.

    python benchmarks/upfirdn2d_smem.py

A static model, for machines without a GPU (numbers in BENCHMARKS.md, "CUDA kernels"): it replays
the shared-memory addresses that the load phase (old: one tile row per warp; new: flattened 16-byte
chunks, stored unrotated or rotated per lane) and the compute phase (float4 window loads) issue for
one interior tile of each benchmark shape, with the plans bender/ops/cuda/upfirdn2d.cuh picks for
large images (16x8 threads, one plane per block). A warp instruction costs as many wavefronts as
the most distinct 4-byte words that any one of the 32 banks receives. The last column is the SM
cycles one tile may take at the bandwidth floor (its DRAM bytes at 3.0 TB/s over 132 SMs, 1.755
GHz): shared-memory work above it caps the kernel below the floor.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

THREADS, BX, BY, K = 128, 16, 8, 4


def wavefronts(words: list[int]) -> int:
    banks = defaultdict(set)
    for a in words:
        banks[a % 32].add(a)
    return max((len(s) for s in banks.values()), default=0)


@dataclass
class Tile:
    up: int
    down: int
    sx: int
    itemsize: int

    def __post_init__(self) -> None:
        self.step = self.sx * self.down // self.up
        self.win = ((self.sx - 1) * self.down + K - 1) // self.up + 1
        self.nvx = -(-self.win // self.step)
        self.tiw = (BX - 1) * self.step + self.win
        self.tih = (BY - 1) * self.step + self.win
        self.pitch = (BX - 1) * self.step + self.nvx * self.step
        self.ve = 16 // self.itemsize  # elements per 16-byte chunk
        self.cpr = (self.pitch + 2 * self.ve - 2) // self.ve
        self.nv = 6 if self.itemsize == 4 else 4


def stores_new(t: Tile, shift: list[int], rotate: bool) -> int:
    """Flattened (row, chunk) items, NV per thread; lane stores element (e + rot) % VE at step e."""
    items, total = t.tih * t.cpr, 0
    for k in range(t.nv):
        for warp in range(THREADS // 32):
            lanes = [i for i in range(k * THREADS + warp * 32, k * THREADS + warp * 32 + 32) if i < items]
            for e in range(t.ve):
                words = []
                for i in lanes:
                    row, j = divmod(i, t.cpr)
                    col0 = j * t.ve - shift[row]
                    c = (e + (j * t.ve // 32) % t.ve) % t.ve if rotate else e
                    if 0 <= col0 + c < t.pitch:
                        words.append(row * t.pitch + col0 + c)
                total += wavefronts(words)
    return total


def stores_old(t: Tile, shift: list[int], hi: int) -> int:
    """The kernel before: a warp per row, lanes over that row's chunks, element e at step e."""
    total = 0
    for row in range(t.tih):
        chunks = range((shift[row] + hi - 1) // t.ve + 1)  # those holding tile columns [0, hi)
        for first in range(0, len(chunks), 32):
            for e in range(t.ve):
                cols = [c * t.ve + e - shift[row] for c in chunks[first:first + 32]]
                total += wavefronts([row * t.pitch + col for col in cols if 0 <= col < hi])
    return total


def loads_compute(t: Tile) -> int:
    """Each thread's window: (rows) x NVX float4 loads; a warp's float4 load runs as 4 quarter-warps."""
    total, rows = 0, t.tih - (BY - 1) * t.step
    for warp in range(THREADS // 32):
        for r in range(rows):
            for v in range(t.nvx):
                for q in range(4):
                    words = []
                    for lane in range(warp * 32 + q * 8, warp * 32 + q * 8 + 8):
                        tx, ty = lane % BX, lane // BX
                        base = (ty * t.step + r) * t.pitch + (tx + v) * t.step
                        words += range(base, base + 4)
                    total += wavefronts(words)
    return total


def main() -> None:
    cases = [("upfirdn2d 1x (G conv0) f16", Tile(1, 1, 4, 2), 257, 1),
             ("upsample2d 2x (G img) f32", Tile(2, 1, 4, 4), 128, 2),
             ("upfirdn2d 1x (D conv1) f16", Tile(1, 1, 4, 2), 256, 2),
             ("downsample2d 2x (D skip) f16", Tile(1, 2, 2, 2), 256, 1)]
    print("| op | STS before | STS flat | STS flat+rotated | LDS compute | SM cycles/tile at floor |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, t, w, pad in cases:
        # An interior tile (plane 5, tile column 3, tile row 2) of a planar w x w image.
        qx, qy = 3 * BX * t.sx * t.down // t.up - pad, 2 * BY * t.sx * t.down // t.up - pad
        shift = [(5 * w * w + (qy + r) * w + qx) % t.ve for r in range(t.tih)]
        hi = min(t.tiw, w - qx)
        outputs = BX * t.sx * BY * t.sx
        floor = (outputs + outputs * t.down**2 // t.up**2) * t.itemsize / (3.0e12 / 132 / 1.755e9)
        print(f"| {name} | {stores_old(t, shift, hi)} | {stores_new(t, shift, False)} | "
              f"{stores_new(t, shift, True)} | {loads_compute(t)} | {floor:.0f} |")


if __name__ == "__main__":
    main()
