"""The generator's exponential moving average (Karras et al. 2018/2020): what artists render with.

G_ema averages G's weights over roughly the last `ema_kimg` thousand images (a half-life, not a
window), which removes the step-to-step jitter of adversarial training. With a ramp-up the
half-life starts short and grows with training (`ema_rampup` x images seen so far), so that a
from-scratch run's average does not drag along its meaningless random start.
"""

from __future__ import annotations

import torch


def ema_beta(batch: int, ema_kimg: float, cur_nimg: int, rampup: float | None = None) -> float:
    """Per-step decay: 0.5 ** (batch / half-life in images)."""
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    """G_ema <- beta * G_ema + (1 - beta) * G for parameters; buffers (w_avg, noise) are copied."""
    ema, cur = list(G_ema.parameters()), [p.detach() for p in G.parameters()]
    torch._foreach_lerp_(ema, cur, 1 - beta)  # one fused launch for all tensors on GPU
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)
