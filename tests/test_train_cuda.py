"""The trainer on a CUDA GPU (skipped without one; benchmarks/gpu_check.sh runs these): the GPU
paths — bf16 blocks, channels_last, CUDA kernels, the GPU resampling path of ADA — train, and agree
with the CPU on a step's gradients."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from bender.ops.grid_sample import grid_sample
from bender.train import checkpoint as ckpt
from bender.train.config import make_config
from bender.train.loop import Trainer, train
from tests.train_fixtures import TINY_ARCH, make_dataset
from tests.train_lockstep import assert_same_training, run_lockstep

pytestmark = pytest.mark.cuda


def test_grid_sample_second_derivative_on_cuda():
    x = torch.randn([2, 3, 6, 7], dtype=torch.float64, device="cuda", requires_grad=True)
    theta = torch.eye(2, 3, dtype=torch.float64, device="cuda").repeat(2, 1, 1) + 0.2
    grid = torch.nn.functional.affine_grid(theta, [2, 3, 5, 5], align_corners=False)
    assert torch.autograd.gradgradcheck(lambda inp: grid_sample(inp, grid), (x,))


def test_a_short_bf16_run_with_ada_on_cuda(tmp_path):
    data = make_dataset(tmp_path / "d.zip", count=16)
    arch = {**TINY_ARCH, "num_fp16_res": 2, "conv_clamp": 256.0}
    cfg = make_config("scratch", data=str(data), out=str(tmp_path), kimg=0.064, snap=0.032, batch=8, aug_p=0.5,
                      ada_kimg=1.0, device="cuda", tick=60, timeline=False, **arch)
    result = train(cfg, quiet=True)
    records = ckpt.read_stats(result.run_dir)
    assert [r["kimg"] for r in records] == [0.0, 0.032, 0.064]
    last = records[-1]
    assert all(math.isfinite(v) for k, v in last.items() if k.startswith("Loss/"))
    assert last["gpu_mem_gb"] > 0 and last["augment_p"] != 0.5


def test_cuda_and_cpu_r1_gradients_agree(tmp_path):
    """fp32, no TF32, no augmentation: D's R1 gradients on the GPU match the CPU's."""
    data = make_dataset(tmp_path / "d.zip", count=16)
    grads = {}
    for device in ("cpu", "cuda"):
        cfg = make_config("scratch", data=str(data), out=str(tmp_path / device), batch=8, aug="none", device=device,
                          precision="fp32", channels_last=False, tf32=False, timeline=False, **TINY_ARCH)
        trainer = Trainer(cfg, quiet=True)
        real, c = trainer.data.batch(0)
        trainer._train_only("D")
        trainer.D.zero_grad(set_to_none=True)
        trainer.loss.d_r1(real, c, None, 1.0)
        grads[device] = {n: p.grad.detach().cpu() for n, p in trainer.D.named_parameters() if p.grad is not None}
    for name, ref in grads["cpu"].items():
        torch.testing.assert_close(grads["cuda"][name], ref, rtol=1e-3, atol=1e-5 * max(1, ref.abs().max().item()))


def test_augment_resampling_gpu_path_matches_cpu_path():
    """ADA's GPU path (bender.ops upsample2d/downsample2d, CUDA kernels when built) and its CPU path
    (polyphase FIR) resample identically, and both differentiate twice."""
    from bender.train.augment import AugmentPipe, _rotate, _scale

    pipe = AugmentPipe()
    x = torch.randn([3, 3, 32, 32], generator=torch.Generator().manual_seed(0))
    M = _rotate(torch.tensor([0.3, -1.0, 2.0])) @ _scale(torch.tensor([1.2, 0.9, -1.0]), torch.tensor([1.0, 1.1, 1.0]))
    out = {}
    for device in ("cpu", "cuda"):
        xd = x.to(device).requires_grad_(True)
        y = pipe.to(device).resample(xd, M.to(device))
        (g,) = torch.autograd.grad(y.square().sum(), xd, create_graph=True)
        (gg,) = torch.autograd.grad(g.square().sum(), xd)
        out[device] = (y.detach().cpu(), gg.cpu())
    torch.testing.assert_close(out["cuda"][0], out["cpu"][0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["cuda"][1], out["cpu"][1], rtol=1e-3, atol=1e-3 * out["cpu"][1].abs().max().item())


def test_augment_on_cuda_decides_on_the_host():
    """With a CUDA generator, ADA draws from a CPU generator seeded from it: the GPU result equals
    the CPU pipeline's with that CPU generator (up to the resampling paths' rounding), and a new p
    set on the device is seen at the next call."""
    from bender.train.augment import AugmentConfig, AugmentPipe

    x = torch.randn([8, 3, 32, 32], generator=torch.Generator().manual_seed(0))
    cpu_pipe = AugmentPipe(AugmentConfig.from_spec("bgc"), p=0.5)
    gpu_pipe = AugmentPipe(AugmentConfig.from_spec("bgc"), p=0.5).cuda()
    for p in (0.5, 0.9):
        cpu_pipe.p.fill_(p)
        gpu_pipe.p.fill_(p)  # on the device: p_host must notice
        gen = torch.Generator(device="cuda").manual_seed(11)
        host = torch.Generator().manual_seed(11)
        got = [gpu_pipe(x.cuda(), gen).cpu() for _ in range(2)]
        want = [cpu_pipe(x, host) for _ in range(2)]
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        assert not torch.allclose(got[0], got[1])  # the second call drew new augmentations


def test_compiled_step_on_cuda_matches_eager(tmp_path):
    """--compile on a GPU (mode auto = reduce-overhead: the passes replay as CUDA graphs) trains like
    eager mode: at every optimizer step the compiled trainer, held at the eager trainer's
    parameters, applies the same gradients up to fused rounding (fp32 without TF32). D's step runs
    D twice (fakes, reals) and each round runs both networks again, so this checks that gradients
    adopted from graph memory are copied out before the next replay overwrites them: a lost,
    doubled or stale gradient is O(1) here. (Parameters compared after 20 steps are not a test:
    Adam and the GAN turn a 1e-6 gradient difference into 4e-3 of drift; see tests/train_lockstep.py.)"""
    data = make_dataset(tmp_path / "d.zip", count=16)
    trainers = []
    for name, compiled in (("eager", False), ("compiled", True)):
        # two accumulation rounds: gradients must be copied out of graph memory between replays
        cfg = make_config("scratch", data=str(data), out=str(tmp_path / name), batch=8, batch_gpu=4, aug="fixed",
                          aug_p=0.5, device="cuda", precision="fp32", tf32=False, timeline=False, seed=3,
                          compile=compiled, **{**TINY_ARCH, "conv_clamp": 256})
        torch.manual_seed(0)
        trainers.append(Trainer(cfg, quiet=True))
    assert trainers[1].loss.cuda_graphs
    torch._dynamo.reset()
    # past cudagraph trees' warm-up and recording, with every phase run (R1 at steps 0 and 16)
    ref, cand = run_lockstep(trainers[0], trainers[1], steps=20)
    assert_same_training(ref, cand, rtol=1e-3, tensor_rtol=1e-2)


def test_cuda_graphs_train_like_eager_on_cuda(tmp_path):
    """--cuda-graphs: every phase recorded (R1 at step 16) and replayed; at every optimizer step the
    gradients match eager mode's at the same parameters (fp32 without TF32; ADA's fixed padding and
    the kernels' summation order are the only differences)."""
    data = make_dataset(tmp_path / "d.zip", count=16)
    trainers = []
    for name, graphs in (("eager", False), ("graphs", True)):
        cfg = make_config("scratch", data=str(data), out=str(tmp_path / name), batch=8, aug="fixed", aug_p=0.5,
                          device="cuda", precision="fp32", tf32=False, timeline=False, seed=3, cuda_graphs=graphs,
                          **{**TINY_ARCH, "conv_clamp": 256})
        torch.manual_seed(0)
        trainers.append(Trainer(cfg, quiet=True))
    ref, cand = run_lockstep(trainers[0], trainers[1], steps=18)
    graphs = trainers[1]._phase_graphs
    assert sorted({index for index, _ in graphs}) == [0, 1, 2, 3] and all(g.graph is not None for g in graphs.values())
    assert_same_training(ref, cand, rtol=1e-3, tensor_rtol=1e-2)


