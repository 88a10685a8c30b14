"""Picking the torch device from a user's `--device` string."""

from __future__ import annotations

from bender.errors import BenderError


def pick_device(name: str | None = "auto"):
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> torch.device; a clear error when CUDA is asked but absent."""
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BenderError(f"--device {name}: no CUDA GPU is visible to PyTorch; use --device cpu "
                          "(or install a CUDA build of torch: see README, 'GPU install')")
    try:
        return torch.device(name)
    except RuntimeError:
        raise BenderError(f"--device {name}: expected auto, cpu, cuda or cuda:N") from None
