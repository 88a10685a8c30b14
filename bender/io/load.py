"""One loader for every model format, detected from content (never the extension)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bender.errors import BenderError
from bender.io.model import Model

DEFAULT_MODEL_NAMES = ("default", "builtin", "bender:default")


def default_model_path() -> Path:
    """The embedded default 64x64 model that ships inside the package."""
    return Path(__file__).resolve().parents[1] / "assets" / "default-64.safetensors"


def sniff(data: bytes) -> str:
    """'pickle' | 'safetensors' | 'zip' | 'empty' | 'unknown' from the first bytes."""
    if not data:
        return "empty"
    # safetensors first: its 8-byte little-endian header length can begin with 0x80 0x02..0x05
    # (e.g. a 640-byte header), which would otherwise look like a pickle's PROTO opcode.
    if len(data) > 9 and data[8:9] == b"{" and int.from_bytes(data[:8], "little") < 100_000_000:
        return "safetensors"  # (a length past the end means truncated; load_native explains)
    if data[:1] == b"\x80" and len(data) > 1 and 2 <= data[1] <= 5:
        return "pickle"
    if data[:4] == b"PK\x03\x04":
        return "zip"
    return "unknown"


def load(path: str | os.PathLike | None = None, device: str | None = None) -> Model:
    """Load a model from an NVIDIA .pkl, a bender .safetensors, or 'default' (the embedded model).

    Nothing in the file is executed. Errors are one-line `BenderError`s saying what the file is
    and what is supported.
    """
    if path is None or str(path) in DEFAULT_MODEL_NAMES:
        path = default_model_path()
        if not path.exists():
            raise BenderError("the embedded default model is missing from this installation; "
                              "reinstall bender or pass a model file")
    path = Path(path)
    if path.is_dir():
        from bender.io.runs import latest_snapshot  # a training run folder

        path = latest_snapshot(path)
    if not path.exists():
        raise BenderError(f"{path}: no such file")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    kind = sniff(data)
    if kind == "pickle":
        from bender.io.nvidia import load_nvidia_pickle

        model = load_nvidia_pickle(data, path.name, sha)
    elif kind == "safetensors":
        from bender.io.native import load_native

        model = load_native(data, path.name, sha)
    elif kind == "empty":
        raise BenderError(f"{path.name}: empty file (0 bytes); re-download it")
    elif kind == "zip":
        raise BenderError(f"{path.name}: a zip archive (a dataset, or a torch.save checkpoint?), not a network; "
                          "pass an NVIDIA .pkl or a bender .safetensors")
    else:
        raise BenderError(f"{path.name}: not a model file (expected an NVIDIA network pickle .pkl or a "
                          "bender .safetensors)")
    if device is not None:
        model.to(device)
    return model
