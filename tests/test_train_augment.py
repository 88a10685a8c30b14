"""ADA's augmentation pipeline: p = 0 is the identity, each transform does what it says, the
probabilities match the paper's, and R1 can differentiate twice through it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bender.train.augment import (
    AugmentConfig,
    AugmentPipe,
    _translate,
    geometric_draws,
    geometric_from_draws,
    host_seed,
    plan_size,
    unpack_plan,
)


def _smooth_images(n=4, c=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand([n, c, 8, 8], generator=g) * 2 - 1, size=size, mode="bilinear",
                         align_corners=False)


def _only(*names: str, **strengths) -> AugmentConfig:
    cfg = AugmentConfig.from_spec("bgcf")
    for name in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast",
                 "lumaflip", "hue", "saturation", "imgfilter"):
        setattr(cfg, name, 1.0 if name in names else 0.0)
    for k, v in strengths.items():
        setattr(cfg, k, v)
    return cfg


def test_state_dict_names_match_nvidia_augment_pipe():
    assert list(AugmentPipe().state_dict()) == ["p", "Hz_geom", "Hz_fbank"]
    assert AugmentPipe().Hz_fbank.shape == (4, 43)


@pytest.mark.parametrize("spec", ["bgc", "bgcf"])
def test_p_zero_is_identity(spec):
    x = _smooth_images()
    out = AugmentPipe(AugmentConfig.from_spec(spec), p=0.0)(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, x)


def test_spec_letters():
    cfg = AugmentConfig.from_spec("bc")
    assert cfg.xflip == 1 and cfg.rotate90 == 1 and cfg.scale == 0 and cfg.hue == 1 and cfg.imgfilter == 0
    with pytest.raises(ValueError, match="spec"):
        AugmentConfig.from_spec("bq")


def test_xflip_mirrors_and_leaves_the_others_untouched():
    pipe = AugmentPipe(_only("xflip"), p=1.0)
    x = _smooth_images(n=16)
    out = pipe(x, torch.Generator().manual_seed(3))
    same = [torch.equal(out[i], x[i]) for i in range(16)]
    assert 2 <= sum(same) <= 14  # a fair coin per image
    reference = pipe.resample(x, torch.eye(3).repeat(16, 1, 1)).flip(3)  # same filtering, mirrored
    for i in range(16):
        if not same[i]:
            torch.testing.assert_close(out[i], reference[i], atol=1e-5, rtol=0)


def test_resampling_moves_content_by_exactly_the_translation():
    pipe = AugmentPipe()
    x = _smooth_images(n=2)
    still = pipe.resample(x, torch.eye(3).repeat(2, 1, 1))
    moved = pipe.resample(x, _translate(torch.tensor([2.0, 2.0]), torch.tensor([-1.0, -1.0])))
    # output pixel u shows input point u + t: content moves left by 2 and down by 1
    torch.testing.assert_close(moved[..., 7:-7, 7:-7], still[..., 6:-8, 9:-5], atol=1e-5, rtol=0)
    torch.testing.assert_close(still[..., 6:-6, 6:-6], x[..., 6:-6, 6:-6], atol=0.05, rtol=0)  # low-pass only


def test_rotate90_is_a_quarter_turn():
    pipe = AugmentPipe(_only("rotate90"), p=1.0)
    x = _smooth_images(n=12)
    out = pipe(x, torch.Generator().manual_seed(5))
    base = pipe.resample(x, torch.eye(3).repeat(12, 1, 1))
    for i in range(12):
        if torch.equal(out[i], x[i]):
            continue
        errors = [(out[i] - torch.rot90(base[i], k, (1, 2))).abs().max().item() for k in (1, 2, 3)]
        assert min(errors) < 1e-5


def test_brightness_adds_one_constant_per_image():
    pipe = AugmentPipe(_only("brightness"), p=1.0)
    x = _smooth_images(n=8)
    delta = pipe(x, torch.Generator().manual_seed(1)) - x
    per_image = delta.flatten(1)
    torch.testing.assert_close(per_image, per_image[:, :1].expand_as(per_image), atol=1e-6, rtol=0)
    assert 0.05 < per_image[:, 0].std() < 0.5  # N(0, 0.2)


def test_hue_rotation_keeps_luma():
    pipe = AugmentPipe(_only("hue"), p=1.0)
    x = _smooth_images(n=6)
    out = pipe(x, torch.Generator().manual_seed(2))
    assert not torch.allclose(out, x)
    torch.testing.assert_close(out.mean(dim=1), x.mean(dim=1), atol=1e-5, rtol=0)


def test_filtering_with_unit_gains_is_identity_in_the_interior():
    pipe = AugmentPipe(_only("imgfilter"), p=0.0)
    pipe.cfg.imgfilter = 1.0
    x = _smooth_images(n=2, size=64)
    # p = 0: all gains 1 -> the bands sum to an impulse
    out = pipe.filter_images(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_probabilities_follow_the_paper():
    pipe = AugmentPipe(AugmentConfig.from_spec("bgc"), p=0.4)
    n = 20000
    M = pipe.geometric_matrix(n, (32, 32), torch.Generator().manual_seed(0), torch.device("cpu"))
    assert M.shape == (n, 3, 3)
    det = torch.linalg.det(M[:, :2, :2])
    flipped = (det < 0).float().mean().item()  # xflip (p * 1/2) composed with the lumaflip-free rest
    assert abs(flipped - 0.2) < 0.015
    moved = ((M - torch.eye(3)).abs().amax(dim=(1, 2)) > 1e-6).float().mean().item()
    # An image stays put when every transform is skipped or draws its identity: xflip draws "no flip"
    # half the time, rotate90 "0 degrees" a quarter, xint rounds to (0, 0) with 1/64; the two
    # rotations together apply with p (each with 1 - sqrt(1 - p)); scale, aniso, xfrac with p.
    p = 0.4
    still = (1 - p / 2) * (1 - 3 * p / 4) * (1 - p * 63 / 64) * (1 - p) ** 4
    assert abs(moved - (1 - still)) < 0.015


def test_grey_images():
    x = _smooth_images(n=4, c=1)
    out = AugmentPipe(AugmentConfig.from_spec("bgcf"), p=1.0)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_r1_differentiates_twice_through_the_whole_pipeline():
    """The gradient of an R1-style penalty (itself a gradient) through the pipeline is right:
    compared with a central finite difference along a random direction, in double precision."""
    pipe = AugmentPipe(AugmentConfig.from_spec("bgcf"), p=1.0).double()
    x = _smooth_images(n=2, size=16).double()
    weight = torch.randn([3, 16, 16], dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def penalty(inp, create_graph=True):
        y = pipe(inp, torch.Generator().manual_seed(7))
        score = (torch.tanh(y) * weight).sum()
        (g,) = torch.autograd.grad(score, inp, create_graph=create_graph)
        return g.square().sum()

    xr = x.clone().requires_grad_(True)
    (analytic,) = torch.autograd.grad(penalty(xr), xr)
    direction = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    eps = 1e-5
    plus = penalty((x + eps * direction).requires_grad_(True), create_graph=False)
    minus = penalty((x - eps * direction).requires_grad_(True), create_graph=False)
    numeric = (plus - minus) / (2 * eps)
    assert analytic.abs().sum() > 0
    torch.testing.assert_close((analytic * direction).sum(), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("up,down,pad", [(2, 1, (6, 5)), (1, 2, (5, 5)), (1, 1, (2, 1)), (2, 1, (1, 3)),
                                         (1, 2, (0, 4))])
@pytest.mark.parametrize("taps", [5, 12])
def test_cpu_fir_matches_upfirdn2d_and_differentiates_twice(up, down, pad, taps):
    """The CPU resampling path is bender.ops.upfirdn2d (1-D filter), only faster."""
    from bender.ops.upfirdn2d import upfirdn2d
    from bender.train.augment import fir_separable

    g = torch.Generator().manual_seed(taps)
    f = torch.rand([taps], dtype=torch.float64, generator=g)
    x = torch.randn([1, 2, 14, 15], dtype=torch.float64, generator=g, requires_grad=True)
    ref = upfirdn2d(x, f, up=up, down=down, padding=(pad[0], pad[1], pad[0], pad[1]))
    ours = fir_separable(x, f, up=up, down=down, pad=pad)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    assert torch.autograd.gradgradcheck(lambda inp: fir_separable(inp, f, up=up, down=down, pad=pad), (x,))


def test_cpu_resampling_path_matches_the_ops_path():
    pipe = AugmentPipe().double()
    x = _smooth_images(n=2, size=16).double()
    from bender.ops import setup_filter
    from bender.ops.upfirdn2d import downsample2d, upsample2d

    f = setup_filter(pipe.Hz_geom, separable=True).double()
    torch.testing.assert_close(pipe._resample2x(x, up=True), upsample2d(x, f, up=2), rtol=0, atol=1e-6)
    torch.testing.assert_close(pipe._resample2x(x, up=False), downsample2d(x, f, down=2), rtol=0, atol=1e-6)


def test_shape_bucketing_does_not_change_results():
    """On GPUs the moving images are resampled in power-of-two batches (padded with still ones)."""
    x = _smooth_images(n=7)
    outs = []
    for bucket in (False, True):
        pipe = AugmentPipe(AugmentConfig.from_spec("bg"), p=0.15)
        pipe.bucket_shapes = bucket
        outs.append(pipe(x, torch.Generator().manual_seed(2)))
    moved = sum(not torch.equal(outs[0][i], x[i]) for i in range(7))
    assert 0 < moved < 7 and moved & (moved - 1)  # a count that needs padding to a power of two
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=1e-6)


class _DeviceGenerator:
    """Stands for a GPU generator (what `host_generator` reads of one: its device and seed)."""

    def __init__(self, seed: int):
        self.device = torch.device("cuda")
        self.seed = seed

    def initial_seed(self) -> int:
        return self.seed


def test_per_image_draws_come_from_the_host():
    """Any generator stands for a CPU one seeded from its seed (derived: not the same stream) that
    advances from call to call: D's fakes and reals of one phase get different augmentations, the
    same seeds give the same ones again, and a CPU and a GPU generator with one seed give the same."""
    pipe = AugmentPipe(AugmentConfig.from_spec("bgc"), p=0.6)
    g = torch.Generator().manual_seed(4)
    assert pipe.host_generator(None) is None
    assert pipe.host_generator(g) is not g and pipe.host_generator(g) is pipe.host_generator(g)
    direct = geometric_from_draws(pipe.cfg, 8, geometric_draws(pipe.cfg, 8, torch.Generator().manual_seed(host_seed(4)),
                                                                torch.device("cpu")), pipe.p, (16, 16))
    assert torch.equal(pipe.geometric_matrix(8, (16, 16), g, torch.device("cpu")), direct)
    assert host_seed(4) != 4 and host_seed(4) == host_seed(4)

    def two_calls(gen) -> list[torch.Tensor]:
        return [pipe.geometric_matrix(8, (16, 16), gen, torch.device("cpu")) for _ in range(2)]

    first, second = two_calls(_DeviceGenerator(7)), two_calls(_DeviceGenerator(7))
    assert not torch.equal(first[0], first[1])  # the host generator advanced
    assert all(torch.equal(a, b) for a, b in zip(first, second))  # and is a function of the seed
    on_cpu = two_calls(torch.Generator().manual_seed(7))
    assert all(torch.equal(a, b) for a, b in zip(first, on_cpu))  # the same on either device
    assert not torch.equal(two_calls(_DeviceGenerator(8))[0], first[0])


def _plans(pipe: AugmentPipe, n: int, size, seed: int, calls: int):
    host = torch.Generator().manual_seed(seed)
    return [pipe.plan(n, size, host) for _ in range(calls)]


@pytest.mark.parametrize("spec,p", [("bgc", 0.5), ("bg", 0.3), ("c", 0.8), ("bgc", 0.0)])
def test_fixed_plans_give_what_planning_per_call_gives(spec, p):
    """A plan handed in as device tensors (what a CUDA graph replays: all images resampled with the
    largest padding, a mask for the still ones) gives the images, and the gradients, that planning
    in the call gives; the still images stay bit-identical."""
    x = _smooth_images(n=8, size=24).requires_grad_(True)
    pipe = AugmentPipe(AugmentConfig.from_spec(spec), p=p)
    plans = _plans(pipe, 8, (24, 24), seed=5, calls=2)
    ref = [pipe.apply(x, plan) for plan in plans]
    packed = [plan.packed() for plan in plans]
    assert all(t.numel() == plan_size(8, pipe.color_on) for t in packed)
    pad = pipe.fixed_padding(plans, (24, 24))  # what they need, in steps of an eighth of the size
    need = max([max(plan.pads) for plan in plans if plan.moved.any()], default=0)
    assert pad % 4 == 0 and (need <= pad < need + 4 or pad == 24)
    with pipe.fixed_plans([unpack_plan(t, 8, pipe.color_on) for t in packed], pad):
        out = [pipe(x), pipe(x)]
    for plan, a, b in zip(plans, ref, out):
        torch.testing.assert_close(b, a, rtol=0, atol=2e-5)
        for i in range(8):
            if not plan.moved[i] and plan.C is None:  # (colour changes images that do not move)
                assert torch.equal(b[i], x[i])
    weights = torch.randn(out[0].shape, generator=torch.Generator().manual_seed(1))
    (g_ref,) = torch.autograd.grad((ref[0] * weights).sum(), x)
    (g_out,) = torch.autograd.grad((out[0] * weights).sum(), x)
    # rounding only: the larger padding sums the reflected gradient in another order (measured 2e-6)
    assert float((g_out - g_ref).norm() / g_ref.norm()) < 1e-5
    if p > 0 and "g" in spec:
        assert any(bool(plan.moved.any()) for plan in plans) and not torch.equal(out[0], x)


def test_fixed_plans_must_match_the_calls():
    pipe = AugmentPipe(AugmentConfig.from_spec("bgc"), p=0.5)
    x = _smooth_images(n=4, size=16)
    plans = [unpack_plan(plan.packed(), 4, True) for plan in _plans(pipe, 4, (16, 16), 0, 2)]
    with pytest.raises(RuntimeError, match="went unused"):
        with pipe.fixed_plans(plans):
            pipe(x)
    with pytest.raises(RuntimeError, match="more calls"):
        with pipe.fixed_plans(plans[:1]):
            pipe(x)
            pipe(x)
    pipe(x, torch.Generator().manual_seed(0))  # and afterwards it plans per call again
