"""`bender train --compile`: the compiled passes train like eager mode, on CPU (inductor's C++
backend). The same code path on CUDA records CUDA graphs (mode 'reduce-overhead'); that part, and
whether it pays, is measured by benchmarks/train.py --compile on a GPU."""

from __future__ import annotations

import shutil

import pytest
import torch
from train_fixtures import TINY_ARCH, make_dataset

from bender.errors import BenderError
from bender.train.config import make_config
from bender.train.loop import Trainer


def _trainer(data, out, **options) -> Trainer:
    cfg = make_config("scratch", data=str(data), out=str(out), batch=8, device="cpu", aug="fixed", aug_p=0.5,
                      tick=1e9, timeline=False, seed=3, **{**TINY_ARCH, "conv_clamp": 256}, **options)
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
    assert all(torch.equal(p, q) for p, q in zip(eager.G.parameters(), compiled.G.parameters()))
    torch._dynamo.reset()
    graphs_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]  # a session-wide counter
    # 8 steps: every phase (G main, path length, D main, R1) runs, the lazy ones eagerly
    for _ in range(8):
        eager.train_step({})
        compiled.train_step({})
    for net in ("G", "D", "G_ema"):
        a, b = getattr(eager, net), getattr(compiled, net)
        for (name, p), q in zip(a.named_parameters(), b.parameters()):
            # same arithmetic up to fused rounding; a different graph or RNG stream would be O(lr)
            p, q = p.detach(), q.detach()
            assert torch.allclose(p, q, rtol=1e-4, atol=1e-4), f"{net}.{name}: {float((p - q).abs().max())}"
    start = _trainer(data, tmp_path / "c").G.parameters()
    moved = max(float((p.detach() - q.detach()).abs().max()) for p, q in zip(compiled.G.parameters(), start))
    assert moved > 1e-3  # the networks did train
    # one graph per network and situation (G with/without grad, D trainable/frozen) and one per ADA
    # matrix builder, not one per layer
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs_before <= 8


def test_compile_mode_is_checked(tmp_path):
    data = make_dataset(tmp_path / "d.zip", count=8)
    with pytest.raises(BenderError, match="--compile-mode fast: choose auto, default, reduce-overhead"):
        make_config("scratch", data=str(data), out=str(tmp_path), compile=True, compile_mode="fast")
