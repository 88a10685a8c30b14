"""The one place that decides between the CUDA kernels and the reference ops.

`BENDER_OPS=ref` forces the reference ops everywhere, `BENDER_OPS=cuda` requires the kernels
(an error if they cannot be built), and the default `auto` uses the kernels for CUDA tensors when
they build and the reference ops otherwise — with one warning that names why.

upfirdn2d tries its row-streaming kernels (1x filtering, 2x down- and upsampling with 4x4 filters,
planar or channels_last) before the tiled ones; `BENDER_UPFIRDN2D_KERNEL=tiled` skips them (the
tiled kernels are the ones measured on a GPU so far; see BENCHMARKS.md, "CUDA kernels").
"""

from __future__ import annotations

import os
import threading
import warnings
from types import ModuleType

import torch

_lock = threading.Lock()
_state: dict[str, object] = {"module": None, "error": None, "tried": False}


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
    module = cuda_module(required=(want == "cuda"))
    return module is not None and op in getattr(module, "SUPPORTED_OPS", ())


def compiling() -> bool:
    """True while torch.compile traces: the ops then take their fusable forms."""
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling())


def cuda_module(required: bool = False) -> ModuleType | None:
    """The loaded CUDA extension wrapper, building it on first use; None if unavailable."""
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
    if _state["module"] is None and required:
        raise RuntimeError(f"BENDER_OPS=cuda but the CUDA kernels could not be loaded: {_state['error']}")
    return _state["module"]  # type: ignore[return-value]


def status() -> dict[str, str]:
    """For `bender doctor`: what the dispatcher would do and why."""
    return {"mode": mode(), "loaded": str(_state["module"] is not None), "error": str(_state["error"] or "")}
