"""UI state -> walk scripts (`bender.latent.script.WalkScript`): pure data, no pixels.

Everything the UI turns into a video, and the plane it draws, goes through a walk script, so the
script the artist downloads reproduces exactly what the page showed (`bender render script`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bender.errors import BenderError
from bender.latent.bend import Bend
from bender.latent.script import BlendSpec, DirectionSpec, Keyframe, MixSpec, PlaneSpec, WalkScript
from bender.ui.library import ModelEntry
from bender.ui.pictures import Picture, mix_range

AXES = ("seeds", "favourites", "SeFa", "PCA")


def model_ref(entry: ModelEntry) -> str:
    """How a script names a catalogue model: 'default' or the file's absolute path."""
    return "default" if entry.kind == "default" else str(entry.path)


@dataclass(frozen=True)
class PlaneAxes:
    """The Plane tab's choice of origin and axes.

    seeds / favourites: origin and axes are w(seed) (axes u = w(u) - w(origin)), so (1, 0) is the
    u seed's picture; SeFa / PCA: origin w(origin_seed), axes the u-th and v-th direction (0 = the
    strongest), each one standard deviation of W long.
    """

    kind: str
    origin_seed: int
    u: int
    v: int

    def parts(self) -> tuple[PlaneSpec, dict[str, DirectionSpec]]:
        if self.kind in ("seeds", "favourites"):
            return PlaneSpec(seeds=[self.origin_seed, self.u, self.v]), {}
        if self.kind in ("SeFa", "PCA"):
            kind = self.kind.lower()
            if self.u < 0 or self.v < 0:
                raise BenderError("direction numbers start at 0 (the strongest)")
            dirs = {"u": DirectionSpec(kind=kind, index=int(self.u)), "v": DirectionSpec(kind=kind, index=int(self.v))}
            return PlaneSpec(origin_seed=self.origin_seed, u="u", v="v"), dirs
        raise BenderError(f"plane axes must be one of {', '.join(AXES)}, got {self.kind!r}")

    def describe(self) -> str:
        if self.kind in ("seeds", "favourites"):
            return f"plane of seeds {self.origin_seed}, {self.u}, {self.v}"
        return f"plane at seed {self.origin_seed} along {self.kind} directions {self.u} and {self.v}"


@dataclass
class WalkSettings:
    """Interpolate's timing and the export's output settings."""

    frames: int = 24
    easing: str = "linear"
    interpolation: str = "slerp"
    loop: bool = False
    fps: float = 24.0
    size: int | None = None


@dataclass
class BendSettings:
    """The Bend tab: a second model blended in by α (with per-resolution weights) and network bends."""

    model_b: str | None = None  # script reference (path or 'default')
    alpha: float = 0.0
    per_resolution: dict[int, float] = field(default_factory=dict)
    bends: list[Bend] = field(default_factory=list)


def plane_script(model: str, axes: PlaneAxes, class_idx: int | None = None) -> WalkScript:
    """A one-frame script whose `Walk` builds the plane (origin and axes) the UI draws."""
    plane, directions = axes.parts()
    return WalkScript(model=model, plane=plane, directions=directions, class_idx=class_idx,
                      keyframes=[Keyframe(plane=[0.0, 0.0])]).validate()


def _apply(script: WalkScript, settings: WalkSettings, bend: BendSettings | None) -> WalkScript:
    script.frames, script.easing, script.interpolation = int(settings.frames), settings.easing, settings.interpolation
    script.loop, script.fps, script.size = bool(settings.loop), float(settings.fps), settings.size
    if bend is not None:
        if bend.model_b is not None:
            script.model_b, script.alpha = bend.model_b, float(bend.alpha)
            if any(v != 1.0 for v in bend.per_resolution.values()):
                script.blend = BlendSpec(per_resolution=dict(bend.per_resolution))
        script.bends = [b.to_dict() for b in bend.bends]
    return script.validate()


def favourites_script(favourites: Sequence[Picture], model: str, settings: WalkSettings,
                      bend: BendSettings | None = None, num_ws: int | None = None) -> WalkScript:
    """Favourites as keyframes: each keyframe's seed, ψ and style mixing; ψ eases between them.

    `num_ws` resolves open mixing ranges like '8-' (to the last layer) into the script's 'FIRST-LAST'.
    """
    if len(favourites) < 2:
        raise BenderError("a walk needs at least 2 keyframes: add favourites in Explore (♥)")
    first = favourites[0]
    if any(f.weights.model != first.weights.model for f in favourites):
        raise BenderError("the favourites come from different models; keep the favourites of one model "
                          "(clear the others) to make a walk")
    cutoffs = {f.cutoff for f in favourites}
    classes = {f.class_idx for f in favourites}
    if len(classes) > 1:
        raise BenderError("the favourites use different classes; a walk keeps one class")

    def mix(f: Picture) -> MixSpec | None:
        if f.mix_seed is None:
            return None
        layers = f.mix_layers
        if num_ws is not None:
            lo, hi = mix_range(layers, num_ws)
            layers = f"{lo}-{hi - 1}"
        return MixSpec(seed=int(f.mix_seed), layers=layers)

    keys = [Keyframe(seed=int(f.seed), psi=float(f.psi), mix=mix(f)) for f in favourites]
    cutoff = first.cutoff if len(cutoffs) == 1 else None
    script = WalkScript(model=model, psi=float(first.psi), truncation_cutoff=cutoff, noise=first.noise_mode,
                        class_idx=first.class_idx, keyframes=keys)
    return _apply(script, settings, bend)


def path_script(model: str, axes: PlaneAxes, path: Sequence[tuple[float, float]], psi: float,
                class_idx: int | None, settings: WalkSettings, bend: BendSettings | None = None) -> WalkScript:
    """A path recorded on the plane: keyframes at its (u, v) points."""
    if len(path) < 2:
        raise BenderError("record a path first: tick 'Record path' on the Plane tab and click 2 or more points")
    plane, directions = axes.parts()
    script = WalkScript(model=model, plane=plane, directions=directions, psi=float(psi), class_idx=class_idx,
                        keyframes=[Keyframe(plane=[float(u), float(v)]) for u, v in path])
    return _apply(script, settings, bend)
