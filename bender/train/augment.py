"""ADA: the adaptive discriminator augmentation pipeline (Karras et al. 2020, "Training Generative
Adversarial Networks with Limited Data", section 2 and appendix B).

With a few hundred images D memorises the training set within a few kimg and G collapses. ADA
shows D only augmented images — reals and fakes alike — with each augmentation applied with
probability p. Because every augmentation is applied with probability p < 1 (and is invertible in
distribution), G cannot learn to produce augmented images: the augmentations do not "leak".
p itself is tuned during training from an overfitting heuristic (see `AdaController`).

The pipeline, in the paper's order, each step drawn independently per image:

  geometric (one resampling for all of them, through a 3x3 matrix):
    xflip (p: mirror with 50%)  rotate90 (p: k*90 degrees)  xint (p: integer translation,
    U(-0.125, 0.125) of the size)  scale (p: 2^N(0, 0.2))  rotate (1 - sqrt(1 - p): U(-pi, pi))
    aniso (p: 2^N(0, 0.2) in x, inverse in y)  rotate again  xfrac (p: N(0, 0.125) of the size)
  colour (one 4x4 matrix on RGB):
    brightness (p: + N(0, 0.2))  contrast (p: * 2^N(0, 0.5))  lumaflip (p: mirror along the luma
    axis with 50%)  hue (p: rotation about the luma axis, U(-pi, pi))  saturation (p: * 2^N(0, 1))
  image-space filtering (optional, 'f'): four frequency bands, each scaled by 2^N(0, 1) with p.

Geometric transforms resample each image once: reflect-pad, upsample 2x with a low-pass filter,
bilinear grid sampling at twice the output resolution, low-pass and downsample 2x. The sampling
uses `bender.ops.grid_sample`, which R1 can differentiate twice through. Every step is
differentiable with respect to the images (D's gradient flows through to G's fakes).

Random numbers come from an explicit `torch.Generator`, so a training step is reproducible from
(seed, step) alone — that is what makes resumed and multi-GPU runs match single-process ones.
Everything decided per image (the draws, the matrices, which images move, the padding) is
computed on the host as an `AugmentPlan`, even when the images are on a GPU: the step's generator
stands for a CPU one seeded from it. There it is a few hundred tiny CPU operations and two small
copies per call; on the device it was as many kernel launches and a device sync, three or four calls
a training step whose time is mostly the host issuing work. A CUDA-graph replay of a training phase
(`bender.train.graphs`) gets its plans made beforehand and copied into fixed buffers (`fixed_plans`).

The buffer names (`p`, `Hz_geom`, `Hz_fbank`) are those of NVIDIA's AugmentPipe, so p round-trips
into exported NVIDIA pickles. The filters are our own designs (windowed sinc), not NVIDIA's.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bender.device import to_device
from bender.ops import setup_filter
from bender.ops.grid_sample import grid_sample
from bender.ops.upfirdn2d import downsample2d, upsample2d

# What each letter of an augmentation spec switches on ("bgc" is the paper's recommendation).
SPEC_GROUPS = {
    "b": ("xflip", "rotate90", "xint"),  # pixel blitting
    "g": ("scale", "rotate", "aniso", "xfrac"),  # general geometric
    "c": ("brightness", "contrast", "lumaflip", "hue", "saturation"),  # colour
    "f": ("imgfilter",),  # image-space filtering
}


@dataclass
class AugmentConfig:
    """Which augmentations run, and their strengths (multipliers of the paper's defaults)."""

    xflip: float = 1.0
    rotate90: float = 1.0
    xint: float = 1.0
    xint_max: float = 0.125
    scale: float = 1.0
    scale_std: float = 0.2
    rotate: float = 1.0
    rotate_max: float = 1.0  # fraction of a half turn
    aniso: float = 1.0
    aniso_std: float = 0.2
    xfrac: float = 1.0
    xfrac_std: float = 0.125
    brightness: float = 1.0
    brightness_std: float = 0.2
    contrast: float = 1.0
    contrast_std: float = 0.5
    lumaflip: float = 1.0
    hue: float = 1.0
    hue_max: float = 1.0  # fraction of a half turn
    saturation: float = 1.0
    saturation_std: float = 1.0
    imgfilter: float = 0.0
    imgfilter_std: float = 1.0

    @classmethod
    def from_spec(cls, spec: str) -> AugmentConfig:
        """'bgc' (default), 'bg', 'bgcf', ... : the groups of augmentations to enable."""
        unknown = set(spec) - set(SPEC_GROUPS)
        if unknown or not spec:
            raise ValueError(f"augmentation spec {spec!r}: use letters from {''.join(SPEC_GROUPS)} "
                             "(b = flips/90° rotations/integer shifts, g = scale/rotation/shifts, c = colour, "
                             "f = filtering), e.g. 'bgc'")
        cfg = cls()
        for letter, names in SPEC_GROUPS.items():
            for name in names:
                setattr(cfg, name, 1.0 if letter in spec else 0.0)
        return cfg


def _halfband_lowpass(taps: int) -> np.ndarray:
    """A Kaiser-windowed sinc low-pass at half the sample rate: the 2x resampling filter."""
    n = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(n / 2) * np.kaiser(taps, 6.0)
    return h / h.sum()


def _band_filters(taps: int = 43) -> np.ndarray:
    """Four band-pass filters splitting [0, pi] at pi/8, pi/4, pi/2; they sum to a unit impulse."""
    n = np.arange(taps) - (taps - 1) // 2
    window = np.kaiser(taps, 8.0)

    def lowpass(cutoff: float) -> np.ndarray:  # cutoff as a fraction of pi
        h = cutoff * np.sinc(cutoff * n) * window
        return h / h.sum()

    impulse = (n == 0).astype(np.float64)
    lp = [lowpass(1 / 8), lowpass(1 / 4), lowpass(1 / 2)]
    return np.stack([lp[0], lp[1] - lp[0], lp[2] - lp[1], impulse - lp[2]])


def ada_adjust(p: torch.Tensor, sign_sum: torch.Tensor, count: torch.Tensor, target: float,
               ada_kimg: float) -> torch.Tensor:
    """ADA's p update (Karras et al. 2020, section 3): r_t = E[sign(D(real))] over the last interval
    measures overfitting (D too sure about reals); p moves toward keeping r_t at `target`, by an
    amount that lets it go from 0 to 1 in `ada_kimg` thousand images."""
    rt = sign_sum / count.clamp(min=1)
    return (p + torch.sign(rt - target) * count / (ada_kimg * 1000)).clamp(0, 1)


class AugmentPipe(nn.Module):
    """Differentiable, per-image random augmentation applied with probability `p` (a buffer)."""

    def __init__(self, cfg: AugmentConfig | None = None, p: float = 0.0):
        super().__init__()
        self.cfg = cfg or AugmentConfig()
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("Hz_geom", torch.tensor(_halfband_lowpass(12), dtype=torch.float32))
        self.register_buffer("Hz_fbank", torch.tensor(_band_filters(43), dtype=torch.float32))
        self.bucket_shapes: bool | None = None  # None: on for CUDA (see forward)
        self._host_gens: list[tuple[torch.Generator, torch.Generator]] = []  # (GPU generator, its CPU one)
        self._p_seen: tuple[torch.Tensor, int, torch.Tensor] | None = None  # (p, its version, p on the host)
        self._fixed: list | None = None  # plans handed in (see fixed_plans)
        self._fixed_pad: int | None = None

    # -- the host side ----------------------------------------------------------------------------

    def host_generator(self, gen: torch.Generator | None) -> torch.Generator | None:
        """The generator the per-image draws come from: None (the global CPU generator) for None;
        otherwise a CPU generator seeded from `gen`'s seed (`host_seed`), made on first use and
        advancing from call to call, so a training step stays a function of its seeds (the recent
        pairs are kept: the trainer makes a fresh generator per phase). Being apart from `gen`, the
        draws are the same whether the images are on a CPU or a GPU, and whether the phase runs
        eagerly or as a CUDA graph that was handed its plans (`fixed_plans`)."""
        if gen is None:
            return None
        for device_gen, host_gen in self._host_gens:
            if device_gen is gen:
                return host_gen
        host_gen = torch.Generator().manual_seed(host_seed(gen.initial_seed()))
        self._host_gens = self._host_gens[-7:] + [(gen, host_gen)]
        return host_gen

    def p_host(self) -> torch.Tensor:
        """p on the host. Copied from the device only when it changed (ADA adjusts it every few
        steps; any in-place change bumps the buffer's version counter)."""
        p = self.p
        if p.device.type == "cpu":
            return p
        seen = self._p_seen
        if seen is None or seen[0] is not p or seen[1] != p._version:
            self._p_seen = seen = (p, p._version, p.detach().cpu())
        return seen[2]

    # -- geometric --------------------------------------------------------------------------------

    def geometric_matrix(self, n: int, size: tuple[int, int], gen: torch.Generator | None,
                         device: torch.device) -> torch.Tensor:
        """[n, 3, 3] maps output pixel coordinates (centred, in pixels) to input coordinates.
        Computed on the host (see `host_generator`), returned on `device`."""
        cpu = torch.device("cpu")
        draws = geometric_draws(self.cfg, n, self.host_generator(gen), cpu)
        return to_device(geometric_from_draws(self.cfg, n, draws, self.p_host(), size), device)

    def padding(self, M: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """[x0, y0, x1, y1] reflect padding that covers where the transformed output reaches
        (plus the resampling filters' reach), for the whole batch; a tensor, so callers can fetch
        it together with other numbers in one device sync."""
        h, w = size
        cx, cy = (w - 1) / 2, (h - 1) / 2
        # The output's corners (+-(cx + 1/2), +-(cy + 1/2)) map to M00 x + M01 y + M02 (and likewise
        # for y); the extremes over the four corners are the translation +- the absolute terms.
        # (Plain tensor arithmetic with Python numbers: building small tensors from lists would
        # copy them to the GPU with a stream sync each time.)
        ax, ay = cx + 0.5, cy + 0.5
        spread_x = M[:, 0, 0].abs() * ax + M[:, 0, 1].abs() * ay
        spread_y = M[:, 1, 0].abs() * ax + M[:, 1, 1].abs() * ay
        margin = self.Hz_geom.numel() / 4 + 1
        lo = torch.stack([(spread_x - M[:, 0, 2]).amax() - cx, (spread_y - M[:, 1, 2]).amax() - cy])
        hi = torch.stack([(spread_x + M[:, 0, 2]).amax() - cx, (spread_y + M[:, 1, 2]).amax() - cy])
        lo = (lo + margin).ceil().clamp(min=0)
        hi = (hi + margin).ceil().clamp(min=0)
        return torch.cat([lo, hi])

    def resample(self, x: torch.Tensor, M: torch.Tensor, pads: list[int] | None = None) -> torch.Tensor:
        """Resample images [N, C, H, W] so that output pixel u shows input point M u."""
        n, _, h, w = x.shape
        cx, cy = (w - 1) / 2, (h - 1) / 2
        if pads is None:
            pads = self.padding(M, (h, w)).tolist()
        # One padding for all sides, rounded up to a multiple of 1/16 of the size: the result is the
        # same (reflection depends only on position), and the few resulting shapes let cuDNN's
        # autotuner (cudnn.benchmark) cache its choices instead of re-tuning every step.
        quantum = max(4, min(h, w) // 16)
        pad = -(-int(max(pads)) // quantum) * quantum
        px0 = px1 = min(pad, w - 1)  # reflection cannot reach past one image width
        py0 = py1 = min(pad, h - 1)
        x = F.pad(x, [px0, px1, py0, py1], mode="reflect")
        x = self._resample2x(x, up=True)

        # Sample at twice the output resolution: supersample j sits at output pixel j/2 - 1/4.
        ys = torch.arange(2 * h, device=x.device, dtype=torch.float32) / 2 - 0.25 - cy
        xs = torch.arange(2 * w, device=x.device, dtype=torch.float32) / 2 - 0.25 - cx
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        coords = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1).reshape(-1, 3)
        src = (M[:, :2, :] @ coords.t()).transpose(1, 2)  # [N, 4HW, 2], centred input pixels
        # Normalised coordinates of the padded image (align_corners=False is resolution-free, so
        # they also address its 2x-upsampled version).
        hp, wp = h + py0 + py1, w + px0 + px1
        gxn = (2 * (src[..., 0] + cx + px0) + 1) / wp - 1
        gyn = (2 * (src[..., 1] + cy + py0) + 1) / hp - 1
        grid = torch.stack([gxn, gyn], dim=-1).reshape(n, 2 * h, 2 * w, 2).to(x.dtype)
        x = grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return self._resample2x(x, up=False)

    def _resample2x(self, x: torch.Tensor, up: bool) -> torch.Tensor:
        """2x up- or downsampling with the separable Hz_geom filter, sizes as bender.ops'
        upsample2d / downsample2d. On GPUs those ops (and their CUDA kernels) do it; on CPUs a
        sum of shifted slices is ~10x faster than PyTorch's depthwise convolution for 1-D taps."""
        if x.device.type != "cpu":
            f = setup_filter(self.Hz_geom, device=x.device, separable=True)
            return upsample2d(x, f, up=2) if up else downsample2d(x, f, down=2)
        taps = self.Hz_geom.to(x.dtype)
        k = taps.numel()
        if up:
            return fir_separable(x, taps / taps.sum() * 2, up=2, pad=((k + 1) // 2, (k - 2) // 2))
        return fir_separable(x, taps / taps.sum(), down=2, pad=((k - 1) // 2, (k - 2) // 2))

    # -- colour -----------------------------------------------------------------------------------

    def color_matrix(self, n: int, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
        """[n, 4, 4] affine transform of (R, G, B, 1). Computed on the host, returned on `device`."""
        draws = color_draws(self.cfg, n, self.host_generator(gen), torch.device("cpu"))
        return to_device(color_from_draws(self.cfg, n, draws, self.p_host()), device)

    @staticmethod
    def apply_color(x: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        C = C.to(x.dtype)
        if c == 3:
            y = C[:, :3, :3] @ x.reshape(n, 3, h * w) + C[:, :3, 3:]
            return y.reshape(n, 3, h, w)
        if c == 1:  # grey: transform (x, x, x) and average back to one channel
            y = C[:, :3, :3].sum(dim=2, keepdim=True) @ x.reshape(n, 1, h * w) + C[:, :3, 3:]
            return y.mean(dim=1, keepdim=True).reshape(n, 1, h, w)
        raise ValueError(f"colour augmentation needs 1 or 3 channels, got {c}")

    # -- filtering --------------------------------------------------------------------------------

    def filter_images(self, x: torch.Tensor, gen: torch.Generator | None, skip_when_idle: bool = True
                      ) -> torch.Tensor:
        """Scale four frequency bands by random gains (separable; expected energy preserved).
        `skip_when_idle` returns x untouched when no image is filtered (a device sync)."""
        n, c, h, w = x.shape
        bands = self.Hz_fbank.shape[0]
        gains = torch.exp2(torch.randn([n, bands], device=x.device, generator=gen) * self.cfg.imgfilter_std)
        on = torch.rand([n, bands], device=x.device, generator=gen) < self.p * self.cfg.imgfilter
        if skip_when_idle and not bool(on.any()):
            return x
        gains = torch.where(on, gains, torch.ones_like(gains))
        # Natural images carry about equal energy per octave; the lowest band spans
        # log2(size / 16) octaves, the three others one each.
        low = max(math.log2(min(h, w) / 16), 1.0)
        share = [low / (low + 3)] + [1 / (low + 3)] * 3
        gains = gains / sum(gains[:, b:b + 1].square() * share[b] for b in range(4)).sqrt()
        taps = gains.to(x.dtype) @ self.Hz_fbank.to(x.device, x.dtype)  # [n, 43]
        pad = taps.shape[1] // 2
        mode = "reflect" if min(h, w) > pad else "replicate"
        kernel = taps.to(x.dtype).repeat_interleave(c, dim=0)  # one filter per (image, channel)
        y = F.pad(x.reshape(1, n * c, h, w), [pad, pad, pad, pad], mode=mode)
        y = F.conv2d(y, kernel[:, None, None, :], groups=n * c)
        y = F.conv2d(y, kernel[:, None, :, None], groups=n * c)
        return y.reshape(n, c, h, w)

    # -- all together -----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"AugmentPipe expects [N, C, H, W], got {tuple(x.shape)}")
        if self._fixed is not None:
            if not self._fixed:
                raise RuntimeError("AugmentPipe: more calls than plans handed to fixed_plans()")
            M, moved, C = self._fixed.pop(0)
            return self.apply_fixed(x, M, moved, C, gen, pad=self._fixed_pad)
        return self.apply(x, self.plan(x.shape[0], (x.shape[2], x.shape[3]), gen), gen)

    def plan(self, n: int, size: tuple[int, int], gen: torch.Generator | None) -> AugmentPlan:
        """Everything this call decides per image, on the host (see the module docstring)."""
        M = self.geometric_matrix(n, size, gen, torch.device("cpu"))
        moved = (M - torch.eye(3)).abs().amax(dim=(1, 2)) > 0
        pads = [int(v) for v in self.padding(M, size).tolist()]
        C = self.color_matrix(n, gen, torch.device("cpu")) if self.color_on else None
        return AugmentPlan(M, moved, pads, C)

    @property
    def geometric_on(self) -> bool:
        return any(getattr(self.cfg, k) > 0 for k in SPEC_GROUPS["b"] + SPEC_GROUPS["g"])

    @property
    def color_on(self) -> bool:
        return any(getattr(self.cfg, k) > 0 for k in SPEC_GROUPS["c"])

    def apply(self, x: torch.Tensor, plan: AugmentPlan, gen: torch.Generator | None = None) -> torch.Tensor:
        """Carry out a plan, touching only what it changes: the images that move are resampled (with
        the padding they need), the others stay bit-identical."""
        n = x.shape[0]
        device = x.device
        moved = plan.moved.tolist()
        idx = [i for i in range(n) if moved[i]]
        if len(idx) == n:
            x = self.resample(x, to_device(plan.M, device), plan.pads)
        elif idx:  # resample only the images that move; the rest stay bit-identical
            batch = idx
            if self.bucket_shapes if self.bucket_shapes is not None else device.type == "cuda":
                # round the count up to a power of two with still images (their results are dropped):
                # a handful of shapes for cuDNN's autotuner instead of N
                still = [i for i in range(n) if not moved[i]]
                batch = idx + still[:min(n, 1 << (len(idx) - 1).bit_length()) - len(idx)]
            sel_host = torch.tensor(batch)
            sel = to_device(sel_host, device)
            out = self.resample(x.index_select(0, sel), to_device(plan.M.index_select(0, sel_host), device),
                                plan.pads)
            x = x.index_copy(0, sel[:len(idx)], out[:len(idx)])
        if plan.C is not None:
            x = self.apply_color(x, to_device(plan.C, device))  # identity rows leave images exact
        if self.cfg.imgfilter > 0:
            x = self.filter_images(x, gen)
        return x

    def apply_fixed(self, x: torch.Tensor, M: torch.Tensor, moved: torch.Tensor, C: torch.Tensor | None,
                    gen: torch.Generator | None = None, pad: int | None = None) -> torch.Tensor:
        """Carry out a plan given as device tensors, with the same shapes and operations whatever it
        says (what a CUDA graph needs): every image is resampled with padding `pad` (at least what
        the plan needs: see `fixed_padding`; None: the most there can be), and a mask keeps the ones
        that do not move. The same result as `apply`, at more arithmetic."""
        n, _, h, w = x.shape
        if self.geometric_on:
            pad = max(h, w) if pad is None else pad  # resample caps it at one image size on each side
            out = self.resample(x, M, [pad] * 4)
            x = torch.where(moved.reshape(n, 1, 1, 1), out, x)
        if C is not None:
            x = self.apply_color(x, C)
        if self.cfg.imgfilter > 0:
            x = self.filter_images(x, gen, skip_when_idle=False)
        return x

    @staticmethod
    def fixed_padding(plans: list[AugmentPlan], size: tuple[int, int]) -> int:
        """The padding `apply_fixed` should use for these plans: what they need, rounded up to an
        eighth of the image size. A CUDA graph is recorded per padding, so eight or nine shapes at
        most, instead of always padding by a whole image (2.25x the pixels of a typical half-image
        padding, and gigabytes at 1024²)."""
        h, w = size
        quantum = max(4, min(h, w) // 8)
        need = max((max(plan.pads) for plan in plans if bool(plan.moved.any())), default=0)
        return min(-(-need // quantum) * quantum, max(h, w))

    @contextlib.contextmanager
    def fixed_plans(self, plans: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]],
                    pad: int | None = None):
        """Within: each call takes the next (M, moved, C) of `plans` (device tensors, e.g. views of a
        CUDA graph's input buffer) and resamples with padding `pad` (`fixed_padding`), instead of
        drawing and planning; all plans must be used."""
        self._fixed = list(plans)
        self._fixed_pad = pad
        try:
            yield
            if self._fixed:
                raise RuntimeError(f"AugmentPipe: {len(self._fixed)} plan(s) handed to fixed_plans() went unused")
        finally:
            self._fixed = self._fixed_pad = None


@dataclass
class AugmentPlan:
    """What one call decides per image, made on the host before any image is touched."""

    M: torch.Tensor  # [n, 3, 3] geometric: output pixel -> input pixel
    moved: torch.Tensor  # [n] bool: M is not the identity
    pads: list[int]  # [x0, y0, x1, y1]: the reflect padding that covers where M reaches, batch-wide
    C: torch.Tensor | None  # [n, 4, 4] colour, None when colour augmentation is off

    def packed(self) -> torch.Tensor:
        """M, moved and C as one flat float32 tensor (`unpack_plan` takes it apart again)."""
        parts = [self.M.reshape(-1), self.moved.float()] + ([self.C.reshape(-1)] if self.C is not None else [])
        return torch.cat(parts)


def plan_size(n: int, color: bool) -> int:
    """Length of `AugmentPlan.packed()` for n images."""
    return n * (9 + 1 + (16 if color else 0))


def unpack_plan(flat: torch.Tensor, n: int, color: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(M, moved, C) views and masks of a packed plan (on whatever device `flat` is)."""
    M = flat[:9 * n].view(n, 3, 3)
    moved = flat[9 * n:10 * n] > 0.5
    C = flat[10 * n:26 * n].view(n, 4, 4) if color else None
    return M, moved, C


def host_seed(seed: int) -> int:
    """The seed of the host generator that stands beside a generator seeded with `seed`: derived,
    so that its numbers are not the same stream as that generator's own."""
    return int(np.random.SeedSequence([seed, 0xADA]).generate_state(1, np.uint64)[0] & ((1 << 63) - 1))


# -- the per-image matrices -------------------------------------------------------------------
#
# Each augmentation draws its value, then its coin flip against p, per image, in the paper's order.
# The draws come first (`*_draws`, from the step's generator) and the matrices are pure functions of
# them (`*_from_draws`), so the latter can be compiled without changing a single random number.


def _drawer(n: int, gen: torch.Generator | None, device: torch.device):
    def rand(*shape):
        return torch.rand(shape or (n,), device=device, generator=gen)

    def randn(*shape):
        return torch.randn(shape or (n,), device=device, generator=gen)

    return rand, randn


def geometric_draws(cfg: AugmentConfig, n: int, gen: torch.Generator | None, device: torch.device
                    ) -> list[torch.Tensor]:
    """The random numbers `geometric_from_draws` consumes, in its order: (value, coin) per step."""
    rand, randn = _drawer(n, gen, device)
    out: list[torch.Tensor] = []
    for name, draw, shape in (("xflip", rand, ()), ("rotate90", rand, ()), ("xint", rand, (n, 2)),
                              ("scale", randn, ()), ("rotate", rand, ()), ("aniso", randn, ()),
                              ("rotate", rand, ()), ("xfrac", randn, (n, 2))):
        if getattr(cfg, name) > 0:
            out += [draw(*shape), rand()]
    return out


def geometric_from_draws(cfg: AugmentConfig, n: int, draws: list[torch.Tensor], p: torch.Tensor,
                         size: tuple[int, int]) -> torch.Tensor:
    """[n, 3, 3] output pixel -> input pixel (centred coordinates), from `geometric_draws`."""
    h, w = size
    device = p.device
    M = torch.eye(3, device=device).repeat(n, 1, 1)
    it = iter(draws)

    def gate(value, prob, identity):
        return torch.where(next(it) < prob, value, torch.full_like(value, identity))

    if cfg.xflip > 0:
        flip = gate(torch.floor(next(it) * 2), p * cfg.xflip, 0)
        M = M @ _scale(1 - 2 * flip, torch.ones_like(flip))
    if cfg.rotate90 > 0:
        k = gate(torch.floor(next(it) * 4), p * cfg.rotate90, 0)
        M = M @ _rotate(k * (math.pi / 2))
    if cfg.xint > 0:
        t = (next(it) * 2 - 1) * cfg.xint_max
        on = (next(it) < p * cfg.xint).float()[:, None]
        t = torch.round(t * torch.stack([torch.full_like(t[:, 0], w), torch.full_like(t[:, 0], h)], dim=1)) * on
        M = M @ _translate(t[:, 0], t[:, 1])
    if cfg.scale > 0:
        s = gate(torch.exp2(next(it) * cfg.scale_std), p * cfg.scale, 1)
        M = M @ _scale(s, s)
    p_rot = 1 - torch.sqrt((1 - p * cfg.rotate).clamp(0, 1))  # two rotations: p overall
    if cfg.rotate > 0:
        theta = gate((next(it) * 2 - 1) * math.pi * cfg.rotate_max, p_rot, 0)
        M = M @ _rotate(theta)
    if cfg.aniso > 0:
        s = gate(torch.exp2(next(it) * cfg.aniso_std), p * cfg.aniso, 1)
        M = M @ _scale(s, 1 / s)
    if cfg.rotate > 0:
        theta = gate((next(it) * 2 - 1) * math.pi * cfg.rotate_max, p_rot, 0)
        M = M @ _rotate(theta)
    if cfg.xfrac > 0:
        t = next(it) * cfg.xfrac_std * (next(it) < p * cfg.xfrac).float()[:, None]
        M = M @ _translate(t[:, 0] * w, t[:, 1] * h)
    return M


def color_draws(cfg: AugmentConfig, n: int, gen: torch.Generator | None, device: torch.device
                ) -> list[torch.Tensor]:
    """The random numbers `color_from_draws` consumes, in its order: (value, coin) per step."""
    rand, randn = _drawer(n, gen, device)
    out: list[torch.Tensor] = []
    for name, draw in (("brightness", randn), ("contrast", randn), ("lumaflip", rand), ("hue", rand),
                       ("saturation", randn)):
        if getattr(cfg, name) > 0:
            out += [draw(), rand()]
    return out


def color_from_draws(cfg: AugmentConfig, n: int, draws: list[torch.Tensor], p: torch.Tensor) -> torch.Tensor:
    """[n, 4, 4] affine transform of (R, G, B, 1), from `color_draws`."""
    device = p.device
    C = torch.eye(4, device=device).repeat(n, 1, 1)
    luma = torch.ones([4], device=device) / math.sqrt(3)
    luma[3] = 0
    vv = torch.outer(luma, luma)
    it = iter(draws)

    def gate(value, prob, identity):
        return torch.where(next(it) < prob, value, torch.full_like(value, identity))

    if cfg.brightness > 0:
        b = gate(next(it) * cfg.brightness_std, p * cfg.brightness, 0)
        C = _translate3(b) @ C
    if cfg.contrast > 0:
        c = gate(torch.exp2(next(it) * cfg.contrast_std), p * cfg.contrast, 1)
        C = _scale3(c) @ C
    if cfg.lumaflip > 0:
        i = gate(torch.floor(next(it) * 2), p * cfg.lumaflip, 0)
        C = (torch.eye(4, device=device) - 2 * vv * i[:, None, None]) @ C  # Householder reflection
    if cfg.hue > 0:
        theta = gate((next(it) * 2 - 1) * math.pi * cfg.hue_max, p * cfg.hue, 0)
        C = _rotate_about_luma(theta) @ C
    if cfg.saturation > 0:
        s = gate(torch.exp2(next(it) * cfg.saturation_std), p * cfg.saturation, 1)
        C = (vv + (torch.eye(4, device=device) - vv) * s[:, None, None]) @ C
    return C


# -- separable FIR on CPU ------------------------------------------------------------------------


def fir_separable(x: torch.Tensor, taps: torch.Tensor, up: int = 1, down: int = 1,
                  pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """bender.ops.upfirdn2d for a 1-D filter applied along rows and columns (zero-insert by `up`,
    pad, true convolution with `taps`, keep every `down`-th sample), for CPUs.

    PyTorch's depthwise convolutions are slow on CPUs for long 1-D taps; this computes each output
    as a weighted sum of (strided) slices of the input, polyphase (no zeros are inserted or
    multiplied), and its backward is the adjoint filter computed the same way (`_Fir1d`), so it is
    differentiable to any order without the cost of slice-by-slice autograd.
    """
    if up not in (1, 2) or down not in (1, 2) or (up == 2 and down == 2):
        raise ValueError("fir_separable supports up=2 or down=2 (or neither)")
    g = taps.flip(0).detach()  # a true convolution, like upfirdn2d
    k = g.numel()
    for dim in (3, 2):
        length = x.shape[dim]
        # upfirdn2d's zero insertion leaves up - 1 zeros after the last sample too
        p0, p1 = pad[0], pad[1] + up - 1
        conv_len = up * (length - 1) + 1 + p0 + p1 - k + 1
        x = _Fir1d.apply(x, g, dim, up, p0, p1, 0, (conv_len + down - 1) // down, down)
    return x


def _fir1d_eager(x: torch.Tensor, g: torch.Tensor, dim: int, up: int, p0: int, p1: int, start: int, count: int,
                 step: int) -> torch.Tensor:
    """out[t] = sum_i g[i] * z[start + step t + i], with z = x zero-inserted by `up` (length
    up (L - 1) + 1) and zero-padded by (p0, p1); for up, step in {1, 2}, not both 2."""
    length, k = x.shape[dim], g.numel()
    taps = g.tolist()

    def weighted_sum(slices: list[tuple[float, torch.Tensor]]) -> torch.Tensor:
        out = slices[0][1] * slices[0][0]
        for weight, piece in slices[1:]:
            out.add_(piece, alpha=weight)  # one fused multiply-add per tap, no temporaries
        return out

    if up == 1:
        base = start - p0  # x index read by tap 0 of output 0
        left = max(0, -base)
        right = max(0, base + step * (count - 1) + k - length)
        xe = _pad_dim(x, dim, left, right)
        return weighted_sum([(taps[i], _take(xe, dim, base + left + i, count, step)) for i in range(k)])
    phases = []
    for r in (0, 1):  # outputs t = 2u + r read x[u + (start + r + i - p0) / 2] for taps i of matching parity
        n = (count - r + 1) // 2
        terms = [(i, (start + r + i - p0) // 2) for i in range(k) if (start + r + i - p0) % 2 == 0]
        left = max(0, -min(q for _, q in terms))
        right = max(0, max(q for _, q in terms) + n - length)
        xe = _pad_dim(x, dim, left, right)
        phases.append(weighted_sum([(taps[i], _take(xe, dim, q + left, n)) for i, q in terms]) if n > 0 else None)
    if phases[1] is None or phases[1].shape[dim] < phases[0].shape[dim]:
        phases[1] = _pad_dim(phases[1] if phases[1] is not None else phases[0].narrow(dim, 0, 0) * 0, dim, 0,
                             phases[0].shape[dim] - (phases[1].shape[dim] if phases[1] is not None else 0))
    shape = list(phases[0].shape)
    shape[dim] *= 2
    return torch.stack(phases, dim=dim + 1).reshape(shape).narrow(dim, 0, count)


class _Fir1d(torch.autograd.Function):
    """A linear map A (see `_fir1d_eager`) whose backward A^T is the same kind of map."""

    @staticmethod
    def forward(ctx, x, g, dim, up, p0, p1, start, count, step):
        ctx.save_for_backward(g)
        ctx.geometry = (dim, up, p0, p1, start, count, step, x.shape[dim])
        return _fir1d_eager(x, g, dim, up, p0, p1, start, count, step)

    @staticmethod
    def backward(ctx, gy):
        (g,) = ctx.saved_tensors
        dim, up, p0, p1, start, count, step, length = ctx.geometry
        k = g.numel()
        conv_len = up * (length - 1) + 1 + p0 + p1 - k + 1
        # Scatter gy back to its positions in the filtered signal, correlate with the flipped
        # taps ("full" convolution), then read the positions the padded, zero-inserted x occupied.
        gx = _Fir1d.apply(gy, g.flip(0), dim, step, k - 1 + start, k - 1 + conv_len - start - step * (count - 1) - 1,
                          p0, length, up)
        return gx, None, None, None, None, None, None, None, None


def _take(x: torch.Tensor, dim: int, start: int, count: int, step: int = 1) -> torch.Tensor:
    x = x.narrow(dim, start, (count - 1) * step + 1)
    return x if step == 1 else x[(slice(None),) * dim + (slice(None, None, step),)]


def _pad_dim(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    pads = [0, 0] * (x.ndim - 2)
    pads[(x.ndim - 1 - dim) * 2: (x.ndim - 1 - dim) * 2 + 2] = [before, after]
    return F.pad(x, pads) if before or after else x


# -- matrices ------------------------------------------------------------------------------------


def _mat3(rows: list[list[torch.Tensor | float]], like: torch.Tensor) -> torch.Tensor:
    out = [v if isinstance(v, torch.Tensor) else torch.full_like(like, v) for row in rows for v in row]
    return torch.stack(out, dim=-1).reshape(*like.shape, 3, 3)


def _scale(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    return _mat3([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def _rotate(theta: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    return _mat3([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def _translate(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    return _mat3([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def _translate3(t: torch.Tensor) -> torch.Tensor:
    out = torch.eye(4, device=t.device, dtype=t.dtype).repeat(t.shape[0], 1, 1)
    out[:, :3, 3] = t[:, None]
    return out


def _scale3(s: torch.Tensor) -> torch.Tensor:
    out = torch.eye(4, device=s.device, dtype=s.dtype).repeat(s.shape[0], 1, 1)
    out[:, 0, 0] = out[:, 1, 1] = out[:, 2, 2] = s
    return out


def _rotate_about_luma(theta: torch.Tensor) -> torch.Tensor:
    """Rodrigues' rotation by theta about the luma axis (1, 1, 1) / sqrt(3), as [n, 4, 4]."""
    eye = torch.eye(3, device=theta.device)
    shift = torch.roll(eye, 1, dims=0)  # cyclic permutation: K = (P - P^T) / sqrt(3) is the axis' cross product
    k = (shift - shift.t()) / math.sqrt(3)
    s, c = torch.sin(theta)[:, None, None], torch.cos(theta)[:, None, None]
    R = eye + s * k + (1 - c) * (k @ k)
    out = torch.eye(4, device=theta.device).repeat(theta.shape[0], 1, 1)
    out[:, :3, :3] = R
    return out
