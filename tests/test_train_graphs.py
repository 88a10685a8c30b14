"""`bender train --cuda-graphs`: each phase recorded once and replayed (bender/train/graphs.py).

On the CPU the replay is emulated (each "replay" reruns the phase and copies its results into the
memory the recording allocated), which checks everything around the graphs: fixed inputs refreshed
every step, ADA's plans made from eager mode's seeds, the default generator reseeded, the gradients
bound to the right phase's memory. That the phases can be recorded at all (the same operations on
the same shapes at every step, no host sync inside) is checked here by tracing them. The real
recording runs in tests/test_train_cuda.py on a GPU.
"""

from __future__ import annotations

import collections
import math
from dataclasses import replace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from train_fixtures import TINY_ARCH, make_dataset
from train_lockstep import assert_same_training, gradient_mismatches, run_lockstep

from bender.errors import BenderError
from bender.train import checkpoint as ckpt
from bender.train.config import make_config
from bender.train.graphs import PhaseGraph
from bender.train.loop import Trainer


def _trainer(data, out, **options) -> Trainer:
    settings = dict(batch=8, device="cpu", aug="fixed", aug_p=0.5, tick=1e9, timeline=False, seed=3,
                    **{**TINY_ARCH, "conv_clamp": 256})
    cfg = make_config("scratch", data=str(data), out=str(out), **{**settings, **options})
    torch.manual_seed(0)
    return Trainer(cfg, quiet=True)


def _recorded(trainer: Trainer) -> list[int]:
    """The phases with a graph (each has one per ADA padding it met)."""
    return sorted({index for index, _ in trainer._phase_graphs})


@pytest.mark.slow
def test_replayed_phases_train_like_eager(tmp_path):
    """17 steps: every phase is recorded (R1 at step 16) and replayed; the gradients of every
    optimizer step match eager mode's at the same parameters."""
    data = make_dataset(tmp_path / "d.zip", count=16)
    eager = _trainer(data, tmp_path / "a")
    graphed = _trainer(data, tmp_path / "b")
    graphed.enable_cuda_graphs(emulate=True)
    ref, cand = run_lockstep(eager, graphed, steps=17)
    assert _recorded(graphed) == [0, 1, 2, 3]  # Gmain, Greg, Dmain, Dreg
    # the only difference is ADA's larger fixed padding (rounding); measured ~1e-6 over the network
    assert_same_training(ref, cand, rtol=1e-4, tensor_rtol=1e-2)


def test_replayed_phases_with_labels_train_like_eager(tmp_path):
    data = make_dataset(tmp_path / "d.zip", count=16, classes=3)
    eager = _trainer(data, tmp_path / "a")
    graphed = _trainer(data, tmp_path / "b")
    graphed.enable_cuda_graphs(emulate=True)
    assert graphed.use_labels
    ref, cand = run_lockstep(eager, graphed, steps=5)
    assert _recorded(graphed) == [0, 1, 2]
    bad = gradient_mismatches(ref, cand, rtol=1e-4)
    assert not bad, "\n".join(bad[:10])


def _plant(bug: str, monkeypatch) -> None:
    if bug == "unbound":  # Greg's graph leaves G's .grad on its memory; Gmain's Adam reads them
        monkeypatch.setattr(PhaseGraph, "bind_grads", lambda self: None)
    elif bug == "stale inputs":  # the reals of the first recorded step, every step
        real = Trainer._write_graph_inputs

        def once(self, *args):
            if not getattr(self, "_wrote", False):
                self._wrote = True
                real(self, *args)
        monkeypatch.setattr(Trainer, "_write_graph_inputs", once)
    elif bug == "stale plans":  # ADA's plans of the first recorded step, every step
        real_plans = Trainer._write_plans

        def first_only(self, index, seed, calls):
            if index not in self._plan_buffers:
                real_plans(self, index, seed, calls)
        monkeypatch.setattr(Trainer, "_write_plans", first_only)
    elif bug == "unseeded":  # the default generator carries on instead of starting from the step's seed
        monkeypatch.setattr("bender.train.loop.seed_default_generator", lambda device, seed: None)


@pytest.mark.parametrize("bug", ["none", "unbound", "stale inputs", "stale plans", "unseeded"])
def test_the_check_catches_what_replays_get_wrong(tmp_path, monkeypatch, bug):
    data = make_dataset(tmp_path / "d.zip", count=16)
    eager = _trainer(data, tmp_path / "a")
    graphed = _trainer(data, tmp_path / "b")
    graphed.enable_cuda_graphs(emulate=True)
    _plant(bug, monkeypatch)
    # step 4 records Greg (G's .grad then point at its memory); step 5 replays Gmain
    ref, cand = run_lockstep(eager, graphed, steps=6)
    bad = gradient_mismatches(ref, cand, rtol=1e-4)
    if bug == "none":
        assert not bad, "\n".join(bad[:10])
    else:
        assert any("||dg||/||g||" in line for line in bad), f"{bug}: not caught"


