"""The Go2 policy contract: what an exported policy embeds and the onboard daemon checks."""

from __future__ import annotations

from typing import Any

from robots.go2 import TORQUE_LIMITS  # re-exported: the contract's motor limits
from sim.go2.constants import (
    ACTION_SCALE,
    CTRL_DT,
    DEFAULT_JOINT_POS,
    GAIT_DUTY,
    GAIT_FREQ,
    GAIT_OFFSETS,
    JOINT_NAMES,
    KD,
    KP,
    NUM_JOINTS,
    SIM_DT,
)
from sim.go2.model import build_model, foot_lift_offsets
from sim.go2.obs import OBS_LAYOUT
from som_robot.contract import PolicyContract

__all__ = ["go2_contract", "TORQUE_LIMITS"]


def go2_contract(cfg: Any = None) -> PolicyContract:
    """Contract of a policy trained on `Go2VecEnv` (joint order, pose, gains, layout, rates); `cfg` (a
    Go2EnvConfig) supplies what a run may change: the action box, the trot clock, the default pose and the
    foot-lift trajectory generator (its joint offsets from the robot's kinematics, as the env computes them)."""
    action_scale = ACTION_SCALE if cfg is None else cfg.action_scale
    gait_freq = GAIT_FREQ if cfg is None else cfg.gait_freq
    pose = DEFAULT_JOINT_POS if cfg is None else cfg.joint_default
    lift = 0.0 if cfg is None else cfg.foot_lift
    tg: dict[str, Any] = {}
    if lift:
        offsets = foot_lift_offsets(build_model(), pose, lift)
        tg = {"foot_lift": tuple(float(x) for x in offsets),
              "gait_offsets": tuple(float(x) for x in GAIT_OFFSETS), "gait_duty": float(GAIT_DUTY),
              "lift_moving_threshold": float(cfg.reward.moving_threshold)}
    return PolicyContract(
        robot="unitree_go2", joint_names=JOINT_NAMES, default_pose=tuple(float(x) for x in pose),
        kp=(float(KP),) * NUM_JOINTS, kd=(float(KD),) * NUM_JOINTS, torque_limits=TORQUE_LIMITS,
        action_scale=float(action_scale), obs_terms=tuple(OBS_LAYOUT), control_dt=float(CTRL_DT),
        sim_dt=float(SIM_DT), gait_freq=float(gait_freq), **tg)