def test_a_short_bf16_run_with_cuda_graphs(tmp_path):
    """The default GPU settings (bf16 blocks, channels_last, the kernels, ADA that adapts p) with
    every phase replayed: a run with a snapshot, finite losses, p moving, and a continued run."""
    data = make_dataset(tmp_path / "d.zip", count=16)
    cfg = make_config("scratch", data=str(data), out=str(tmp_path / "runs"), batch=8, kimg=0.4, snap=0.2,
                      aug="ada", aug_p=0.3, ada_interval=2, ada_kimg=1.0, device="cuda", timeline=False, seed=5,
                      cuda_graphs=True, **{**TINY_ARCH, "num_fp16_res": 2, "conv_clamp": 256.0})
    result = train(cfg, quiet=True)
    assert result.reason == "done" and abs(result.kimg - 0.4) < 0.01
    records = ckpt.read_stats(result.run_dir)
    assert [r["kimg"] for r in records] == [0.0, 0.2, 0.4]
    assert all(math.isfinite(v) for k, v in records[-1].items() if k.startswith("Loss/"))
    assert records[-1]["augment_p"] != 0.3  # ADA adjusted p between the replays
    more = train(replace(cfg, kimg=0.6), continue_run=result.run_dir, quiet=True)
    assert more.reason == "done" and abs(more.kimg - 0.6) < 0.01