SYNCS = {"aten._local_scalar_dense.default", "aten.nonzero.default", "aten.is_nonzero.default",
         "aten.item.default", "aten.equal.default", "aten.masked_select.default", "aten.unique.default",
         "aten._unique2.default"}


class Tracer(TorchDispatchMode):
    """Each dispatched operation with the shapes, dtypes and layouts of its tensor arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        def sig(a):
            if isinstance(a, torch.Tensor):
                return (tuple(a.shape), a.dtype, a.stride())
            if isinstance(a, (list, tuple)):
                return tuple(sig(b) for b in a)
            return type(a).__name__
        self.ops.append((str(func), tuple(sig(a) for a in args)))
        return func(*args, **(kwargs or {}))


def test_recorded_phases_are_the_same_operations_every_step(tmp_path):
    """What a CUDA graph can record: at every step a phase issues the same operations on tensors of
    the same shapes, dtypes and strides, and never asks the device for a value (a sync)."""
    data = make_dataset(tmp_path / "d.zip", count=16)
    trainer = _trainer(data, tmp_path / "a", aug_p=0.6)
    trainer.enable_cuda_graphs(emulate=True)
    traces: dict[tuple[str, int], list[list[tuple]]] = collections.defaultdict(list)
    make = trainer._phase_fn

    def traced_phase_fn(phase, weight, calls, plans, pad):
        run = make(phase, weight, calls, plans, pad)

        def traced():
            with Tracer() as tracer:
                out = run()
            traces[(phase.name, pad)].append(tracer.ops)
            return out
        return traced
    trainer._phase_fn = traced_phase_fn
    for _ in range(9):  # step 0 eager; Gmain and Dmain recorded at 1, Greg at 4 (and replayed at 8)
        trainer.train_step({})
    runs_per_phase = collections.Counter()
    for (name, _), runs in traces.items():
        runs_per_phase[name] += len(runs)
    # a recording run (emulated) per graph, then the replays: 8 of Gmain and Dmain, 2 of Greg
    assert {name for name, _ in traces} == {"Gmain", "Dmain", "Greg"}
    assert runs_per_phase["Gmain"] > 8 and runs_per_phase["Dmain"] > 8 and runs_per_phase["Greg"] == 3
    assert max(len(runs) for (name, _), runs in traces.items() if name == "Dmain") >= 3  # a graph replayed
    assert len({pad for name, pad in traces if name == "Dmain"}) >= 2  # and ADA's padding changed
    for key, runs in traces.items():
        names = {op for op, _ in runs[0]}
        assert not names & SYNCS, f"phase {key} syncs: {names & SYNCS}"
        assert len(runs[0]) > 100
        for later in runs[1:]:
            assert later == runs[0], f"phase {key} changed its operations between steps"
    # and the plans did change (the test is not vacuous): ADA decided differently at each step
    assert not torch.equal(trainer._plan_buffers[0], trainer._plan_buffers[2])


def test_cuda_graphs_options_fail_clearly(tmp_path):
    data = make_dataset(tmp_path / "d.zip", count=16)
    with pytest.raises(BenderError, match="needs a CUDA GPU"):
        _trainer(data, tmp_path / "a", cuda_graphs=True)
    with pytest.raises(BenderError, match="choose one"):
        _trainer(data, tmp_path / "b", compile=True).enable_cuda_graphs(emulate=True)
    with pytest.raises(BenderError, match="leave --batch-gpu unset"):
        _trainer(data, tmp_path / "c", batch_gpu=4).enable_cuda_graphs(emulate=True)


def test_a_run_with_replayed_phases_snapshots_and_continues(tmp_path):
    """The loop around the replays: snapshots, statistics, and a continued run (which records its
    phases afresh) work as in eager mode."""
    data = make_dataset(tmp_path / "d.zip", count=16)
    trainer = _trainer(data, tmp_path / "runs", kimg=0.048, snap=0.024, aug="ada", aug_p=0.3, ada_interval=2,
                       ada_kimg=0.5)
    trainer.enable_cuda_graphs(emulate=True)
    result = trainer.run()
    records = ckpt.read_stats(result.run_dir)
    assert [r["kimg"] for r in records] == [0.0, 0.024, 0.048]
    assert all(math.isfinite(v) for k, v in records[-1].items() if k.startswith("Loss/"))
    assert records[-1]["augment_p"] != 0.3
    cfg = replace(trainer.cfg, kimg=0.072)  # steps 6-8: Greg at 8
    more = Trainer(cfg, continue_run=result.run_dir, quiet=True)
    more.enable_cuda_graphs(emulate=True)
    assert more.run().kimg == 0.072 and _recorded(more) == [0, 1, 2]
