"""The objective's terms against hand-computed values on tiny cases: R1, path length, EMA,
lazy-regularisation Adam settings, and the NVIDIA 'auto' hyperparameters."""

from __future__ import annotations

import math

import pytest
import torch

from bender.train.config import auto_ema_kimg, auto_gamma, auto_lr, lazy_reg_ratio, make_config
from bender.train.ema import ema_beta, update_ema
from bender.train.loss import path_lengths, r1_penalty


def test_r1_penalty_of_a_quadratic():
    # D(x) = sum(a * x^2)  ->  grad = 2 a x  ->  ||grad||^2 = sum(4 a^2 x^2)
    a = torch.tensor([[[0.5]], [[-2.0]]], requires_grad=True)  # per channel
    x = torch.tensor([[[[1.0, 2.0]], [[3.0, -1.0]]]])  # [1, 2, 1, 2]

    def d_fn(img):
        return (a * img.square()).sum(dim=[1, 2, 3])[:, None]

    penalty, logits = r1_penalty(d_fn, x)
    expected = 4 * (0.25 * (1 + 4) + 4.0 * (9 + 1))
    assert penalty.item() == pytest.approx(expected)
    assert logits.item() == pytest.approx(0.5 * 5 - 2.0 * 10)
    # The penalty is differentiable in D's parameters: d/da_c sum 4 a_c^2 x^2 = 8 a_c sum x^2
    penalty.sum().backward()
    assert a.grad.flatten().tolist() == pytest.approx([8 * 0.5 * 5, 8 * -2.0 * 10])


def test_path_length_of_a_linear_synthesis():
    # img = A ws (linear), so J^T y = A^T y exactly.
    torch.manual_seed(0)
    n, num_ws, w_dim, c, h, w = 3, 2, 4, 1, 2, 2
    A = torch.randn([c * h * w, num_ws * w_dim])
    ws = torch.randn([n, num_ws, w_dim], requires_grad=True)

    def synthesis(wv):
        return (wv.reshape(n, -1) @ A.t()).reshape(n, c, h, w)

    lengths = path_lengths(synthesis, ws, torch.Generator().manual_seed(5))
    y = torch.randn([n, c, h, w], generator=torch.Generator().manual_seed(5)) / math.sqrt(h * w)
    jty = (y.reshape(n, -1) @ A).reshape(n, num_ws, w_dim)
    expected = jty.square().sum(dim=2).mean(dim=1).sqrt()
    torch.testing.assert_close(lengths, expected)


def test_ema_beta_and_update():
    assert ema_beta(16, 10.0, cur_nimg=10**6) == pytest.approx(0.5 ** (16 / 10000))
    assert ema_beta(16, 10.0, cur_nimg=1000, rampup=0.05) == pytest.approx(0.5 ** (16 / 50))  # ramp-up wins
    assert ema_beta(16, 10.0, cur_nimg=0, rampup=0.05) == 0.0  # at the very start G_ema = G

    G = torch.nn.Linear(2, 1)
    G_ema = torch.nn.Linear(2, 1)
    G.register_buffer("w_avg", torch.tensor([3.0]))
    G_ema.register_buffer("w_avg", torch.tensor([0.0]))
    with torch.no_grad():
        G.weight.copy_(torch.tensor([[1.0, 2.0]]))
        G_ema.weight.copy_(torch.tensor([[5.0, -2.0]]))
    update_ema(G_ema, G, beta=0.75)
    assert G_ema.weight.tolist() == [[0.75 * 5 + 0.25 * 1, 0.75 * -2 + 0.25 * 2]]
    assert G_ema.w_avg.tolist() == [3.0]  # buffers are copied, not averaged


def test_lazy_regularisation_adam_settings():
    assert lazy_reg_ratio(16) == pytest.approx(16 / 17)
    assert lazy_reg_ratio(4) == pytest.approx(0.8)
    assert lazy_reg_ratio(16, enabled=False) == 1.0


def test_nvidia_auto_hyperparameters():
    cfg = make_config("bend", data="x.zip", batch=16)
    assert auto_gamma(cfg, 256) == pytest.approx(0.8192)  # the 256² figure
    assert auto_lr(cfg, 256) == 0.0025 and auto_lr(cfg, 1024) == 0.002
    assert auto_ema_kimg(cfg) == pytest.approx(5.0)
    assert make_config("gentle", data="x.zip").freeze_d == 4
    assert make_config("scratch", data="x.zip", conv_clamp=0).arch.conv_clamp is None
