"""Composition root of a training run: the runner with the robot task catalogue wired in.

The runner and its config loader take a `TaskCatalogue` and know no robot (as rsl_rl's runner sees only a
VecEnv); this module hands them `sim.tasks.ROBOT_TASKS`. Entry points (train, bench) import from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.tasks import ROBOT_TASKS
from som_robot.runners import config as _config
from som_robot.runners import off_policy as _off_policy
from som_robot.runners.config import ExperimentConfig

__all__ = ["load_experiment", "run_experiment"]


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """`runners.config.load_experiment` with the robot tasks known."""
    return _config.load_experiment(path, overrides, ROBOT_TASKS)


def run_experiment(exp: ExperimentConfig, resume: Path | None = None) -> dict[str, Any]:
    """`runners.off_policy.run_experiment` with the robot tasks known."""
    return _off_policy.run_experiment(exp, resume, ROBOT_TASKS)
