"""MeanFlow: a network for the average velocity u(z, r, t | s) and its JVP training target.

Generative-time convention (MeanFlow): t = 0 is data, t = 1 is noise, and
z_r = z_t − (t − r)·u(z_t, r, t). One-step sampling is x = z_1 − u(z_1, 0, 1).
The identity u = v − (t − r)·du/dt, with du/dt = v·∂_z u + ∂_t u, gives the target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from som_robot.nn.blocks import MLP, TimeEmbedding

__all__ = ["MeanFlowNet", "meanflow_target", "adaptive_l2"]


class MeanFlowNet(nn.Module):
    """u_θ(z, r, t | s): input [s, z, emb(t), emb(t − r)] → R^d (linear, zero-initialised output)."""

    def __init__(self, cond_dim: int, z_dim: int, hidden: Sequence[int], act: str = "mish", time_dim: int = 16,
                 time_scale: float = 100.0, zero_last: bool = True) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.emb_t = TimeEmbedding(time_dim, time_scale)
        self.emb_gap = TimeEmbedding(time_dim, time_scale)
        self.net = MLP(cond_dim + z_dim + 2 * time_dim, z_dim, hidden, act, zero_last=zero_last)

    def forward(self, cond: torch.Tensor, z: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """cond (B, c), z (B, d), r and t (B, 1) → u (B, d)."""
        return self.net(torch.cat([cond, z, self.emb_t(t), self.emb_gap(t - r)], dim=-1))

    def sample(self, cond: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """One network evaluation: x = z − u(z, 0, 1 | cond)."""
        zeros = torch.zeros(z.shape[0], 1, device=z.device, dtype=z.dtype)
        return z - self(cond, z, zeros, zeros + 1.0)

    def sample_ode(self, cond: torch.Tensor, z: torch.Tensor, steps: int = 20) -> torch.Tensor:
        """Multi-step reference: Euler-integrate the instantaneous velocity u(z, t, t) from t=1 to 0."""
        ones = torch.ones(z.shape[0], 1, device=z.device, dtype=z.dtype)
        dt = 1.0 / steps
        for i in range(steps, 0, -1):
            t = ones * (i * dt)
            z = z - dt * self(cond, z, t, t)
        return z


def meanflow_target(
    u_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    z_t: torch.Tensor, r: torch.Tensor, t: torch.Tensor, v: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (u, u_tgt): u keeps its graph, u_tgt = sg(v − clip(t − r, 0, 1)·du/dt).

    `u_fn(z, t)` closes over r and the condition, so the JVP tangent is (v, 1) on (z, t)
    with r held fixed. One forward-mode pass gives both u and du/dt (≈ 2–3× a forward).
    """
    u, dudt = torch.func.jvp(u_fn, (z_t, t), (v, torch.ones_like(t)))
    u_tgt = v - (t - r).clamp(0.0, 1.0) * dudt
    return u, u_tgt.detach()


def adaptive_l2(u: torch.Tensor, u_tgt: torch.Tensor, p: float = 1.0, c: float = 1e-3) -> torch.Tensor:
    """MeanFlow's adaptive loss: mean_b sg(1/(‖Δ_b‖² + c)^p)·‖Δ_b‖²."""
    err = (u - u_tgt).pow(2).sum(-1)
    w = (err.detach() + c).pow(-p)
    return (w * err).mean()
