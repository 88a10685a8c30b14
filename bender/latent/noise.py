"""Per-frame noise inputs: deterministic, independent of batching, with a per-frame strength.

StyleGAN2 adds per-pixel Gaussian noise (scaled by each layer's learned `noise_strength`) after
every synthesis convolution. `G(..., noise_mode="random")` draws it for the whole batch from one
generator, so a frame's noise would depend on which other frames share its batch. For walks we
want each frame's noise to be a pure function of (render seed, frame index) and its strength to be
animatable, so we draw it here and feed it in through the layers' `noise_const` buffers:

    with noise_inputs(G, noise):            # noise[layer] is [N, 1, r, r], already scaled
        img = G.synthesis(ws, noise_mode="const")

Noise is drawn on the CPU (float32, `torch.Generator`), so CPU and GPU renders get identical noise.
Modes: 'const' (each layer's stored noise, the "same picture every time" default), 'random'
(fresh noise per frame, seeded), 'none'.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import torch

from bender.device import to_device

NOISE_MODES = ("const", "random", "none")


def noise_layers(G: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The synthesis layers that take noise, by module name (e.g. 'synthesis.b8.conv0')."""
    return {name: m for name, m in G.named_modules()
            if getattr(m, "use_noise", False) and hasattr(m, "noise_const")}


def frame_seed(seed: int, frame: int) -> int:
    """A 63-bit seed for one frame's noise, well mixed (neighbouring frames are unrelated)."""
    digest = hashlib.sha256(f"bender-noise:{int(seed)}:{int(frame)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def make_noise(G: torch.nn.Module, frames: list[int], mode: str, strength: torch.Tensor | list[float],
               seed: int = 0, device: torch.device | str = "cpu", max_resolution: int | None = None
               ) -> dict[str, torch.Tensor]:
    """Noise for each noise layer: {name: [N, 1, r, r]} for the given frame indices.

    `strength` has one multiplier per frame (1 = the network's own noise strength, 0 = none).
    Layers above `max_resolution` are skipped (the preview renders stop early).
    """
    if mode not in NOISE_MODES:
        raise ValueError(f"noise mode must be one of {NOISE_MODES}, got {mode!r}")
    strength = torch.as_tensor(strength, dtype=torch.float32).reshape(-1, 1, 1, 1)
    if strength.shape[0] != len(frames):
        raise ValueError("one noise strength per frame is needed")
    layers = {k: m for k, m in noise_layers(G).items() if max_resolution is None or m.resolution <= max_resolution}
    out: dict[str, torch.Tensor] = {}
    if mode == "random":
        gens = []
        for f in frames:
            g = torch.Generator(device="cpu")
            g.manual_seed(frame_seed(seed, f))
            gens.append(g)
        scale = to_device(strength, device)
        # Same layer order for every frame, so a frame's noise never depends on the others.
        for name, layer in layers.items():
            r = layer.resolution
            n = torch.stack([torch.randn([1, r, r], generator=g) for g in gens])
            out[name] = to_device(n, device) * scale
    else:
        scale = to_device(strength, device) if mode == "const" else torch.zeros_like(strength, device=device)
        for name, layer in layers.items():
            base = layer.noise_const.detach().to(device=device, dtype=torch.float32)
            out[name] = base.reshape(1, 1, *base.shape) * scale
    return out


@contextlib.contextmanager
def noise_inputs(G: torch.nn.Module, noise: dict[str, torch.Tensor]) -> Iterator[None]:
    """Temporarily swap the layers' `noise_const` buffers for per-sample noise; run with noise_mode='const'.

    The layer computes `noise_const * noise_strength`, so a [N, 1, r, r] buffer broadcasts to one
    noise image per sample. Buffers are restored on exit, even on error. Not thread-safe: one render
    per generator at a time.
    """
    layers = noise_layers(G)
    saved: dict[str, torch.Tensor] = {}
    try:
        for name, tensor in noise.items():
            layer = layers[name]
            saved[name] = layer.noise_const
            layer.noise_const = tensor.to(device=saved[name].device)
        yield
    finally:
        for name, tensor in saved.items():
            layers[name].noise_const = tensor
