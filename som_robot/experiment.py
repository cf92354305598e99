"""Composition root of a training run: the runner with the robot task catalogue wired in.

The runner and its config loader take a `TaskCatalogue` and know no robot (as rsl_rl's runner sees only a
VecEnv); this module hands them `sim.tasks.ROBOT_TASKS`. Entry points (train, bench) import from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sim.tasks import ROBOT_TASKS
from som_robot.algos import Algorithm
from som_robot.envs.factory import env_contract
from som_robot.runners import config as _config
from som_robot.runners import off_policy as _off_policy
from som_robot.runners.config import ExperimentConfig

__all__ = ["load_experiment", "run_experiment", "load_checkpoint"]


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """`runners.config.load_experiment` with the robot tasks known."""
    return _config.load_experiment(path, overrides, ROBOT_TASKS)


def run_experiment(exp: ExperimentConfig, resume: Path | None = None) -> dict[str, Any]:
    """`runners.off_policy.run_experiment` with the robot tasks known."""
    return _off_policy.run_experiment(exp, resume, ROBOT_TASKS)


def load_checkpoint(checkpoint: str | Path) -> tuple[ExperimentConfig, Algorithm, int]:
    """(config, agent, env steps) of a robot-task run's checkpoint, on the CPU: the agent is built from the run
    folder's resolved config.yaml at the task contract's sizes and loaded with the checkpoint's weights."""
    checkpoint = Path(checkpoint)
    exp = load_experiment(checkpoint.parent.parent / "config.yaml")
    contract = env_contract(exp.runner.env, ROBOT_TASKS, exp.env)
    if contract is None:
        raise ValueError(f"{exp.runner.env} is not a robot task: it has no contract to size the agent by")
    algo = _off_policy.make_algo(exp, contract.obs_dim, contract.act_dim, torch.device("cpu"), 0)
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    algo.load_state_dict(ckpt["algo"])
    return exp, algo, int(ckpt["step"])
