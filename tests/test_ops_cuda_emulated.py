"""The CUDA kernels' own per-thread code, run on the CPU against the reference ops.

tests/cuda_emulator.cpp includes bender/ops/cuda/*.cuh and runs every thread of every block phase
by phase, the way the GPU does between barriers, on float32 and bfloat16 data. So the tiling, launch planning,
polyphase indexing, vector/tail loops and activation derivatives are all checked here, on fresh
random data, without a GPU. Outputs and shared memory are poisoned with NaN first: anything not
written, or computed from unwritten shared memory, fails the comparison.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from bender.ops import setup_filter
from bender.ops.bias_act import ACTIVATIONS, bias_act_ref
from bender.ops.cuda.functions import PIECEWISE_LINEAR
from bender.ops.upfirdn2d import upfirdn2d_ref

EMULATOR = Path(__file__).with_name("cuda_emulator.cpp")
I64 = ctypes.c_int64


@pytest.fixture(scope="module")
def emu(tmp_path_factory) -> ctypes.CDLL:
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not cxx:
        pytest.skip("no C++ compiler to build the kernel emulator")
    lib_path = tmp_path_factory.mktemp("emulator") / "emulator.so"
    result = subprocess.run([cxx, "-O1", "-std=c++17", "-shared", "-fPIC", "-Wall", "-Wno-unknown-pragmas",
                             str(EMULATOR), "-o", str(lib_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    lib = ctypes.CDLL(str(lib_path))
    p = ctypes.c_void_p
    lib.emu_bias_act.argtypes = [p, p, p, p, p, I64, I64, I64, ctypes.c_int, ctypes.c_int, ctypes.c_float,
                                 ctypes.c_float, ctypes.c_float, I64]
    lib.emu_upfirdn2d.argtypes = [p, p, p, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(I64), ctypes.c_float,
                                  ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.emu_fast_div.argtypes = [p, p, p, I64]
    return lib


def ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


# ------------------------------------------------------------------------------------------------
# bias_act

def make_layout(name: str) -> tuple[torch.Tensor, int, bool]:
    """(float32 tensor of fresh random values, dim, expect the 16-byte path)."""
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    rand = lambda *s: torch.randn(*s, generator=g) * 2  # noqa: E731 - wide enough to reach clamp and tails
    if name == "nchw_odd":  # channel stride 21: channels change inside a vector
        return rand(2, 5, 3, 7), 1, True
    if name == "nchw_even":  # channel stride 16: one channel per vector
        return rand(2, 6, 4, 4), 1, True
    if name == "channels_last":  # channel stride 1, 6 channels: wraps inside vectors
        return rand(2, 6, 3, 5).to(memory_format=torch.channels_last), 1, True
    if name == "fully_connected":
        return rand(5, 7), 1, True
    if name == "last_dim":
        return rand(3, 4, 9), 2, True
    if name == "dim0":
        return rand(6, 10), 0, True
    if name == "one_channel":
        return rand(4, 1, 3, 3), 1, True
    if name == "tail_only":  # 9 elements: two vectors and a tail of one
        return rand(1, 3, 1, 3), 1, True
    if name == "misaligned":  # 4 bytes past an aligned address: the scalar path only
        return rand(3 * 5 * 7 + 1)[1:].view(3, 5, 7), 1, False
    raise KeyError(name)


LAYOUTS = ["nchw_odd", "nchw_even", "channels_last", "fully_connected", "last_dim", "dim0", "one_channel",
           "tail_only", "misaligned"]


def like(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Fresh random values laid out exactly like x (same strides, same alignment)."""
    if x.storage_offset():
        out = torch.randn(x.numel() + x.storage_offset(), generator=g)[x.storage_offset():].view(x.shape)
    else:
        out = torch.empty_like(x)
        out.copy_(torch.randn(x.shape, generator=g))
    assert out.stride() == x.stride() and out.data_ptr() % 16 == x.data_ptr() % 16
    return out


