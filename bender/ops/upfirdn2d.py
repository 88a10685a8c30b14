"""upfirdn2d: upsample by zero insertion, pad, FIR-filter, downsample — in one op.

StyleGAN2 resamples with a low-pass FIR filter (by default the binomial [1, 3, 3, 1]) instead of
nearest or bilinear interpolation, to keep aliasing out of the generator (Karras et al. 2020,
"Analyzing and Improving the Image Quality of StyleGAN", Appendix B). Every resampling in G and D
is an instance of this one operation:

    y = downsample_d( FIR_f( pad_p( upsample_u(x) ) ) )

with the filter applied as a true convolution (flipped) unless `flip_filter`. Negative padding
crops. `gain` scales the filter, e.g. by up**2 so that zero insertion keeps the signal's level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bender.ops import backend


def setup_filter(
    f: list[float] | torch.Tensor | None,
    device: torch.device | str = "cpu",
    normalize: bool = True,
    separable: bool | None = None,
    gain: float = 1.0,
) -> torch.Tensor:
    """Turn a 1-D tap list into the filter tensor stored as `resample_filter` buffers.

    A 1-D list becomes its outer product (a 2-D, non-separable filter; that is what pretrained
    networks store), normalised to sum to 1 and scaled by `gain`.
    """
    if f is None:
        f = [1.0]
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a 1-D or 2-D filter; (1, 1) for None."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int | tuple[int, int] = 1,
    down: int | tuple[int, int] = 1,
    padding: int | tuple[int, ...] = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
    impl: str | None = None,
) -> torch.Tensor:
    """Pad, upsample, filter and downsample a batch of images [N, C, H, W].

    `padding` is an int, (x, y), or (x0, x1, y0, y1) in upsampled pixels, applied before filtering.
    `f` is 1-D (applied separably) or 2-D; None means the identity filter.
    """
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    pads = _pad4(padding)
    if backend.use_cuda("upfirdn2d", x, impl):
        return backend.cuda_module().upfirdn2d(x, f, upx, upy, downx, downy, *pads, flip_filter, gain)
    if backend.compiling():
        return upfirdn2d_sum(x, f, (upx, upy), (downx, downy), pads, flip_filter, gain)
    return upfirdn2d_ref(x, f, (upx, upy), (downx, downy), pads, flip_filter, gain)


def _upsample_and_pad(x: torch.Tensor, up: tuple[int, int], padding: tuple[int, int, int, int]) -> torch.Tensor:
    """Zero insertion, then padding (negative: cropping): the signal the filter runs over."""
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects [N, C, H, W], got shape {tuple(x.shape)}")
    upx, upy = up
    px0, px1, py0, py1 = padding
    n, c, h, w = x.shape
    if upx > 1 or upy > 1:  # zero insertion: each sample followed by up-1 zeros
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    return x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]


def _correlation_taps(f: torch.Tensor, flip_filter: bool, gain: float, dtype: torch.dtype) -> torch.Tensor:
    f = (f * (gain ** (f.ndim / 2))).to(dtype)
    return f if flip_filter else f.flip(list(range(f.ndim)))  # correlating with the flip = convolving


def upfirdn2d_ref(
    x: torch.Tensor,
    f: torch.Tensor,
    up: tuple[int, int],
    down: tuple[int, int],
    padding: tuple[int, int, int, int],
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """Reference implementation with standard PyTorch ops (differentiable to any order)."""
    downx, downy = down
    c = x.shape[1]
    x = _upsample_and_pad(x, up, padding)
    f = _correlation_taps(f, flip_filter, gain, x.dtype)
    if f.ndim == 2:
        if f.numel() > 1:
            x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
        else:
            x = x * f.reshape(())
    else:
        x = F.conv2d(x, f[None, None, None].repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, f[None, None, :, None].repeat(c, 1, 1, 1), groups=c)

    if downx > 1 or downy > 1:
        x = x[:, :, ::downy, ::downx]
    return x


def upfirdn2d_sum(
    x: torch.Tensor,
    f: torch.Tensor,
    up: tuple[int, int],
    down: tuple[int, int],
    padding: tuple[int, int, int, int],
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """The same operation as a weighted sum of strided slices, one per filter tap.

    Under torch.compile this is pointwise work, which Inductor fuses — zero insertion, padding,
    every tap, the stride and often the neighbouring bias/activation — into one kernel that reads
    the input about once, where a depthwise convolution stays a separate (and on GPUs slow) library
    call. Eagerly it would be a dozen launches per call, so only compiled code takes this path.
    """
    downx, downy = down
    x = _upsample_and_pad(x, up, padding)
    f = _correlation_taps(f, flip_filter, gain, x.dtype)
    fw, fh = filter_size(f)
    oh, ow = (x.shape[2] - fh) // downy + 1, (x.shape[3] - fw) // downx + 1
    if oh <= 0 or ow <= 0:
        raise ValueError(f"upfirdn2d: a {fh}x{fw} filter does not fit the padded {x.shape[2]}x{x.shape[3]} input")
    if f.ndim == 2:
        return sum(f[ky, kx] * x[:, :, ky: ky + downy * (oh - 1) + 1: downy, kx: kx + downx * (ow - 1) + 1: downx]
                   for ky in range(fh) for kx in range(fw))
    rows = sum(f[k] * x[:, :, :, k: k + downx * (ow - 1) + 1: downx] for k in range(fw))
    return sum(f[k] * rows[:, :, k: k + downy * (oh - 1) + 1: downy, :] for k in range(fh))


def upsample2d(x: torch.Tensor, f: torch.Tensor | None, up: int = 2, padding: int = 0,
               flip_filter: bool = False, gain: float = 1.0, impl: str | None = None) -> torch.Tensor:
    """Upsample by `up` with filter `f`, output size exactly `up` times the input."""
    fw, fh = filter_size(f)
    p = _pad4(padding)
    pads = (p[0] + (fw + up - 1) // 2, p[1] + (fw - up) // 2, p[2] + (fh + up - 1) // 2, p[3] + (fh - up) // 2)
    return upfirdn2d(x, f, up=up, padding=pads, flip_filter=flip_filter, gain=gain * up * up, impl=impl)


def downsample2d(x: torch.Tensor, f: torch.Tensor | None, down: int = 2, padding: int = 0,
                 flip_filter: bool = False, gain: float = 1.0, impl: str | None = None) -> torch.Tensor:
    """Low-pass filter with `f` then keep every `down`-th sample; output size input / `down`."""
    fw, fh = filter_size(f)
    p = _pad4(padding)
    pads = (p[0] + (fw - down + 1) // 2, p[1] + (fw - down) // 2,
            p[2] + (fh - down + 1) // 2, p[3] + (fh - down) // 2)
    return upfirdn2d(x, f, down=down, padding=pads, flip_filter=flip_filter, gain=gain, impl=impl)


def filter2d(x: torch.Tensor, f: torch.Tensor, padding: int = 0, flip_filter: bool = False,
             gain: float = 1.0, impl: str | None = None) -> torch.Tensor:
    """Filter without resampling, keeping the size ('same' padding)."""
    fw, fh = filter_size(f)
    p = _pad4(padding)
    pads = (p[0] + fw // 2, p[1] + (fw - 1) // 2, p[2] + fh // 2, p[3] + (fh - 1) // 2)
    return upfirdn2d(x, f, padding=pads, flip_filter=flip_filter, gain=gain, impl=impl)


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(v, int):
        if v < 1:
            raise ValueError(f"resampling factor must be >= 1, got {v}")
        return v, v
    a, b = v
    return int(a), int(b)


def _pad4(p: int | tuple[int, ...]) -> tuple[int, int, int, int]:
    if isinstance(p, int):
        return p, p, p, p
    p = tuple(int(v) for v in p)
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    if len(p) == 4:
        return p  # type: ignore[return-value]
    raise ValueError(f"padding must be an int, (x, y) or (x0, x1, y0, y1); got {p}")
