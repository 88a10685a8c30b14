"""Each kernel family, checked against the reference ops on the user's own GPU before first use.

Why: the kernels are tested on the GPUs we had and, thread by thread, on the CPU
(tests/cuda_emulator.cpp), but a user's card, driver or compiler is not one of those: another
architecture, code JIT-compiled from PTX, a compiler bug. A wrong kernel does not crash; it draws
wrong images and trains wrong networks. So once per process, before the first op runs, every
family computes a few small cases on fresh random data and is compared with the reference ops on
the same device. A family that disagrees is switched off with one warning naming the case:
the row-streaming upfirdn2d kernels give way to the tiled ones, anything else to the reference
ops. The check costs some tens of milliseconds once; `BENDER_OPS_SELFCHECK=0` skips it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from bender.ops.bias_act import ACTIVATIONS, bias_act_ref
from bender.ops.upfirdn2d import setup_filter, upfirdn2d_ref

# Families, in the order they are checked. Rows failing costs speed; the others cost the kernels.
ROWS, TILED, GENERIC, BIAS_ACT = "upfirdn2d rows", "upfirdn2d tiled", "upfirdn2d generic", "bias_act"
FAMILIES = (ROWS, TILED, GENERIC, BIAS_ACT)
OP_FAMILIES = {"bias_act": (BIAS_ACT,), "upfirdn2d": (TILED, GENERIC)}  # an op falls back if one fails
PATH = {GENERIC: 1, TILED: 2, ROWS: 3}  # the extension's `path` that runs only that family (ops.h)
KERNEL_ID = {GENERIC: 0, TILED: 1, ROWS: 2}  # what the extension reports it ran
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Largest error allowed, relative to the largest reference value. A wrong index, tap, mask or bias
# shows as an error of order one, while one rounding to float16 (bfloat16) is at most 4.9e-4
# (3.9e-3): the margin keeps a correct kernel from ever being switched off for nothing.
TOLERANCE = {torch.float32: 1e-4, torch.float16: 8e-3, torch.bfloat16: 6e-2}

# (up, down, padding, filter): StyleGAN2's cases (1x filtering after the transposed conv, 2x down,
# 2x up) with its binomial filter (the separable path of the row kernels) and a random 2-D one
# (the general path, and every flip mistake shows), plus paddings that crop.
FAST_CASES = (
    (1, 1, (1, 1, 1, 1), "binomial"),
    (1, 1, (0, 3, 1, -1), "random"),
    (1, 2, (1, 1, 1, 1), "binomial"),
    (1, 2, (2, 1, -1, 2), "random"),
    (2, 1, (2, 1, 2, 1), "binomial"),
    (2, 1, (1, 2, 3, 0), "random"),
)
GENERIC_CASES = ((3, 2, (1, 1, 1, 1), "random3"), (1, 1, (2, 2, 0, 1), "taps5"))
# 37 wide: planar rows start at every alignment; channels_last with 8 channels: the narrowest
# channel groups the row kernels take, in every dtype.
LAYOUTS = ((torch.contiguous_format, (2, 3, 20, 37)), (torch.channels_last, (2, 8, 18, 12)))
# (activation, clamp, mode): lrelu as StyleGAN2 uses it (forward, gradient), a smooth one for
# the second derivative that only smooth activations have.
BIAS_ACT_CASES = (("lrelu", 0.9, 0), ("lrelu", -1.0, 1), ("swish", 0.9, 0), ("swish", -1.0, 2))


@dataclass
class SelfCheckReport:
    """Cases run and the first failure per family (empty when all agree)."""

    device: str
    cases: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self, families: tuple[str, ...] = FAMILIES) -> str:
        """One line for `bender doctor`, `bender ops build` and the warnings: on `families`."""
        failures = {family: why for family, why in self.failures.items() if family in families}
        if not failures:
            cases = sum(n for family, n in self.cases.items() if family in families)
            return f"self-check passed ({cases} cases, {self.seconds * 1000:.0f} ms)"
        return "self-check failed: " + "; ".join(f"{family}: {why}" for family, why in failures.items())


def run_self_check(ext: Any, device: torch.device | str, dtypes: tuple[torch.dtype, ...] = DTYPES,
                   seed: int = 0) -> SelfCheckReport:
    """Run every case of every family through `ext` (the extension's contract: see bindings.cpp).

    Each case's error stays on the device until the end, so the whole check waits for the GPU
    once. A case that raises fails its family with the exception's message.
    """
    device = torch.device(device)
    report = SelfCheckReport(device=str(device))
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)  # on the CPU: the user's CUDA RNG stream stays untouched
    pending: list[tuple[str, str, torch.Tensor, float]] = []
    # The caller may be generating under inference_mode or autocast; the reference needs autograd
    # (bias_act's derivatives) and float64.
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast(device.type, enabled=False):
        for family, name, case in _cases(ext, device, dtypes, gen):
            report.cases[family] = report.cases.get(family, 0) + 1
            if family in report.failures:
                continue
            try:
                err, tol = case()
            except Exception as e:  # noqa: BLE001 - any failure of a kernel is what this looks for
                report.failures[family] = f"{name}: {type(e).__name__}: {_first_line(e)}"
                continue
            pending.append((family, name, err, tol))
    if pending:
        errors = torch.stack([e.float() for _, _, e, _ in pending]).cpu().tolist()
        for (family, name, _, tol), err in zip(pending, errors, strict=True):
            if family not in report.failures and not err <= tol:  # `not <=` also catches NaN
                report.failures[family] = f"{name}: error {err:.3g} of the largest value (allowed {tol:.1g})"
    report.seconds = time.perf_counter() - start
    return report


def _cases(ext: Any, device: torch.device, dtypes: tuple[torch.dtype, ...],
           gen: torch.Generator) -> Iterator[tuple[str, str, Callable[[], tuple[torch.Tensor, float]]]]:
    for family in (ROWS, TILED, GENERIC):
        cases = GENERIC_CASES if family == GENERIC else FAST_CASES
        for dtype in dtypes:
            for memory_format, shape in LAYOUTS:
                for i, (up, down, pad, taps) in enumerate(cases):
                    x = torch.randn(shape, generator=gen).to(device, dtype).contiguous(memory_format=memory_format)
                    f = _filter(taps, gen).to(device)
                    layout = "channels_last" if memory_format == torch.channels_last else "planar"
                    name = f"{up}x up {down}x down pad {pad} {taps} filter, {_dtype_name(dtype)} {layout}"
                    yield family, name, _upfirdn2d_case(ext, family, x, f, up, down, pad, flip=bool(i % 2))
    for dtype in dtypes:
        for act, clamp, mode in BIAS_ACT_CASES:
            x = (torch.randn(4, 12, 5, 7, generator=gen) * 2).to(device, dtype)
            b = torch.randn(12, generator=gen).to(device, dtype)
            g = torch.randn(x.shape, generator=gen).to(device, dtype)
            gg = torch.randn(x.shape, generator=gen).to(device, dtype)
            name = f"{act} clamp {clamp} mode {mode}, {_dtype_name(dtype)}"
            yield BIAS_ACT, name, _bias_act_case(ext, x, b, g, gg, act, clamp, mode)


def _filter(taps: str, gen: torch.Generator) -> torch.Tensor:
    if taps == "binomial":
        return setup_filter([1, 3, 3, 1])
    if taps == "random":  # asymmetric: a flipped or transposed filter shows
        return torch.rand(4, 4, generator=gen) + 0.1
    if taps == "random3":
        return torch.rand(3, 3, generator=gen) + 0.1
    if taps == "taps5":  # 1-D: stands for its outer product
        return torch.rand(5, generator=gen) + 0.1
    raise KeyError(taps)


def _upfirdn2d_case(ext: Any, family: str, x: torch.Tensor, f: torch.Tensor, up: int, down: int,
                    pad: tuple[int, int, int, int], flip: bool) -> Callable[[], tuple[torch.Tensor, float]]:
    def case() -> tuple[torch.Tensor, float]:
        gain = float(up * up)
        y, used = ext.upfirdn2d(x, f, up, up, down, down, *pad, flip, gain, PATH[family])
        if int(used) != KERNEL_ID[family]:
            raise RuntimeError(f"ran kernel {int(used)}, not the {family} one")
        ref = upfirdn2d_ref(x.double(), f.double(), (up, up), (down, down), pad, flip, gain)
        return _relative_error(y, ref), TOLERANCE[x.dtype]

    return case


def _bias_act_case(ext: Any, x: torch.Tensor, b: torch.Tensor, g: torch.Tensor, gg: torch.Tensor, act: str,
                   clamp: float, mode: int) -> Callable[[], tuple[torch.Tensor, float]]:
    """Mode 0: y; mode 1: dy/dx applied to g; mode 2: d(mode 1)/dx applied to gg (see ops.h)."""
    def case() -> tuple[torch.Tensor, float]:
        spec = ACTIVATIONS[act]
        alpha, gain = spec.def_alpha, spec.def_gain
        x64 = x.double().requires_grad_(mode >= 1)
        ref = bias_act_ref(x64, b.double(), 1, act, alpha, gain, clamp)
        if mode >= 1:
            (ref,) = torch.autograd.grad(ref, x64, g.double(), create_graph=mode == 2)
        if mode == 2:
            (ref,) = torch.autograd.grad(ref, x64, gg.double())
        y = ext.bias_act(x, b, g if mode >= 1 else None, gg if mode == 2 else None, 1, spec.cuda_idx, alpha, gain,
                         clamp, mode)
        return _relative_error(y, ref.detach()), TOLERANCE[x.dtype]

    return case


def _relative_error(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    if y.shape != ref.shape:
        return torch.tensor(float("inf"), device=ref.device)
    return (y.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-6)


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [""])[0]


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
