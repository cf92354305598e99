"""The VecEnv protocol the runner talks to, and the Gymnasium adapter."""

from som_robot.envs.gym_vec import GymVecEnv
from som_robot.envs.vec_env import StepResult, VecEnv

__all__ = ["GymVecEnv", "StepResult", "VecEnv"]
