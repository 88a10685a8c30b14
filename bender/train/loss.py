"""The StyleGAN2 objective (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

- Non-saturating logistic loss (Goodfellow et al. 2014): G minimises softplus(-D(G(z))),
  D minimises softplus(D(G(z))) + softplus(-D(x)).
- R1 (Mescheder et al. 2018): (gamma / 2) * E ||grad_x D(x)||^2 on reals, lazily every
  `r1_interval` minibatches with the weight scaled up by the interval.
- Path-length regularisation: E (||J_w^T y|| - a)^2 with y ~ N(0, I) / sqrt(pixels) and `a` a
  running mean of the lengths, on a shrunken batch every `pl_interval` minibatches.
- Style mixing: a share of fakes switch from one w to another at a random layer.

Each phase runs forward and backward for one micro-batch and accumulates gradients scaled by
`weight` (that micro-batch's share of the global batch), so accumulation rounds and processes
add up to exactly the global-batch gradient. All randomness comes from the generator passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bender.nets import Discriminator, Generator
from bender.train.augment import AugmentPipe


def r1_penalty(d_fn: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image ||d D(x) / d x||^2 (differentiable: the graph is kept), and D's logits."""
    real = real.detach().requires_grad_(True)
    logits = d_fn(real)
    (grads,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grads.square().sum(dim=[1, 2, 3]), logits


def path_lengths(synthesis_fn: Callable[[torch.Tensor], torch.Tensor], ws: torch.Tensor,
                 gen: torch.Generator | None) -> torch.Tensor:
    """Per-image ||J_w^T y|| averaged over the ws, y ~ N(0, I) / sqrt(H W) (differentiable)."""
    img = synthesis_fn(ws)
    noise = torch.randn(img.shape, device=img.device, generator=gen) / math.sqrt(img.shape[2] * img.shape[3])
    (grads,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    return grads.square().sum(dim=2).mean(dim=1).sqrt()


def own_grads(params: Iterable[torch.nn.Parameter]) -> None:
    """Copy the parameters' gradients out of CUDA-graph memory (one fused launch).

    When a parameter's .grad is empty, autograd adopts the backward's output tensor as the .grad.
    Under CUDA graphs (torch.compile's 'reduce-overhead') that tensor belongs to the graph, whose
    next replay writes into it again — so a gradient that has to survive another call of the same
    network (D's step runs D on fakes, then on reals; accumulation rounds run both again) is
    copied first.
    """
    params = [p for p in params if p.grad is not None]
    if params:
        for p, g in zip(params, torch._foreach_mul([p.grad for p in params], 1.0)):
            p.grad = g


@dataclass
class Precision:
    """How the networks' half-precision blocks run (they are fp32 on CPU whatever this says)."""

    half_dtype: torch.dtype = torch.bfloat16
    force_fp32: bool = False
    channels_last: bool = False


class StyleGAN2Loss:
    def __init__(self, G: Generator, D: Discriminator, augment: AugmentPipe | None, *, r1_gamma: float,
                 pl_weight: float, style_mixing: float = 0.9, pl_batch_shrink: int = 2,
                 precision: Precision | None = None, synthesis_fast: torch.nn.Module | None = None,
                 D_fast: torch.nn.Module | None = None, cuda_graphs: bool = False):
        self.G, self.D, self.augment = G, D, augment
        # e.g. torch.compile'd modules, for the passes without double backward (compile has none)
        self.synthesis_fast = synthesis_fast if synthesis_fast is not None else G.synthesis
        self.D_fast = D_fast if D_fast is not None else D
        self.cuda_graphs = cuda_graphs  # the fast modules replay CUDA graphs (see own_grads)
        self.r1_gamma = r1_gamma
        self.pl_weight = pl_weight
        self.style_mixing = style_mixing
        self.pl_batch_shrink = pl_batch_shrink
        self.precision = precision or Precision()
        device = next(G.parameters()).device
        self.pl_mean = torch.zeros([], device=device)
        self.pl_ready = False  # pl_mean is set from the first measurement, not pulled up from 0

    # -- building blocks --------------------------------------------------------------------------

    def mapping(self, z: torch.Tensor, c: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        ws = self.G.mapping(z, c)
        if self.style_mixing > 0:
            n, num_ws, _ = ws.shape
            cutoff = torch.randint(1, num_ws, [n], device=ws.device, generator=gen)
            mixed = torch.rand([n], device=ws.device, generator=gen) < self.style_mixing
            cutoff = torch.where(mixed, cutoff, torch.full_like(cutoff, num_ws))
            z2 = torch.randn(z.shape, device=z.device, generator=gen)
            ws2 = self.G.mapping(z2, c)
            layer = torch.arange(num_ws, device=ws.device)
            ws = torch.where((layer[None, :] >= cutoff[:, None])[:, :, None], ws2, ws)
        return ws

    def synthesize(self, ws: torch.Tensor, gen: torch.Generator | None, fast: bool = False) -> torch.Tensor:
        synthesis = self.synthesis_fast if fast else self.G.synthesis
        pr = self.precision
        # The noise is drawn here rather than inside the layers (same draws, same order), so that a
        # compiled synthesis network is one graph without a break at every layer.
        noise = self.G.synthesis.draw_noise(ws.shape[0], gen, ws.device)
        return synthesis(ws, noise_mode="random", force_fp32=pr.force_fp32, half_dtype=pr.half_dtype,
                         noise=noise)

    def discriminate(self, img: torch.Tensor, c: torch.Tensor, gen: torch.Generator | None,
                     fast: bool = False) -> torch.Tensor:
        if self.augment is not None:
            img = self.augment(img, gen)
        if self.precision.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        D = self.D_fast if fast else self.D
        c = c if self.D.c_dim > 0 else None
        return D(img, c, force_fp32=self.precision.force_fp32, half_dtype=self.precision.half_dtype)

    # -- phases -----------------------------------------------------------------------------------

    def g_main(self, z: torch.Tensor, c: torch.Tensor, gen: torch.Generator | None, weight: float) -> dict:
        img = self.synthesize(self.mapping(z, c, gen), gen, fast=True)
        logits = self.discriminate(img, c, gen, fast=True)
        loss = F.softplus(-logits).mean()
        (loss * weight).backward()
        return {"Loss/G/main": loss.detach(), "Scores/fake": logits.detach().mean()}

    def g_pl(self, z: torch.Tensor, c: torch.Tensor, gen: torch.Generator | None, weight: float) -> dict:
        """Path-length step; returns the lengths' sum so the caller can update `pl_mean` globally."""
        n = max(z.shape[0] // self.pl_batch_shrink, 1)
        ws = self.mapping(z[:n], c[:n], gen)
        if not ws.requires_grad:  # a frozen mapping network: differentiate w.r.t. w directly
            ws = ws.detach().requires_grad_(True)
        lengths = path_lengths(lambda w: self.synthesize(w, gen), ws, gen)
        target = self.pl_mean if self.pl_ready else lengths.detach().mean()
        penalty = (lengths - target).square()
        (penalty.mean() * (self.pl_weight * weight)).backward()
        return {"Loss/G/pl": penalty.detach().mean(), "pl_sum": lengths.detach().sum(),
                "pl_count": torch.full((), float(n), device=z.device)}

    def update_pl_mean(self, mean_length: torch.Tensor, decay: float) -> None:
        if self.pl_ready:
            self.pl_mean.copy_(self.pl_mean.lerp(mean_length, decay))
        else:
            self.pl_mean.copy_(mean_length)
            self.pl_ready = True

    def d_main(self, real: torch.Tensor, c_real: torch.Tensor, z: torch.Tensor, c_gen: torch.Tensor,
               gen: torch.Generator | None, weight: float) -> dict:
        with torch.no_grad():
            ws = self.mapping(z, c_gen, gen)
            fake = self.synthesize(ws, gen, fast=True)
            if self.cuda_graphs:  # graph memory: the next graph call may hand it out again
                fake = fake.clone()
        logits_fake = self.discriminate(fake, c_gen, gen, fast=True)
        loss_fake = F.softplus(logits_fake).mean()
        (loss_fake * weight).backward()
        if self.cuda_graphs:
            own_grads(self.D.parameters())  # D runs again below
        logits_real = self.discriminate(real, c_real, gen, fast=True)
        loss_real = F.softplus(-logits_real).mean()
        (loss_real * weight).backward()
        return {"Loss/D/fake": loss_fake.detach(), "Loss/D/real": loss_real.detach(),
                "Scores/real": logits_real.detach().mean(),
                "ada_sign_sum": logits_real.detach().sign().sum(),
                "ada_count": torch.full((), float(real.shape[0]), device=real.device),
                "w_sum": ws[:, 0].sum(dim=0), "w_count": torch.full((), float(z.shape[0]), device=z.device)}

    def d_r1(self, real: torch.Tensor, c_real: torch.Tensor, gen: torch.Generator | None, weight: float) -> dict:
        penalty, _ = r1_penalty(lambda x: self.discriminate(x, c_real, gen), real)
        (penalty.mean() * (self.r1_gamma / 2 * weight)).backward()
        return {"Loss/D/r1": penalty.detach().mean()}
