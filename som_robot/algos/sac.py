"""SAC (Haarnoja et al. 2018): the Gaussian max-entropy baseline.

A tanh-squashed Gaussian actor, twin critics with Polyak targets, and automatic
entropy tuning towards −act_dim. Its unimodal policy is what SOM's flow actor is
compared against (see the multimodal bandit test).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from som_robot.algos.common import QFn, TwinQ, frozen, optimizer_step, polyak_update
from som_robot.config import check
from som_robot.nn import MLP
from som_robot.storage import Batch

__all__ = ["SACConfig", "SAC", "GaussianActor"]

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters (cleanrl / original-paper defaults)."""

    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    critic_layer_norm: bool = False  # LayerNorm in the critics' hidden layers (as SOM's option)
    actor_lr: float = 3e-4
    critic_lr: float = 1e-3
    alpha_lr: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.005
    reward_scale: float = 1.0
    init_alpha: float = 1.0  # initial entropy temperature
    autotune: bool = True  # learn α towards target_entropy
    target_entropy_scale: float = 1.0  # target entropy = −scale · act_dim

    def __post_init__(self) -> None:
        for k in ("actor_lr", "critic_lr", "alpha_lr", "init_alpha", "reward_scale"):
            check(getattr(self, k) > 0, k, f"must be > 0, got {getattr(self, k)}")
        check(0.0 < self.gamma <= 1.0, "gamma", f"must be in (0, 1], got {self.gamma}")
        check(0.0 < self.tau <= 1.0, "tau", f"must be in (0, 1], got {self.tau}")
        check(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), "hidden", "needs positive widths")


class GaussianActor(nn.Module):
    """s → tanh(N(μ(s), σ(s))); returns (action, log-prob)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], act: str) -> None:
        super().__init__()
        self.net = MLP(obs_dim, 2 * act_dim, hidden, act)

    def mean_log_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh mean and log σ (bounded to [LOG_STD_MIN, LOG_STD_MAX])."""
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        return mean, LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)

    def mean_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.mean_log_std(obs)
        return mean, log_std.exp()

    def forward(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.mean_log_std(obs)
        if deterministic:
            return torch.tanh(mean), torch.zeros(obs.shape[0], device=obs.device)
        std = log_std.exp()
        x = mean + std * torch.randn_like(mean)
        a = torch.tanh(x)
        logp = (-0.5 * ((x - mean) / std).pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - (2 * (math.log(2) - x - nn.functional.softplus(-2 * x))).sum(-1)  # tanh Jacobian
        return a, logp


class SAC:
    """Soft actor-critic with automatic temperature."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: SACConfig, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        self.device = torch.device(device)
        torch.manual_seed(seed)
        self.actor = GaussianActor(obs_dim, act_dim, cfg.hidden, cfg.activation).to(self.device)
        self.critic = TwinQ(obs_dim, act_dim, cfg.hidden, cfg.activation, layer_norm=cfg.critic_layer_norm).to(
            self.device)
        self.critic_targ = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(cfg.init_alpha), device=self.device, requires_grad=True)
        self.target_entropy = -cfg.target_entropy_scale * act_dim
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr)
        self.num_updates = 0

    @property
    def alpha(self) -> float:
        return self.log_alpha.detach().exp()  # a tensor: reading it as a float would sync the device

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return self.actor(obs, deterministic)[0]

    def actor_loss(self, obs: torch.Tensor, q_fn: QFn | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """E[α·log π(a|s) − Q(s, a)] with a reparameterised; `q_fn` defaults to min of the critics."""
        a, logp = self.actor(obs)
        if q_fn is None:
            with frozen(self.critic):
                q = torch.minimum(*self.critic(obs, a))
        else:
            q = q_fn(obs, a)
        return (self.alpha * logp - q).mean(), logp

    def update(self, b: Batch) -> dict[str, torch.Tensor]:
        """Critic TD step with the soft target, then actor and temperature steps."""
        c, alpha = self.cfg, self.alpha
        with torch.no_grad():
            a2, logp2 = self.actor(b.next_obs)
            q_next = torch.minimum(*self.critic_targ(b.next_obs, a2)) - alpha * logp2
            y = c.reward_scale * b.rew + b.discount(c.gamma) * q_next
        q1, q2 = self.critic(b.obs, b.act)
        closs = (q1 - y).pow(2).mean() + (q2 - y).pow(2).mean()
        optimizer_step(self.critic_opt, closs)
        polyak_update(self.critic_targ, self.critic, c.tau)

        aloss, logp = self.actor_loss(b.obs)
        optimizer_step(self.actor_opt, aloss)
        if c.autotune:
            optimizer_step(self.alpha_opt, -(self.log_alpha * (logp.detach() + self.target_entropy)).mean())
        self.num_updates += 1
        return {"losses/critic": closs.detach(), "losses/actor": aloss.detach(), "values/q_mean": q1.mean().detach(),
                "values/alpha": alpha, "values/entropy": -logp.mean().detach()}

    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_targ": self.critic_targ.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        for k in ("actor", "critic", "critic_targ", "actor_opt", "critic_opt", "alpha_opt"):
            getattr(self, k).load_state_dict(sd[k])
        with torch.no_grad():
            self.log_alpha.copy_(sd["log_alpha"])
        self.num_updates = int(sd["num_updates"])
