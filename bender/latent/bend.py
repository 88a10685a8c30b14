"""Network bending: transforms applied to the feature maps inside the generator.

After Broad, Leymarie & Grierson (2021), "Network Bending: Expressive Manipulation of Deep
Generative Models": instead of moving the latent, change what one layer hands to the next —
shift, rotate or blur the feature maps of `synthesis.b16.conv1`, switch some channels off, etc.
Each `Bend` names a layer, an op and (optionally) a subset of channels; `BendSet.attach(G)` applies
them through forward hooks, so it works on any loaded generator without changing its code.

Every op takes an `amount` per sample, so bends are keyframeable and one batch can hold frames
with different amounts:
- geometric ops scale their parameter: translate by amount * (dx, dy), rotate by amount * degrees,
  zoom by factor ** amount, blur with sigma * amount, multiply by 1 + amount * (factor - 1);
- the others cross-fade: x + amount * (op(x) - x) (flip, erode, dilate, threshold, invert), and
  ablate is x * (1 - amount).
amount 0 leaves the features untouched; 1 is the full op; other values extrapolate.
Ops run in float32 and hand back the layer's dtype.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from bender.device import to_device
from bender.errors import BenderError


def _crossfade(x: torch.Tensor, y: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    return x + amount.reshape(-1, 1, 1, 1) * (y - x)


def _channel_range(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.amin(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)


def _shift_int(x: torch.Tensor, sx: int, sy: int, wrap: bool) -> torch.Tensor:
    """Shift [..., H, W] right by sx and down by sy pixels (wrapping around, or filling with zeros)."""
    if wrap:
        return torch.roll(x, shifts=(sy, sx), dims=(-2, -1))
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    if abs(sx) >= w or abs(sy) >= h:
        return out
    ys, yd = (slice(0, h - sy), slice(sy, h)) if sy >= 0 else (slice(-sy, h), slice(0, h + sy))
    xs, xd = (slice(0, w - sx), slice(sx, w)) if sx >= 0 else (slice(-sx, w), slice(0, w + sx))
    out[..., yd, xd] = x[..., ys, xs]
    return out


def _shift(x: torch.Tensor, sx: float, sy: float, wrap: bool) -> torch.Tensor:
    """Sub-pixel shift: bilinear mix of the four surrounding integer shifts (exact for whole pixels)."""
    ix, iy = math.floor(sx), math.floor(sy)
    fx, fy = sx - ix, sy - iy
    out = None
    for ox, wx in ((0, 1 - fx), (1, fx)):
        for oy, wy in ((0, 1 - fy), (1, fy)):
            if wx * wy == 0:
                continue
            term = _shift_int(x, ix + ox, iy + oy, wrap) * (wx * wy)
            out = term if out is None else out + term
    return out


def _check_padding(padding: str) -> None:
    if padding not in ("zeros", "border", "reflection"):
        raise BenderError(f"bend padding must be zeros, border or reflection, got {padding!r}")


def _affine(x: torch.Tensor, thetas: torch.Tensor, padding: str) -> torch.Tensor:
    grid = F.affine_grid(thetas.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


# ------------------------------------------------------------------------------------------------
# Ops: small dataclasses, each a function of (features [N, C, H, W], amount [N])


@dataclass
class Translate:
    """Shift by (dx, dy) as fractions of the feature map's width and height (+x right, +y down)."""

    dx: float = 0.25
    dy: float = 0.0
    wrap: bool = True

    def __call__(self, x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return torch.stack([_shift(x[i], float(a) * self.dx * w, float(a) * self.dy * h, self.wrap)
                            for i, a in enumerate(amount.tolist())])


@dataclass
class Rotate:
    """Rotate by `degrees` (counter-clockwise as displayed) about the centre."""

    degrees: float = 90.0
    padding: str = "zeros"  # zeros | border | reflection

    def check(self) -> None:
        _check_padding(self.padding)

    def __call__(self, x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        # affine_grid maps output to input positions (y down): R(+a) there turns content anticlockwise.
        rad = amount.to(torch.float64) * math.radians(self.degrees)
        c, s = torch.cos(rad), torch.sin(rad)
        z = torch.zeros_like(c)
        theta = torch.stack([torch.stack([c, -s, z], -1), torch.stack([s, c, z], -1)], 1)
        return _affine(x, theta.to(x.device), self.padding)


@dataclass
class Scale:
    """Zoom about the centre by `factor` (> 1 enlarges the features)."""

    factor: float = 2.0
    padding: str = "zeros"

    def check(self) -> None:
        _check_padding(self.padding)
        if self.factor <= 0:
            raise BenderError("scale bend: factor must be > 0")

    def __call__(self, x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        self.check()
        inv = float(self.factor) ** (-amount.to(torch.float64))
        z = torch.zeros_like(inv)
        theta = torch.stack([torch.stack([inv, z, z], -1), torch.stack([z, inv, z], -1)], 1)
        return _affine(x, theta.to(x.device), self.padding)


@dataclass
class Flip:
    """Mirror left-right (axis 'x') or top-bottom ('y')."""

    axis: str = "x"

    def check(self) -> None:
        if self.axis not in ("x", "y"):
            raise BenderError(f"flip bend: axis must be 'x' or 'y', got {self.axis!r}")

    def __call__(self, x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        self.check()
        return _crossfade(x, torch.flip(x, dims=[-1 if self.axis == "x" else -2]), amount)


@dataclass
class Dilate:
    """Morphological dilation: each value becomes the maximum of its (2r+1)^2 neighbourhood."""

    radius: int = 1

    def check(self) -> None:
        if self.radius < 0:
            raise BenderError("erode/dilate bend: radius must be >= 0 pixels")

    def __call__(self, x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        r = int(self.radius)
        return _crossfade(x, F.max_pool2d(x, 2 * r + 1, stride=1, padding=r), amount)


@dataclass
class Erode(Dilate):
    """Morphological erosion: each value becomes the minimum of its (2r+1)^2 neighbourhood
    (the dilation of the negated map, negated back)."""

    def __call__(self, x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        r = int(self.radius)
        return _crossfade(x, -F.max_pool2d(-x, 2 * r + 1, stride=1, padding=r), amount)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian taps out to 3 sigma."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(torch.float32)


@dataclass
class Blur:
    """Gaussian blur with standard deviation `sigma` pixels (edges replicated)."""

    sigma: float = 1.0

    def check(self) -> None:
        if self.sigma < 0:
            raise BenderError("blur bend: sigma must be >= 0 pixels")

    def __call__(self, x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        for a in sorted(set(amount.tolist())):
            sigma = abs(a) * self.sigma
            if sigma < 1e-6:
                continue
            idx = (amount == a).nonzero().flatten()
            k = gaussian_kernel(sigma).to(x.device, x.dtype)
            r = (k.numel() - 1) // 2
            y = x[idx]
            c = y.shape[1]
            y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1),
                         groups=c)
            y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1),
                         groups=c)
            out[idx] = y
        return out


@dataclass
class Threshold:
    """Binarise each channel at `level` of its own [min, max] range (values become min or max)."""

    level: float = 0.5

    def __call__(self, x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        lo, hi = _channel_range(x)
        cut = lo + float(self.level) * (hi - lo)
        return _crossfade(x, torch.where(x >= cut, hi, lo), amount)


@dataclass
class Invert:
    """Mirror each channel within its own range: x -> min + max - x (bright becomes dark)."""

    def __call__(self, x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        lo, hi = _channel_range(x)
        return _crossfade(x, lo + hi - x, amount)


@dataclass
class Ablate:
    """Switch features off (multiply by 1 - amount)."""

    def __call__(self, x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        return x * (1 - amount.reshape(-1, 1, 1, 1))


@dataclass
class Multiply:
    """Scale features by `factor` (1 + amount * (factor - 1))."""

    factor: float = 2.0

    def __call__(self, x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        return x * (1 + amount.reshape(-1, 1, 1, 1) * (float(self.factor) - 1))


OPS: dict[str, type] = {
    "translate": Translate, "rotate": Rotate, "scale": Scale, "flip": Flip, "erode": Erode,
    "dilate": Dilate, "blur": Blur, "threshold": Threshold, "invert": Invert, "ablate": Ablate,
    "multiply": Multiply,
}


def make_op(name: str, **params):
    """Build an op by name from keyword parameters, with a clear error for typos."""
    if name not in OPS:
        raise BenderError(f"unknown bend op {name!r}; choose from {', '.join(OPS)}")
    cls = OPS[name]
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - allowed)
    if unknown:
        hint = ", ".join(sorted(allowed)) or "none"
        raise BenderError(f"bend op {name!r} has no parameter {', '.join(unknown)} (it takes: {hint})")
    typed = {}
    for f in dataclasses.fields(cls):
        if f.name not in params:
            continue
        value, kind = params[f.name], type(f.default)
        if kind is bool:
            if not isinstance(value, bool):
                raise BenderError(f"bend op {name!r}: {f.name} must be true or false, got {value!r}")
        elif kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise BenderError(f"bend op {name!r}: {f.name} must be a number, got {value!r}")
            if kind is int and not float(value).is_integer():
                raise BenderError(f"bend op {name!r}: {f.name} must be a whole number, got {value!r}")
            value = kind(value)
        else:
            value = str(value)
        typed[f.name] = value
    op = cls(**typed)
    check = getattr(op, "check", None)
    if check is not None:
        check()
    return op


def op_name(op) -> str:
    return next(k for k, v in OPS.items() if type(op) is v)


# ------------------------------------------------------------------------------------------------
# Bends on layers


@dataclass
class Bend:
    """One op on one layer's output features, on all channels or a subset.

    `channels` lists channel indices; or `channel_fraction` picks that share of channels at random
    with `channel_seed` (fixed per bend, so a render is reproducible). `name` identifies the bend in
    keyframes (default 'op@layer').
    """

    layer: str
    op: object
    amount: float = 1.0
    channels: list[int] | None = None
    channel_fraction: float | None = None
    channel_seed: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.op, str):
            self.op = make_op(self.op)
        if not self.name:
            self.name = f"{op_name(self.op)}@{self.layer}"
        self.layer, self.name = str(self.layer), str(self.name)
        if isinstance(self.amount, bool) or not isinstance(self.amount, (int, float)) or not math.isfinite(self.amount):
            raise BenderError(f"bend {self.name}: amount must be a number, got {self.amount!r}")
        self.amount = float(self.amount)
        if self.channels is not None:
            if not isinstance(self.channels, (list, tuple)) or not all(
                    isinstance(c, int) and not isinstance(c, bool) for c in self.channels):
                raise BenderError(f"bend {self.name}: channels must be a list of channel numbers")
            self.channels = [int(c) for c in self.channels]
        if self.channel_fraction is not None:
            self.channel_fraction = float(self.channel_fraction)
        self.channel_seed = int(self.channel_seed)
        if self.channel_fraction is not None and not 0 < self.channel_fraction <= 1:
            raise BenderError(f"bend {self.name}: channel_fraction must be in (0, 1]")

    def channel_mask(self, num_channels: int, device) -> torch.Tensor | None:
        """[1, C, 1, 1] bool mask of bent channels, or None for all."""
        if self.channels is None and self.channel_fraction is None:
            return None
        if self.channels is not None:
            bad = [c for c in self.channels if not 0 <= int(c) < num_channels]
            if bad:
                raise BenderError(f"bend {self.name}: channels {bad} do not exist ({self.layer} has "
                                  f"{num_channels} channels, 0-{num_channels - 1})")
            chosen = [int(c) for c in self.channels]
        else:
            k = max(1, round(self.channel_fraction * num_channels))
            chosen = np.random.RandomState(self.channel_seed).permutation(num_channels)[:k].tolist()
        mask = torch.zeros(1, num_channels, 1, 1, dtype=torch.bool)
        mask[0, chosen] = True
        return to_device(mask, device)  # built on the host: indexing a GPU tensor with a list would sync

    def apply(self, x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
        """Bend features x [N, C, H, W] with one amount per sample."""
        dtype = x.dtype
        xf = x.to(torch.float32).contiguous()
        y = self.op(xf, amount.to(device=x.device, dtype=torch.float32))
        mask = self.channel_mask(x.shape[1], x.device)
        if mask is not None:
            y = torch.where(mask, y, xf)
        # Hand back the layer's dtype and memory layout (CPU inference runs channels_last).
        channels_last = x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        return y.to(dtype).contiguous(memory_format=fmt)

    def to_dict(self) -> dict:
        out = {"layer": self.layer, "op": op_name(self.op), **dataclasses.asdict(self.op), "amount": self.amount}
        for key in ("channels", "channel_fraction"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.channel_fraction is not None:
            out["channel_seed"] = self.channel_seed
        out["name"] = self.name
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Bend:
        data = dict(data)
        if "layer" not in data or "op" not in data:
            raise BenderError(f"a bend needs 'layer' and 'op' (got {sorted(data)})")
        own = {f.name for f in dataclasses.fields(cls)} - {"op"}
        kwargs = {k: data.pop(k) for k in list(data) if k in own}
        op = make_op(str(data.pop("op")), **data)
        return cls(op=op, **kwargs)


def bendable_layers(G: torch.nn.Module) -> list[str]:
    """Module names whose output a bend can change: synthesis blocks and their conv/torgb layers."""
    names = []
    for block in G.synthesis.blocks():
        base = f"synthesis.b{block.resolution}"
        names.append(base)
        names.extend(f"{base}.{child}" for child in ("conv0", "conv1", "torgb") if hasattr(block, child))
    return names


@dataclass
class BendSet:
    """Several bends, attached together; `amounts` ([n_bends, N]) is set per batch while attached."""

    bends: list[Bend] = field(default_factory=list)
    amounts: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.bends)

    def validate(self, G: torch.nn.Module) -> None:
        layers = bendable_layers(G)
        for b in self.bends:
            if b.layer not in layers:
                raise BenderError(f"bend {b.name}: no layer {b.layer!r} in this model; bendable layers: "
                                  f"{', '.join(layers[:6])}, ... (list them with `bender render layers MODEL`)")
        names = [b.name for b in self.bends]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise BenderError(f"bend names must be unique; repeated: {', '.join(dup)} (give each a `name`)")

    def _amount(self, i: int, n: int, device) -> torch.Tensor:
        if self.amounts is None:
            return torch.full([n], float(self.bends[i].amount), device=device)
        a = to_device(self.amounts[i], device)
        if a.numel() != n:
            raise ValueError(f"bend amounts for {a.numel()} samples, batch has {n}")
        return a

    @contextlib.contextmanager
    def attach(self, G: torch.nn.Module) -> Iterator[BendSet]:
        """Register the bends' forward hooks on G for the duration of the block."""
        self.validate(G)
        modules = dict(G.named_modules())
        handles = []

        def make_hook(i: int, bend: Bend):
            def hook(_module, _inputs, output):
                if isinstance(output, tuple):
                    x = output[0]
                    return (bend.apply(x, self._amount(i, x.shape[0], x.device)), *output[1:])
                return bend.apply(output, self._amount(i, output.shape[0], output.device))
            return hook

        try:
            for i, bend in enumerate(self.bends):
                handles.append(modules[bend.layer].register_forward_hook(make_hook(i, bend)))
            yield self
        finally:
            for h in handles:
                h.remove()
