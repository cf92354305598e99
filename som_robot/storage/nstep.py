"""n-step returns for vectorised envs, folded before the replay buffer.

Each env keeps up to n pending transitions (a ring of n slots shared by all envs). Every step adds the
step's reward to each pending one, γ^k-weighted by how many steps it has collected, and opens a new one.
A pending transition leaves (to the buffer) when it holds n rewards, or when its episode ends: then every
pending one of that env leaves with the step's pre-reset observation as its bootstrap state and the
episode's `terminated` as its done, so time-outs still bootstrap (with γ^m, m = the rewards it holds).
The buffer stores m, and the TD target uses γ^m. n = 1 gives exactly the 1-step transitions.
"""

from __future__ import annotations

import torch

__all__ = ["NStepFolder"]


class NStepFolder:
    """Turns per-step (obs, act, rew, next_obs, terminated, truncated) of N envs into n-step transitions."""

    def __init__(self, n: int, gamma: float, num_envs: int, obs_dim: int, act_dim: int,
                 device: torch.device | str = "cpu") -> None:
        if n < 1:
            raise ValueError(f"n-step needs n >= 1, got {n}")
        self.n, self.gamma, self.device = n, float(gamma), torch.device(device)
        z = {"device": self.device}
        self.obs = torch.zeros(n, num_envs, obs_dim, **z)
        self.act = torch.zeros(n, num_envs, act_dim, **z)
        self.ret = torch.zeros(n, num_envs, **z)
        self.len = torch.zeros(n, num_envs, dtype=torch.int64, **z)
        self.live = torch.zeros(n, num_envs, dtype=torch.bool, **z)
        self.t = 0

    def step(self, obs: torch.Tensor, act: torch.Tensor, rew: torch.Tensor, next_obs: torch.Tensor,
             terminated: torch.Tensor, truncated: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Fold one env step in; returns the transitions that are complete: (obs, act, ret, next_obs, done, m)."""
        s = self.t % self.n
        self.t += 1
        self.obs[s], self.act[s] = obs.to(self.device, torch.float32), act.to(self.device, torch.float32)
        self.ret[s], self.len[s], self.live[s] = 0.0, 0, True
        r = rew.to(self.device, torch.float32).reshape(1, -1)
        self.ret += torch.where(self.live, self.gamma ** self.len.to(torch.float32) * r, 0.0)
        self.len += self.live.to(torch.int64)
        ended = (terminated | truncated).to(self.device).reshape(1, -1)
        out = self.live & ((self.len >= self.n) | ended)  # (n, N)
        k, e = out.nonzero(as_tuple=True)
        batch = (self.obs[k, e], self.act[k, e], self.ret[k, e], next_obs.to(self.device, torch.float32)[e],
                 terminated.to(self.device, torch.float32).reshape(-1)[e], self.len[k, e].to(torch.float32))
        self.live &= ~out
        return batch
