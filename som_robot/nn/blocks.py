"""MLPs and the scaled-sinusoid time embedding used by SOM and NC-LQL (relax's block)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP", "TimeEmbedding", "activation", "sinusoidal_embedding"]

_ACTS: dict[str, type[nn.Module]] = {"mish": nn.Mish, "relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU, "tanh": nn.Tanh}


def activation(name: str) -> nn.Module:
    """Activation module by name (explicit table, no reflection)."""
    if name not in _ACTS:
        raise ValueError(f"unknown activation '{name}', choose from {sorted(_ACTS)}")
    return _ACTS[name]()


class MLP(nn.Sequential):
    """Plain MLP; `zero_last` zero-initialises the output layer (SOM's actor starts as a = z).

    `layer_norm` puts a LayerNorm after each hidden Linear (before the activation): the critic
    normalisation of BRO / FastSAC that keeps Q-learning stable at small batch and high update rates.
    """

    def __init__(
        self, in_dim: int, out_dim: int, hidden: Sequence[int], act: str = "mish", zero_last: bool = False,
        layer_norm: bool = False,
    ) -> None:
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), *([nn.LayerNorm(h)] if layer_norm else []), activation(act)]
            d = h
        last = nn.Linear(d, out_dim)
        if zero_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        super().__init__(*layers)


def sinusoidal_embedding(t: torch.Tensor, dim: int = 16, theta: float = 10000.0) -> torch.Tensor:
    """Scaled sinusoid of a scalar per row: (B,) or (B,1) → (B, dim), scaled by 1/sqrt(dim)."""
    t = t.reshape(-1, 1)
    if not t.is_floating_point():
        t = t.float()
    half = dim // 2
    freqs = torch.exp(-math.log(theta) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    ang = t * freqs
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1) / math.sqrt(dim)


class TimeEmbedding(nn.Module):
    """sinusoid(16) → Linear(32) → mish → Linear(16), as in NC-LQL's official level embedding.

    `scale` multiplies the input first: continuous t ∈ [0,1] is spread over ~1000 so the
    sinusoid's frequencies resolve it; integer noise levels use scale 1.
    """

    def __init__(self, dim: int = 16, scale: float = 1.0) -> None:
        super().__init__()
        self.dim, self.scale = dim, scale
        self.net = nn.Sequential(nn.Linear(dim, 2 * dim), nn.Mish(), nn.Linear(2 * dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.net(sinusoidal_embedding(t * self.scale, self.dim))
