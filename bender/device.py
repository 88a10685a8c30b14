"""Devices: picking one from a user's `--device` string, and copying host tensors to it without a sync."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bender.errors import BenderError

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts without it
    import torch


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


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """`t.to(device)`, without waiting when it is a host -> GPU copy.

    A plain copy from pageable host memory first waits for all work already queued on the GPU,
    which stalls a pipeline that prepares the next batch while the current one computes. Staged
    through pinned memory the copy is queued like a kernel; PyTorch keeps the pinned block alive
    until the copy has run, so the caller may change or drop `t` at once.
    """
    import torch

    device = torch.device(device)
    if device.type != "cuda" or t.device.type != "cpu":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)
