"""Multi-GPU and multi-node training through `torchrun` and `torch.distributed`.

    torchrun --nproc_per_node 8 -m bender train --data rocks.zip --resume ffhq.pkl ...
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --nproc_per_node 8 -m bender train ...

Every process holds the full networks and computes its share of each global batch; after each
phase's backward the gradients are summed across processes with one all-reduce (over one flat
buffer), so every process applies the same Adam step and the weights stay identical without
broadcasting them. We do this instead of wrapping the networks in DistributedDataParallel because
R1 and path-length regularisation need double backward, which DDP's hooks do not support, and
because G and D take turns being trained, which DDP's unused-parameter bookkeeping dislikes.

NCCL on GPUs, gloo on CPU (what the tests use: two CPU processes on loopback).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_from_env(device_name: str) -> tuple[DistInfo, str]:
    """Join the process group torchrun describes in the environment; returns (info, device name)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device_name
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device_name = f"cuda:{local_rank}"
    else:
        device_name = "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world=world, local_rank=local_rank), device_name


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def sum_grads_(params: list[torch.nn.Parameter]) -> None:
    """Sum the gradients of `params` over all processes (missing gradients count as zeros)."""
    if not active() or not params:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset:offset + n].view(p.grad.shape))
        offset += n


def broadcast_object(obj, src: int = 0):
    """Rank `src`'s value of a small picklable object, on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    if active():
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
