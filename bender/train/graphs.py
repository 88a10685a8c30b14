"""Training phases recorded once as CUDA graphs and replayed every step (`bender train --cuda-graphs`).

Why: at a fine-tune's batch sizes a GPU runs StyleGAN2's kernels faster than Python can issue them.
A 256² step dispatches about 8,500 PyTorch operations (`benchmarks/train_ops.py`), and 64² cost two
thirds of 256² on an H100 (BENCHMARKS.md): the step's time is host time. A CUDA graph records a
phase's kernels once (forward, backward, the gradients it leaves) and replays them all in one launch.

What a replay needs, and how the trainer provides it:
- The same shapes and the same memory every time. The reals and labels are copied into fixed
  buffers. ADA resamples every image and keeps the still ones by a mask (`AugmentPipe.fixed_plans`)
  instead of choosing images per step, and its padding is rounded up to an eighth of the image
  size: one graph per phase and padding, eight or nine at most, all in one memory pool.
- No decisions on the host inside the phase. ADA's per-image plans are made on the host before the
  replay, from the same seeds as in eager mode, and copied into one fixed device buffer per phase.
- Fresh random numbers each step. The phase draws from the device's default generator, which CUDA
  graphs support natively, and which is reseeded from (seed, step, phase) before every replay. That
  draws exactly what the eager step draws from a generator seeded with the same number.
- Gradients that survive. Each graph writes its gradients into memory of its own. After a replay the
  parameters' `.grad` point there again, then the optimizer steps.

Adam, G_ema, w_avg, pl_mean and ADA's p stay eager, between the replays. A phase is recorded the
first time it runs after step 0: the first step, eager, sets up the optimizers' state and the
path-length mean, and each recording is preceded by warm-up runs on a side stream, for cuDNN's
autotuner and lazy initialisation.

`emulate=True` stands in for CUDA on a CPU, for tests: "recording" runs the phase once to allocate
its outputs and gradients, and each "replay" runs it again and copies the results into that memory.
A trainer that read a result after the next replay, or a gradient from the wrong phase, goes wrong
there just as it would on a GPU. That the phase is recordable at all (same operations and shapes at
every step, no host sync) is checked on the CPU by tests/test_train_graphs.py, and the real
recording on a GPU by tests/test_train_cuda.py.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bender.nets.cache import bypassed


class PhaseGraph:
    """One training phase as a CUDA graph: `capture()` once, then `replay()` each time it is due."""

    def __init__(self, run: Callable[[], dict[str, torch.Tensor]], params: list[torch.nn.Parameter],
                 device: torch.device, emulate: bool = False, warmup: int = 2, pool=None, name: str = "training"):
        self._run = run  # reads only fixed buffers, draws from the default generator
        self.params = params  # the parameters this phase trains (their .grad are its gradients)
        self.device = device
        self.emulate = emulate
        self.pool = pool  # a memory pool shared with the other phases' graphs (see `shared_pool`)
        self.name = name
        self.warmup = warmup
        self.graph: torch.cuda.CUDAGraph | None = None
        self.outputs: dict[str, torch.Tensor] = {}
        self.grads: list[torch.Tensor | None] = []

    def run(self) -> dict[str, torch.Tensor]:
        with bypassed():  # no weights derived at recording time and reused by every replay
            return self._run()

    def _clear_grads(self) -> None:
        for p in self.params:
            p.grad = None

    def capture(self) -> None:
        if self.emulate:
            self._clear_grads()
            self.outputs = self.run()
            self.grads = [p.grad for p in self.params]
            return
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(self.warmup):
                self._clear_grads()
                self.run()
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self._clear_grads()  # so the recorded backward writes the gradients, not adds to them
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: a DataLoader's pin-memory thread may allocate while this thread records
        try:
            with torch.cuda.graph(self.graph, pool=self.pool, capture_error_mode="thread_local"):
                self.outputs = self.run()
        except Exception as e:  # keep the traceback (it names the operation), say what to do
            e.add_note(f"bender: recording the {self.name} phase as a CUDA graph failed; train without "
                       "--cuda-graphs (and please report this with the traceback)")
            raise
        self.grads = [p.grad for p in self.params]

    def replay(self) -> dict[str, torch.Tensor]:
        """Run the phase; returns its outputs (copies: the next replay overwrites the graph's)."""
        if self.emulate:
            bound = [p.grad for p in self.params]  # a replay leaves .grad as it finds them
            self._clear_grads()
            fresh = self.run()
            for key, value in fresh.items():
                self.outputs[key].copy_(value)
            for p, static, before in zip(self.params, self.grads, bound):
                if static is not None:
                    static.copy_(p.grad)
                p.grad = before
        else:
            self.graph.replay()
        self.bind_grads()
        return {key: value.clone() for key, value in self.outputs.items()}

    def bind_grads(self) -> None:
        """Point the parameters' .grad at this graph's gradients (another phase's graph may have
        bound them to its own since)."""
        for p, static in zip(self.params, self.grads):
            p.grad = static


def shared_pool(device: torch.device):
    """One memory pool for all of a trainer's phase graphs (None when emulating).

    A graph recorded into a pool may reuse, at recording time, memory that graphs recorded before it
    freed, i.e. their temporaries. So replaying one graph overwrites the temporaries of the others,
    and may overwrite another graph's outputs wherever they landed in such memory. That is safe here
    because a phase's outputs are consumed before any other phase replays: they are copied out, and
    its gradients are applied by Adam, right after its replay, and nothing reads them later. Inputs
    live outside the pool. One pool instead of four keeps memory near that of eager mode, which
    matters at 1024². The CUDA lockstep test replays the phases in every order a run does.
    """
    return torch.cuda.graph_pool_handle() if device.type == "cuda" else None


def seed_default_generator(device: torch.device, seed: int) -> None:
    """Reseed the generator a recorded phase draws from (the device's default one)."""
    if device.type == "cuda":
        torch.cuda.default_generators[device.index if device.index is not None
                                      else torch.cuda.current_device()].manual_seed(seed)
    else:
        torch.default_generator.manual_seed(seed)
