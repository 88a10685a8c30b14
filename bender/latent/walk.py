"""A walk script bound to loaded models: what every frame shows, as numbers (no pixels here).

`Walk(script, device)` loads the model(s), resolves keyframes into latents (seeds -> z or W+,
saved W files, plane coordinates, directions, style mixing) and answers, for any frame index,
`Walk.frame(i)`: the latents, ψ, noise strength, blend α / timeline t and bend amounts of that
frame. `bender.render.frames` turns those into pixels in batches. Keeping this split means the UI
can ask "what is frame 37?" without rendering a video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bender.errors import BenderError
from bender.latent import paths, planes, spaces
from bender.latent.bend import Bend, BendSet
from bender.latent.blend import BlendProfile, Timeline, WeightBlender
from bender.latent.script import WalkScript
from bender.latent.seeds import zs_from_seeds


@dataclass
class FrameState:
    """Everything that varies per frame."""

    index: int
    latent: torch.Tensor  # [tiles, z_dim] in Z, [tiles, num_ws, w_dim] in W; float32 on the host
    psi: float
    noise_strength: float
    weights: float | None  # blend α (model_b) or timeline t (run); None for a single model
    bends: list[float]  # one amount per bend, in script order


def _lerp(a: float, b: float, e: float) -> float:
    """Scalar lerp that is exact at both ends (same split as torch.lerp)."""
    if e < 0.5:
        return a + e * (b - a)
    return b - (1 - e) * (b - a)


class Walk:
    """See module docs. `G` is the working generator (blended in place when weights animate)."""

    def __init__(self, script: WalkScript, device: torch.device | str = "cpu"):
        from bender.io import load

        self.script = script.validate()
        self.device = torch.device(device)
        s = self.script
        self.blender: WeightBlender | None = None
        self.timeline: Timeline | None = None
        if s.run:
            self.timeline = Timeline(s.run, device=self.device, by=s.timeline_by)
            self.model = self.timeline.first
            self.G = self.timeline.blender.generator
        else:
            self.model = load(s.model, device=self.device)
            if s.model_b:
                self.model_b = load(s.model_b, device=self.device)
                self.blender = WeightBlender(self.model, self.model_b, device=self.device)
                self.G = self.blender.generator
            else:
                self.G = self.model.G_ema.to(self.device).eval().requires_grad_(False)
        if s.class_idx is None and self.G.c_dim:
            raise BenderError(f"this model is conditional ({self.G.c_dim} classes): set class: 0..{self.G.c_dim - 1}")
        if s.class_idx is not None and not self.G.c_dim:
            raise BenderError(f"this model is unconditional: remove class: {s.class_idx} (or --class)")
        self.bends = BendSet([Bend.from_dict(b) for b in s.bends])
        self.bends.validate(self.G)
        self.weights_default = s.t if self.timeline else s.alpha if self.blender else None
        self.set_weights(self.weights_default)
        self.w_avg = self.G.mapping.w_avg.detach().clone()
        self.directions = {name: self._direction(name) for name in s.directions}
        self.plane = self._plane() if s.plane is not None else None
        if s.path.kind == "keyframes":
            self._init_keyframes()
        else:
            self._init_loop()

    # -- weights ---------------------------------------------------------------------------------

    def profile(self, alpha: float) -> BlendProfile:
        """The blend profile at slider value α (the script's `blend` shape scaled by α)."""
        b = self.script.blend
        if b is None:
            return BlendProfile(alpha=alpha)
        return BlendProfile(
            alpha=alpha, coarse=None if b.coarse is None else alpha * b.coarse,
            fine=None if b.fine is None else alpha * b.fine, center=b.center, width=b.width,
            mapping=None if b.mapping is None else alpha * b.mapping,
            per_resolution={r: alpha * v for r, v in b.per_resolution.items()})

    def set_weights(self, value: float | None) -> torch.nn.Module:
        """Put the working generator at blend α / timeline t = value; returns it."""
        if self.timeline is not None:
            return self.timeline.generator_at(value)
        if self.blender is not None:
            return self.blender.set(self.profile(value))
        return self.G

    # -- resolving the script --------------------------------------------------------------------

    def _seeds_ws(self, seeds: list[int]) -> torch.Tensor:
        return spaces.seeds_to_ws(self.G, seeds, self.script.class_idx, self.device)

    def _direction(self, name: str) -> torch.Tensor:
        d = self.script.directions[name]
        G = self.G
        layers = spaces.parse_layer_range(d.layers, G.num_ws) if d.layers else None
        if d.kind == "seeds":
            ws = self._seeds_ws(d.seeds)
            vec = (ws[1] - ws[0]) * d.scale
            if layers is not None:
                mask = torch.zeros(G.num_ws, 1, device=vec.device)
                mask[layers[0]:layers[1]] = 1
                vec = vec * mask
            return vec
        if d.kind == "file":
            arr = spaces.load_ws(d.file, G.num_ws, G.w_dim)
            if arr.shape[0] != 1:
                raise BenderError(f"direction {name}: {d.file} holds {arr.shape[0]} vectors; a direction is one")
            vec = arr[0].to(self.device) * d.scale
            if layers is not None:
                vec = vec * planes.to_wplus(torch.ones(G.w_dim, device=self.device), G.num_ws, layers)
            return vec
        if d.kind == "sefa":
            unit, _ = planes.sefa_directions(G, d.index + 1, layers)
            unit = unit[d.index]
            std = planes.direction_std(G, unit[None], d.samples, d.seed, self.script.class_idx)[0]
        else:
            comps, stds, _ = planes.pca_directions(G, d.index + 1, d.samples, d.seed, self.script.class_idx)
            unit, std = comps[d.index], stds[d.index]
        return planes.to_wplus(unit.to(self.device) * float(std) * d.scale, G.num_ws, layers)

    def _plane(self) -> planes.Plane:
        p = self.script.plane
        if p.seeds is not None:
            return planes.Plane.from_seeds(self.G, p.seeds, self.script.class_idx)
        origin = (self._seeds_ws([p.origin_seed])[0] if p.origin_seed is not None
                  else self.w_avg.reshape(1, -1).repeat(self.G.num_ws, 1))
        return planes.Plane(origin, self.directions[p.u], self.directions[p.v])

    def _keyframe_latent(self, k) -> torch.Tensor:
        """One keyframe -> [tiles, z_dim] (Z) or [tiles, num_ws, w_dim] (W)."""
        s, G = self.script, self.G
        kind = k.content_kind()
        seeds = [k.seed] if kind == "seed" else k.seeds if kind == "seeds" else None
        if s.space == "z":
            return zs_from_seeds(seeds, G.z_dim, self.device)
        if seeds is not None:
            ws = self._seeds_ws(seeds)
        elif kind == "w":
            ws = spaces.load_ws(k.w, G.num_ws, G.w_dim).to(self.device)
        elif kind == "plane":
            ws = self.plane.points([k.plane])
        else:
            ws = self.plane.points(k.points)
        if k.mix is not None:
            other = self._seeds_ws([k.mix.seed] if k.mix.seed is not None else k.mix.seeds)
            if other.shape[0] != 1 and other.shape[0] != ws.shape[0]:
                raise BenderError(f"mix: {other.shape[0]} seeds for a keyframe of {ws.shape[0]} images")
            ws = spaces.style_mix(ws, other.expand_as(ws), spaces.parse_layer_range(k.mix.layers, G.num_ws))
        for name, amount in k.directions.items():
            ws = ws + float(amount) * self.directions[name].to(ws)
        return ws.to(torch.float32)

    def _init_keyframes(self) -> None:
        s = self.script
        keys = s.keyframes
        # Animated tracks: a keyframe that sets a value eases to it; one that does not holds it.
        psi, noise, weights = [], [], []
        bends = []
        cur_psi, cur_noise, cur_w = s.psi, s.noise_strength, self.weights_default
        cur_b = [b.amount for b in self.bends.bends]
        for k in keys:
            cur_psi = k.psi if k.psi is not None else cur_psi
            cur_noise = k.noise_strength if k.noise_strength is not None else cur_noise
            if self.timeline is not None and k.t is not None:
                cur_w = k.t
            if self.blender is not None and k.alpha is not None:
                cur_w = k.alpha
            cur_b = [k.bends.get(b.name, cur_b[i]) for i, b in enumerate(self.bends.bends)]
            psi.append(cur_psi)
            noise.append(cur_noise)
            weights.append(cur_w)
            bends.append([float(x) for x in cur_b])
        self.tracks = {"psi": psi, "noise": noise, "weights": weights, "bends": bends}

        # In W, a keyframe's seeds are mapped by the generator at that keyframe's α / t.
        latents = []
        for k, w in zip(keys, weights):
            self.set_weights(w)
            latents.append(self._keyframe_latent(k))
        self.set_weights(self.weights_default)
        tiles = {x.shape[0] for x in latents} - {1}
        if len(tiles) > 1:
            raise BenderError(f"keyframes hold different numbers of images ({sorted(tiles)}); make them equal")
        self.tiles = tiles.pop() if tiles else 1
        # Interpolated on the host: per frame that is a handful of tiny ops, which on a GPU would be
        # launches plus a sync (slerp checks for opposite keyframes), stalling the render pipeline
        # once per frame. The renderer copies each batch's latents to the device in one go.
        self.keys = torch.stack([x.expand(self.tiles, *x.shape[1:]) for x in latents]).cpu()
        self._w_avg_host = self.w_avg.cpu()
        self._arcs: dict[int, paths.Arc] = {}
        n_seg = len(keys) if s.loop else len(keys) - 1
        frames = [k.frames or s.frames for k in keys][:n_seg]
        easings = [k.easing or s.easing for k in keys][:n_seg]
        self.schedule = paths.Schedule(frames, easings, loop=s.loop)
        self.num_frames = self.schedule.num_frames
        self._tangents = (paths.cubic_tangents(self.keys, s.loop) if s.interpolation == "cubic" and len(keys) > 1
                          else None)

    def _init_loop(self) -> None:
        p, z_dim = self.script.path, self.G.z_dim
        self.tiles = p.tiles
        self.num_frames = p.frames
        if p.kind == "circle":
            v = np.random.RandomState(p.seed).randn(3, p.tiles, z_dim)
            self._circle = [torch.from_numpy(x) for x in v]  # centre, a, b as float64
        else:
            self._coeffs = paths.noise_loop_coefficients(p.seed, z_dim, p.harmonics, rows=p.tiles)

    def _arc(self, segment: int) -> paths.Arc:
        """Segment `segment`'s slerp, set up once (in W around w_avg, in Z around the origin)."""
        arc = self._arcs.get(segment)
        if arc is None:
            k = self.keys.shape[0]
            center = self._w_avg_host if self.script.space == "w" else None
            arc = self._arcs[segment] = paths.Arc(self.keys[segment], self.keys[(segment + 1) % k], center)
        return arc

    # -- per frame -------------------------------------------------------------------------------

    def frame(self, index: int) -> FrameState:
        """The state of frame `index` (0 <= index < num_frames)."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} outside 0..{self.num_frames - 1}")
        s = self.script
        if s.path.kind != "keyframes":
            t = index / self.num_frames
            if s.path.kind == "circle":
                c, a, b = self._circle
                z = paths.circle_loop(c, a, b, s.path.radius, t)
            else:
                z = torch.from_numpy(paths.noise_loop(self._coeffs, s.path.radius, t, s.path.falloff))
            return FrameState(index, z.to(torch.float32), s.psi, s.noise_strength,
                              self.weights_default, [b.amount for b in self.bends.bends])
        pos = self.schedule.position(index)
        k = self.keys.shape[0]
        i, j, e = pos.segment % k, (pos.segment + 1) % k, pos.eased
        if k == 1:
            latent = self.keys[0].clone()
        elif s.interpolation == "slerp":
            latent = self._arc(pos.segment % k).at(e)
        else:
            latent = paths.interpolate(self.keys, pos.segment, e, s.interpolation, s.loop, self._tangents)
        tr = self.tracks
        weights = None if tr["weights"][i] is None else _lerp(tr["weights"][i], tr["weights"][j], e)
        bends = [_lerp(a, b, e) for a, b in zip(tr["bends"][i], tr["bends"][j])]
        return FrameState(index, latent, _lerp(tr["psi"][i], tr["psi"][j], e),
                          _lerp(tr["noise"][i], tr["noise"][j], e), weights, bends)
