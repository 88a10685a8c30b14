"""`bender train --compile`: the compiled passes train like eager mode, on CPU (inductor's C++
backend). The same code path on CUDA records CUDA graphs (mode 'reduce-overhead'); that part is
checked by tests/test_train_cuda.py and measured by benchmarks/train.py --compile on a GPU.

Both compare the gradients each optimizer step applies, with the compiled trainer held at the
eager trainer's parameters (tests/train_lockstep.py says why: parameters compared after a run
mostly measure how Adam and GAN training amplify rounding)."""

from __future__ import annotations

import shutil

import pytest
import torch
from train_fixtures import TINY_ARCH, make_dataset
from train_lockstep import assert_same_training, gradient_mismatches, run_lockstep

import bender.train.loop
import bender.train.loss
from bender.errors import BenderError
from bender.train.config import make_config
from bender.train.loop import Trainer


def _trainer(data, out, **options) -> Trainer:
    # two accumulation rounds, like the CUDA test: the gradients of the rounds are summed
    cfg = make_config("scratch", data=str(data), out=str(out), batch=8, batch_gpu=4, device="cpu", aug="fixed",
                      aug_p=0.5, tick=1e9, timeline=False, seed=3, **{**TINY_ARCH, "conv_clamp": 256}, **options)
    torch.manual_seed(0)
    return Trainer(cfg, quiet=True)


needs_cxx = pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")),
                               reason="torch.compile on CPU generates C++: needs a C++ compiler")


@pytest.mark.slow
@needs_cxx
def test_compiled_step_matches_eager(tmp_path):
    data = make_dataset(tmp_path / "d.zip", count=16)
    eager = _trainer(data, tmp_path / "a")
    compiled = _trainer(data, tmp_path / "b", compile=True)
    assert isinstance(compiled.loss.synthesis_fast, torch._dynamo.eval_frame.OptimizedModule)
    assert isinstance(compiled.loss.D_fast, torch._dynamo.eval_frame.OptimizedModule)
    torch._dynamo.reset()
    graphs_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]  # a session-wide counter
    # 8 steps: every phase (G main, path length, D main, R1) runs, the lazy ones eagerly
    ref, cand = run_lockstep(eager, compiled, steps=8)
    # measured: the networks' gradients agree to 2e-5, the worst tensor's (a noise strength) to 3e-4
    assert_same_training(ref, cand, rtol=1e-4, tensor_rtol=1e-2)
    # one graph per network and situation (G with/without grad, D trainable/frozen) and one per ADA
    # matrix builder, not one per layer
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs_before <= 8


def _bug(name: str, monkeypatch) -> None:
    """Make `own_grads` (the copy out of CUDA-graph memory) do what a missing copy would."""
    if name == "lost":  # D's fake gradient is overwritten when the real pass replays
        monkeypatch.setattr(bender.train.loss, "own_grads", lambda params: [setattr(p, "grad", None) for p in params])
    elif name == "doubled":  # each round's gradient is counted twice
        monkeypatch.setattr(bender.train.loop, "own_grads", lambda params: [setattr(p, "grad", p.grad * 2)
                                                                            for p in params if p.grad is not None])
    elif name == "stale":  # later rounds (and phases) get the first round's gradient
        first: dict[int, torch.Tensor] = {}
        monkeypatch.setattr(bender.train.loop, "own_grads", lambda params: [
            setattr(p, "grad", first.setdefault(id(p), p.grad.clone())) for p in params if p.grad is not None])


@pytest.mark.parametrize("bug", ["none", "lost", "doubled", "stale"])
def test_the_gradient_check_catches_lost_doubled_and_stale_gradients(tmp_path, monkeypatch, bug):
    """The check the compiled tests use fails for the bugs a CUDA-graph gradient can cause (run on
    CPU, eager: the candidate takes the CUDA-graph code path, with `own_grads` broken)."""
    data = make_dataset(tmp_path / "d.zip", count=16)
    reference = _trainer(data, tmp_path / "a")
    candidate = _trainer(data, tmp_path / "b")
    candidate.loss.cuda_graphs = True  # calls own_grads between D's passes and between the rounds
    _bug(bug, monkeypatch)
    ref, cand = run_lockstep(reference, candidate, steps=1)  # step 0 runs every phase
    bad = gradient_mismatches(ref, cand, rtol=1e-4)
    if bug == "none":
        assert not bad
    else:
        phase = "Dmain" if bug == "lost" else ""
        assert any(phase in m and "over the network" in m for m in bad), bad


def test_compile_mode_is_checked(tmp_path):
    data = make_dataset(tmp_path / "d.zip", count=8)
    with pytest.raises(BenderError, match="--compile-mode fast: choose auto, default, reduce-overhead"):
        make_config("scratch", data=str(data), out=str(tmp_path), compile=True, compile_mode="fast")
