"""Explore's pictures: a `Still` (model, seed, ψ, ...) -> a PNG-ready PIL image with its recipe.

The pixels come from `bender.latent.generate.images_for_seeds`, the same call `bender generate`
makes, so a seed at a ψ in the UI is the same picture as on the command line and in NVIDIA's
tools. Stills that can share a forward pass (same model and settings) are rendered together by
the server's `RenderQueue`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

import bender
from bender.errors import BenderError
from bender.latent.generate import images_for_seeds
from bender.render.images import to_pil
from bender.ui.library import LoadedModel, ModelLibrary

NOISE_MODES = ("const", "random", "none")


@dataclass(frozen=True)
class Still:
    """One picture as Explore describes it."""

    model: str
    seed: int
    psi: float = 1.0
    cutoff: int | None = None  # truncate only the first `cutoff` ws (None = all)
    noise_mode: str = "const"
    class_idx: int | None = None

    def check(self, loaded: LoadedModel) -> Still:
        """Raise a one-line BenderError for input the model cannot render."""
        if not 0 <= int(self.seed) < 2**32:
            raise BenderError(f"seed must be a whole number from 0 to {2**32 - 1}, got {self.seed}")
        if not math.isfinite(self.psi):
            raise BenderError("ψ must be a finite number")
        if self.noise_mode not in NOISE_MODES:
            raise BenderError(f"noise mode must be one of {', '.join(NOISE_MODES)}, got {self.noise_mode!r}")
        if self.cutoff is not None and self.cutoff < 0:
            raise BenderError("ψ cutoff must be 0 or more layers")
        c_dim = loaded.G.c_dim
        if c_dim and self.class_idx is None:
            raise BenderError(f"this model is conditional: pick a class 0..{c_dim - 1}")
        if c_dim and not 0 <= self.class_idx < c_dim:
            raise BenderError(f"class {self.class_idx} is out of range: this model has classes 0..{c_dim - 1}")
        return self

    def group(self) -> tuple:
        """Stills with equal groups render in one forward pass."""
        return (self.model, float(self.psi), self.cutoff, self.noise_mode, self.class_idx)

    def metadata(self, loaded: LoadedModel) -> dict[str, str]:
        meta = {"seed": self.seed, "truncation_psi": self.psi, "truncation_cutoff": self.cutoff,
                "noise_mode": self.noise_mode, "class": self.class_idx, **loaded.metadata(),
                "software": f"bender {bender.__version__} ui"}
        return {k: str(v) for k, v in meta.items()}


def with_metadata(image: Image.Image, metadata: dict[str, str]) -> Image.Image:
    """Attach PNG text chunks; Gradio writes `info` strings into the PNG it serves for download."""
    image.info.update({str(k): str(v) for k, v in metadata.items()})
    return image


def render_stills(library: ModelLibrary, group: tuple, stills: Sequence[Still]) -> list[Image.Image]:
    """Render stills that share `group` (see `Still.group`) in one batch."""
    loaded = library.get(stills[0].model)
    _, psi, cutoff, noise_mode, class_idx = group
    with loaded.lock:
        arrays = images_for_seeds(loaded.G, [s.seed for s in stills], truncation_psi=psi, truncation_cutoff=cutoff,
                                  noise_mode=noise_mode, class_idx=class_idx, batch_size=len(stills),
                                  device=library.device)
    return [with_metadata(to_pil(a), s.metadata(loaded)) for a, s in zip(arrays, stills)]
