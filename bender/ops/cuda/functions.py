"""Autograd around the compiled kernels.

The kernels are plain forward maps (`ext.bias_act`, `ext.upfirdn2d`; see bindings.cpp). Each
backward is written with the same kernels inside another `autograd.Function`, so gradients can be
differentiated again — R1 and path-length regularisation need second derivatives:

* bias_act: dx = dy * act'(z) * gain (mode 1). Its backward needs act''(z) (mode 2), which is zero
  for linear/relu/lrelu, the activations StyleGAN2 uses, so their derivatives of every order stay
  on the kernels. For the smooth activations a third derivative is refused with a clear error.
* upfirdn2d is linear in x: its backward is another upfirdn2d (factors swapped, filter flipped,
  padding transposed), so it is differentiable to any order by construction.

`ext` is anything with the extension's two functions; tests pass an independent pure-PyTorch
implementation of the same contract to check this wiring on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from bender.ops import backend
from bender.ops.bias_act import ACTIVATIONS, bias_act_ref
from bender.ops.cuda.selfcheck import OP_FAMILIES, ROWS, SelfCheckReport
from bender.ops.upfirdn2d import upfirdn2d_ref

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
PIECEWISE_LINEAR = frozenset({"linear", "relu", "lrelu"})
MAX_FILTER_TAPS = 64 * 64


# ------------------------------------------------------------------------------------------------
# bias_act

@dataclass(frozen=True)
class BiasActSpec:
    dim: int
    act: str
    alpha: float
    gain: float
    clamp: float  # < 0: none

    @property
    def act_idx(self) -> int:
        return ACTIVATIONS[self.act].cuda_idx

    @property
    def has_second_derivative(self) -> bool:
        return self.act not in PIECEWISE_LINEAR

    def run(self, ext: Any, x, b, g=None, gg=None, mode: int = 0) -> torch.Tensor:
        return ext.bias_act(x, b, g, gg, self.dim, self.act_idx, self.alpha, self.gain, self.clamp, mode)

    def reduce_dims(self, x: torch.Tensor) -> list[int]:
        return [i for i in range(x.ndim) if i != self.dim]


class BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, ext, spec: BiasActSpec):
        y = spec.run(ext, x, b)
        # linear without clamp: dx = dy * gain, nothing to keep.
        keep_x = not (spec.act == "linear" and spec.clamp < 0)
        ctx.save_for_backward(x if keep_x else None, b)
        ctx.ext, ctx.spec = ext, spec
        return y

    @staticmethod
    def backward(ctx, dy):
        x, b = ctx.saved_tensors
        spec = ctx.spec
        dx = db = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            dx = dy * spec.gain if x is None else BiasActGrad.apply(dy, x, b, ctx.ext, spec)
        if ctx.needs_input_grad[1]:
            db = dx.sum(spec.reduce_dims(dx))
        return dx, db, None, None


class BiasActGrad(torch.autograd.Function):
    """(dy, x, b) -> dx. Differentiable: its own backward uses modes 1 and 2."""

    @staticmethod
    def forward(ctx, dy, x, b, ext, spec: BiasActSpec):
        dx = spec.run(ext, x, b, dy, mode=1)
        ctx.save_for_backward(dy if spec.has_second_derivative else None, x, b)
        ctx.ext, ctx.spec = ext, spec
        return dx

    @staticmethod
    def backward(ctx, ddx):
        dy, x, b = ctx.saved_tensors
        spec = ctx.spec
        d_dy = d_x = d_b = None
        if ctx.needs_input_grad[0]:  # dx is linear in dy
            d_dy = BiasActGrad.apply(ddx, x, b, ctx.ext, spec)
        if spec.has_second_derivative and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            d_x = BiasActGrad2.apply(ddx, dy, x, b, ctx.ext, spec)
            if ctx.needs_input_grad[2]:
                d_b = d_x.sum(spec.reduce_dims(d_x))
        elif ctx.needs_input_grad[2] and spec.act != "linear":
            # relu/lrelu: act'' is zero, but autograd's own ops return a defined zero here, so the bias
            # of (say) D's last lrelu layer gets a zero R1 gradient rather than none. Matching that
            # keeps optimisers identical on both paths: Adam skips a parameter whose grad is None.
            d_b = torch.zeros_like(b)
        return d_dy, d_x, d_b, None, None


class BiasActGrad2(torch.autograd.Function):
    """(ddx, dy, x, b) -> ddx * dy * act''(z) * gain; third derivatives are not implemented."""

    @staticmethod
    def forward(ctx, ddx, dy, x, b, ext, spec: BiasActSpec):
        return spec.run(ext, x, b, ddx, dy, mode=2)

    @staticmethod
    @once_differentiable
    def backward(ctx, _):
        raise RuntimeError("third derivatives of bias_act are not implemented by the CUDA kernels; "
                           "set BENDER_OPS=ref to use the reference ops")


# ------------------------------------------------------------------------------------------------
# upfirdn2d

@dataclass(frozen=True)
class UpfirdnSpec:
    upx: int
    upy: int
    downx: int
    downy: int
    px0: int
    px1: int
    py0: int
    py1: int
    flip: bool
    gain: float
    path: int = 0  # which kernels the extension tries (see upfirdn2d_launch in ops.h)

    def transposed(self, in_h: int, in_w: int, out_h: int, out_w: int, fh: int, fw: int) -> UpfirdnSpec:
        """The upfirdn2d that computes this one's gradient.

        Per axis, forward: insert zeros (up), pad (p0, p1), correlate with f, keep every down-th.
        Its adjoint: insert zeros (down), pad, correlate with the flipped f, keep every up-th — with
        the padding that puts the result exactly on the input's samples:
        p0' = taps - 1 - p0 and p1' = in * up + p0 - out * down.
        """
        return replace(self, upx=self.downx, upy=self.downy, downx=self.upx, downy=self.upy,
                       px0=fw - 1 - self.px0, px1=in_w * self.upx + self.px0 - out_w * self.downx,
                       py0=fh - 1 - self.py0, py1=in_h * self.upy + self.py0 - out_h * self.downy,
                       flip=not self.flip)

    def run(self, ext: Any, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        y, _ = ext.upfirdn2d(x, f, self.upx, self.upy, self.downx, self.downy, self.px0, self.px1, self.py0,
                             self.py1, self.flip, self.gain, self.path)
        return y


class Upfirdn2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, f, ext, spec: UpfirdnSpec):
        y = spec.run(ext, x, f)
        ctx.save_for_backward(f)
        ctx.ext, ctx.spec = ext, spec
        ctx.sizes = (x.shape[2], x.shape[3], y.shape[2], y.shape[3])
        return y

    @staticmethod
    def backward(ctx, dy):
        (f,) = ctx.saved_tensors
        dx = None
        if ctx.needs_input_grad[0]:
            fw = f.shape[-1]
            fh = f.shape[0]
            spec_t = ctx.spec.transposed(*ctx.sizes, fh=fh, fw=fw)
            dx = Upfirdn2d.apply(dy, f, ctx.ext, spec_t)
        return dx, None, None, None


# ------------------------------------------------------------------------------------------------
# What bender.ops.backend dispatches to.

class CudaOps:
    """The loaded kernels, behind the calling convention of `bender.ops.backend`.

    Arguments the kernels do not cover (float64, filters that require grad, huge filters) go to
    the reference ops, so callers never need to know.
    """

    def __init__(self, ext: Any, name: str = "", directory: str = ""):
        self.ext = ext
        self.name = name
        self.directory = directory
        self.supported_ops = frozenset({"bias_act", "upfirdn2d"})  # what the dispatcher sends here
        self.rows_enabled = True  # the row-streaming upfirdn2d kernels may run
        self.self_check: SelfCheckReport | None = None

    def apply_self_check(self, report: SelfCheckReport) -> str | None:
        """Switch off every kernel family that disagreed with the reference ops; the warning to give.

        Row kernels that fail give way to the tiled ones; a failing tiled or generic upfirdn2d, or
        bias_act, sends that op to the reference implementation. The rest keeps its kernels.
        """
        self.self_check = report
        if not report.failures:
            return None
        lost = {op for op, families in OP_FAMILIES.items() if any(f in report.failures for f in families)}
        self.supported_ops = self.supported_ops - lost
        if ROWS in report.failures:
            self.rows_enabled = False
        instead = ", ".join(f"{op} on the reference ops" for op in sorted(lost))
        if not self.rows_enabled and "upfirdn2d" not in lost:
            instead = ", ".join(filter(None, [instead, "upfirdn2d on its tiled kernels"]))
        return (f"CUDA kernels disagree with the reference ops on {report.device}, so bender runs {instead}. "
                f"Please report this with `bender doctor`'s output. ({report.summary()})")

    def kernel_state(self, op: str) -> str:
        """For `bender doctor`: "built, ..." or "fallback (...)", after the self-check."""
        report = self.self_check
        if report is None:
            return "built"
        if op not in self.supported_ops:
            return "fallback (" + "; ".join(f"{f} {report.failures[f]}" for f in OP_FAMILIES[op]
                                         if f in report.failures) + ")"
        if op == "upfirdn2d" and not self.rows_enabled:
            return f"built, tiled kernels only (row kernels failed the self-check: {report.failures[ROWS]})"
        return f"built, {report.summary(OP_FAMILIES[op] + ((ROWS,) if op == 'upfirdn2d' else ()))}"

    def bias_act(self, x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, alpha: float, gain: float,
                 clamp: float) -> torch.Tensor:
        ok = (x.dtype in SUPPORTED_DTYPES and x.ndim >= 1 and -x.ndim <= dim < x.ndim
              and (b is None or (b.ndim == 1 and b.device == x.device and b.shape[0] == x.shape[dim])))
        if not ok:
            return bias_act_ref(x, b, dim, act, alpha, gain, clamp)
        if b is not None and b.dtype != x.dtype:
            b = b.to(x.dtype)
        spec = BiasActSpec(dim=dim % x.ndim, act=act, alpha=float(alpha), gain=float(gain), clamp=float(clamp))
        return BiasAct.apply(x, b, self.ext, spec)

    def upfirdn2d(self, x: torch.Tensor, f: torch.Tensor, upx: int, upy: int, downx: int, downy: int, px0: int,
                  px1: int, py0: int, py1: int, flip_filter: bool, gain: float) -> torch.Tensor:
        ok = (x.ndim == 4 and x.dtype in SUPPORTED_DTYPES and f.ndim in (1, 2) and 1 <= f.numel() <= MAX_FILTER_TAPS
              and not f.requires_grad and min(upx, upy, downx, downy) >= 1)
        if not ok:
            return upfirdn2d_ref(x, f, (upx, upy), (downx, downy), (px0, px1, py0, py1), flip_filter, gain)
        if f.device != x.device or f.dtype != torch.float32 or not f.is_contiguous():
            f = f.to(device=x.device, dtype=torch.float32).contiguous()
        path = backend.upfirdn2d_path() if self.rows_enabled else backend.UPFIRDN2D_KERNELS["tiled"]
        spec = UpfirdnSpec(int(upx), int(upy), int(downx), int(downy), int(px0), int(px1), int(py0), int(py1),
                           bool(flip_filter), float(gain), path)
        return Upfirdn2d.apply(x, f, self.ext, spec)
