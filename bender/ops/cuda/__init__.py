"""bender's CUDA kernels: fused bias+activation and upfirdn2d, built on first use.

`bender.ops.backend` is the only caller of `load()`; everything else goes through `bender.ops`.

* `load()` builds (or finds in the cache) and imports the extension, returning a `CudaOps` with
  `supported_ops`, `bias_act(...)` and `upfirdn2d(...)`, or raises `KernelBuildError` naming why.
* `kernel_status()` reports each kernel as "built", "fallback (<why>)" or "not built yet" without
  building anything — for `bender doctor` and `bender ops status`.
* `build.py` holds the cache, lock and failure reporting; `functions.py` the autograd.
"""

from __future__ import annotations

import threading

from bender.ops.cuda.build import KernelBuildError

KERNELS = ("bias_act", "upfirdn2d")

_lock = threading.RLock()
_state: dict[str, object] = {"ops": None, "error": None}


def load(force: bool = False, verbose: bool = False):
    """The kernels, ready to call (built on first use); `KernelBuildError` if they cannot be."""
    from bender.ops.cuda import build
    from bender.ops.cuda.functions import CudaOps

    with _lock:
        if _state["ops"] is not None and not force:
            return _state["ops"]
        if _state["error"] is not None and not force:
            raise KernelBuildError(str(_state["error"]))
        try:
            module = build.build(force=force, verbose=verbose)
        except KernelBuildError as e:
            _state["error"] = str(e)
            raise
        except Exception as e:  # noqa: BLE001 - anything else is still a reason to fall back, said once
            _state["error"] = f"{type(e).__name__}: {e}"
            raise KernelBuildError(str(_state["error"])) from e
        _state["ops"] = CudaOps(module, name=module.__name__, directory=str(getattr(module, "__file__", "")))
        _state["error"] = None
        return _state["ops"]


def kernel_status() -> dict[str, str]:
    """Each kernel: "built[, what its self-check found]", "fallback (<why>)" or "not built yet".

    Never builds; never raises."""
    with _lock:
        status, ops = _status_line(), _state["ops"]
    if status == "built" and ops is not None:  # loaded here: say what the self-check found
        return {name: ops.kernel_state(name) for name in KERNELS}
    return {name: status for name in KERNELS}


def _status_line() -> str:
    try:
        from bender.ops import backend
        from bender.ops.cuda import build

        if backend.mode() == "ref":
            return "fallback (BENDER_OPS=ref)"
        if _state["ops"] is not None:
            return "built"
        if _state["error"] is not None:
            return f"fallback ({_state['error']})"
        problem = build.environment_problem(need_gpu=True)
        if problem:
            return f"fallback ({problem})"
        state, detail = build.cached_state()
        if state == "built":
            return "built"
        if state == "failed":
            return f"fallback ({detail})"
        return "not built yet"
    except Exception as e:  # noqa: BLE001 - a status report must not crash the doctor
        return f"fallback ({type(e).__name__}: {e})"


__all__ = ["KERNELS", "KernelBuildError", "kernel_status", "load"]
