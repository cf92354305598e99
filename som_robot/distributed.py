"""Multi-process training with torch.distributed (launched by ``torchrun``).

Each rank steps its own shard of envs into its own replay buffer; every optimiser step
averages gradients across ranks with one all-reduce, so all ranks hold identical networks
(they start identical by a broadcast from rank 0). Rank 0 alone logs, evaluates and saves.
Backend: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
import torch.distributed as dist

__all__ = ["init_from_env", "is_distributed", "rank", "world_size", "is_main", "rank_seed", "allreduce_grads",
           "broadcast_module", "broadcast_flag", "shutdown"]


def init_from_env(device: torch.device) -> bool:
    """Join the process group if launched by torchrun (WORLD_SIZE > 1); returns whether distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def rank_seed(seed: int) -> int:
    """This rank's seed for envs, replay sampling and action noise (rank 0 keeps `seed`)."""
    return seed + 7919 * rank()


def allreduce_grads(params: Iterable[torch.nn.Parameter]) -> None:
    """Average .grad over ranks with a single flattened all-reduce (no-op when not distributed)."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    i = 0
    for g in grads:
        g.copy_(flat[i:i + g.numel()].view_as(g))
        i += g.numel()


def optimizer_params(opt: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    return [p for group in opt.param_groups for p in group["params"]]


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if is_distributed():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's boolean, on every rank (keeps early stopping collective)."""
    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item() > 0.5)


def shutdown() -> None:
    if is_distributed():
        dist.destroy_process_group()
