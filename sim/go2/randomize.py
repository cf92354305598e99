"""Domain randomization: one pure sampler per parameter, applied per env at reset.

Each function only draws numbers (rng, cfg, n) → array, so ranges can be tested
without a simulator and the env decides where the values go (model fields through
the batch's per-simulation expansion, or the env's own PD/latency/noise state).
A disabled config (`enabled: false`) returns the nominal value from every sampler.
The samplers take a numpy Generator or a `TorchRng` (the env's: tensors on its device).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sim.go2.config import OBS_NOISE_TERMS, DomainRandConfig
from sim.go2.constants import NUM_JOINTS

__all__ = [
    "DRParams",
    "sample_friction",
    "sample_added_mass",
    "sample_com_offset",
    "sample_motor_strength",
    "sample_kp_scale",
    "sample_kd_scale",
    "sample_latency",
    "sample_push",
    "sample_obs_noise",
    "sample_init_joint_offset",
    "sample_all",
    "TorchRng",
]

Rng = np.random.Generator
_F32 = torch.float32


class TorchRng:
    """The slice of `numpy.random.Generator` that the DR and command samplers call, drawing float32
    tensors on a device from a torch Generator, so one sampler definition serves numpy callers and the env."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.device = device
        self.gen = torch.Generator(device=device).manual_seed(seed)

    @staticmethod
    def _shape(size: int | tuple[int, ...] | None) -> tuple[int, ...]:
        return () if size is None else (size,) if isinstance(size, int) else tuple(size)

    def uniform(self, low: float = 0.0, high: float = 1.0, size: int | tuple[int, ...] | None = None) -> torch.Tensor:
        u = torch.rand(self._shape(size), generator=self.gen, device=self.device, dtype=_F32)
        return low + (high - low) * u

    def integers(self, low: int, high: int, size: int | tuple[int, ...] | None = None) -> torch.Tensor:
        return torch.randint(low, high, self._shape(size), generator=self.gen, device=self.device)


def _u(rng: Rng, r: tuple[float, float], shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(r[0], r[1], size=shape)


def sample_friction(rng: Rng, cfg: DomainRandConfig, n: int, nominal: float = 0.8) -> np.ndarray:
    """(n,) foot sliding friction coefficient."""
    return _u(rng, cfg.friction, (n,)) if cfg.enabled else np.full(n, nominal)


def sample_added_mass(rng: Rng, cfg: DomainRandConfig, n: int) -> np.ndarray:
    """(n,) kg added to the base body (payload, battery, cover)."""
    return _u(rng, cfg.added_mass, (n,)) if cfg.enabled else np.zeros(n)


def sample_com_offset(rng: Rng, cfg: DomainRandConfig, n: int) -> np.ndarray:
    """(n, 3) m shift of the base's centre of mass, independent per axis."""
    return _u(rng, cfg.com_offset, (n, 3)) if cfg.enabled else np.zeros((n, 3))


def sample_motor_strength(rng: Rng, cfg: DomainRandConfig, n: int) -> np.ndarray:
    """(n, 12) multiplier on each joint's PD torque (before the torque limit)."""
    return _u(rng, cfg.motor_strength, (n, NUM_JOINTS)) if cfg.enabled else np.ones((n, NUM_JOINTS))


def sample_kp_scale(rng: Rng, cfg: DomainRandConfig, n: int) -> np.ndarray:
    """(n, 12) multiplier on Kp per joint."""
    return _u(rng, cfg.kp_scale, (n, NUM_JOINTS)) if cfg.enabled else np.ones((n, NUM_JOINTS))


def sample_kd_scale(rng: Rng, cfg: DomainRandConfig, n: int) -> np.ndarray:
    """(n, 12) multiplier on Kd per joint."""
    return _u(rng, cfg.kd_scale, (n, NUM_JOINTS)) if cfg.enabled else np.ones((n, NUM_JOINTS))


def sample_latency(rng: Rng, cfg: DomainRandConfig, n: int) -> np.ndarray:
    """(n,) int policy steps an action waits before the PD loop uses it (inclusive range)."""
    if not cfg.enabled:
        return np.zeros(n, dtype=np.int64)
    lo, hi = cfg.latency_steps
    return rng.integers(lo, hi + 1, size=n)


def sample_push(rng: Rng, cfg: DomainRandConfig, n: int) -> np.ndarray:
    """(n, 2) m/s added to the base's world x/y velocity (a shove)."""
    return _u(rng, (-cfg.push_vel, cfg.push_vel), (n, 2)) if cfg.enabled else np.zeros((n, 2))


def sample_obs_noise(rng: Rng, cfg: DomainRandConfig, n: int, dims: dict[str, int]) -> dict[str, np.ndarray]:
    """Uniform ±scale noise in physical units per noisy obs term (dims: term → width)."""
    if not cfg.enabled:
        return {}
    return {k: _u(rng, (-s, s), (n, dims[k])) for k, s in cfg.obs_noise.items() if s > 0 and k in OBS_NOISE_TERMS}


def sample_init_joint_offset(rng: Rng, cfg: DomainRandConfig, n: int) -> np.ndarray:
    """(n, 12) rad added to the default pose at reset."""
    s = cfg.init_joint_noise if cfg.enabled else 0.0
    return _u(rng, (-s, s), (n, NUM_JOINTS))


@dataclass
class DRParams:
    """Per-env values drawn at reset (rows = envs)."""

    friction: np.ndarray
    added_mass: np.ndarray
    com_offset: np.ndarray
    motor_strength: np.ndarray
    kp_scale: np.ndarray
    kd_scale: np.ndarray
    latency: np.ndarray

    def assign(self, ids: np.ndarray, other: DRParams) -> None:
        """Overwrite rows `ids` with `other` (sampled for exactly those envs)."""
        for k, v in vars(other).items():
            getattr(self, k)[ids] = v

    def means(self) -> dict[str, float]:
        """Scalars for the training log (dr/<name>)."""
        out = {k: float(np.mean(v)) for k, v in vars(self).items() if k != "com_offset"}
        out.update({f"com_offset_{a}": float(np.mean(self.com_offset[:, i])) for i, a in enumerate("xyz")})
        return out


def sample_all(rng: Rng, cfg: DomainRandConfig, n: int, nominal_friction: float = 0.8) -> DRParams:
    """Every per-episode parameter for n envs."""
    return DRParams(
        friction=sample_friction(rng, cfg, n, nominal_friction),
        added_mass=sample_added_mass(rng, cfg, n),
        com_offset=sample_com_offset(rng, cfg, n),
        motor_strength=sample_motor_strength(rng, cfg, n),
        kp_scale=sample_kp_scale(rng, cfg, n),
        kd_scale=sample_kd_scale(rng, cfg, n),
        latency=sample_latency(rng, cfg, n),
    )
