"""The robot task catalogue, beside the tasks: what `som_robot.experiment` hands the runner."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from som_robot.envs.registry import RobotTask, TaskCatalogue

__all__ = ["ROBOT_TASKS"]


def _go2_config(overrides: dict[str, Any]) -> Any:
    """Go2EnvConfig: configs/quadruped/go2_joystick.yaml updated by the experiment's `env:` section."""
    from sim.go2.config import DEFAULT_CONFIG_PATH, Go2EnvConfig
    from som_robot.config import from_dict, load_yaml, merge

    return from_dict(Go2EnvConfig, merge(load_yaml(DEFAULT_CONFIG_PATH), overrides), prefix="env")


ROBOT_TASKS: TaskCatalogue = MappingProxyType({
    "go2_joystick": RobotTask(
        name="go2_joystick",
        load_config=_go2_config,
        env_class="sim.go2.env:Go2VecEnv",
        backends=("cpu", "warp"),  # one torch env over batched MuJoCo C and MuJoCo Warp
        contract_builder="sim.go2.contract:go2_contract",
    ),
})
