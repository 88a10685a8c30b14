"""NVIDIA StyleGAN2 network snapshots (.pkl): safe loading into our modules, and export back.

Supported: networks written by NVlabs/stylegan2-ada-pytorch (`training/networks.py`) and the
StyleGAN2 networks of NVlabs/stylegan3 (`training/networks_stylegan2.py`). The architecture comes
from each record's class name and stored constructor kwargs plus the two repositories' class
defaults, cross-checked against the attributes the constructors stored (`use_fp16`, `conv_clamp`);
never from the embedded source code.
"""

from __future__ import annotations

import copy
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bender.errors import BenderError
from bender.io.model import Lineage, Model
from bender.io.restricted import (
    ALLOWED_GLOBALS,
    GlobalRef,
    PersistentRecord,
    RestrictedUnpickler,
    TensorFlowPickleError,
    nvidia_dumps,
    restricted_load,
)
from bender.nets import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig
from bender.nets.config import SynthesisConfig

SUPPORTED = ("StyleGAN2 networks from NVlabs/stylegan2-ada-pytorch or NVlabs/stylegan3 "
             "(networks_stylegan2), and bender .safetensors models")
SNAPSHOT_KEYS = ("G", "D", "G_ema")

# Class defaults that differ between the two repositories (everything else is shared).
_DEFAULTS = {
    "ada": {"num_fp16_res": 0, "conv_clamp": None, "w_avg_beta": 0.995},
    "sg3": {"num_fp16_res": 4, "conv_clamp": 256, "w_avg_beta": 0.998},
}
_SYNTHESIS_KEYS = {"channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture",
                   "resample_filter", "fp16_channels_last", "use_noise", "kernel_size", "activation"}
_MAPPING_KEYS = {"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier", "w_avg_beta"}


def load_nvidia_pickle(data: bytes, name: str = "", sha256: str = "") -> Model:
    """Read an NVIDIA snapshot without executing it and rebuild its networks as bender modules."""
    snapshot = read_snapshot(data, name)
    if not isinstance(snapshot.get("G_ema") or snapshot.get("G"), PersistentRecord):
        raise BenderError(f"{name}: an NVIDIA pickle without a generator (keys: {', '.join(map(str, snapshot))}); "
                          f"supported: {SUPPORTED}")
    g_rec = snapshot.get("G_ema") or snapshot["G"]
    flavour = _flavour(g_rec)
    g_cfg = generator_config(g_rec, flavour, name)

    G_ema = _build(Generator(g_cfg), g_rec, name, "G_ema")
    G = _build(Generator(g_cfg), snapshot["G"], name, "G") if isinstance(snapshot.get("G"), PersistentRecord) else None
    D = None
    d_cfg = None
    if isinstance(snapshot.get("D"), PersistentRecord):
        d_cfg = discriminator_config(snapshot["D"], flavour, name)
        D = _build(Discriminator(d_cfg), snapshot["D"], name, "D")

    augment_p = None
    pipe = snapshot.get("augment_pipe")
    if isinstance(pipe, PersistentRecord):
        p = (pipe.state.get("_buffers") or {}).get("p")
        if isinstance(p, torch.Tensor):
            augment_p = float(p)
    tsk = snapshot.get("training_set_kwargs")
    lineage = Lineage(source_format="nvidia-pickle", source_name=name, source_sha256=sha256,
                      notes={"nvidia_code": "stylegan3" if flavour == "sg3" else "stylegan2-ada-pytorch"})
    model = Model(G_ema=G_ema, G=G, D=D, g_config=g_cfg, d_config=d_cfg, lineage=lineage, augment_p=augment_p,
                  training_set_kwargs=_plain(tsk) if isinstance(tsk, dict) else None,
                  nvidia=NvidiaSkeleton.from_snapshot(snapshot))
    return model.eval()


