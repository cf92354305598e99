"""Build the VecEnv an experiment names: a robot task of the catalogue it is given, or a Gymnasium id."""

from __future__ import annotations

import torch

from som_robot.contract import PolicyContract
from som_robot.envs.gym_vec import GymVecEnv
from som_robot.envs.registry import NO_TASKS, TaskCatalogue
from som_robot.envs.vec_env import VecEnv

__all__ = ["make_vec_env", "env_contract"]


def make_vec_env(name: str, env_cfg: object, num_envs: int, device: torch.device, seed: int,
                 tasks: TaskCatalogue = NO_TASKS) -> VecEnv:
    """`env_cfg` is the robot task's config (None for Gymnasium); it also picks the robot's sim backend."""
    task = tasks.get(name)
    if task is not None:
        return task.make_env(env_cfg, num_envs, device, seed)
    return GymVecEnv(name, num_envs, device)


def env_contract(name: str, tasks: TaskCatalogue = NO_TASKS, env_cfg: object = None) -> PolicyContract | None:
    """The deployment contract of a robot task trained with `env_cfg` (None for Gymnasium benchmarks, which are
    not deployed)."""
    task = tasks.get(name)
    return task.contract(env_cfg) if task is not None else None
