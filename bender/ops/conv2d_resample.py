"""2-D convolution with FIR-filtered up- or downsampling.

A StyleGAN2 "up" convolution is: zero-insert ×2, convolve with the 3×3 weights, low-pass with the
FIR filter. A "down" convolution is: low-pass, then convolve with stride 2. Both are computed in the
cheapest order that gives the same result — the 3×3 work happens at the low resolution (transposed
convolution for up, strided convolution for down) and the FIR runs on whichever side is smaller.

`flip_weight=True` means plain cross-correlation (what `torch.nn.functional.conv2d` does). Networks
pass `flip_weight=(up == 1)`: their up-convolutions are true convolutions, which lets the transposed
convolution use the weights as stored. Pretrained weights depend on this convention, so it is kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bender.ops.upfirdn2d import _pad4, filter_size, upfirdn2d


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
) -> torch.Tensor:
    """Convolve `x` [N, C_in, H, W] with `w` [C_out, C_in/groups, kh, kw], resampling by `up`/`down`.

    `padding` is in the (upsampled) input's pixels, as for upfirdn2d; `f` is the resampling filter.
    """
    if up < 1 or down < 1:
        raise ValueError(f"up and down must be >= 1 (got up={up}, down={down})")
    out_ch, in_ch_per_group, kh, kw = w.shape
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = _pad4(padding)

    # Extra padding so that the FIR filter's support is covered (same arithmetic as upsample2d /
    # downsample2d, folded into the convolution's padding).
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2

    # 1x1 kernels commute with resampling: run them at the low resolution.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=(px0, px1, py0, py1), flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=(px0, px1, py0, py1), gain=up * up, flip_filter=flip_filter)

    # Downsampling only: filter at full resolution, then a strided convolution.
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=(px0, px1, py0, py1), flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    # Upsampling: transposed convolution (the zero insertion is implicit), then the FIR filter.
    if up > 1:
        if groups == 1:
            wt = w.transpose(0, 1)
        else:
            wt = w.reshape(groups, out_ch // groups, in_ch_per_group, kh, kw)
            wt = wt.transpose(1, 2).reshape(groups * in_ch_per_group, out_ch // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, wt, stride=up, padding=(pyt, pxt), groups=groups, transpose=True,
                  flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up * up,
                      flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    # No resampling: a plain convolution when the padding is symmetric and non-negative.
    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=(py0, px0), groups=groups, flip_weight=flip_weight)

    # General case.
    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=(px0, px1, py0, py1), gain=up * up,
                  flip_filter=flip_filter)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x


def _conv(x: torch.Tensor, w: torch.Tensor, stride: int = 1, padding: int | tuple[int, int] = 0,
          groups: int = 1, transpose: bool = False, flip_weight: bool = True) -> torch.Tensor:
    if not flip_weight and (w.shape[-1] > 1 or w.shape[-2] > 1):
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)