def read_snapshot(data: bytes, name: str = "") -> dict:
    """Restricted-unpickle a snapshot dict; every failure becomes a one-line BenderError."""
    try:
        obj = restricted_load(data)
    except TensorFlowPickleError:
        raise BenderError(f"{name}: a TensorFlow-era StyleGAN pickle; convert it first with NVIDIA's "
                          f"legacy.py (stylegan2-ada-pytorch), then load the result. Supported: {SUPPORTED}") from None
    except pickle.UnpicklingError as e:
        if "not allowed" not in str(e):
            raise BenderError(f"{name}: truncated or corrupt pickle ({e}); re-download or re-export the file") from None
        raise BenderError(f"{name}: refused to load this pickle ({e}); only NVIDIA network snapshots are "
                          "read, and nothing in them is executed") from None
    except (EOFError, ValueError, IndexError, KeyError, TypeError, AttributeError, RuntimeError) as e:
        raise BenderError(f"{name}: truncated or corrupt pickle ({type(e).__name__}); "
                          "re-download or re-export the file") from None
    if not isinstance(obj, dict) or not any(k in obj for k in SNAPSHOT_KEYS):
        raise BenderError(f"{name}: a pickle, but not an NVIDIA network snapshot "
                          f"(no G/D/G_ema); supported: {SUPPORTED}")
    return obj


# ------------------------------------------------------------------------------------------------
# Architecture from records


def _flavour(g_rec: PersistentRecord) -> str:
    kw = g_rec.init_kwargs
    if "synthesis_kwargs" in kw:
        return "ada"
    synthesis = g_rec.children().get("synthesis")
    if isinstance(synthesis, PersistentRecord):
        for child in synthesis.children().values():
            if isinstance(child, PersistentRecord) and "fused_modconv_default" in child.state:
                return "sg3"
    if _SYNTHESIS_KEYS & set(kw) or "fused_modconv_default" in kw:
        return "sg3"
    return "ada"


