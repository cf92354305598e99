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
from som_robot.contract import command_moving

__all__ = ["RewardState", "REWARD_TERMS", "check_reward_keys", "reward_terms", "compute_rewards", "compose_rewards",
           "moving", "tracking"]


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
    default_pos: Array  # (12,)
    contact: Array  # (N, 4) bool, feet touching the ground now
    stance: Array  # (N, 4) bool, the trot clock's stance schedule
    foot_height: Array  # (N, 4) m, each foot above the lowest foot (terrain-agnostic clearance)


Term = Callable[[RewardState, RewardConfig], Array]


def moving(s: RewardState, c: RewardConfig) -> Array:
    """(N,) bool: the command asks for motion (gait terms follow the clock; else standing is rewarded)."""
    return command_moving(s.command, c.moving_threshold)  # one test with the foot-lift generator's gate


def _kernel(err: Array, cmd_mag: Array, floor: float, c: RewardConfig) -> Array:
    """Linear: clip(1 − |err|/max(|cmd|, floor), 0, 1), so zero motion under a command earns 0; or exp."""
    if c.tracking_kernel == "exp":
        return array_namespace(err).exp(-err * err / c.tracking_sigma)
    return (1.0 - err / cmd_mag.clip(floor, None)).clip(0.0, 1.0)


def tracking_lin_vel(s: RewardState, c: RewardConfig) -> Array:
    err = row_norm(s.command[:, :2] - s.lin_vel[:, :2])
    return _kernel(err, row_norm(s.command[:, :2]), c.lin_vel_floor, c)


def tracking_ang_vel(s: RewardState, c: RewardConfig) -> Array:
    return _kernel(abs(s.command[:, 2] - s.ang_vel[:, 2]), abs(s.command[:, 2]), c.ang_vel_floor, c)


def tracking(s: RewardState, c: RewardConfig) -> Array:
    """xy and yaw kernels multiplied: separately, standing still would collect the yaw kernel under a forward
    command and the xy kernel under a turn-in-place command; together, any non-zero command pays 0 for it."""
    return tracking_lin_vel(s, c) * tracking_ang_vel(s, c)


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
    """Pay min(air time, target) at each touchdown: every step earns, none is punished; zero when standing."""
    r = (s.air_time.clip(None, c.air_time_target) * s.first_contact).sum(axis=1)
    return r * moving(s, c)


def gait_contact(s: RewardState, c: RewardConfig) -> Array:
    """Mean over feet of ±1 for contact matching the schedule: the trot clock when moving, all feet down
    when standing. A robot standing under a moving command averages 0."""
    want = s.stance | ~moving(s, c)[:, None]
    match = (s.contact == want) * 2.0 - 1.0
    return match.mean(axis=1)


def swing_height(s: RewardState, c: RewardConfig) -> Array:
    """Mean over the clock's swing feet of clip(height / target, 0, 1): zero for a robot that does not lift."""
    lift = (s.foot_height / c.swing_height).clip(0.0, 1.0) * ~s.stance
    return lift.sum(axis=1) / 2.0 * moving(s, c)  # two feet swing at a time in a trot


def stand_still(s: RewardState, c: RewardConfig) -> Array:
    """Σ|q − default| under a stand command (the posture to hold when not asked to move)."""
    return abs(s.joint_pos - s.default_pos).sum(axis=1) * ~moving(s, c)


def collision(s: RewardState, c: RewardConfig) -> Array:
    return s.collisions * 1.0


def dof_pos_limits(s: RewardState, c: RewardConfig) -> Array:
    below = (s.soft_lower - s.joint_pos).clip(0.0, None)
    above = (s.joint_pos - s.soft_upper).clip(0.0, None)
    return (below + above).sum(axis=1)


REWARD_TERMS: dict[str, Term] = {
    "tracking": tracking,
    "tracking_lin_vel": tracking_lin_vel,
    "tracking_ang_vel": tracking_ang_vel,
    "lin_vel_z": lin_vel_z,
    "ang_vel_xy": ang_vel_xy,
    "orientation": orientation,
    "torques": torques,
    "action_rate": action_rate,
    "feet_air_time": feet_air_time,
    "gait_contact": gait_contact,
    "swing_height": swing_height,
    "stand_still": stand_still,
    "collision": collision,
    "dof_pos_limits": dof_pos_limits,
}
assert set(REWARD_TERMS) == set(DEFAULT_REWARD_SCALES), "config.DEFAULT_REWARD_SCALES and REWARD_TERMS disagree"


GAIT_TERMS = ("feet_air_time", "gait_contact", "swing_height")  # what RewardConfig.gait_gate scales


def check_reward_keys(cfg: RewardConfig) -> None:
    """Fail at startup when the config's scale keys and the computed terms differ."""
    if set(cfg.scales) != set(REWARD_TERMS):
        raise ValueError(f"reward.scales keys {sorted(cfg.scales)} != reward terms {sorted(REWARD_TERMS)}")


def reward_terms(s: RewardState, cfg: RewardConfig) -> dict[str, Array]:
    """Every term's unweighted value (N,), computed once (the env also reads `tracking` for its curriculum).
    Terms scaled by 0 are not evaluated (zeros in their place: they still appear in the log)."""
    zero = s.torque_sq * 0.0
    return {k: fn(s, cfg) if cfg.scales[k] != 0 or k == "tracking" else zero for k, fn in REWARD_TERMS.items()}


def compute_rewards(s: RewardState, cfg: RewardConfig, dt: float) -> tuple[Array, dict[str, Array]]:
    """Total (N,) and each weighted term scale·term·dt (N,), keyed like cfg.scales (see RewardConfig)."""
    return compose_rewards(reward_terms(s, cfg), cfg, dt)


def compose_rewards(raw: dict[str, Array], cfg: RewardConfig, dt: float) -> tuple[Array, dict[str, Array]]:
    """`compute_rewards` from already computed `reward_terms`."""
    weighted = {k: cfg.scales[k] * v for k, v in raw.items()}
    if cfg.gait_gate == "tracking":
        for k in GAIT_TERMS:
            weighted[k] = weighted[k] * raw["tracking"]
    terms = {k: v * dt for k, v in weighted.items()}
    if cfg.composition == "product":
        pos = sum(v for k, v in weighted.items() if cfg.scales[k] > 0)
        neg = sum((v for k, v in weighted.items() if cfg.scales[k] < 0), 0.0 * pos)
        total = pos.clip(0.0, None) * array_namespace(pos).exp(cfg.neg_sigma * neg) * dt
    else:
        total = sum(terms.values())
        if cfg.only_positive:
            total = total.clip(0.0, None)
    return total, terms
