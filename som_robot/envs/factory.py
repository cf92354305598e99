"""Build the VecEnv an experiment names: a robot task (sim/) or a Gymnasium id."""

from __future__ import annotations

import torch

from som_robot.contract import PolicyContract
from som_robot.envs.gym_vec import GymVecEnv
from som_robot.envs.vec_env import VecEnv

__all__ = ["make_vec_env", "env_contract"]


def make_vec_env(name: str, env_cfg: object, num_envs: int, device: torch.device, seed: int) -> VecEnv:
    """`env_cfg` is the robot env config (None for Gymnasium)."""
    if name == "go2_joystick":
        from sim.go2.env import Go2VecEnv

        return Go2VecEnv(env_cfg, num_envs=num_envs, seed=seed, device=device)  # type: ignore[arg-type]
    return GymVecEnv(name, num_envs, device)


def env_contract(name: str) -> PolicyContract | None:
    """The deployment contract of a robot task (None for Gymnasium benchmarks, which are not deployed)."""
    if name == "go2_joystick":
        from sim.go2.contract import go2_contract

        return go2_contract()
    return None
