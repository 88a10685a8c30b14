"""Reading and writing NVIDIA network pickles without executing anything they contain.

NVIDIA's snapshots store each network as a call of
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta` holds the module's Python
source (`module_src`), its class name, constructor kwargs and `__dict__`. NVIDIA's loader `exec`s
that source — so a pickle from the internet can run anything. Here:

* unpickling goes through an explicit allow-list of globals; anything else raises
  `UnpicklingError` naming the global (e.g. `os.system`);
* each persistence call becomes an inert `PersistentRecord` holding `meta` as data;
  `module_src` is kept as a string only so that export can write it back unchanged;
* torch storages are decoded with `torch.load(weights_only=True)`; numpy dtypes are restricted to
  plain numeric kinds.

`NvidiaPickler` writes the same structure back out (same globals, EasyDict via NEWOBJ/SETITEMS), so
files we export open in NVIDIA's own tools.
"""

from __future__ import annotations

import collections
import io
import pickle
from typing import Any

import numpy as np
import torch


class PersistentRecord:
    """An NVIDIA persistent module, as data: `meta` = {type, version, module_src, class_name, state}."""

    def __init__(self, meta: dict):
        if not isinstance(meta, dict) or meta.get("type") != "class" or "class_name" not in meta:
            raise pickle.UnpicklingError("malformed persistence record (expected a dict with type='class')")
        self.meta = meta

    @property
    def class_name(self) -> str:
        return str(self.meta["class_name"])

    @property
    def state(self) -> dict:
        return self.meta.get("state") or {}

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args") or ())

    def children(self) -> dict[str, PersistentRecord | None]:
        return dict(self.state.get("_modules") or {})

    def attributes(self) -> dict[str, Any]:
        """Plain (non-torch-internal) attributes, e.g. weight_gain, use_fp16, conv_clamp."""
        return {k: v for k, v in self.state.items() if not k.startswith("_") and k != "training"}

    def __reduce__(self):
        return (GlobalRef("torch_utils.persistence", "_reconstruct_persistent_obj"), (self.meta,))

    def __deepcopy__(self, memo: dict) -> PersistentRecord:  # __reduce__ is for writing pickles only
        import copy

        out = PersistentRecord.__new__(PersistentRecord)
        memo[id(self)] = out
        out.meta = copy.deepcopy(self.meta, memo)
        return out

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name})"


class EasyDict(dict):
    """Stand-in for `dnnlib.util.EasyDict` (a dict with attribute access) — kept distinct so export
    writes it back as the same global."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class GlobalRef:
    """A reference to a global by name, written as STACK_GLOBAL without importing it."""

    def __init__(self, module: str, name: str):
        self.module = module
        self.name = name

    def __call__(self, *args, **kwargs):  # pickle insists reduce functions are callable
        raise TypeError(f"{self.module}.{self.name} is a reference for writing pickles, not a function")


def _load_storage(data: bytes):
    # Each storage is a nested legacy torch.save blob; weights_only refuses anything but tensors.
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    if state:
        raise pickle.UnpicklingError("a parameter with extra Python state is not allowed")
    return torch._utils._rebuild_parameter(data, requires_grad, backward_hooks)


_NUMPY_KINDS = set("biufc")  # bool, ints, floats, complex: no object/void/str dtypes


def _safe_dtype(*args, **kwargs):
    dt = np.dtype(*args, **kwargs)
    if dt.kind not in _NUMPY_KINDS:
        raise pickle.UnpicklingError(f"numpy dtype {dt} is not allowed in a network pickle")
    return dt


def _safe_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMPY_KINDS or not isinstance(data, bytes):
        raise pickle.UnpicklingError("a non-numeric numpy scalar is not allowed in a network pickle")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _safe_reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("a numpy array subclass is not allowed in a network pickle")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


_NUMPY_ALLOWED = {
    "scalar": _safe_scalar,
    "_reconstruct": _safe_reconstruct,
}

ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentRecord,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("numpy", "dtype"): _safe_dtype,
    ("numpy", "ndarray"): np.ndarray,
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    for _name, _fn in _NUMPY_ALLOWED.items():
        ALLOWED_GLOBALS[(_mod, _name)] = _fn


class TensorFlowPickleError(pickle.UnpicklingError):
    """The file is a TensorFlow-era StyleGAN/StyleGAN2 pickle."""


class RestrictedUnpickler(pickle.Unpickler):
    """pickle.Unpickler that resolves only the allow-listed globals above."""

    def find_class(self, module: str, name: str) -> Any:
        fn = ALLOWED_GLOBALS.get((module, name))
        if fn is not None:
            return fn
        if module.startswith("dnnlib.tflib"):
            raise TensorFlowPickleError(f"global {module}.{name} belongs to NVIDIA's TensorFlow code")
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed in a network pickle")


def restricted_load(data: bytes) -> Any:
    """Unpickle `data` with the allow-list; raises pickle.UnpicklingError (or EOFError) on refusal."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


class NvidiaPickler(pickle._Pickler):
    """Pure-Python pickler that writes PersistentRecord/EasyDict/GlobalRef as NVIDIA's globals."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_globalref(self, obj: GlobalRef) -> None:
        self.save(obj.module)
        self.save(obj.name)
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)

    def _save_easydict(self, obj: EasyDict) -> None:
        self.save(_EASYDICT)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        self._batch_setitems(iter(obj.items()))

    dispatch[GlobalRef] = _save_globalref
    dispatch[EasyDict] = _save_easydict


_EASYDICT = GlobalRef("dnnlib.util", "EasyDict")


def nvidia_dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    NvidiaPickler(buf, protocol=4).dump(obj)
    return buf.getvalue()
