"""Seeds -> images with a generator, in batches (what `bender generate` and previews use)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from bender.latent.seeds import class_vector, zs_from_seeds
from bender.render.images import to_uint8


@torch.inference_mode()
def images_for_seeds(
    G: torch.nn.Module,
    seeds: Sequence[int],
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    noise_mode: str = "const",
    class_idx: int | None = None,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    half_dtype: torch.dtype = torch.float16,
) -> np.ndarray:
    """[N, H, W, C] uint8 images, one per seed, NVIDIA-compatible (same seed -> same picture)."""
    device = torch.device(device) if device is not None else next(G.parameters()).device
    out = []
    for start in range(0, len(seeds), batch_size):
        chunk = list(seeds[start: start + batch_size])
        z = zs_from_seeds(chunk, G.z_dim, device)
        c = class_vector(class_idx, G.c_dim, len(chunk), device)
        img = G(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, noise_mode=noise_mode,
                half_dtype=half_dtype)
        out.append(to_uint8(img))
    return np.concatenate(out, axis=0)
