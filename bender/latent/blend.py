"""Weight space: the bend slider between two models, and scrubbing through a training run.

`WeightBlender(original, fine_tuned)` keeps one working generator whose weights are
`lerp(a, b, α)`, per tensor. α = 0 gives model A's stored tensors and α = 1 model B's, bit for bit
(torch.lerp is exact at both ends); α < 0 pushes away from B ("anti-bend"), α > 1 past it
("over-bend"). A `BlendProfile` gives each synthesis resolution its own α, e.g. coarse shapes from
the original and fine textures from the fine-tune with a smooth logistic transition. The blender
caches the α each tensor currently holds, so moving a slider re-blends only what changed and never
reloads a file.

`Timeline(run_dir)` does the same across all snapshots of a run: t in [0, 1] walks from the first
snapshot to the last, hitting snapshot k exactly at its position; only the two snapshots around t
are kept in memory.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bender.errors import BenderError
from bender.io.model import Lineage, Model
from bender.nets import Generator


@dataclass
class BlendProfile:
    """How much of model B each part of the generator gets.

    Precedence: `per_resolution` (explicit α per block resolution, others fall back to `alpha`), then
    a logistic transition when `coarse` and `fine` are set, else the global `alpha` everywhere.
    Logistic: α(r) = coarse + (fine - coarse) * sigmoid((log2 r - log2 center) / width), width in
    octaves (width 0 = a hard step at `center`). The mapping network (and its w_avg) gets `mapping`,
    defaulting to the α of the coarsest block.
    """

    alpha: float = 0.0
    coarse: float | None = None
    fine: float | None = None
    center: float = 32.0
    width: float = 0.5
    mapping: float | None = None
    per_resolution: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.coarse is None) != (self.fine is None):
            raise BenderError("a blend profile needs both `coarse` and `fine` (or neither)")
        if self.center <= 0 or self.width < 0:
            raise BenderError("blend profile: center must be a resolution > 0 and width >= 0 octaves")
        self.per_resolution = {int(k): float(v) for k, v in (self.per_resolution or {}).items()}
        for value in [self.alpha, self.coarse, self.fine, self.mapping, *self.per_resolution.values()]:
            if value is not None and not math.isfinite(value):
                raise BenderError("blend α must be a finite number")

    def alpha_at(self, resolution: int) -> float:
        if resolution in self.per_resolution:
            return self.per_resolution[resolution]
        if self.coarse is not None and not self.per_resolution:
            x = math.log2(resolution) - math.log2(self.center)
            if self.width == 0:
                s = 0.0 if x < 0 else 1.0 if x > 0 else 0.5
            else:
                s = 1 / (1 + math.exp(-x / self.width))
            return self.coarse + (self.fine - self.coarse) * s
        return self.alpha

    def mapping_alpha(self, resolutions: list[int]) -> float:
        return self.mapping if self.mapping is not None else self.alpha_at(min(resolutions))


def _as_profile(alpha: float | BlendProfile) -> BlendProfile:
    return alpha if isinstance(alpha, BlendProfile) else BlendProfile(alpha=float(alpha))


def _generator(model: Model | Generator) -> Generator:
    return model.G_ema if isinstance(model, Model) else model


def check_same_architecture(sd_a: dict[str, torch.Tensor], sd_b: dict[str, torch.Tensor], what: str = "models"
                            ) -> None:
    if sd_a.keys() != sd_b.keys():
        only = sorted(set(sd_a) ^ set(sd_b))[:3]
        raise BenderError(f"the {what} have different architectures (tensors {', '.join(only)} are in only one); "
                          "blending needs two models of the same architecture, e.g. an original and its fine-tune")
    for k, v in sd_a.items():
        if v.shape != sd_b[k].shape:
            raise BenderError(f"the {what} have different architectures ({k}: {tuple(v.shape)} vs "
                              f"{tuple(sd_b[k].shape)}); blending needs the same resolution and channel counts")


class WeightBlender:
    """One working generator blended between two same-architecture generators (see module docs)."""

    def __init__(self, model_a: Model | Generator, model_b: Model | Generator,
                 device: torch.device | str | None = None):
        ga, gb = _generator(model_a), _generator(model_b)
        device = torch.device(device) if device is not None else next(ga.parameters()).device
        self.device = device
        self.model_a = model_a if isinstance(model_a, Model) else None
        self.model_b = model_b if isinstance(model_b, Model) else None
        self.generator: Generator = copy.deepcopy(ga).to(device).eval().requires_grad_(False)
        self._target = self.generator.state_dict(keep_vars=False)
        self.resolutions = list(self.generator.synthesis.block_resolutions)
        self._current: dict[str, float | None] = {}
        self.set_endpoints(ga.state_dict(), gb.state_dict())
        self.profile = BlendProfile(alpha=0.0)

    def set_endpoints(self, sd_a: dict[str, torch.Tensor], sd_b: dict[str, torch.Tensor]) -> None:
        """Replace both endpoint weight sets (used by `Timeline` when t crosses a snapshot)."""
        check_same_architecture(self._target, sd_a, "models")
        check_same_architecture(sd_a, sd_b, "models")
        self._a = {k: v.detach().to(self.device) for k, v in sd_a.items()}
        self._b = {k: v.detach().to(self.device) for k, v in sd_b.items()}
        self._current = {k: None for k in self._target}

    def tensor_alpha(self, name: str, profile: BlendProfile) -> float:
        """The α a state-dict entry gets under `profile` (by its block's resolution)."""
        if name.startswith("synthesis.b"):
            res = int(name.split(".")[1][1:])
            return profile.alpha_at(res)
        return profile.mapping_alpha(self.resolutions)

    @torch.no_grad()
    def set(self, alpha: float | BlendProfile) -> Generator:
        """Blend to `alpha` (a number or a profile) and return the working generator (same object)."""
        profile = _as_profile(alpha)
        self.profile = profile
        for name, target in self._target.items():
            a = self.tensor_alpha(name, profile)
            if self._current[name] == a:
                continue
            ta, tb = self._a[name], self._b[name]
            if a == 0:
                target.copy_(ta)
            elif a == 1:
                target.copy_(tb)
            elif target.is_floating_point():
                torch.lerp(ta, tb, a, out=target)
            else:
                target.copy_(ta if a < 0.5 else tb)
            self._current[name] = a
        return self.generator

    def to_model(self) -> Model:
        """The current blend as a standalone `Model` (G_ema only), e.g. to save with `save_model`."""
        base = self.model_a
        lineage = dataclasses.replace(base.lineage) if base is not None else Lineage(source_format="scratch")
        lineage.notes = dict(lineage.notes, blend=dataclasses.asdict(self.profile),
                             blend_b=(self.model_b.lineage.source_sha256 if self.model_b is not None else ""))
        return Model(G_ema=copy.deepcopy(self.generator), lineage=lineage)


def read_generator_tensors(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """G_ema tensors (state-dict names) and the stored generator config (canonical JSON) of a snapshot."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            keys = list(f.keys())
            prefix = "G_ema." if any(k.startswith("G_ema.") for k in keys) else "G."
            tensors = {k[len(prefix):]: f.get_tensor(k) for k in keys if k.startswith(prefix)}
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for damaged files
        raise BenderError(f"{path.name}: cannot read snapshot ({e}); is the run folder complete?") from None
    if not tensors:
        raise BenderError(f"{path.name}: the snapshot holds no generator")
    try:
        g_config = json.dumps(json.loads(meta.get("config", "{}")).get("G"), sort_keys=True)
    except ValueError:
        g_config = ""
    return tensors, g_config


class Timeline:
    """Interpolate weights across all snapshots of a training run (t in [0, 1]).

    `by="index"` spaces snapshots evenly in t (snapshot k of n sits at k / (n - 1)); `by="kimg"`
    places them by training progress. t is clamped to [0, 1]; within 1e-9 of a snapshot's position
    the snapshot's own tensors are used.
    """

    def __init__(self, run_dir: str | Path, device: torch.device | str | None = None, by: str = "index"):
        from bender.io import load
        from bender.io.runs import SNAPSHOT_RE, list_snapshots

        self.run_dir = Path(run_dir)
        self.snapshots = list_snapshots(self.run_dir)
        if not self.snapshots:
            raise BenderError(f"{run_dir}: no checkpoints/snapshot-*.safetensors; a timeline needs a run folder "
                              "written by `bender train`")
        if by not in ("index", "kimg"):
            raise BenderError(f"timeline spacing must be 'index' or 'kimg', got {by!r}")
        self.kimg = [float(SNAPSHOT_RE.search(p.name).group(1)) for p in self.snapshots]
        n = len(self.snapshots)
        if n == 1:
            self.positions = [0.0]
        elif by == "kimg" and self.kimg[-1] > self.kimg[0]:
            self.positions = [(k - self.kimg[0]) / (self.kimg[-1] - self.kimg[0]) for k in self.kimg]
        else:
            self.positions = [i / (n - 1) for i in range(n)]
        self.first = load(self.snapshots[0], device=device)
        self._config, self._cache = "", OrderedDict()
        sd0, self._config = read_generator_tensors(self.snapshots[0])
        self._cache[0] = sd0
        self.blender = WeightBlender(self.first, self.first.G_ema, device=device)
        self._pair: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.snapshots)

    def _tensors(self, i: int) -> dict[str, torch.Tensor]:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        tensors, config = read_generator_tensors(self.snapshots[i])
        if config and self._config and config != self._config:
            raise BenderError(f"{self.snapshots[i].name} has a different architecture from "
                              f"{self.snapshots[0].name}; a timeline needs snapshots of one run")
        self._cache[i] = tensors
        while len(self._cache) > 3:
            self._cache.popitem(last=False)
        return tensors

    def locate(self, t: float) -> tuple[int, int, float]:
        """(snapshot i, snapshot j, α) such that the weights at t are lerp(i, j, α)."""
        t = min(1.0, max(0.0, float(t)))
        pos = self.positions
        for k, p in enumerate(pos):
            if abs(t - p) <= 1e-9:
                return k, k, 0.0
        j = next(k for k, p in enumerate(pos) if p > t)
        i = j - 1
        return i, j, (t - pos[i]) / (pos[j] - pos[i])

    def generator_at(self, t: float) -> Generator:
        """The working generator with the weights at timeline position t."""
        i, j, alpha = self.locate(t)
        if self._pair != (i, j):
            self.blender.set_endpoints(self._tensors(i), self._tensors(j))
            self._pair = (i, j)
        return self.blender.set(alpha)

    def kimg_at(self, t: float) -> float:
        i, j, alpha = self.locate(t)
        return self.kimg[i] + (self.kimg[j] - self.kimg[i]) * alpha