def reference_modes(x, b, dim, act, alpha, gain, clamp, dy, ddx):
    """Forward, dx and d(dx)/dx·ddx from autograd on the float64 reference."""
    x64 = x.double().requires_grad_(True)
    b64 = None if b is None else b.double()
    y = bias_act_ref(x64, b64, dim, act, alpha, gain, clamp)
    (dx,) = torch.autograd.grad(y, x64, dy.double(), create_graph=True)
    d2 = None
    if act not in PIECEWISE_LINEAR:
        (d2,) = torch.autograd.grad(dx, x64, ddx.double())
    return y.detach(), dx.detach(), d2


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_bias_act_thread_code_matches_reference(emu, layout, act):
    x, dim, expect_vec = make_layout(layout)
    g = torch.Generator().manual_seed(7)
    b = torch.randn(x.shape[dim], generator=g) if layout != "nchw_even" else None
    dy, ddx = like(x, g), like(x, g)
    idx = ACTIVATIONS[act].cuda_idx
    alpha = 0.2 if act == "lrelu" else 0.0
    for clamp in (-1.0, 0.9):
        y_ref, dx_ref, d2_ref = reference_modes(x, b, dim, act, alpha, 1.3, clamp, dy, ddx)
        for mode, ref in ((0, y_ref), (1, dx_ref), (2, d2_ref)):
            out = like(x, g).fill_(float("nan"))
            g_in = {0: None, 1: dy, 2: ddx}[mode]  # mode 2 computes g * gg * act'' * gain
            gg_in = dy if mode == 2 else None
            r = emu.emu_bias_act(ptr(x), ptr(b), ptr(g_in), ptr(gg_in), ptr(out), x.numel(), x.stride(dim),
                                 x.shape[dim], idx, mode, alpha, 1.3, clamp, 37)
            if ref is None:  # act'' = 0: no mode-2 kernel exists, and asking for one is an error
                assert r < 0
                continue
            assert r == int(expect_vec), f"vector path used={r}, expected {expect_vec}"
            np.testing.assert_allclose(out.double().numpy(), ref.numpy(), rtol=2e-5, atol=2e-5,
                                       err_msg=f"mode {mode}, clamp {clamp}")


# ------------------------------------------------------------------------------------------------
# upfirdn2d

def emu_upfirdn2d(emu, x, f, up, down, pad, flip, gain, path, target_blocks=3):
    """Run the emulated kernel on x's dtype (float32 or bfloat16); returns (path used, y, plan).

    target_blocks is what the launcher derives from the GPU's SM count; the default of 3 makes
    most blocks walk through several tiles (and the last one through fewer), the case that needs
    the register hand-over between tiles to be right.
    """
    (upx, upy), (downx, downy) = up, down
    px0, px1, py0, py1 = pad
    n, c, h, w = x.shape
    fh, fw = f.shape[0], f.shape[-1]
    ho = (h * upy + py0 + py1 - fh) // downy + 1
    wo = (w * upx + px0 + px1 - fw) // downx + 1
    cl = c > 1 and x.stride(1) == 1 and not x.is_contiguous()
    fmt = torch.channels_last if cl else torch.contiguous_format
    y = torch.full((n, c, ho, wo), float("nan"), dtype=x.dtype).contiguous(memory_format=fmt)
    ints = (ctypes.c_int * 18)(n, c, h, w, upx, upy, downx, downy, px0, px1, py0, py1, fw, fh, f.ndim, int(flip),
                               int(cl), target_blocks)
    strides = (I64 * 8)(*x.stride(), *y.stride())
    plan = (ctypes.c_int * 9)()
    f = f.float().contiguous()
    dtype = {torch.float32: 0, torch.bfloat16: 2}[x.dtype]
    r = emu.emu_upfirdn2d(ptr(x), ptr(f), ptr(y), ints, strides, gain, path, dtype, plan)
    return r, y, tuple(plan)


