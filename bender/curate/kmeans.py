"""k-means clustering (Lloyd's algorithm with k-means++ seeding), deterministic for a given seed."""

from __future__ import annotations

import torch


def kmeans_pp_init(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++: each new centre is drawn with probability proportional to its squared distance."""
    centres = [x[torch.randint(len(x), (1,), generator=gen)].squeeze(0)]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1 / len(d2))
        centres.append(x[torch.multinomial(probs, 1, generator=gen)].squeeze(0))
        d2 = torch.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    return torch.stack(centres)


def kmeans(x: torch.Tensor, k: int, seed: int = 0, restarts: int = 4, iters: int = 100,
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster rows of x [n, d] into k groups -> (labels [n], centres [k, d]); best of `restarts` by inertia.

    Clusters are numbered by size, largest first, so cluster 0 is the bulk of the set.
    """
    x = x.double()
    k = max(1, min(k, len(x)))
    gen = torch.Generator().manual_seed(seed)
    best = None
    for _ in range(restarts):
        centres = kmeans_pp_init(x, k, gen)
        labels = None
        for _ in range(iters):
            new = torch.cdist(x, centres).argmin(1)
            if labels is not None and torch.equal(new, labels):
                break
            labels = new
            for j in range(k):
                members = x[labels == j]
                if len(members):
                    centres[j] = members.mean(0)
        inertia = ((x - centres[labels]) ** 2).sum().item()
        if best is None or inertia < best[0]:
            best = (inertia, labels.clone(), centres.clone())
    _, labels, centres = best
    order = torch.argsort(torch.bincount(labels, minlength=k), descending=True, stable=True)
    remap = torch.empty_like(order)
    remap[order] = torch.arange(k)
    return remap[labels], centres[order].float()
