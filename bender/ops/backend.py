"""The one place that decides between the CUDA kernels and the reference ops.

`BENDER_OPS=ref` forces the reference ops everywhere, `BENDER_OPS=cuda` requires the kernels
(an error if they cannot be built), and the default `auto` uses the kernels for CUDA tensors when
they build and the reference ops otherwise — with one warning that names why.

upfirdn2d tries its row-streaming kernels (1x filtering, 2x down- and upsampling with 4x4 filters,
planar or channels_last) before the tiled ones; `BENDER_UPFIRDN2D_KERNEL=tiled` skips them (the
tiled kernels are the ones measured on a GPU so far; see BENCHMARKS.md, "CUDA kernels").

Before the first op, every kernel family is compared with the reference ops on the user's GPU
(`bender/ops/cuda/selfcheck.py`); what disagrees is switched off, with one warning.
"""

from __future__ import annotations

import os
import threading
import warnings
from types import ModuleType

import torch

_lock = threading.Lock()
_state: dict[str, object] = {"module": None, "error": None, "tried": False, "checked": False}


def mode() -> str:
    """'auto' | 'ref' | 'cuda' from BENDER_OPS."""
    value = os.environ.get("BENDER_OPS", "auto").strip().lower() or "auto"
    if value not in ("auto", "ref", "cuda"):
        raise ValueError(f"BENDER_OPS={value!r}: use ref, cuda or auto")
    return value


UPFIRDN2D_KERNELS = {"tiled": 0, "rows": 4}  # name -> the extension's `path` argument (ops.h)


def upfirdn2d_path() -> int:
    """The kernel family upfirdn2d prefers, from BENDER_UPFIRDN2D_KERNEL (rows, the default | tiled)."""
    value = os.environ.get("BENDER_UPFIRDN2D_KERNEL", "rows").strip().lower() or "rows"
    if value not in UPFIRDN2D_KERNELS:
        raise ValueError(f"BENDER_UPFIRDN2D_KERNEL={value!r}: use tiled or rows")
    return UPFIRDN2D_KERNELS[value]


def use_cuda(op: str, x: torch.Tensor, impl: str | None = None) -> bool:
    """True when `op` on tensor `x` should run through the CUDA extension."""
    if compiling():
        return False  # under torch.compile the reference ops fuse; opaque kernels would break the graph
    want = impl or mode()
    if want == "ref" or x.device.type != "cuda":
        if want == "cuda" and impl == "cuda" and x.device.type != "cuda":
            raise RuntimeError(f"{op}: impl='cuda' needs a CUDA tensor")
        return False
    module = cuda_module(required=(want == "cuda"), device=x.device)
    if module is None:
        return False
    if op not in module.supported_ops and want == "cuda":
        raise RuntimeError(f"BENDER_OPS=cuda but the {op} kernel failed its self-check on this GPU: "
                           f"{module.kernel_state(op)}")
    return op in module.supported_ops


def compiling() -> bool:
    """True while torch.compile traces: the ops then take their fusable forms."""
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling())


def cuda_module(required: bool = False, device: torch.device | None = None) -> ModuleType | None:
    """The loaded CUDA extension wrapper, building it on first use; None if unavailable.

    The first call also runs the kernels' self-check, on `device` (default: the current GPU).
    """
    with _lock:
        if not _state["tried"]:
            _state["tried"] = True
            try:
                from bender.ops.cuda import load  # built lazily; see bender/ops/cuda

                _state["module"] = load()
            except Exception as e:  # noqa: BLE001 - any build/load failure means fallback
                _state["error"] = f"{type(e).__name__}: {e}".strip()
                if mode() != "cuda":
                    warnings.warn(f"bender: CUDA kernels unavailable, using reference ops ({_state['error']})",
                                  RuntimeWarning, stacklevel=3)
        module = _state["module"]
        if module is not None and not _state["checked"] and not torch.cuda.is_current_stream_capturing():
            _state["checked"] = True  # once per process, even if it raises below
            if device is None or device.type != "cuda":
                device = torch.device("cuda", torch.cuda.current_device())
            self_check(module, device)
    if _state["module"] is None and required:
        raise RuntimeError(f"BENDER_OPS=cuda but the CUDA kernels could not be loaded: {_state['error']}")
    return _state["module"]  # type: ignore[return-value]


def self_check(module, device: torch.device, dtypes: tuple[torch.dtype, ...] | None = None) -> None:
    """Compare every kernel family with the reference ops on `device`, and switch off what disagrees.

    Runs before the first op (not while a CUDA graph is being captured: it waits for the GPU).
    `BENDER_OPS_SELFCHECK=0` skips it. A failure warns once; with `BENDER_OPS=cuda` losing a whole
    op is an error instead, since the kernels were required.
    """
    if os.environ.get("BENDER_OPS_SELFCHECK", "1").strip() == "0":
        return
    from bender.ops.cuda.selfcheck import DTYPES, run_self_check

    report = run_self_check(module.ext, device, dtypes or DTYPES)
    before = set(module.supported_ops)
    warning = module.apply_self_check(report)
    if warning is None:
        return
    if mode() == "cuda" and set(module.supported_ops) != before:
        raise RuntimeError(f"BENDER_OPS=cuda but {warning}")
    warnings.warn(f"bender: {warning}", RuntimeWarning, stacklevel=4)


def status() -> dict[str, str]:
    """For `bender doctor`: what the dispatcher would do and why."""
    return {"mode": mode(), "loaded": str(_state["module"] is not None), "error": str(_state["error"] or "")}
