"""Latent spaces: Z, W and W+, and the operations artists use on them.

- **Z** is the generator's input: a `z_dim` Gaussian vector (a seed picks one, see `seeds.py`).
- **W** is the mapping network's output: one `w_dim` vector, broadcast to every synthesis layer.
- **W+** gives every synthesis layer its own w: a `[num_ws, w_dim]` tensor.

Inside bender every W-space latent is stored as W+ (`[num_ws, w_dim]`, with equal rows for a plain
w), so mixing, directions applied to a layer range and saved projections all have one shape.
Truncation and style mixing are explicit functions here (rather than arguments to `G`) because a
walk animates them per frame: `truncate` takes one ψ per sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bender.device import to_device
from bender.errors import BenderError
from bender.latent.seeds import class_vector, zs_from_seeds

SPACES = ("z", "w")


def parse_layer_range(spec: str | int | list | tuple | None, num_ws: int) -> tuple[int, int]:
    """'4-7' | 4 | [4, 7] | None -> (first, last + 1), checked against `num_ws`.

    Layer indices are ws indices (0 = the 4x4 block's conv); ranges are inclusive like seed lists.
    None means every layer.
    """
    if spec is None or spec == "all":
        return 0, num_ws
    if isinstance(spec, int):
        lo, hi = spec, spec
    elif isinstance(spec, (list, tuple)) and len(spec) == 2:
        lo, hi = int(spec[0]), int(spec[1])
    else:
        text = str(spec).strip()
        a, sep, b = text.partition("-")
        try:
            lo = int(a)
            hi = int(b) if sep else lo
        except ValueError:
            raise BenderError(f"layer range '{spec}': expected 'FIRST-LAST' like 0-3 (ws indices)") from None
    if not 0 <= lo <= hi < num_ws:
        raise BenderError(f"layer range '{spec}' is outside this model's ws 0-{num_ws - 1}")
    return lo, hi + 1


@torch.no_grad()
def map_z(G: torch.nn.Module, z: torch.Tensor, class_idx: int | None = None) -> torch.Tensor:
    """[N, z_dim] -> untruncated W+ latents [N, num_ws, w_dim] (the mapping network, no ψ)."""
    try:
        c = class_vector(class_idx, G.c_dim, z.shape[0], device=z.device)
    except ValueError as e:
        raise BenderError(str(e)) from None
    return G.mapping(z, c if G.c_dim else None)


def seeds_to_ws(G: torch.nn.Module, seeds: list[int], class_idx: int | None = None,
                device: torch.device | str | None = None) -> torch.Tensor:
    """Untruncated W+ latents [len(seeds), num_ws, w_dim] for NVIDIA-compatible seeds."""
    device = device if device is not None else G.mapping.w_avg.device
    return map_z(G, zs_from_seeds(seeds, G.z_dim, device), class_idx)


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float | torch.Tensor, cutoff: int | None = None
             ) -> torch.Tensor:
    """Pull W+ latents toward `w_avg`: w_avg + ψ (w - w_avg), on the first `cutoff` layers (all if None).

    `psi` may be a float or a tensor with one ψ per sample ([N]), which is how walks animate it.
    ψ = 1 returns `ws` unchanged (the same values, not a rounded copy).
    """
    if not isinstance(psi, torch.Tensor):
        if psi == 1:
            return ws
        psi = torch.full([ws.shape[0]], float(psi), device=ws.device)
    if bool((psi == 1).all()):  # on the host when psi comes from there: no device sync
        return ws
    psi = to_device(psi, ws.device).to(ws.dtype).reshape(-1, 1, 1)
    cut = ws.shape[1] if cutoff is None else min(int(cutoff), ws.shape[1])
    out = ws.clone()
    out[:, :cut] = torch.lerp(w_avg.to(ws.dtype).expand_as(ws[:, :cut]), ws[:, :cut], psi)
    return out


def style_mix(ws: torch.Tensor, ws_other: torch.Tensor, layers: tuple[int, int]) -> torch.Tensor:
    """Copy layers [first, last) of `ws_other` into `ws` (style mixing: coarse, middle or fine styles)."""
    lo, hi = layers
    out = ws.clone()
    out[..., lo:hi, :] = ws_other[..., lo:hi, :]
    return out


def load_ws(path: str | Path, num_ws: int, w_dim: int) -> torch.Tensor:
    """Read saved W latents as [K, num_ws, w_dim] float32.

    Accepts .npy arrays shaped [w_dim], [num_ws, w_dim], [K, w_dim] or [K, num_ws, w_dim], and .npz
    files with a 'w' array (what NVIDIA's projector writes: projected_w.npz, [1, num_ws, w_dim]).
    """
    path = Path(path)
    if not path.exists():
        raise BenderError(f"{path}: no such W file (expected .npy or .npz from a projection or `save_ws`)")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            if "w" not in data.files:
                raise BenderError(f"{path.name}: an .npz without a 'w' array (has {', '.join(data.files)})")
            data = data["w"]
    except (ValueError, OSError) as e:
        raise BenderError(f"{path.name}: not a numpy .npy/.npz file ({e})") from None
    arr = np.asarray(data, dtype=np.float32)
    if arr.shape[-1] != w_dim:
        raise BenderError(f"{path.name}: W vectors of size {arr.shape[-1]}, but this model has w_dim {w_dim}")
    if arr.ndim == 1:
        arr = np.broadcast_to(arr, [1, num_ws, w_dim])
    elif arr.ndim == 2:
        arr = arr[None] if arr.shape[0] == num_ws else np.broadcast_to(arr[:, None], [arr.shape[0], num_ws, w_dim])
    elif arr.ndim != 3 or arr.shape[1] != num_ws:
        raise BenderError(f"{path.name}: shape {arr.shape}; expected [w_dim], [num_ws, w_dim] or "
                          f"[K, {num_ws}, {w_dim}]")
    if not np.isfinite(arr).all():
        raise BenderError(f"{path.name}: contains NaN or infinite values")
    return torch.from_numpy(np.ascontiguousarray(arr))


def save_ws(path: str | Path, ws: torch.Tensor) -> Path:
    """Write W+ latents ([num_ws, w_dim] or [K, num_ws, w_dim]) as .npy, atomically."""
    from bender.fileio import atomic_open

    path = Path(path)
    with atomic_open(path, "wb") as f:
        np.save(f, ws.detach().to("cpu", torch.float32).numpy())
    return path