def generator_config(rec: PersistentRecord, flavour: str, name: str = "") -> GeneratorConfig:
    if rec.class_name != "Generator":
        raise BenderError(f"{name}: G is a {rec.class_name}, expected Generator; supported: {SUPPORTED}")
    synthesis = rec.children().get("synthesis")
    if isinstance(synthesis, PersistentRecord) and "input" in synthesis.children():
        raise BenderError(f"{name}: a StyleGAN3 generator (StyleGAN3-T/R); bender renders StyleGAN2 "
                          f"generators only for now. Supported: {SUPPORTED}")
    if rec.init_args:
        raise BenderError(f"{name}: Generator was built with positional arguments; unsupported")
    kw = dict(rec.init_kwargs)
    try:
        top = {k: int(kw.pop(k)) for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    except KeyError as e:
        raise BenderError(f"{name}: Generator kwargs lack {e}; not a StyleGAN2 generator") from None
    mapping_kw = dict(kw.pop("mapping_kwargs", None) or {})
    synth_kw = dict(kw.pop("synthesis_kwargs", None) or {}) if flavour == "ada" else {}
    if flavour == "sg3":
        synth_kw.update(kw)
        kw = {}
        synth_kw.pop("fused_modconv_default", None)  # only chooses a code path; results are equal
    if kw:
        raise BenderError(f"{name}: unsupported Generator option(s) {sorted(kw)}")
    defaults = _DEFAULTS[flavour]
    synth = {"num_fp16_res": defaults["num_fp16_res"], "conv_clamp": defaults["conv_clamp"]}
    synth.update(synth_kw)
    _refuse_unknown(synth, _SYNTHESIS_KEYS, "synthesis", name)
    _refuse_unknown(mapping_kw, _MAPPING_KEYS, "mapping", name)
    mapping = {"w_avg_beta": defaults["w_avg_beta"], **mapping_kw}
    cfg = GeneratorConfig(**top, mapping=MappingConfig(**_plain(mapping)), synthesis=SynthesisConfig(**_plain(synth)))
    if isinstance(synthesis, PersistentRecord):
        _reconcile_fp16(cfg.synthesis, [c for c in synthesis.children().values() if isinstance(c, PersistentRecord)],
                        cfg.img_resolution)
    return cfg


def discriminator_config(rec: PersistentRecord, flavour: str, name: str = "") -> DiscriminatorConfig:
    if rec.class_name != "Discriminator":
        raise BenderError(f"{name}: D is a {rec.class_name}, expected Discriminator; supported: {SUPPORTED}")
    kw = dict(rec.init_kwargs)
    block_kw = dict(kw.pop("block_kwargs", None) or {})
    mapping_kw = dict(kw.pop("mapping_kwargs", None) or {})
    epilogue_kw = dict(kw.pop("epilogue_kwargs", None) or {})
    defaults = _DEFAULTS[flavour]
    cfg: dict[str, Any] = {"num_fp16_res": defaults["num_fp16_res"], "conv_clamp": defaults["conv_clamp"]}
    allowed = {"c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
               "num_fp16_res", "conv_clamp", "cmap_dim"}
    _refuse_unknown(kw, allowed, "Discriminator", name)
    cfg.update(kw)
    for key in ("activation", "resample_filter", "fp16_channels_last", "freeze_layers"):
        if key in block_kw:
            cfg[key] = block_kw.pop(key)
    _refuse_unknown(block_kw, set(), "Discriminator block", name)
    for key in ("mbstd_group_size", "mbstd_num_channels"):
        if key in epilogue_kw:
            cfg[key] = epilogue_kw.pop(key)
    if epilogue_kw.pop("activation", cfg.get("activation", "lrelu")) != cfg.get("activation", "lrelu"):
        raise BenderError(f"{name}: D epilogue activation differs from the blocks'; unsupported")
    _refuse_unknown(epilogue_kw, set(), "Discriminator epilogue", name)
    _refuse_unknown(mapping_kw, _MAPPING_KEYS, "Discriminator mapping", name)
    d = DiscriminatorConfig(**_plain(cfg), mapping=MappingConfig(**{"w_avg_beta": None, **_plain(mapping_kw)}))
    blocks = [c for c in rec.children().values()
              if isinstance(c, PersistentRecord) and c.class_name != "MappingNetwork"]
    _reconcile_fp16(d, blocks, d.img_resolution)
    return d


def _reconcile_fp16(cfg: SynthesisConfig | DiscriminatorConfig, blocks: list[PersistentRecord], res: int) -> None:
    """Trust what the constructor stored over the class defaults we assumed."""
    flags = [bool(b.state["use_fp16"]) for b in blocks if "use_fp16" in b.state]
    if flags:
        from bender.nets.config import fp16_resolution

        count = sum(flags)
        block_res = [int(b.state.get("resolution", 0)) for b in blocks if "use_fp16" in b.state]
        expected = sum(r >= fp16_resolution(res, cfg.num_fp16_res) for r in block_res)
        if count != expected:
            cfg.num_fp16_res = count
    for b in blocks:
        for child in b.children().values():
            if isinstance(child, PersistentRecord) and "conv_clamp" in child.state and child.class_name in (
                    "SynthesisLayer", "Conv2dLayer") and child.state.get("activation", "lrelu") != "linear":
                clamp = child.state["conv_clamp"]
                cfg.conv_clamp = None if clamp is None else _plain(clamp)
                return


def _refuse_unknown(kw: dict, allowed: set, what: str, name: str) -> None:
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise BenderError(f"{name}: unsupported {what} option(s) {unknown}; supported: {SUPPORTED}")


def _plain(value: Any) -> Any:
    """numpy scalars / EasyDicts / tuples -> JSON-friendly Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# ------------------------------------------------------------------------------------------------
# Tensors


def record_state_dict(rec: PersistentRecord, prefix: str = "") -> OrderedDict[str, torch.Tensor]:
    """The state dict a module built from `rec` would have (parameters + persistent buffers)."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    state = rec.state
    non_persistent = set(state.get("_non_persistent_buffers_set") or ())
    for key, t in (state.get("_parameters") or {}).items():
        if t is not None:
            out[prefix + key] = t
    for key, t in (state.get("_buffers") or {}).items():
        if t is not None and key not in non_persistent:
            out[prefix + key] = t
    for key, child in rec.children().items():
        if isinstance(child, PersistentRecord):
            out.update(record_state_dict(child, prefix + key + "."))
    return out


def _build(module: torch.nn.Module, rec: PersistentRecord, name: str, which: str):
    tensors = record_state_dict(rec)
    if not tensors:
        raise BenderError(f"{name}: {which} holds no weights (an empty or hostile snapshot); nothing to load")
    expected = module.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    bad_shape = [k for k in expected if k in tensors and tuple(tensors[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or bad_shape:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"shape mismatch at {bad_shape[0]}: {tuple(tensors[bad_shape[0]].shape)} vs "
                  f"{tuple(expected[bad_shape[0]].shape)}")
        raise BenderError(f"{name}: {which} does not match a StyleGAN2 {rec.class_name} with its stored options "
                          f"({detail}); unsupported architecture. Supported: {SUPPORTED}")
    module.load_state_dict({k: tensors[k] for k in expected}, strict=True)
    return module


# ------------------------------------------------------------------------------------------------
# Export: the snapshot's non-tensor skeleton, refilled with our tensors


class TensorSlot:
    """Placeholder for a tensor inside a stored skeleton; `key` names it (e.g. 'G_ema.mapping.w_avg')."""

    def __init__(self, key: str, parameter: bool = False, requires_grad: bool = False):
        self.key = str(key)
        self.parameter = bool(parameter)  # an nn.Parameter in the original (rebuilt as one)
        self.requires_grad = bool(requires_grad)

    def __reduce__(self):
        return (GlobalRef("bender.io.nvidia", "TensorSlot"), (self.key, self.parameter, self.requires_grad))

    def __deepcopy__(self, memo: dict) -> TensorSlot:  # __reduce__ is for writing pickles only
        return TensorSlot(self.key, self.parameter, self.requires_grad)

    def make(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach().to("cpu")
        return torch.nn.Parameter(t, requires_grad=self.requires_grad) if self.parameter else t


@dataclass
class NvidiaSkeleton:
    """Everything in an NVIDIA snapshot except tensor data: module sources, class names, kwargs,
    attributes, training_set_kwargs — with a TensorSlot wherever a tensor was, plus the original
    tensors that are not part of any network's state dict (e.g. the augment pipe's buffers)."""

    structure: dict
    extra_tensors: dict[str, torch.Tensor]

    @classmethod
    def from_snapshot(cls, snapshot: dict) -> NvidiaSkeleton:
        slots: dict[str, torch.Tensor] = {}
        memo: dict[int, Any] = {}
        structure = _strip(snapshot, "", slots, memo)
        net_keys = set()
        for top in SNAPSHOT_KEYS:
            if isinstance(snapshot.get(top), PersistentRecord):
                net_keys.update(f"{top}.{k}" for k in record_state_dict(snapshot[top]))
        extra = {k: v for k, v in slots.items() if k not in net_keys}
        return cls(structure=structure, extra_tensors=extra)

    def dumps(self) -> bytes:
        """The skeleton as a pickle (TensorSlots instead of tensors) for storage in native files."""
        return nvidia_dumps(self.structure)

    @classmethod
    def loads(cls, data: bytes, extra_tensors: dict[str, torch.Tensor]) -> NvidiaSkeleton:
        return cls(structure=_SkeletonUnpickler.load_bytes(data), extra_tensors=dict(extra_tensors))

    def fill(self, tensors: dict[str, torch.Tensor]) -> dict:
        """A snapshot structure with every slot replaced by tensors[key] (or the stored original)."""
        source = {**self.extra_tensors, **tensors}
        missing = sorted({s.key for s in _iter_slots(self.structure)} - set(source))
        if missing:
            raise BenderError(f"cannot export: no tensor for {missing[:3]}; the model no longer matches "
                              "the NVIDIA file it came from")
        memo: dict[int, Any] = {}
        return _fill(self.structure, source, memo)


def export_nvidia_pickle(model: Model) -> bytes:
    """Bytes of an NVIDIA snapshot holding `model`'s current weights in the original file's skeleton."""
    if model.nvidia is None:
        raise BenderError("this model did not come from an NVIDIA pickle, so there is no NVIDIA network code "
                          "to pair its weights with; keep it as .safetensors")
    tensors: dict[str, torch.Tensor] = {}
    for top, net in model.networks().items():
        for k, v in net.state_dict().items():
            tensors[f"{top}.{k}"] = v.detach().to("cpu")
    if model.augment_p is not None and "augment_pipe.p" in model.nvidia.extra_tensors:
        tensors["augment_pipe.p"] = torch.tensor(model.augment_p, dtype=model.nvidia.extra_tensors[
            "augment_pipe.p"].dtype)
    structure = model.nvidia.fill(tensors)
    return nvidia_dumps(structure)


def _strip(obj: Any, path: str, slots: dict[str, torch.Tensor], memo: dict[int, Any]) -> Any:
    """Deep copy that swaps tensors for TensorSlots (named by state-dict path), keeping sharing."""
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, torch.Tensor):
        key = path.lstrip(".")
        slots[key] = obj.detach().clone()
        out: Any = TensorSlot(key, isinstance(obj, torch.nn.Parameter), obj.requires_grad)
    elif isinstance(obj, PersistentRecord):
        out = PersistentRecord.__new__(PersistentRecord)
        memo[id(obj)] = out
        meta = dict(obj.meta)
        state = dict(meta.get("state") or {})
        for key, value in state.items():
            if key in ("_parameters", "_buffers", "_modules"):
                state[key] = _strip_mapping(value, path, slots, memo)
            else:
                state[key] = _strip(value, f"{path}.{key}", slots, memo)
        meta["state"] = state
        out.meta = meta
        return out
    elif isinstance(obj, dict):
        out = copy.copy(obj)
        memo[id(obj)] = out
        for key, value in obj.items():
            out[key] = _strip(value, f"{path}.{key}", slots, memo)
        return out
    elif isinstance(obj, list):
        out = []
        memo[id(obj)] = out
        out.extend(_strip(v, f"{path}.{i}", slots, memo) for i, v in enumerate(obj))
        return out
    elif isinstance(obj, tuple):
        out = tuple(_strip(v, f"{path}.{i}", slots, memo) for i, v in enumerate(obj))
    else:
        return obj
    memo[id(obj)] = out
    return out


def _strip_mapping(mapping: Any, path: str, slots: dict, memo: dict) -> Any:
    if id(mapping) in memo:
        return memo[id(mapping)]
    out = copy.copy(mapping)
    memo[id(mapping)] = out
    for key, value in mapping.items():
        out[key] = _strip(value, f"{path}.{key}", slots, memo)
    return out


def _fill(obj: Any, tensors: dict[str, torch.Tensor], memo: dict[int, Any]) -> Any:
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, TensorSlot):
        out: Any = obj.make(tensors[obj.key])
        memo[id(obj)] = out
        return out
    if isinstance(obj, PersistentRecord):
        out = PersistentRecord.__new__(PersistentRecord)
        memo[id(obj)] = out
        out.meta = _fill(obj.meta, tensors, memo)
        return out
    if isinstance(obj, dict):
        out = copy.copy(obj)
        memo[id(obj)] = out
        for key, value in obj.items():
            out[key] = _fill(value, tensors, memo)
        return out
    if isinstance(obj, list):
        out = []
        memo[id(obj)] = out
        out.extend(_fill(v, tensors, memo) for v in obj)
        return out
    if isinstance(obj, tuple):
        out = tuple(_fill(v, tensors, memo) for v in obj)
        memo[id(obj)] = out
        return out
    return obj


def _iter_slots(obj: Any, seen: set[int] | None = None):
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, TensorSlot):
        yield obj
    elif isinstance(obj, PersistentRecord):
        yield from _iter_slots(obj.meta, seen)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _iter_slots(v, seen)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _iter_slots(v, seen)


class _SkeletonUnpickler(RestrictedUnpickler):
    """The same allow-list, plus TensorSlot (and no tensors are expected)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("bender.io.nvidia", "TensorSlot"):
            return TensorSlot
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")

    @classmethod
    def load_bytes(cls, data: bytes) -> Any:
        import io

        return cls(io.BytesIO(data)).load()
