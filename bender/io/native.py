"""bender's own model format: one .safetensors file.

Tensors are named `<network>.<state-dict name>` (`G_ema.mapping.fc0.weight`, `D.b4.out.bias`, ...).
The safetensors header's metadata (string -> string) holds, as JSON: the architecture configs,
the lineage, ADA's p and the training-set options; for models that came from an NVIDIA pickle also
the pickle's non-tensor skeleton (base64) and its other tensors under `nvidia_extra.`, so that
pkl -> safetensors -> pkl reproduces the original tensors bit for bit.

safetensors cannot execute code on load, which is the point.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
from pathlib import Path
from typing import Any

import torch

from bender.errors import BenderError
from bender.fileio import atomic_path
from bender.io.model import Lineage, Model
from bender.nets import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from bender.nets.config import from_dict, to_dict

FORMAT = "bender-model"
VERSION = "1"


def model_tensors(model: Model, parts: tuple[str, ...] = ("G_ema", "G", "D")) -> dict[str, torch.Tensor]:
    """Flat tensor dict of the requested networks (contiguous CPU copies, no shared storage)."""
    out: dict[str, torch.Tensor] = {}
    for top, net in model.networks().items():
        if top in parts:
            for k, v in net.state_dict().items():
                out[f"{top}.{k}"] = v.detach().to("cpu").contiguous().clone()
    if model.nvidia is not None:
        for k, v in model.nvidia.extra_tensors.items():
            out[f"nvidia_extra.{k}"] = v.detach().to("cpu").contiguous().clone()
    return out


def model_metadata(model: Model) -> dict[str, str]:
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": json.dumps({"G": to_dict(model.g_config),
                              "D": to_dict(model.d_config) if model.d_config is not None else None}),
        "lineage": json.dumps(dataclasses.asdict(model.lineage), default=str),
    }
    if model.augment_p is not None:
        meta["augment_p"] = repr(float(model.augment_p))
    if model.training_set_kwargs is not None:
        meta["training_set_kwargs"] = json.dumps(model.training_set_kwargs, default=str)
    if model.nvidia is not None:
        meta["nvidia_skeleton"] = base64.b64encode(model.nvidia.dumps()).decode("ascii")
    return meta


def save_model(model: Model, path: str | Path, parts: tuple[str, ...] = ("G_ema", "G", "D")) -> Path:
    """Write `model` atomically as a bender .safetensors file."""
    from safetensors.torch import save_file

    path = Path(path)
    if model.nvidia is not None:
        parts = tuple(model.networks())  # the skeleton refers to every network it had
    with atomic_path(path) as tmp:
        save_file(model_tensors(model, parts), str(tmp), metadata=model_metadata(model))
    return path


def read_header(data: bytes) -> dict[str, Any]:
    if len(data) < 10:
        raise BenderError("file too short to be a safetensors model")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise BenderError("truncated safetensors file (header runs past the end); re-download or re-save it")
    try:
        return json.loads(data[8:8 + n])
    except ValueError:
        raise BenderError("corrupt safetensors header") from None


def load_native(data: bytes, name: str = "", sha256: str = "") -> Model:
    """Build a Model from the bytes of a bender .safetensors file."""
    from safetensors.torch import load as st_load

    meta = read_header(data).get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise BenderError(f"{name}: a safetensors file, but not a bender model (no '{FORMAT}' metadata); "
                          "bender reads its own .safetensors and NVIDIA .pkl files")
    try:
        tensors = st_load(data)
    except Exception as e:  # noqa: BLE001 - the library raises several types for damaged files
        raise BenderError(f"{name}: damaged safetensors data ({e}); re-download or re-save it") from None
    configs = json.loads(meta["config"])
    g_cfg = from_dict(GeneratorConfig, configs["G"])
    d_cfg = from_dict(DiscriminatorConfig, configs["D"]) if configs.get("D") else None

    def build(top: str, module: torch.nn.Module):
        sd = {k[len(top) + 1:]: v for k, v in tensors.items() if k.startswith(top + ".")}
        if not sd:
            return None
        try:
            module.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise BenderError(f"{name}: {top} weights do not match its stored config ({first})") from None
        return module

    G_ema = build("G_ema", Generator(g_cfg))
    G = build("G", Generator(g_cfg))
    D = build("D", Discriminator(d_cfg)) if d_cfg is not None else None
    if G_ema is None:
        if G is None:
            raise BenderError(f"{name}: the file holds no generator weights")
        G_ema = G
    nvidia = None
    if "nvidia_skeleton" in meta:
        from bender.io.nvidia import NvidiaSkeleton

        extra = {k[len("nvidia_extra."):]: v for k, v in tensors.items() if k.startswith("nvidia_extra.")}
        nvidia = NvidiaSkeleton.loads(base64.b64decode(meta["nvidia_skeleton"]), extra)
    lineage = Lineage.from_dict(json.loads(meta.get("lineage", "{}")))
    if not lineage.source_sha256:
        lineage.source_sha256 = sha256
    if not lineage.source_name:
        lineage.source_name = name
    model = Model(G_ema=G_ema, G=G, D=D, g_config=g_cfg, d_config=d_cfg, lineage=lineage,
                  augment_p=float(meta["augment_p"]) if "augment_p" in meta else None,
                  training_set_kwargs=json.loads(meta["training_set_kwargs"]) if "training_set_kwargs" in meta
                  else None, nvidia=nvidia)
    return model.eval()
