"""Run two trainers in lockstep and compare the gradients each optimizer step applies.

Why gradients, not the parameters after a run: Adam scales each element's step to about lr
whatever the size of its gradient, and adversarial training feeds every difference back into the
next gradients. Measured on the tiny test config (eager CPU, lr 0.002): gradients perturbed by a
relative 1e-6 leave the parameters 1e-5 apart after 8 steps and 4e-3 apart after 20, while doubling
every gradient leaves them 5e-4 apart after one step and 1.4e-2 after 20 — rounding and a real bug
end up within a factor of 3. Gradients taken at the same parameters do not drift: compiled and
eager agree to 1e-6..2e-5 (network norm), and a lost, doubled or stale gradient is O(1).

So the candidate trainer (e.g. compiled) is kept at the reference's parameters: after each of its
optimizer steps, the reference's parameters after the same step are copied in (in place: compiled
graphs, CUDA graphs especially, hold on to the parameters' storage). Everything else the step
updates (G_ema, w_avg, pl_mean) is computed from those parameters outside the compiled passes. The
parameters still train, so a compiled pass that reads stale parameters shows too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bender.train.loop import Trainer


@dataclass
class OptStep:
    """What one optimizer step of one phase applied: the gradients, by parameter name."""

    step: int
    phase: str  # Gmain, Greg, Dmain, Dreg
    grads: dict[str, torch.Tensor]
    after: list[torch.Tensor] = field(default_factory=list)  # the parameters after the step (reference only)


class Recorder:
    """Wraps a trainer's optimizers' `step`: records the gradients it is about to apply."""

    def __init__(self, trainer: Trainer, follow: Recorder | None = None):
        self.trainer = trainer
        self.follow = follow  # a reference recorder: copy its parameters in after each step
        self.steps: list[OptStep] = []
        self.losses: list[dict[str, float]] = []
        self.start = {net: [p.detach().clone() for p in trainer.params[net]] for net in trainer.opt}
        for net, opt in trainer.opt.items():
            names = {id(p): n for n, p in getattr(trainer, net).named_parameters()}
            opt.step = self._wrap(opt, opt.step, names)

    def _due_phase(self) -> str:
        t = self.trainer
        due = [ph.name for ph in t.phases if t.step % ph.interval == 0]
        done = sum(1 for s in self.steps if s.step == t.step)
        return due[done]

    def _wrap(self, opt: torch.optim.Optimizer, step, names: dict[int, str]):
        params = [p for group in opt.param_groups for p in group["params"]]

        def recorded_step(*args, **kwargs):
            record = OptStep(self.trainer.step, self._due_phase(), {
                names[id(p)]: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
                for p in params})
            out = step(*args, **kwargs)
            with torch.no_grad():
                if self.follow is None:
                    record.after = [p.detach().clone() for p in params]
                else:
                    ref = self.follow.steps[len(self.steps)]
                    assert (ref.step, ref.phase) == (record.step, record.phase), "the trainers ran different phases"
                    for p, q in zip(params, ref.after):
                        p.copy_(q)  # in place: compiled graphs keep the parameters' storage
            self.steps.append(record)
            return out

        return recorded_step

    def train_step(self) -> None:
        acc: dict[str, torch.Tensor] = {}
        self.trainer.train_step(acc)
        self.losses.append({k: float(v) for k, v in acc.items() if not k.endswith("#")})


def run_lockstep(reference: Trainer, candidate: Trainer, steps: int) -> tuple[Recorder, Recorder]:
    """`steps` training steps of both; the candidate's parameters follow the reference's."""
    for net in ("G", "D", "G_ema"):
        pairs = zip(getattr(reference, net).state_dict().items(), getattr(candidate, net).state_dict().values())
        for (name, p), q in pairs:
            assert torch.equal(p, q), f"the trainers start apart: {net}.{name}"
    ref = Recorder(reference)
    cand = Recorder(candidate, follow=ref)
    for _ in range(steps):
        ref.train_step()
        cand.train_step()
    return ref, cand


def _norm(tensors) -> float:
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.double()) for t in tensors])))


def gradient_mismatches(ref: Recorder, cand: Recorder, rtol: float, tensor_rtol: float = 1e-2) -> list[str]:
    """The optimizer steps whose gradients differ from the reference's, worst first.

    Per step, the network's whole gradient must match, ||g_c - g_r|| <= rtol ||g_r||, and each
    parameter's more loosely, ||dg_t|| <= tensor_rtol (||g_t|| + 1% of the network's RMS per tensor):
    some tensors' gradients are sums with heavy cancellation (noise strengths: 3e-4 apart on CPU
    where the network is 2e-5 apart), while a bug (a doubled, lost, stale or misplaced gradient)
    is O(1) wherever it lands.
    """
    assert len(ref.steps) == len(cand.steps) and ref.steps, "no optimizer steps recorded"
    bad: list[tuple[float, str]] = []
    for r, c in zip(ref.steps, cand.steps):
        assert (r.step, r.phase) == (c.step, c.phase)
        diffs = {n: (c.grads[n].to(g.device) - g) for n, g in r.grads.items()}
        net_norm = _norm(r.grads.values())
        err = _norm(diffs.values()) / max(net_norm, 1e-30)
        if not err <= rtol:
            bad.append((err / rtol, f"step {r.step} {r.phase}: ||dg||/||g|| = {err:.3g} over the network"))
        floor = 0.01 * net_norm / len(r.grads) ** 0.5
        for n, g in r.grads.items():
            e = _norm([diffs[n]]) / max(_norm([g]) + floor, 1e-30)
            if not e <= tensor_rtol:
                bad.append((e / tensor_rtol, f"step {r.step} {r.phase}: {n}: ||dg||/||g|| = {e:.3g}"))
    return [msg for _, msg in sorted(bad, reverse=True)]


def loss_mismatches(ref: Recorder, cand: Recorder, rtol: float) -> list[str]:
    """The steps whose reported losses and scores differ by more than `rtol` (relative to at least 1:
    mean scores can be near zero)."""
    bad = []
    for step, (r, c) in enumerate(zip(ref.losses, cand.losses)):
        assert r.keys() == c.keys()
        for key, value in r.items():
            if not abs(c[key] - value) <= rtol * max(abs(value), 1.0):
                bad.append(f"step {step} {key}: {c[key]:.6g} vs {value:.6g}")
    return bad


def assert_same_training(ref: Recorder, cand: Recorder, rtol: float, tensor_rtol: float = 1e-2) -> None:
    """Every phase ran, and at every optimizer step its gradients (and each step's losses) match the
    reference's."""
    phases = {s.phase for s in ref.steps}
    assert phases == {ph.name for ph in ref.trainer.phases}, f"phases run: {sorted(phases)}"
    for net, start in cand.start.items():  # the gradients were taken at parameters that trained
        moved = max(float((p.detach() - q).abs().max()) for p, q in zip(cand.trainer.params[net], start))
        assert moved > 1e-3, f"{net} did not train: its parameters moved {moved:.3g}"
    grads = gradient_mismatches(ref, cand, rtol, tensor_rtol)
    assert not grads, f"{len(grads)} gradient mismatches, worst first:\n" + "\n".join(grads[:10])
    losses = loss_mismatches(ref, cand, rtol)
    assert not losses, "loss mismatches:\n" + "\n".join(losses[:10])
