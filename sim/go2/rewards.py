"""Reward terms (legged_gym naming): each a small function of the step's state → (N,) array.

The total is Σ scale·term·ctrl_dt, so scales are per-second rates independent of the
policy rate. The registry's names must equal the config's scale keys. Terms take numpy
arrays (CPU env) or torch tensors (Warp env) alike, so both backends share one formula each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sim.go2.config import DEFAULT_REWARD_SCALES, RewardConfig
from sim.go2.obs import Array, array_namespace, row_norm

__all__ = ["RewardState", "REWARD_TERMS", "check_reward_keys", "compute_rewards"]


@dataclass
class RewardState:
    """What the terms read, all per env; velocities in the base frame."""

    command: Array  # (N, 3) vx, vy, yaw rate
    lin_vel: Array  # (N, 3)
    ang_vel: Array  # (N, 3)
    gravity: Array  # (N, 3) projected gravity
    torque_sq: Array  # (N,) Σ_j τ_j² averaged over the physics steps of this policy step
    action: Array  # (N, 12)
    last_action: Array  # (N, 12)
    air_time: Array  # (N, 4) s in the air before this step's touchdown
    first_contact: Array  # (N, 4) bool, touchdown this step
    collisions: Array  # (N,) thigh/shank contacts with the floor
    joint_pos: Array  # (N, 12)
    soft_lower: Array  # (12,)
    soft_upper: Array  # (12,)


Term = Callable[[RewardState, RewardConfig], Array]


def tracking_lin_vel(s: RewardState, c: RewardConfig) -> Array:
    err = ((s.command[:, :2] - s.lin_vel[:, :2]) ** 2).sum(axis=1)
    return array_namespace(err).exp(-err / c.tracking_sigma)


def tracking_ang_vel(s: RewardState, c: RewardConfig) -> Array:
    err = (s.command[:, 2] - s.ang_vel[:, 2]) ** 2
    return array_namespace(err).exp(-err / c.tracking_sigma)


def lin_vel_z(s: RewardState, c: RewardConfig) -> Array:
    return s.lin_vel[:, 2] ** 2


def ang_vel_xy(s: RewardState, c: RewardConfig) -> Array:
    return (s.ang_vel[:, :2] ** 2).sum(axis=1)


def orientation(s: RewardState, c: RewardConfig) -> Array:
    return (s.gravity[:, :2] ** 2).sum(axis=1)


def torques(s: RewardState, c: RewardConfig) -> Array:
    return s.torque_sq


def action_rate(s: RewardState, c: RewardConfig) -> Array:
    return ((s.action - s.last_action) ** 2).sum(axis=1)


def feet_air_time(s: RewardState, c: RewardConfig) -> Array:
    """Reward long steps at touchdown; zero when commanded to stand."""
    r = ((s.air_time - c.air_time_target) * s.first_contact).sum(axis=1)
    return r * (row_norm(s.command[:, :2]) > 0.1)


def collision(s: RewardState, c: RewardConfig) -> Array:
    return s.collisions * 1.0


def dof_pos_limits(s: RewardState, c: RewardConfig) -> Array:
    below = (s.soft_lower - s.joint_pos).clip(0.0, None)
    above = (s.joint_pos - s.soft_upper).clip(0.0, None)
    return (below + above).sum(axis=1)


REWARD_TERMS: dict[str, Term] = {
    "tracking_lin_vel": tracking_lin_vel,
    "tracking_ang_vel": tracking_ang_vel,
    "lin_vel_z": lin_vel_z,
    "ang_vel_xy": ang_vel_xy,
    "orientation": orientation,
    "torques": torques,
    "action_rate": action_rate,
    "feet_air_time": feet_air_time,
    "collision": collision,
    "dof_pos_limits": dof_pos_limits,
}
assert set(REWARD_TERMS) == set(DEFAULT_REWARD_SCALES), "config.DEFAULT_REWARD_SCALES and REWARD_TERMS disagree"


def check_reward_keys(cfg: RewardConfig) -> None:
    """Fail at startup when the config's scale keys and the computed terms differ."""
    if set(cfg.scales) != set(REWARD_TERMS):
        raise ValueError(f"reward.scales keys {sorted(cfg.scales)} != reward terms {sorted(REWARD_TERMS)}")


def compute_rewards(s: RewardState, cfg: RewardConfig, dt: float) -> tuple[Array, dict[str, Array]]:
    """Total (N,) and each weighted term scale·term·dt (N,), keyed like cfg.scales."""
    terms = {k: cfg.scales[k] * fn(s, cfg) * dt for k, fn in REWARD_TERMS.items()}
    total = sum(terms.values())
    if cfg.only_positive:
        total = total.clip(0.0, None)
    return total, terms