def as_dtype(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x's values in dtype, with x's exact strides (also for layouts that are not dense)."""
    return torch.empty_strided(x.shape, x.stride(), dtype=dtype).copy_(x)


def assert_matches(y: torch.Tensor, ref: torch.Tensor, msg: str) -> None:
    """float32: the kernel's float32 sum vs float64; bfloat16: that, rounded once to bfloat16."""
    tol = 1e-5 if y.dtype == torch.float32 else 2.0**-8
    np.testing.assert_allclose(y.double().numpy(), ref.numpy(), rtol=tol, atol=1e-5, err_msg=msg)


def layout(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "contiguous":
        return x.contiguous()
    if name == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if name == "strided":  # every other column of a wider tensor: not dense at all
        wide = torch.randn(*x.shape[:3], x.shape[3] * 2)
        wide[..., ::2] = x
        return wide[..., ::2]
    raise KeyError(name)


def filters(kind: str, taps: int, g: torch.Generator) -> torch.Tensor:
    if kind == "binomial":
        return setup_filter([1, 3, 3, 1][:taps] if taps <= 4 else [1] * taps)
    if kind == "random2d":  # asymmetric, so any flip mistake shows
        return torch.rand(taps, taps, generator=g) + 0.1
    if kind == "separable":  # 1-D: stands for its outer product
        return torch.rand(taps, generator=g) + 0.1
    raise KeyError(kind)


TILED = [((1, 1), (1, 1)), ((2, 2), (1, 1)), ((1, 1), (2, 2))]  # (up, down) of the fast paths, 4 taps
PADS = [(1, 1, 1, 1), (2, 1, 2, 1), (2, 2, 2, 2), (0, 3, 1, -1), (-2, 1, 3, 0), (3, 0, 0, 2)]
SIZES = [(1, 1, 4, 4), (2, 3, 7, 5), (1, 40, 9, 11), (1, 2, 33, 70), (1, 1, 70, 3)]


@pytest.mark.parametrize("up,down", TILED)
@pytest.mark.parametrize("mem", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("fkind", ["binomial", "random2d", "separable"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_upfirdn2d_tiled_thread_code_matches_reference(emu, up, down, mem, fkind, dtype):
    g = torch.Generator().manual_seed(11)
    f = filters(fkind, 4, g)
    for size in SIZES:
        for pad in PADS:
            if min(size[3] * up[0] + pad[0] + pad[1], size[2] * up[1] + pad[2] + pad[3]) < 4:
                continue  # nothing left to compute
            for flip in (False, True):
                x = as_dtype(layout(torch.randn(*size, generator=g), mem), dtype)
                r, y, plan = emu_upfirdn2d(emu, x, f, up, down, pad, flip, 1.7, path=2)
                assert r == 1, f"tiled path not taken (code {r}) for {size} pad {pad}"
                planar = not (x.shape[1] > 1 and x.stride(1) == 1 and not x.is_contiguous())
                assert plan[6] == (planar and x.stride(3) == 1), "16-byte loads exactly for planar unit-stride rows"
                ref = upfirdn2d_ref(x.double(), f.double(), up, down, pad, flip, 1.7)
                assert_matches(y, ref, f"size {size} pad {pad} flip {flip} plan {plan}")


GENERIC = [((1, 1), (1, 1)), ((2, 2), (1, 1)), ((1, 1), (2, 2)), ((3, 3), (2, 2)), ((2, 1), (1, 3)),
           ((1, 2), (2, 1)), ((4, 4), (4, 4))]


@pytest.mark.parametrize("up,down", GENERIC)
@pytest.mark.parametrize("mem", ["contiguous", "channels_last", "strided"])
def test_upfirdn2d_generic_thread_code_matches_reference(emu, up, down, mem):
    g = torch.Generator().manual_seed(13)
    fs = [torch.rand(2, 3, generator=g), torch.rand(5, generator=g), torch.rand(1, 1, generator=g) + 0.5,
          torch.rand(4, 4, generator=g)]
    for f in fs:
        for size in [(1, 1, 5, 4), (2, 3, 7, 6), (1, 5, 1, 9)]:
            for pad in [(0, 0, 0, 0), (2, 1, 1, 2), (-1, 2, 1, -1), (3, 3, 0, 1)]:
                fw, fh = f.shape[-1], f.shape[0]
                if size[3] * up[0] + pad[0] + pad[1] < fw or size[2] * up[1] + pad[2] + pad[3] < fh:
                    continue
                x = layout(torch.randn(*size, generator=g), mem)
                r, y, _ = emu_upfirdn2d(emu, x, f, up, down, pad, True, 0.8, path=1)
                assert r == 0
                ref = upfirdn2d_ref(x.double(), f.double(), up, down, pad, True, 0.8)
                np.testing.assert_allclose(y.double().numpy(), ref.numpy(), rtol=1e-5, atol=1e-5,
                                           err_msg=f"f {tuple(f.shape)} size {size} pad {pad}")


def test_upfirdn2d_tiled_path_refuses_shapes_it_has_no_kernel_for(emu):
    x = torch.randn(1, 2, 6, 6)
    assert emu_upfirdn2d(emu, x, torch.rand(3, 3), (2, 2), (1, 1), (1, 1, 1, 1), False, 1.0, path=2)[0] < 0
    assert emu_upfirdn2d(emu, x, torch.rand(4, 4), (2, 1), (1, 1), (1, 1, 1, 1), False, 1.0, path=2)[0] < 0


def test_upfirdn2d_plan_uses_many_planes_per_block_for_small_images(emu):
    """Tiny feature maps (4x4 .. 16x16) are most of a StyleGAN2's layers: one plane per block would
    leave most threads idle."""
    x = torch.randn(8, 64, 4, 4)
    _, _, (bx, by, bp, *_rest) = emu_upfirdn2d(emu, x, setup_filter([1, 3, 3, 1]), (2, 2), (1, 1), (2, 1, 2, 1),
                                               False, 4.0, path=2)
    assert bx * by * bp == 128 and bp >= 8
    x = torch.randn(1, 3, 256, 256)
    _, _, plan = emu_upfirdn2d(emu, x, setup_filter([1, 3, 3, 1]), (1, 1), (1, 1), (1, 1, 1, 1), False, 1.0, path=2)
    bx, by, bp, tiles_x, tiles_y, tiles_p = plan[:6]
    assert (bx, bp) == (16, 1) and tiles_p == 3 and tiles_x * bx * 4 >= 256


# (name, x, pad, target_blocks): shapes chosen for what the plan does with them (asserted below).
WALKS = [
    ("many small planes: several load passes", lambda g: torch.randn(2, 40, 9, 11, generator=g), (2, 1, 2, 1), 3),
    ("channels_last: several load passes", lambda g: layout(torch.randn(1, 24, 9, 13, generator=g), "channels_last"),
     (1, 2, 2, 1), 3),
    ("batch 1, wide odd rows: one tile per block", lambda g: torch.randn(1, 2, 33, 77, generator=g), (2, 1, 1, 2),
     1 << 20),
    ("every tile in one block", lambda g: torch.randn(1, 2, 30, 40, generator=g), (1, 2, -1, 1), 1),
    ("uneven last block", lambda g: torch.randn(3, 3, 40, 70, generator=g), (-2, 1, 3, 0), 7),
    ("strided rows, many planes", lambda g: layout(torch.randn(2, 33, 6, 7, generator=g), "strided"), (3, 0, 0, 2), 2),
]


@pytest.mark.parametrize("up,down", TILED)
@pytest.mark.parametrize("walk", WALKS, ids=[w[0] for w in WALKS])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_upfirdn2d_tiled_block_walks_and_load_passes(emu, up, down, walk, dtype):
    """A block walks through several tiles, loading the next while computing this one; a tile may
    need several rounds of loads. Each variant is checked against the reference."""
    name, make, pad, target_blocks = walk
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    x, f = as_dtype(make(g), dtype), filters("random2d", 4, g)
    r, y, plan = emu_upfirdn2d(emu, x, f, up, down, pad, False, 1.3, path=2, target_blocks=target_blocks)
    assert r == 1
    bx, by, bp, tiles_x, tiles_y, tiles_p, vec_load, per_block, passes = plan
    tiles = tiles_x * tiles_y * tiles_p
    assert per_block == max(1, min(16, tiles // target_blocks))
    if "several load passes" in name and up == (1, 1):  # a 2x-up tile is too small to need two
        assert passes >= 2 and bp > 1
    if "one tile per block" in name:
        assert per_block == 1 and passes == 1 and vec_load
    if "every tile" in name:
        assert per_block == tiles > 1
    if "uneven" in name:
        assert per_block > 1 and tiles % per_block != 0
    ref = upfirdn2d_ref(x.double(), f.double(), up, down, pad, False, 1.3)
    assert_matches(y, ref, f"{name} plan {plan}")


# ------------------------------------------------------------------------------------------------
# upfirdn2d, row-streaming kernels (upfirdn2d_rows.cuh)

def row_pitched(x: torch.Tensor, extra: int) -> torch.Tensor:
    """x inside a wider tensor: unit x stride, but rows `extra` elements apart from dense."""
    wide = torch.full((*x.shape[:3], x.shape[3] + extra), float("nan"), dtype=x.dtype)
    wide[..., :x.shape[3]] = x
    return wide[..., :x.shape[3]]


# Widths that start rows at every alignment (257: G's 1x filter input), tiny planes, many planes.
ROW_SIZES = [(1, 1, 4, 4), (2, 3, 7, 5), (1, 2, 33, 70), (1, 1, 70, 3), (2, 2, 19, 257), (1, 40, 9, 11),
             (2, 8, 19, 37), (1, 4, 5, 6), (1, 6, 18, 9)]
ROW_PADS = [(1, 1, 1, 1), (2, 2, 2, 2), (0, 3, 1, -1), (-2, 1, 3, 0), (3, 0, 0, 2)]
ROW_LAYOUTS = [(False, "contiguous"), (True, "pitched"), (False, "channels_last"), (True, "channels_last")]


@pytest.mark.parametrize("up,down", [(1, 1), (1, 2), (2, 1)])
@pytest.mark.parametrize("fkind", ["binomial", "random2d", "separable"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_upfirdn2d_rows_thread_code_matches_reference(emu, up, down, fkind, dtype):
    """Every thread of the grid, on both of its filter paths (binomial and 1-D filters are
    separable, random 2-D ones are not): planar inputs, dense and row-pitched (every row
    alignment), and channels_last ones (channel counts that are multiples of 8 bytes). Upsampling
    with odd paddings starts each row's first thread one output before the image."""
    g = torch.Generator().manual_seed(17 + down + 10 * up)
    f = filters(fkind, 4, g)
    for size in ROW_SIZES:
        for pad in ROW_PADS:
            if min(size[3] * up + pad[0] + pad[1], size[2] * up + pad[2] + pad[3]) < 4:
                continue
            for flip, mem in ROW_LAYOUTS:
                if mem == "channels_last" and size[1] % (8 // x_bytes(dtype)):
                    continue
                x = torch.randn(*size, generator=g).to(dtype)
                if mem == "pitched":
                    x = row_pitched(x, 3)
                elif mem == "channels_last":
                    x = x.contiguous(memory_format=torch.channels_last)
                r, y, _ = emu_upfirdn2d(emu, x, f, (up, up), (down, down), pad, flip, 1.7, path=3)
                assert r == 2, f"row kernel not taken (code {r}) for {size} {mem} pad {pad}"
                ref = upfirdn2d_ref(x.double(), f.double(), (up, up), (down, down), pad, flip, 1.7)
                assert_matches(y, ref, f"size {size} {mem} pad {pad} flip {flip}")


def x_bytes(dtype: torch.dtype) -> int:
    return torch.finfo(dtype).bits // 8


def test_upfirdn2d_rows_refuses_what_it_does_not_cover(emu):
    """Resampling by both up and down, other factors, other filter sizes, strided rows and
    channels_last with channel counts that are not a multiple of 8 bytes are left to the tiled and
    generic kernels (-5: no row kernel)."""
    x = torch.randn(1, 3, 9, 9)
    f = setup_filter([1, 3, 3, 1])
    assert emu_upfirdn2d(emu, x, f, (2, 2), (2, 2), (2, 1, 2, 1), False, 4.0, path=3)[0] == -5
    assert emu_upfirdn2d(emu, x, f, (4, 4), (1, 1), (2, 1, 2, 1), False, 4.0, path=3)[0] == -5
    assert emu_upfirdn2d(emu, x, torch.rand(3, 3), (1, 1), (1, 1), (1, 1, 1, 1), False, 1.0, path=3)[0] == -5
    assert emu_upfirdn2d(emu, x, f, (1, 1), (3, 3), (1, 1, 1, 1), False, 1.0, path=3)[0] == -5
    for mem in ("channels_last", "strided"):
        assert emu_upfirdn2d(emu, layout(x, mem), f, (1, 1), (1, 1), (1, 1, 1, 1), False, 1.0, path=3)[0] == -5


def test_fast_division_is_exact(emu):
    """The row kernels split a thread index with FastDiv (multiply-high, add, shift); it must equal
    integer division for every divisor and dividend below 2^31."""
    rng = np.random.default_rng(5)
    top = 2**31 - 1
    ds = [1, 2, 3, 5, 7, 31, 32, 33, 255, 257, 641, 2**16 - 1, 2**16 + 1, 2**30, 2**30 + 1, top - 1, top]
    ds += [2**k + o for k in range(2, 31) for o in (-1, 1)] + list(rng.integers(1, top, 200))
    d_all, n_all = [], []
    for d in ds:
        ns = [0, 1, d - 1, d, d + 1, 2 * d - 1, 2 * d, top, top - 1, top - d % 1000]
        ns += list(rng.integers(0, top, 50)) + [d * k + r for k in (3, 1000) for r in (0, d - 1) if d * k + r <= top]
        ns = [n for n in ns if 0 <= n <= top]
        d_all += [d] * len(ns)
        n_all += ns
    d_arr = np.asarray(d_all, dtype=np.int32)
    n_arr = np.asarray(n_all, dtype=np.int32)
    out = np.zeros_like(d_arr)
    emu.emu_fast_div(d_arr.ctypes.data, n_arr.ctypes.data, out.ctypes.data, len(d_arr))
    expect = n_arr.astype(np.int64) // d_arr.astype(np.int64)
    bad = np.nonzero(out != expect)[0]
    assert bad.size == 0, f"{bad.size} wrong, first: {n_arr[bad[0]]} / {d_arr[bad[0]]} gave {out[bad[0]]}"


# ------------------------------------------------------------------------------------------------
# The self-check bender runs on a user's GPU before the first op (bender/ops/cuda/selfcheck.py),
# run here on the emulated kernels: it must pass on the kernels as they are and catch planted bugs.

class EmulatedExt:
    """The extension's contract (bindings.cpp: `bias_act`, `upfirdn2d`) over the emulated kernels,
    on CPU tensors. `paths` records the upfirdn2d path each call asked for."""

    FALLBACKS = {0: (2, 1), 1: (1,), 2: (2,), 3: (3,), 4: (3, 2, 1)}  # ops.h's paths, in emulator paths

    def __init__(self, emu):
        self.emu = emu
        self.paths: list[int] = []

    def upfirdn2d(self, x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip, gain, path):
        if x.dtype not in (torch.float32, torch.bfloat16):
            raise RuntimeError(f"the emulator runs float32 and bfloat16, not {x.dtype}")
        self.paths.append(path)
        for emu_path in self.FALLBACKS[path]:
            r, y, _ = emu_upfirdn2d(self.emu, x, f, (upx, upy), (downx, downy), (px0, px1, py0, py1), flip, gain,
                                    emu_path)
            if r >= 0:
                return y, r
        raise RuntimeError(f"upfirdn2d kernel failed: code {r}")

    def bias_act(self, x, b, g, gg, dim, act, alpha, gain, clamp, mode):
        dtype = x.dtype  # the kernels compute in float32 and round once on store; so does this
        x, b, g, gg = (None if t is None else t.float().contiguous() for t in (x, b, g, gg))
        y = torch.full_like(x, float("nan"))
        r = self.emu.emu_bias_act(ptr(x), ptr(b), ptr(g), ptr(gg), ptr(y), x.numel(), x.stride(dim), x.shape[dim],
                                  act, mode, alpha, gain, clamp, 37)
        if r < 0:
            raise RuntimeError(f"bias_act kernel failed: code {r}")
        return y.to(dtype)


class PlantedBug(EmulatedExt):
    """One family gets it wrong the way kernels go wrong on a new card: a shifted column, a
    slightly wrong value, a launch that fails, a derivative computed as the forward."""

    def __init__(self, emu, family: str):
        super().__init__(emu)
        self.family = family

    def upfirdn2d(self, *args):
        y, used = super().upfirdn2d(*args)
        if self.family == "upfirdn2d rows" and used == 2:
            y = y.roll(1, dims=3)
        if self.family == "upfirdn2d tiled" and used == 1:
            y = y * 1.01  # within bfloat16's rounding: only the float32 cases can tell
        if self.family == "upfirdn2d generic" and used == 0:
            raise RuntimeError("too many resources requested for launch")
        return y, used

    def bias_act(self, x, b, g, gg, dim, act, alpha, gain, clamp, mode):
        if self.family == "bias_act" and mode == 1:
            mode, g = 0, None
        return super().bias_act(x, b, g, gg, dim, act, alpha, gain, clamp, mode)


SELF_CHECK_DTYPES = (torch.float32, torch.bfloat16)


def test_self_check_passes_on_the_kernels_as_they_are(emu):
    from bender.ops.cuda.selfcheck import FAMILIES, run_self_check

    ext = EmulatedExt(emu)
    # The first op may come inside a generation call: the check needs autograd and float64 anyway.
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        report = run_self_check(ext, "cpu", dtypes=SELF_CHECK_DTYPES)
    assert report.failures == {}, report.summary()
    assert set(report.cases) == set(FAMILIES) and min(report.cases.values()) >= 8
    assert set(ext.paths) == {1, 2, 3}, "each family is run on its own path"
    assert report.summary().startswith("self-check passed (")


@pytest.mark.parametrize("family", ["upfirdn2d rows", "upfirdn2d tiled", "upfirdn2d generic", "bias_act"])
def test_self_check_names_exactly_the_family_that_is_wrong(emu, family):
    from bender.ops.cuda.selfcheck import run_self_check

    report = run_self_check(PlantedBug(emu, family), "cpu", dtypes=SELF_CHECK_DTYPES)
    assert set(report.failures) == {family}, report.summary()
    assert "\n" not in report.summary()
    if family == "upfirdn2d tiled":
        assert "float32" in report.failures[family]
    if family == "upfirdn2d generic":
        assert "too many resources" in report.failures[family]


def test_a_failed_self_check_switches_off_only_what_failed(emu, monkeypatch):
    """Rows wrong: upfirdn2d keeps its tiled kernels. bias_act wrong: bias_act alone goes to the
    reference ops; with BENDER_OPS=cuda that is an error. One warning each time."""
    from bender.ops import backend
    from bender.ops.cuda.functions import CudaOps

    monkeypatch.delenv("BENDER_OPS", raising=False)
    monkeypatch.delenv("BENDER_OPS_SELFCHECK", raising=False)
    monkeypatch.delenv("BENDER_UPFIRDN2D_KERNEL", raising=False)
    ops = CudaOps(PlantedBug(emu, "upfirdn2d rows"))
    with pytest.warns(RuntimeWarning, match="upfirdn2d on its tiled kernels") as caught:
        backend.self_check(ops, torch.device("cpu"), SELF_CHECK_DTYPES)
    assert len(caught) == 1
    assert ops.supported_ops == {"bias_act", "upfirdn2d"} and not ops.rows_enabled
    assert ops.kernel_state("upfirdn2d").startswith("built, tiled kernels only (row kernels failed")
    assert ops.kernel_state("bias_act").startswith("built, self-check passed (")

    # The dispatcher's own call now asks for the tiled kernels, and gets the right answer.
    x, f = torch.randn(1, 3, 20, 24), setup_filter([1, 3, 3, 1])
    ops.ext.paths.clear()
    y = ops.upfirdn2d(x, f, 1, 1, 2, 2, 1, 1, 1, 1, False, 1.0)
    assert ops.ext.paths == [0]
    assert_matches(y, upfirdn2d_ref(x.double(), f.double(), (1, 1), (2, 2), (1, 1, 1, 1), False, 1.0), "tiled")

    ops = CudaOps(PlantedBug(emu, "bias_act"))
    with pytest.warns(RuntimeWarning, match="bias_act on the reference ops"):
        backend.self_check(ops, torch.device("cpu"), SELF_CHECK_DTYPES)
    assert ops.supported_ops == {"upfirdn2d"} and ops.rows_enabled
    assert ops.kernel_state("bias_act").startswith("fallback (bias_act lrelu")

    monkeypatch.setenv("BENDER_OPS", "cuda")
    with pytest.raises(RuntimeError, match="BENDER_OPS=cuda but CUDA kernels disagree"):
        backend.self_check(CudaOps(PlantedBug(emu, "bias_act")), torch.device("cpu"), SELF_CHECK_DTYPES)


def test_self_check_can_be_skipped_and_passes_silently(emu, monkeypatch, recwarn):
    from bender.ops import backend
    from bender.ops.cuda.functions import CudaOps

    monkeypatch.delenv("BENDER_OPS", raising=False)
    monkeypatch.setenv("BENDER_OPS_SELFCHECK", "0")
    ops = CudaOps(PlantedBug(emu, "bias_act"))
    backend.self_check(ops, torch.device("cpu"), SELF_CHECK_DTYPES)
    assert ops.self_check is None and ops.ext.paths == [] and ops.kernel_state("bias_act") == "built"
    monkeypatch.delenv("BENDER_OPS_SELFCHECK")
    ops = CudaOps(EmulatedExt(emu))
    backend.self_check(ops, torch.device("cpu"), SELF_CHECK_DTYPES)
    assert ops.self_check is not None and not recwarn.list
    assert ops.kernel_state("upfirdn2d").startswith("built, self-check passed (")
