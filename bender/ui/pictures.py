"""Pictures the UI shows live: which weights, which latent, which ψ -> PNG-ready images with recipes.

Each tab describes what it wants as `Picture`s; the server's one render worker (`RenderQueue`)
renders pictures that can share a forward pass together (same weights and per-batch settings,
whatever their latents and ψ). Rendering is a composition of the latent library's steps, the same
ones a walk's frames go through:

    seeds -> W+   bender.latent.spaces.seeds_to_ws (NVIDIA-compatible seeds, mapping network)
    mixing        bender.latent.spaces.style_mix
    ψ             bender.latent.spaces.truncate (one ψ per picture)
    weights       bender.latent.blend.WeightBlender / Timeline (bend slider, snapshot scrubber)
    bends         bender.latent.bend.BendSet.attach (network bending hooks)
    synthesis     bender.render.frames.synthesize (optionally stopping early for thumbnails)
    pixels        bender.render.images.to_uint8

Blenders and timelines keep a working copy of a generator whose weights they overwrite, so they
are only ever used from the render worker thread.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

import bender
from bender.errors import BenderError
from bender.latent import spaces
from bender.latent.bend import Bend, BendSet
from bender.latent.blend import BlendProfile, Timeline, WeightBlender
from bender.render.frames import synthesize
from bender.render.images import to_pil, to_uint8
from bender.ui.library import ModelLibrary

NOISE_MODES = ("const", "random", "none")


@dataclass(frozen=True)
class Weights:
    """Which generator weights a picture uses: a model, a blend of two, or a point of a run's timeline.

    Blend: α_r = alpha * per_resolution[r] for the resolutions listed (others get alpha), the same
    rule as a walk script's `blend.per_resolution` scaled by a keyframe's alpha. `bends` are Bend
    dicts as canonical JSON (hashable, so equal settings batch together).
    """

    model: str
    model_b: str | None = None
    alpha: float = 0.0
    per_resolution: tuple[tuple[int, float], ...] = ()
    bends: tuple[str, ...] = ()
    run: str | None = None
    t: float = 0.0

    def profile(self) -> BlendProfile:
        return BlendProfile(alpha=self.alpha, per_resolution={r: self.alpha * w for r, w in self.per_resolution})


def bend_key(bend: Bend) -> str:
    return json.dumps(bend.to_dict(), sort_keys=True)


@dataclass(frozen=True, eq=False)
class Picture:
    """One image: `ws` ([num_ws, w_dim] W+) if given, else `seed` (with optional style mixing)."""

    weights: Weights
    seed: int = 0
    ws: torch.Tensor | None = None
    mix_seed: int | None = None
    mix_layers: str = "8-"
    psi: float = 1.0
    cutoff: int | None = None
    noise_mode: str = "const"
    class_idx: int | None = None
    size: int | None = None  # stop synthesis at this resolution (thumbnails); None = full
    recipe: tuple[tuple[str, str], ...] = ()  # extra PNG metadata (e.g. plane coordinates)

    def group(self) -> tuple:
        """Pictures with equal groups render in one forward pass."""
        return (self.weights, self.cutoff, self.noise_mode, self.class_idx, self.size)


class FastPng(Image.Image):
    """A PIL image that writes PNGs with zlib level 1 unless told otherwise.

    Gradio encodes every returned picture as a PNG at PIL's default level 6, which for a 1024²
    picture costs more (about 0.2-0.8 s on a CPU core) than generating it on a GPU; level 1 is
    several times faster for files about 15 % larger. Pixels and metadata are the same.
    """

    def save(self, fp, format=None, **params):  # noqa: A002 - PIL's signature
        if str(format or getattr(fp, "name", "")).lower().endswith("png"):
            params.setdefault("compress_level", 1)
        return super().save(fp, format, **params)


def with_metadata(image: Image.Image, metadata: dict) -> Image.Image:
    """Attach PNG text chunks (Gradio writes `info` strings into the PNG it serves for download)."""
    image.info.update({str(k): str(v) for k, v in metadata.items() if v is not None})
    if type(image) is Image.Image:
        image.__class__ = FastPng
    return image


class Painter:
    """Renders Pictures for one server (see module docs). `render` is the RenderQueue batch function."""

    def __init__(self, library: ModelLibrary, cache_size: int = 2):
        self.library = library
        self.cache_size = cache_size
        self._blenders: OrderedDict[tuple, WeightBlender] = OrderedDict()
        self._timelines: OrderedDict[str, Timeline] = OrderedDict()
        self._lock = threading.Lock()

    # -- checks (in the caller's thread, so a bad request fails alone and fast) -------------------

    def base(self, weights: Weights) -> torch.nn.Module:
        """The generator whose architecture a picture must fit (never mutated: safe in any thread)."""
        if weights.run is not None:
            return self.timeline(weights.run).first.G_ema
        return self.library.get(weights.model).G

    def check(self, p: Picture) -> Picture:
        G = self.base(p.weights)
        if p.ws is None and not 0 <= int(p.seed) < 2**32:
            raise BenderError(f"seed must be a whole number from 0 to {2**32 - 1}, got {p.seed}")
        if p.mix_seed is not None and not 0 <= int(p.mix_seed) < 2**32:
            raise BenderError(f"mix seed must be a whole number from 0 to {2**32 - 1}, got {p.mix_seed}")
        if p.mix_seed is not None:
            mix_range(p.mix_layers, G.num_ws)
        if not math.isfinite(p.psi):
            raise BenderError("ψ must be a finite number")
        if p.noise_mode not in NOISE_MODES:
            raise BenderError(f"noise mode must be one of {', '.join(NOISE_MODES)}, got {p.noise_mode!r}")
        if p.cutoff is not None and p.cutoff < 0:
            raise BenderError("ψ cutoff must be 0 or more layers")
        c_dim = int(G.c_dim)
        if c_dim and p.class_idx is None:
            raise BenderError(f"this model is conditional: pick a class 0..{c_dim - 1}")
        if c_dim and not 0 <= p.class_idx < c_dim:
            raise BenderError(f"class {p.class_idx} is out of range: this model has classes 0..{c_dim - 1}")
        if p.ws is not None and tuple(p.ws.shape) != (G.num_ws, G.w_dim):
            raise BenderError(f"latent of shape {tuple(p.ws.shape)} does not fit this model ({G.num_ws}, {G.w_dim})")
        w = p.weights
        if w.model_b is not None:
            b = self.library.get(w.model_b).G
            if (b.img_resolution, b.num_ws, b.w_dim) != (G.img_resolution, G.num_ws, G.w_dim):
                raise BenderError("model B has a different architecture; blending needs two models of the same "
                                  "architecture (an original and its fine-tune)")
            if not all(math.isfinite(v) for v in (w.alpha, *(x for _, x in w.per_resolution))):
                raise BenderError("α must be a finite number")
        for text in w.bends:
            BendSet([Bend.from_dict(json.loads(text))]).validate(G)
        return p

    # -- generators (render worker only) ---------------------------------------------------------

    def generator(self, w: Weights) -> torch.nn.Module:
        if w.run is not None:
            return self.timeline(w.run).generator_at(w.t)
        loaded = self.library.get(w.model)
        if w.model_b is None:
            return loaded.G
        key = (w.model, w.model_b)
        with self._lock:
            blender = self._blenders.get(key)
            if blender is None:
                blender = WeightBlender(loaded.model, self.library.get(w.model_b).model, device=self.library.device)
                self._blenders[key] = blender
                while len(self._blenders) > self.cache_size:
                    self._blenders.popitem(last=False)
            self._blenders.move_to_end(key)
        return blender.set(w.profile())

    def timeline(self, run_key: str) -> Timeline:
        with self._lock:
            tl = self._timelines.get(run_key)
            if tl is None:
                tl = Timeline(self.library.run(run_key).path, device=self.library.device)
                self._timelines[run_key] = tl
                while len(self._timelines) > self.cache_size:
                    self._timelines.popitem(last=False)
            self._timelines.move_to_end(run_key)
            return tl

    # -- rendering -------------------------------------------------------------------------------

    @torch.no_grad()  # not inference_mode: blended copies made here must stay normal tensors (weight caches)
    def arrays(self, group: tuple, pictures: Sequence[Picture]) -> list:
        """[H, W, C] uint8 arrays for pictures sharing `group`."""
        weights, cutoff, noise_mode, class_idx, size = group
        G = self.generator(weights)
        device = G.mapping.w_avg.device
        ws = torch.empty([len(pictures), G.num_ws, G.w_dim], device=device)
        seeded = [i for i, p in enumerate(pictures) if p.ws is None]
        if seeded:
            ws[seeded] = spaces.seeds_to_ws(G, [int(pictures[i].seed) for i in seeded], class_idx, device)
        for i, p in enumerate(pictures):
            if p.ws is not None:
                ws[i] = p.ws.to(device=device, dtype=ws.dtype)
            if p.mix_seed is not None:
                other = spaces.seeds_to_ws(G, [int(p.mix_seed)], class_idx, device)
                ws[i:i + 1] = spaces.style_mix(ws[i:i + 1], other, mix_range(p.mix_layers, G.num_ws))
        psi = torch.tensor([float(p.psi) for p in pictures], dtype=torch.float32)
        ws = spaces.truncate(ws, G.mapping.w_avg, psi, cutoff)
        with contextlib.ExitStack() as stack:
            if weights.bends:
                stack.enter_context(BendSet([Bend.from_dict(json.loads(b)) for b in weights.bends]).attach(G))
            img = synthesize(G, ws, noise_mode, size)
        return list(to_uint8(img))

    def render(self, group: tuple, pictures: Sequence[Picture]) -> list[Image.Image]:
        """The RenderQueue batch function: PIL images carrying their recipes."""
        return [with_metadata(to_pil(a), self.metadata(p)) for a, p in zip(self.arrays(group, pictures), pictures)]

    def metadata(self, p: Picture) -> dict:
        w = p.weights
        meta: dict = {}
        if p.ws is None:
            meta["seed"] = p.seed
        meta.update({"truncation_psi": p.psi, "truncation_cutoff": p.cutoff, "noise_mode": p.noise_mode,
                     "class": p.class_idx})
        if p.mix_seed is not None:
            meta.update({"mix_seed": p.mix_seed, "mix_layers": p.mix_layers})
        meta.update(dict(p.recipe))
        if w.run is not None:
            tl = self.timeline(w.run)
            meta.update({"model": f"{tl.run_dir.name} (run)", "model_sha256": tl.first.lineage.source_sha256,
                         "timeline_t": w.t, "kimg": round(tl.kimg_at(w.t), 3)})
        else:
            meta.update(self.library.get(w.model).metadata())
        if w.model_b is not None:
            b = self.library.get(w.model_b)
            meta.update({"model_b": b.entry.label, "model_b_sha256": b.sha256, "alpha": w.alpha})
            if w.per_resolution:
                meta["alpha_per_resolution"] = json.dumps({str(r): v for r, v in w.per_resolution})
        if w.bends:
            meta["bends"] = json.dumps([json.loads(b) for b in w.bends])
        meta["software"] = f"bender {bender.__version__} ui"
        return meta


def mix_range(spec: str, num_ws: int) -> tuple[int, int]:
    """'8-' (from 8 to the end), '0-3', '4' -> a ws range for style mixing."""
    text = str(spec).strip()
    if text.endswith("-"):
        text = f"{text}{num_ws - 1}"
    return spaces.parse_layer_range(text or None, num_ws)

