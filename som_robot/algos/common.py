"""Pieces every off-policy algorithm here shares: the protocol, twin critics, Polyak averaging."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from som_robot.distributed import allreduce_grads, optimizer_params
from som_robot.nn import MLP
from som_robot.storage import Batch

QFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (obs (B, S), act (B, d)) → Q (B,)

__all__ = ["QFn", "Algorithm", "best_of", "optimizer_step", "TwinQ", "polyak_update", "uniform_actions", "clip_action",
           "frozen", "clip_inverting_gradients"]


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """`module`'s parameters take no gradient inside the block (an actor's loss through the critic, a Langevin
    chain): autograd still reaches the inputs, and requires_grad is restored even if the block raises."""
    module.requires_grad_(False)
    try:
        yield module
    finally:
        module.requires_grad_(True)


@runtime_checkable
class Algorithm(Protocol):
    """What the off-policy runner needs from an algorithm. Actions live in [-1, 1]^act_dim."""

    device: torch.device

    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """(N, obs_dim) → (N, act_dim) actions; `deterministic` is the evaluation mode."""
        ...

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step on critics and actor; returns 0-d metric tensors, read only at log time (a float
        here would synchronise the device on every update)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, sd: dict[str, Any]) -> None: ...


class TwinQ(nn.Module):
    """Two independent Q(s, a[, cond]) MLPs; returns both, shape (B,) each."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], act: str = "mish", cond_dim: int = 0,
                 layer_norm: bool = False):
        super().__init__()
        self.q1 = MLP(obs_dim + act_dim + cond_dim, 1, hidden, act, layer_norm=layer_norm)
        self.q2 = MLP(obs_dim + act_dim + cond_dim, 1, hidden, act, layer_norm=layer_norm)

    def forward(self, obs: torch.Tensor, act: torch.Tensor, cond: torch.Tensor | None = None):
        x = self._inputs(obs, act, cond)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def first(self, obs: torch.Tensor, act: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Q1 alone, (B,): half the cost where one estimate serves (SOM's score on 4096 proposal rows)."""
        return self.q1(self._inputs(obs, act, cond)).squeeze(-1)

    @staticmethod
    def _inputs(obs: torch.Tensor, act: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([obs, act] if cond is None else [obs, act, cond], dim=-1)


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target ← (1−τ)·target + τ·source, in place."""
    for pt, ps in zip(target.parameters(), source.parameters(), strict=True):
        pt.lerp_(ps, tau)


def uniform_actions(n: int, act_dim: int, device: torch.device | str, gen: torch.Generator | None = None):
    """Warm-up exploration: U[-1,1]^act_dim."""
    return torch.rand(n, act_dim, device=device, generator=gen) * 2.0 - 1.0


def clip_action(a: torch.Tensor) -> torch.Tensor:
    """All policies act in the [-1, 1] box; envs rescale to their own bounds."""
    return a.clamp(-1.0, 1.0)


class _InvertingGradients(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a)
        return a.clamp(-1.0, 1.0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (a,) = ctx.saved_tensors
        # grad is d(loss)/d(action); a loss that wants the action larger has grad < 0.
        return grad * torch.where(grad < 0, (1.0 - a) / 2.0, (1.0 + a) / 2.0)


def clip_inverting_gradients(a: torch.Tensor) -> torch.Tensor:
    """clip_action whose backward scales a gradient by the room left towards the bound it pushes to, and turns
    it round past the bound (Hausknecht & Stone 2016, "inverting gradients" for bounded actions).

    Through a plain clamp a critic's gradient vanishes at and past the box: a Q-ascent actor that reaches the
    bound gets no signal back, its raw outputs drift past it, and clipped samples coincide (a Go2 SOM actor
    had 41 % of its joint actions at the bound, raw outputs up to 3.6, and clipping removed 40 % of its
    sampling spread).
    """
    return _InvertingGradients.apply(a)


@torch.no_grad()
def best_of(obs: torch.Tensor, n: int, sample: Callable[[torch.Tensor], torch.Tensor], q_fn: QFn) -> torch.Tensor:
    """n candidates per state from `sample` in one batched call; keep each state's argmax of `q_fn`."""
    if n == 1:
        return sample(obs)
    B = obs.shape[0]
    obs_rep = obs.repeat_interleave(n, dim=0)
    cand = sample(obs_rep)
    q = q_fn(obs_rep, cand).reshape(B, n)
    return cand.reshape(B, n, -1)[torch.arange(B, device=obs.device), q.argmax(dim=1)]


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float = 0.0) -> None:
    """zero_grad → backward → average grads across ranks (torchrun) → optional clip → step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = optimizer_params(opt)
    allreduce_grads(params)
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
