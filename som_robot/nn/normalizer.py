"""Empirical observation normalisation whose statistics travel inside the exported policy.

The statistics are buffers of the module, so `export_onnx` bakes (x − μ)/(σ + ε) into the ONNX
graph and the robot feeds the contract's observation unchanged: there is no second copy of the
normaliser to keep in sync onboard. Under torchrun the batch moments are all-reduced, so every
rank holds the same statistics.
"""

from __future__ import annotations

import torch
import torch.distributed as tdist
from torch import nn

__all__ = ["EmpiricalNormalizer"]


class EmpiricalNormalizer(nn.Module):
    """Running mean/variance (Chan's parallel merge), applied as clip((x − μ)/(σ + eps), ±clip)."""

    def __init__(self, dim: int, eps: float = 1e-2, clip: float = 10.0) -> None:
        super().__init__()
        self.eps, self.clip = eps, clip
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the moments of a (B, dim) batch (summed over ranks when distributed)."""
        x = x.detach().to(self.mean.dtype)
        stats = torch.cat([x.sum(0), (x * x).sum(0), x.new_tensor([float(x.shape[0])])])
        if tdist.is_available() and tdist.is_initialized():
            tdist.all_reduce(stats)
        d = self.mean.shape[0]
        n = stats[-1].double()
        b_mean = stats[:d] / stats[-1]
        b_var = (stats[d:2 * d] / stats[-1] - b_mean * b_mean).clamp_min(0.0)
        tot = self.count + n
        w_new = (n / tot).to(self.mean.dtype)
        w_old = (self.count / tot).to(self.mean.dtype)
        delta = b_mean - self.mean
        self.var.copy_(w_old * self.var + w_new * b_var + w_old * w_new * delta * delta)
        self.mean.add_(w_new * delta)
        self.count.copy_(tot)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / (self.var.sqrt() + self.eps)).clamp(-self.clip, self.clip)
