"""The walk script: a human-editable YAML file that fully describes a render.

A script names the model(s), the keyframes (seeds, saved W files, plane coordinates, directions),
timing (frames per segment, easing, loop), what is animated (ψ, noise strength, blend α, timeline
t, bend amounts — set on keyframes, interpolated between them), and the output (fps, size, codec).
`bender render script walk.yaml` renders it; every render writes the resolved script next to the
video and embeds its hash in the video's metadata.

    model: default
    interpolation: slerp
    loop: true
    frames: 48
    psi: 0.7
    keyframes:
      - seed: 1
      - seed: 2
        psi: 0.5          # ψ eases from 0.7 to 0.5 on the way here, then holds
      - seed: 3

Rules that keep it honest:
- unknown keys are errors with a suggestion (a typo never silently does nothing);
- relative paths are relative to the script's folder and are stored resolved (absolute);
- the hash is the sha256 of the canonical JSON of every field (defaults filled in), so comments
  and formatting do not change it, and a written script hashes the same when read back.
Examples: examples/walk.yaml, examples/bend.yaml.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bender.errors import BenderError
from bender.latent.bend import Bend
from bender.latent.noise import NOISE_MODES
from bender.latent.paths import EASINGS, INTERPOLATIONS

SCRIPT_VERSION = 1
PATH_KINDS = ("keyframes", "circle", "noise-loop")
DIRECTION_KINDS = ("sefa", "pca", "seeds", "file")
CODECS = ("auto", "h264", "vp9", "gif", "png")


@dataclass
class MixSpec:
    """Style mixing on a keyframe: ws `layers` (e.g. '8-13') come from `seed` (or, per image of a grid
    keyframe, from `seeds`)."""

    seed: int | None = None
    seeds: list[int] | None = None
    layers: str = "0-3"


@dataclass
class DirectionSpec:
    """A named direction in W.

    sefa / pca: component `index` (0 = strongest), scaled to one standard deviation of W along it;
    seeds: w(seeds[1]) - w(seeds[0]); file: an .npy offset ([w_dim] or [num_ws, w_dim]).
    `layers` restricts it to a ws range ('0-3' = coarse); `scale` multiplies it.
    """

    kind: str
    index: int = 0
    layers: str | None = None
    seeds: list[int] | None = None
    file: str | None = None
    scale: float = 1.0
    samples: int = 4096
    seed: int = 0


@dataclass
class PlaneSpec:
    """A 2-D plane in W: from three `seeds`, or an origin (a seed, or w_avg) and two named directions."""

    seeds: list[int] | None = None
    origin_seed: int | None = None
    u: str | None = None
    v: str | None = None


@dataclass
class PathSpec:
    """How frames move: through the `keyframes`, or a seeded closed loop in Z.

    circle: sqrt(1 - r^2) c + r (cos a + sin b) around a centre; noise-loop: a smooth random
    periodic wiggle (`harmonics`, `falloff`). Both have exactly `frames` frames, `tiles` loops side by
    side, and draw their vectors from numpy RandomState(seed).
    """

    kind: str = "keyframes"
    frames: int = 120
    seed: int = 0
    radius: float = 1.0
    harmonics: int = 4
    falloff: float = 1.0
    tiles: int = 1


@dataclass
class BlendSpec:
    """Per-resolution shape of the blend; keyframes' `alpha` scales it (α = 1 -> exactly this profile)."""

    coarse: float | None = None
    fine: float | None = None
    center: float = 32.0
    width: float = 0.5
    mapping: float | None = None
    per_resolution: dict[int, float] = field(default_factory=dict)


@dataclass
class Keyframe:
    """One stop of a walk. Give exactly one of seed / seeds / w / plane / points.

    `seeds` or `points` (several latents) make every frame a grid of images; all keyframes of a walk
    must then hold the same number. The other fields are animated tracks: a keyframe that sets one
    eases from the previous value to it; one that does not holds the previous value.
    """

    seed: int | None = None
    seeds: list[int] | None = None
    w: str | None = None
    plane: list[float] | None = None
    points: list[list[float]] | None = None
    directions: dict[str, float] = field(default_factory=dict)
    mix: MixSpec | None = None
    frames: int | None = None  # frames of the segment that starts here (default: the script's `frames`)
    easing: str | None = None  # easing of that segment (default: the script's `easing`)
    psi: float | None = None
    noise_strength: float | None = None
    alpha: float | None = None
    t: float | None = None
    bends: dict[str, float] = field(default_factory=dict)

    def content_kind(self) -> str:
        given = [k for k in ("seed", "seeds", "w", "plane", "points") if getattr(self, k) is not None]
        if len(given) != 1:
            raise BenderError(f"a keyframe needs exactly one of seed, seeds, w, plane, points (got "
                              f"{', '.join(given) or 'none'})")
        return given[0]


