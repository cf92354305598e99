"""NC-LQL: noise-conditioned Langevin Q-learning (Ki, Ahn, Kim, Lee 2026).

No actor. Actions are drawn from exp(w·Q) by annealed Langevin dynamics (ALD) over a
noise-conditioned critic Q(s, a, l): coarse levels see a Gaussian-smoothed Q (global
search), the clean level L−1 refines. Settings follow the official code (algorithms.md §4.2).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from som_robot.algos.common import TwinQ, best_of, frozen, optimizer_step, polyak_update
from som_robot.config import check
from som_robot.nn import TimeEmbedding
from som_robot.storage import Batch

__all__ = ["NCLQLConfig", "NCLQL", "NoiseCondTwinQ", "noise_levels"]


@dataclass(frozen=True)
class NCLQLConfig:
    """NC-LQL hyperparameters; defaults are the official code's ([C] in algorithms.md)."""

    hidden: tuple[int, ...] = (256, 256, 256)
    activation: str = "mish"
    level_dim: int = 16  # level-embedding width
    lr: float = 1e-4
    gamma: float = 0.99
    tau: float = 0.005
    reward_scale: float = 0.2
    num_levels: int = 10  # L
    steps_per_level: int = 2  # T
    sigma_max: float = 0.1
    sigma_min: float = 0.001
    step_lr: float = 1e-4  # η at the finest level; η_l = step_lr·(σ_l/σ_min)²
    langevin_scale: float = 500.0  # w, gradient scale / inverse temperature
    grad_norm: bool = True  # unit-normalise ∇_a Q in ALD
    num_particles: int = 1  # chains per decision (best one by clean min Q)
    eval_particles: int = 1

    def __post_init__(self) -> None:
        for k in ("lr", "reward_scale", "sigma_max", "sigma_min", "step_lr", "langevin_scale"):
            check(getattr(self, k) > 0, k, f"must be > 0, got {getattr(self, k)}")
        check(0.0 < self.gamma <= 1.0, "gamma", f"must be in (0, 1], got {self.gamma}")
        check(0.0 < self.tau <= 1.0, "tau", f"must be in (0, 1], got {self.tau}")
        check(self.num_levels >= 2, "num_levels", "must be >= 2")
        check(self.steps_per_level >= 1, "steps_per_level", "must be >= 1")
        check(self.sigma_max >= self.sigma_min, "sigma_max", "must be >= sigma_min")
        check(self.num_particles >= 1 and self.eval_particles >= 1, "num_particles", "must be >= 1")


def noise_levels(cfg: NCLQLConfig) -> torch.Tensor:
    """σ_l, geometric from σ_max down to σ_min (level L−1 plays the clean Q)."""
    return torch.exp(torch.linspace(math.log(cfg.sigma_max), math.log(cfg.sigma_min), cfg.num_levels))


class NoiseCondTwinQ(nn.Module):
    """Two critics Q_i(s, a, l), each with its own level embedding."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: NCLQLConfig) -> None:
        super().__init__()
        self.emb1, self.emb2 = TimeEmbedding(cfg.level_dim), TimeEmbedding(cfg.level_dim)
        self.q = TwinQ(obs_dim, act_dim, cfg.hidden, cfg.activation, cond_dim=cfg.level_dim)

    def forward(self, obs: torch.Tensor, act: torch.Tensor, level: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = torch.cat([obs, act], dim=-1)
        q1 = self.q.q1(torch.cat([x, self.emb1(level)], -1)).squeeze(-1)
        q2 = self.q.q2(torch.cat([x, self.emb2(level)], -1)).squeeze(-1)
        return q1, q2


class NCLQL:
    """NC-LQL agent: ALD sampler + noise-conditioned twin critics."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: NCLQLConfig, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        self.cfg, self.act_dim = cfg, act_dim
        self.device = torch.device(device)
        torch.manual_seed(seed)
        self.critic = NoiseCondTwinQ(obs_dim, act_dim, cfg).to(self.device)
        self.critic_targ = copy.deepcopy(self.critic).requires_grad_(False)
        self.opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr)
        self.sigmas = noise_levels(cfg).to(self.device)
        sig = noise_levels(cfg).tolist()  # host copy: Langevin step sizes without a device read per level
        self._eta = [cfg.step_lr * (s / sig[-1]) ** 2 for s in sig]
        self.clean = cfg.num_levels - 1
        self.num_updates = 0

    def _level(self, n: int, level: int) -> torch.Tensor:
        return torch.full((n, 1), float(level), device=self.device)

    def langevin(self, obs: torch.Tensor) -> torch.Tensor:
        """Annealed Langevin dynamics over levels 0..L−1 with the online critics: (B, S) → (B, d)."""
        c = self.cfg
        B = obs.shape[0]
        a = torch.rand(B, self.act_dim, device=self.device) * 2 - 1
        with frozen(self.critic):
            for lvl in range(c.num_levels):
                eta = self._eta[lvl]
                lv = self._level(B, lvl)
                for _ in range(c.steps_per_level):
                    with torch.enable_grad():
                        x = a.detach().requires_grad_(True)
                        q1, q2 = self.critic(obs, x, lv)
                        (g,) = torch.autograd.grad((q1 + q2).sum(), x)
                    if c.grad_norm:
                        g = g / (g.norm(dim=-1, keepdim=True) + 1e-8)
                    a = (a + 0.5 * eta * c.langevin_scale * g + math.sqrt(eta) * torch.randn_like(a)).clamp(-1, 1)
        return a.detach()

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """One ALD chain per state, or P chains and the best under the clean min Q."""
        P = self.cfg.eval_particles if deterministic else self.cfg.num_particles
        return best_of(obs, P, self.langevin,
                       lambda s, a: torch.minimum(*self.critic(s, a, self._level(s.shape[0], self.clean))))

    def update(self, b: Batch) -> dict[str, torch.Tensor]:
        """Adam step on the clean-level TD loss, then one on the smoothing loss; Polyak targets."""
        c = self.cfg
        B = b.obs.shape[0]
        clean = self._level(B, self.clean)
        a_next = self.langevin(b.next_obs)
        with torch.no_grad():
            q_next = torch.minimum(*self.critic_targ(b.next_obs, a_next, clean))
            y = c.reward_scale * b.rew + b.discount(c.gamma) * q_next
            q_bar = 0.5 * sum(self.critic(b.obs, b.act, clean))  # pre-update smoothing target
        q1, q2 = self.critic(b.obs, b.act, clean)
        td = (q1 - y).pow(2).mean() + (q2 - y).pow(2).mean()
        optimizer_step(self.opt, td)

        lvl = torch.randint(0, c.num_levels - 1, (B, 1), device=self.device)
        a_l = b.act + self.sigmas[lvl] * torch.randn_like(b.act)
        s1, s2 = self.critic(b.obs, a_l, lvl.float())
        sm = (s1 - q_bar).pow(2).mean() + (s2 - q_bar).pow(2).mean()
        optimizer_step(self.opt, sm)
        polyak_update(self.critic_targ, self.critic, c.tau)
        self.num_updates += 1
        return {"losses/critic": td.detach(), "losses/smoothing": sm.detach(), "values/q_mean": q1.mean().detach()}

    def state_dict(self) -> dict[str, Any]:
        return {"critic": self.critic.state_dict(), "critic_targ": self.critic_targ.state_dict(),
                "opt": self.opt.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        for k in ("critic", "critic_targ", "opt"):
            getattr(self, k).load_state_dict(sd[k])
        self.num_updates = int(sd["num_updates"])
