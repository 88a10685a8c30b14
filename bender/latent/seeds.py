"""Seeds -> latents, exactly as NVIDIA's tools do it.

Artists share seeds ("seed 42 at psi 0.7"). A seed means `np.random.RandomState(seed).randn(1, z_dim)`
in NVIDIA's generate.py and gen_video.py, so it must mean the same here — computed with numpy on
the CPU in float64 and only then cast, so CPU and GPU runs get identical z.
"""

from __future__ import annotations

import numpy as np
import torch


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """[1, z_dim] float64 latent for `seed` (NVIDIA-compatible)."""
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    return np.random.RandomState(int(seed)).randn(1, z_dim)


def zs_from_seeds(seeds: list[int], z_dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """[N, z_dim] float32 tensor, one row per seed."""
    z = np.concatenate([z_from_seed(s, z_dim) for s in seeds], axis=0)
    return torch.from_numpy(z).to(device=device, dtype=torch.float32)


def class_vector(class_idx: int | None, c_dim: int, n: int = 1, device: torch.device | str = "cpu") -> torch.Tensor:
    """One-hot class labels [n, c_dim] (an empty [n, 0] for unconditional models)."""
    c = torch.zeros([n, c_dim], device=device)
    if c_dim == 0:
        return c
    if class_idx is None:
        raise ValueError(f"this model is conditional ({c_dim} classes): pick a class with --class 0..{c_dim - 1}")
    if not 0 <= class_idx < c_dim:
        raise ValueError(f"class {class_idx} is out of range: this model has classes 0..{c_dim - 1}")
    c[:, class_idx] = 1
    return c