@dataclass
class WalkScript:
    """Everything a render needs (see the module docs and examples/walk.yaml)."""

    version: int = SCRIPT_VERSION
    model: str = "default"
    model_b: str | None = None  # second model: keyframe `alpha` blends model -> model_b
    run: str | None = None  # training run folder: keyframe `t` scrubs its snapshots
    timeline_by: str = "index"  # index | kimg: how snapshots are spaced in t
    space: str | None = None  # z | w (default: w for keyframes, z for loops)
    interpolation: str = "slerp"
    easing: str = "linear"
    frames: int = 30  # frames per segment
    loop: bool = False
    psi: float = 1.0
    truncation_cutoff: int | None = None
    noise: str = "const"
    noise_strength: float = 1.0
    alpha: float = 0.0
    t: float = 0.0
    class_idx: int | None = None
    seed: int = 0  # seeds the 'random' noise mode
    cols: int | None = None  # images per row when frames hold several images
    fps: float = 24.0
    size: int | None = None  # pixels per image (resized with Lanczos); default: the model's resolution
    codec: str = "auto"  # auto (by file extension) | h264 | vp9 | gif | png
    crf: int = 18
    batch: int = 8  # images generated together; part of the script because it affects the exact bits
    blend: BlendSpec | None = None
    directions: dict[str, DirectionSpec] = field(default_factory=dict)
    plane: PlaneSpec | None = None
    path: PathSpec = field(default_factory=PathSpec)
    bends: list[dict[str, Any]] = field(default_factory=list)
    keyframes: list[Keyframe] = field(default_factory=list)

    # -- validation ------------------------------------------------------------------------------

    def validate(self) -> WalkScript:
        """Check every field; fill `space`. Raises BenderError with the field named."""
        if self.version != SCRIPT_VERSION:
            raise BenderError(f"script version {self.version} is not supported (this bender reads {SCRIPT_VERSION})")
        _choice("path.kind", self.path.kind, PATH_KINDS)
        looped = self.path.kind != "keyframes"
        if self.space is None:
            self.space = "z" if looped else "w"
        _choice("space", self.space, ("z", "w"))
        _choice("interpolation", self.interpolation, INTERPOLATIONS)
        _choice("easing", self.easing, tuple(EASINGS))
        _choice("noise", self.noise, NOISE_MODES)
        _choice("codec", self.codec, CODECS)
        _choice("timeline_by", self.timeline_by, ("index", "kimg"))
        _positive("frames", self.frames)
        _positive("batch", self.batch)
        if not (isinstance(self.fps, (int, float)) and math.isfinite(self.fps) and 0 < self.fps <= 240):
            raise BenderError(f"fps must be a number in (0, 240], got {self.fps}")
        if self.size is not None and not 8 <= int(self.size) <= 4096:
            raise BenderError(f"size must be between 8 and 4096 pixels, got {self.size}")
        if not 0 <= int(self.crf) <= 63:
            raise BenderError(f"crf must be 0-63 (lower = better quality), got {self.crf}")
        if self.cols is not None:
            _positive("cols", self.cols)
        if self.model_b and self.run:
            raise BenderError("use either model_b (blend two models) or run (a training timeline), not both")
        if self.blend is not None and not self.model_b:
            raise BenderError("`blend` shapes the blend between model and model_b: set model_b too")
        for name in ("psi", "noise_strength", "alpha", "t"):
            _finite(name, getattr(self, name))
        for name, d in self.directions.items():
            _choice(f"directions.{name}.kind", d.kind, DIRECTION_KINDS)
            if d.kind == "seeds" and (not d.seeds or len(d.seeds) != 2):
                raise BenderError(f"direction {name}: kind 'seeds' needs seeds: [from, to]")
            if d.kind == "file" and not d.file:
                raise BenderError(f"direction {name}: kind 'file' needs file: PATH.npy")
            if d.index < 0:
                raise BenderError(f"direction {name}: index must be >= 0")
        if self.plane is not None:
            p = self.plane
            if p.seeds is not None:
                if len(p.seeds) != 3 or p.u or p.v:
                    raise BenderError("plane: give seeds: [origin, u, v] (3 seeds) or u/v direction names, not both")
            else:
                for axis in ("u", "v"):
                    name = getattr(p, axis)
                    if name not in self.directions:
                        raise BenderError(f"plane.{axis}: {name!r} is not one of the script's directions "
                                          f"({', '.join(self.directions) or 'none defined'})")
        # Normalised (every op parameter and the name filled in) so equal bends hash equally.
        self.bends = [Bend.from_dict(b).to_dict() for b in self.bends]
        bend_names = [b["name"] for b in self.bends]
        if looped:
            if self.keyframes:
                raise BenderError(f"a {self.path.kind} path takes no keyframes (it makes its own); remove them "
                                  "or use path kind 'keyframes'")
            if self.space != "z":
                raise BenderError(f"{self.path.kind} loops run in Z; set space: z")
            _positive("path.frames", self.path.frames)
            _positive("path.tiles", self.path.tiles)
            _positive("path.harmonics", self.path.harmonics)
            if not 0 <= self.path.radius <= 1:
                raise BenderError("path.radius must be in [0, 1] (1 = the widest loop)")
            return self
        if not self.keyframes:
            raise BenderError("the script has no keyframes; add e.g. `keyframes: [{seed: 1}, {seed: 2}]`")
        counts = set()
        for i, k in enumerate(self.keyframes):
            where = f"keyframe {i + 1}"
            try:
                kind = k.content_kind()
            except BenderError as e:
                raise BenderError(f"{where}: {e}") from None
            if self.space == "z" and kind not in ("seed", "seeds"):
                raise BenderError(f"{where}: {kind} keyframes live in W; set space: w (Z walks take seeds only)")
            if self.space == "z" and (k.directions or k.mix):
                raise BenderError(f"{where}: directions and style mixing need space: w")
            if k.mix is not None and (k.mix.seed is None) == (k.mix.seeds is None):
                raise BenderError(f"{where}: mix needs seed: N (or seeds: [...], one per image), not both")
            if kind in ("plane", "points") and self.plane is None:
                raise BenderError(f"{where}: plane coordinates need a `plane:` section")
            if kind == "plane" and len(k.plane) != 2:
                raise BenderError(f"{where}: plane: [u, v] takes two numbers")
            if kind == "points" and (not k.points or any(len(p) != 2 for p in k.points)):
                raise BenderError(f"{where}: points: [[u, v], ...] takes pairs of numbers")
            if kind == "seeds" and not k.seeds:
                raise BenderError(f"{where}: seeds is empty")
            counts.add(len(k.seeds) if kind == "seeds" else len(k.points) if kind == "points" else
                       None if kind == "w" else 1)
            for name in k.directions:
                if name not in self.directions:
                    raise BenderError(f"{where}: direction {name!r} is not defined in `directions:`")
            for name in k.bends:
                if name not in bend_names:
                    raise BenderError(f"{where}: no bend named {name!r} (bends: {', '.join(bend_names) or 'none'})")
            if k.frames is not None:
                _positive(f"{where} frames", k.frames)
            if k.easing is not None:
                _choice(f"{where} easing", k.easing, tuple(EASINGS))
            for name in ("psi", "noise_strength", "alpha", "t"):
                if getattr(k, name) is not None:
                    _finite(f"{where} {name}", getattr(k, name))
            if k.alpha is not None and not self.model_b:
                raise BenderError(f"{where}: alpha blends two models; set model_b in the script")
            if k.t is not None and not self.run:
                raise BenderError(f"{where}: t scrubs a training run; set run: RUN_DIR in the script")
        counts.discard(None)
        if len(counts) > 1:
            raise BenderError(f"all keyframes must hold the same number of images (found {sorted(counts)})")
        return self

    # -- (de)serialisation -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def to_yaml(self, header: str = "") -> str:
        """Readable YAML (None fields and empty sections left out); loads back to an equal script."""
        import yaml

        data = _prune(self.to_dict())
        body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True)
        lines = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
        return lines + body

    def sha256(self) -> str:
        """Hash of the canonical JSON of every field (what the render metadata records)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def resolve_paths(self, base: Path) -> WalkScript:
        """Make file references absolute, relative to `base` (the script's folder)."""

        def fix(p: str | None) -> str | None:
            if p is None or p in ("default", "builtin", "bender:default"):
                return p
            path = Path(p).expanduser()
            return str(path if path.is_absolute() else (base / path).resolve())

        self.model = fix(self.model)
        self.model_b = fix(self.model_b)
        self.run = fix(self.run)
        for d in self.directions.values():
            d.file = fix(d.file)
        for k in self.keyframes:
            k.w = fix(k.w)
        return self


def from_dict(data: Any, where: str = "script") -> WalkScript:
    """Build and validate a script from parsed YAML/JSON."""
    if not isinstance(data, dict):
        raise BenderError(f"{where}: expected a mapping of settings at the top level")
    script = _build(WalkScript, data, where)
    return script.validate()


def loads(text: str, base: Path | None = None, where: str = "script") -> WalkScript:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise BenderError(f"{where}: not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    script = from_dict(data, where)
    return script.resolve_paths(base or Path.cwd())


def load(path: str | Path) -> WalkScript:
    """Read a walk script file (YAML; JSON is YAML too)."""
    path = Path(path)
    if not path.is_file():
        raise BenderError(f"{path}: no such walk script")
    return loads(path.read_text(encoding="utf-8"), base=path.resolve().parent, where=path.name)


# ------------------------------------------------------------------------------------------------
# Building dataclasses from untrusted dicts, with helpful errors


_NESTED = {("Keyframe", "mix"): MixSpec, ("WalkScript", "blend"): BlendSpec, ("WalkScript", "plane"): PlaneSpec,
           ("WalkScript", "path"): PathSpec}


def _build(cls: type, data: dict, where: str):
    if not isinstance(data, dict):
        raise BenderError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    aliases = {"class": "class_idx"}
    kwargs = {}
    for key, value in data.items():
        key = aliases.get(key, key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise BenderError(f"{where}: unknown key '{key}'{hint}")
        kwargs[key] = _convert(cls, key, value, f"{where}.{key}" if where else key)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise BenderError(f"{where}: {e}") from None


def _convert(cls: type, key: str, value: Any, where: str) -> Any:
    if value is None:
        return None
    if (cls.__name__, key) in _NESTED:
        return _build(_NESTED[cls.__name__, key], value, where)
    if cls is WalkScript and key == "directions":
        if not isinstance(value, dict):
            raise BenderError(f"{where}: expected name: {{kind: sefa, index: 0}} entries")
        return {str(n): _build(DirectionSpec, d, f"{where}.{n}") for n, d in value.items()}
    if cls is WalkScript and key == "keyframes":
        if not isinstance(value, list):
            raise BenderError(f"{where}: expected a list of keyframes")
        return [_build(Keyframe, k if isinstance(k, dict) else {"seed": k}, f"keyframe {i + 1}")
                for i, k in enumerate(value)]
    if cls is WalkScript and key == "bends":
        if not isinstance(value, list) or not all(isinstance(b, dict) for b in value):
            raise BenderError(f"{where}: expected a list of bends ({{layer: ..., op: ...}})")
        return [dict(b) for b in value]
    if key in ("seeds",) and isinstance(value, (str, int)):
        from bender.cli.common import parse_int_list

        return parse_int_list(str(value))
    hint = typing.get_type_hints(cls).get(key)
    return _coerce(value, hint, where)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    text = str(hint)
    if "dict" in text:
        if not isinstance(value, dict):
            raise BenderError(f"{where}: expected a mapping")
        if "int, float" in text:
            return {int(k): _number(v, where) for k, v in value.items()}
        return {str(k): _number(v, where) for k, v in value.items()}
    if text.startswith("list[list"):
        if not isinstance(value, list):
            raise BenderError(f"{where}: expected a list of [u, v] pairs")
        return [[_number(x, where) for x in _as_list(p, where)] for p in value]
    if text.startswith("list[int]"):
        return [_integer(x, where) for x in _as_list(value, where)]
    if text.startswith("list[float]"):
        return [_number(x, where) for x in _as_list(value, where)]
    if "bool" in text:
        if not isinstance(value, bool):
            raise BenderError(f"{where}: expected true or false, got {value!r}")
        return value
    if "int" in text and "float" not in text:
        return _integer(value, where)
    if "float" in text:
        return _number(value, where)
    if "str" in text:
        if not isinstance(value, (str, int, float)):
            raise BenderError(f"{where}: expected text, got {type(value).__name__}")
        return str(value)
    return value


def _as_list(value, where):
    if not isinstance(value, (list, tuple)):
        raise BenderError(f"{where}: expected a list, got {value!r}")
    return value


def _number(value, where) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BenderError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _integer(value, where) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise BenderError(f"{where}: expected a whole number, got {value!r}")
    return int(value)


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise BenderError(f"{name} must be one of {', '.join(options)}, got {value!r}")


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise BenderError(f"{name} must be a whole number >= 1, got {value!r}")


def _finite(name: str, value: float) -> None:
    if not math.isfinite(float(value)):
        raise BenderError(f"{name} must be a finite number")


def _plain(x: Any) -> Any:
    """Dataclass dict -> JSON-safe plain data (dict keys as strings, floats stay floats)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _prune(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _prune(v) for k, v in x.items() if v is not None and v != {} and v != []}
    if isinstance(x, list):
        return [_prune(v) for v in x]
    return x
