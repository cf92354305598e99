"""The one protocol runners import from any simulator backend.

Every backend (Gymnasium on CPU, batched MuJoCo C, MuJoCo Warp on CUDA) exposes
torch tensors on `device`, takes actions in [-1, 1]^num_actions and auto-resets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

__all__ = ["StepResult", "VecEnv"]


@dataclass
class StepResult:
    """Output of `VecEnv.step`.

    obs: (N, obs_dim), already reset where an episode ended.
    reward: (N,). terminated: (N,) bool, a true terminal (no bootstrap).
    truncated: (N,) bool, a time-out (bootstrap from `final_obs`).
    final_obs: (N, obs_dim), the true next observation (equals `obs` where no episode ended).
    episode_returns / episode_lengths: one entry per episode that ended this step.
    log: scalars to log (reward terms, DR state, tracking error, ...). An env with a `want_log` attribute
    may leave it (nearly) empty on steps where `want_log` is False; the runner sets it on the steps it logs.
    """

    obs: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    final_obs: torch.Tensor
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    log: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class VecEnv(Protocol):
    """N environments stepped together.

    An env may also carry `mirror` (with `.obs` and `.act` maps, e.g. `sim.go2.symmetry.Mirror`): a
    symmetry of its MDP under which rewards and terminations do not change, for `runner.mirror`; and
    `state_dict()` / `load_state_dict(d)` for task state that a checkpoint must carry (a curriculum's level).
    """

    num_envs: int
    obs_dim: int
    act_dim: int
    device: torch.device

    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset all envs; returns (N, obs_dim)."""
        ...

    def step(self, actions: torch.Tensor) -> StepResult:
        """Apply (N, act_dim) actions in [-1, 1]."""
        ...

    def close(self) -> None: ...
