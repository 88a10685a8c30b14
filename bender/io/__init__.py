"""Reading and writing models: NVIDIA pickles (safely), bender .safetensors, NVIDIA pickle export."""

from bender.io.load import default_model_path, load
from bender.io.model import Lineage, Model
from bender.io.native import save_model

__all__ = ["Lineage", "Model", "default_model_path", "export_nvidia", "load", "save_model"]


def export_nvidia(model: Model, path) -> None:
    """Write `model` as an NVIDIA network pickle (only for models that came from one)."""
    from bender.fileio import atomic_write_bytes
    from bender.io.nvidia import export_nvidia_pickle

    atomic_write_bytes(path, export_nvidia_pickle(model))
