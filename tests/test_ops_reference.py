"""Reference ops against independent naive implementations, with first and second derivatives."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bender.ops import bias_act, conv2d_resample, setup_filter, upfirdn2d
from bender.ops.bias_act import ACTIVATIONS
from bender.ops.upfirdn2d import upfirdn2d_ref, upfirdn2d_sum, upsample2d

torch.manual_seed(0)

FORMULAS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "lrelu": lambda x: np.where(x >= 0, x, 0.2 * x),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "elu": lambda x: np.where(x >= 0, x, np.exp(x) - 1),
    "selu": lambda x: 1.0507009873554805 * np.where(x >= 0, x, 1.6732632423543772 * (np.exp(x) - 1)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "swish": lambda x: x / (1 + np.exp(-x)),
}


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("dim", [1, 2])
def test_bias_act_matches_formula(act, dim):
    x = torch.randn(3, 5, 7, dtype=torch.float64)
    b = torch.randn(x.shape[dim], dtype=torch.float64)
    out = bias_act(x, b, dim=dim, act=act, gain=0.7, clamp=0.9)
    shape = [1, 1, 1]
    shape[dim] = -1
    ref = np.clip(FORMULAS[act]((x + b.reshape(shape)).numpy()) * 0.7, -0.9, 0.9)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_bias_act_defaults_use_the_activation_gain():
    x = torch.randn(4, 3)
    np.testing.assert_allclose(bias_act(x, act="lrelu").numpy(), F.leaky_relu(x, 0.2).numpy() * math.sqrt(2),
                               rtol=1e-6)
    assert torch.equal(bias_act(x), x)


@pytest.mark.parametrize("act", ["lrelu", "tanh", "swish", "softplus", "elu"])
def test_bias_act_first_and_second_derivatives(act):
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    fn = lambda x, b: bias_act(x, b, act=act, gain=1.3)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


def naive_upfirdn2d(x: np.ndarray, f: np.ndarray, up: int, down: int, pad: tuple, gain: float, flip: bool):
    """Direct transcription of the definition, one output pixel at a time."""
    n, c, h, w = x.shape
    if f.ndim == 1:
        f = np.outer(f, f)
    f = f * gain ** (f.ndim / 2) if f.ndim == 1 else f * gain
    if not flip:
        f = f[::-1, ::-1]
    u = np.zeros([n, c, h * up, w * up])
    u[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = pad
    H, W = u.shape[2] + py0 + py1, u.shape[3] + px0 + px1
    p = np.zeros([n, c, H, W])
    ys, xs = slice(max(py0, 0), max(py0, 0) + u.shape[2]), slice(max(px0, 0), max(px0, 0) + u.shape[3])
    big = np.zeros([n, c, u.shape[2] + max(py0, 0) + max(py1, 0), u.shape[3] + max(px0, 0) + max(px1, 0)])
    big[:, :, ys, xs] = u
    p = big[:, :, max(-py0, 0): big.shape[2] - max(-py1, 0), max(-px0, 0): big.shape[3] - max(-px1, 0)]
    fh, fw = f.shape
    out = np.zeros([n, c, p.shape[2] - fh + 1, p.shape[3] - fw + 1])
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = (p[:, :, i: i + fh, j: j + fw] * f).sum(axis=(2, 3))
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize("up,down,pad", [(1, 1, (1, 2, 2, 1)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)),
                                         (3, 2, (0, 0, 1, 1)), (2, 2, (-1, 2, 1, -2)), (1, 1, (-1, -1, 0, 0))])
@pytest.mark.parametrize("flip", [False, True])
def test_upfirdn2d_matches_definition(up, down, pad, flip):
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    f = torch.tensor([[1.0, 2.0, 0.5], [0.0, 1.5, 3.0]], dtype=torch.float64)  # asymmetric: flips matter
    out = upfirdn2d(x, f, up=up, down=down, padding=pad, flip_filter=flip, gain=1.7)
    ref = naive_upfirdn2d(x.numpy(), f.numpy(), up, down, pad, 1.7, flip)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("up,down,pad", [(1, 1, (1, 2, 2, 1)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)),
                                         (3, 2, (0, 0, 1, 1)), (2, 2, (-1, 2, 1, -2)), (1, 1, (-1, -1, 0, 0))])
@pytest.mark.parametrize("separable", [False, True])
def test_upfirdn2d_as_a_sum_of_slices_matches_definition(up, down, pad, separable):
    """The form compiled code uses (bender.ops.upfirdn2d.upfirdn2d_sum), every tap a strided slice."""
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    f = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64) if separable else \
        torch.tensor([[1.0, 2.0, 0.5], [0.0, 1.5, 3.0]], dtype=torch.float64)
    for flip in (False, True):
        out = upfirdn2d_sum(x, f, (up, up), (down, down), pad, flip, 1.7)
        ref = naive_upfirdn2d(x.numpy(), f.numpy(), up, down, pad, 1.7, flip)
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)
    # anisotropic factors, against the convolution form
    out = upfirdn2d_sum(x, f, (2, 1), (1, 2), (2, 1, 0, 1), False, 1.0)
    np.testing.assert_allclose(out.numpy(), upfirdn2d_ref(x, f, (2, 1), (1, 2), (2, 1, 0, 1), False, 1.0).numpy(),
                               rtol=1e-12, atol=1e-12)


def test_compiled_code_takes_the_sum_form(monkeypatch):
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1]).to(torch.float64)
    seen = []

    def spy(*args):
        seen.append(1)
        return upfirdn2d_sum(*args)

    monkeypatch.setattr(importlib.import_module("bender.ops.upfirdn2d"), "upfirdn2d_sum", spy)
    torch._dynamo.reset()
    compiled = torch.compile(lambda t: upsample2d(t, f), backend="aot_eager", fullgraph=True)(x)
    assert seen  # traced through the sum form
    np.testing.assert_allclose(compiled.numpy(), upsample2d(x, f).numpy(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="does not fit"):
        upfirdn2d_sum(torch.zeros(1, 1, 2, 2), torch.ones(4, 4), (1, 1), (1, 1), (0, 0, 0, 0), False, 1.0)


def test_upfirdn2d_separable_equals_outer_product():
    x = torch.randn(1, 2, 9, 9, dtype=torch.float64)
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    sep = upfirdn2d(x, taps / taps.sum(), up=2, padding=(2, 1, 2, 1), gain=4.0)
    full = upfirdn2d(x, torch.outer(taps, taps) / taps.sum() ** 2, up=2, padding=(2, 1, 2, 1), gain=4.0)
    np.testing.assert_allclose(sep.numpy(), full.numpy(), rtol=1e-12, atol=1e-14)  # float64 rounding near 0


def test_setup_filter_is_normalised_outer_product():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4)
    assert f.sum().item() == pytest.approx(1.0)
    assert torch.equal(f, f.t())


def test_upfirdn2d_second_derivatives():
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 3, 3, 1]).double()
    assert torch.autograd.gradgradcheck(lambda x: upfirdn2d(x, f, up=2, down=1, padding=(2, 1, 2, 1)), (x,))
    assert torch.autograd.gradgradcheck(lambda x: upfirdn2d(x, f, down=2, padding=1), (x,))


def general_conv2d_resample(x, w, f, up, down, padding, flip_weight):
    """The straightforward order: upsample+filter, convolve, filter+downsample."""
    fw = f.shape[-1]
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0, py1 = px0, px1
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0, py1 = px0, px1
    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=(px0, px1, py0, py1), gain=up**2)
    x = F.conv2d(x, w if flip_weight else w.flip([2, 3]))
    return upfirdn2d(x, f, down=down) if down > 1 else x


@pytest.mark.parametrize("k,up,down,pad", [(3, 2, 1, 1), (3, 1, 2, 1), (1, 2, 1, 0), (1, 1, 2, 0), (3, 1, 1, 1),
                                           (3, 2, 2, 1)])
@pytest.mark.parametrize("flip_weight", [True, False])
def test_conv2d_resample_fast_paths_equal_the_general_order(k, up, down, pad, flip_weight):
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(5, 4, k, k, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1]).double()
    out = conv2d_resample(x, w, f, up=up, down=down, padding=pad, flip_weight=flip_weight)
    ref = general_conv2d_resample(x, w, f, up, down, pad, flip_weight)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-10, atol=1e-10)


def test_conv2d_resample_grouped_equals_per_group():
    x = torch.randn(1, 6, 8, 8, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1]).double()
    out = conv2d_resample(x, w, f, up=2, padding=1, groups=2, flip_weight=False)
    halves = [conv2d_resample(x[:, 3 * g: 3 * g + 3], w[2 * g: 2 * g + 2], f, up=2, padding=1, flip_weight=False)
              for g in range(2)]
    np.testing.assert_allclose(out.numpy(), torch.cat(halves, 1).numpy(), rtol=1e-10, atol=1e-10)


def test_conv2d_resample_second_derivatives():
    f = setup_filter([1, 3, 3, 1]).double()
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, w: conv2d_resample(x, w, f, up=2, padding=1, flip_weight=False),
                                        (x, w))
    assert torch.autograd.gradgradcheck(lambda x, w: conv2d_resample(x, w, f, down=2, padding=1), (x, w))


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_bias_act_inplace_equals_reference_and_respects_autograd(act):
    x = torch.randn(2, 4, 5, 5)
    b = torch.randn(4)
    expected = bias_act(x, b, act=act, gain=1.3, clamp=0.8)
    y = x.clone()
    with torch.no_grad():
        out = bias_act(y, b, act=act, gain=1.3, clamp=0.8, inplace=True)
    torch.testing.assert_close(out, expected)
    # while autograd records, inplace is ignored and the input is left alone
    z = x.clone().requires_grad_(True)
    out = bias_act(z, b, act=act, gain=1.3, clamp=0.8, inplace=True)
    out.sum().backward()
    torch.testing.assert_close(z.detach(), x)
