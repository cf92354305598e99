"""Robot tasks by name: config loader, env class and its simulator backends, deployment contract.

One entry per task replaces per-name dispatch in the runner config and the env factory.
Imports are lazy (dotted paths), so a Gymnasium run never imports MuJoCo Warp and a CPU
run works without it installed. The backend is chosen by the task config's `backend`
(`cpu` | `warp` | `auto`); `auto` takes Warp when the run's device is CUDA, since the CPU
backend would copy every step's state between host and device.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch

from som_robot.contract import PolicyContract
from som_robot.envs.vec_env import VecEnv

__all__ = ["RobotTask", "ROBOT_TASKS", "BACKENDS", "resolve_backend", "get_task"]

BACKENDS = ("auto", "cpu", "warp")


def _load(path: str) -> Any:
    """'pkg.module:attr' → the attribute, imported on first use."""
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


def resolve_backend(backend: str, device: torch.device) -> str:
    """`auto` → warp on CUDA, cpu otherwise; explicit names pass through (warp on a CPU device uses Warp's CPU)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {list(BACKENDS)}")
    if backend == "auto":
        return "warp" if device.type == "cuda" else "cpu"
    return backend


@dataclass(frozen=True)
class RobotTask:
    """How to configure, build and deploy one robot task."""

    name: str
    load_config: Callable[[dict[str, Any]], Any]  # the experiment's `env:` section → task config
    env_class: str  # 'module:Class', constructed as (cfg, num_envs=, seed=, device=, backend=)
    backends: tuple[str, ...]  # simulators the env class runs on
    contract_builder: str  # 'module:function' returning the task's PolicyContract

    def backend(self, cfg: Any, device: torch.device) -> str:
        return resolve_backend(getattr(cfg, "backend", "auto"), device)

    def make_env(self, cfg: Any, num_envs: int, device: torch.device, seed: int) -> VecEnv:
        """The task's VecEnv on the backend its config (or the device, for `auto`) selects."""
        backend = self.backend(cfg, device)
        if backend not in self.backends:
            raise ValueError(f"robot task {self.name!r} has no {backend!r} backend; has {list(self.backends)}")
        return _load(self.env_class)(cfg, num_envs=num_envs, seed=seed, device=device, backend=backend)

    def contract(self) -> PolicyContract:
        return _load(self.contract_builder)()


def _go2_config(overrides: dict[str, Any]) -> Any:
    """Go2EnvConfig: configs/quadruped/go2_joystick.yaml updated by the experiment's `env:` section."""
    from sim.go2.config import DEFAULT_CONFIG_PATH, Go2EnvConfig
    from som_robot.config import from_dict, load_yaml, merge

    return from_dict(Go2EnvConfig, merge(load_yaml(DEFAULT_CONFIG_PATH), overrides), prefix="env")


ROBOT_TASKS: Mapping[str, RobotTask] = MappingProxyType({
    "go2_joystick": RobotTask(
        name="go2_joystick",
        load_config=_go2_config,
        env_class="sim.go2.env:Go2VecEnv",
        backends=("cpu", "warp"),  # one torch env over batched MuJoCo C and MuJoCo Warp
        contract_builder="sim.go2.contract:go2_contract",
    ),
})


def get_task(name: str) -> RobotTask | None:
    """The robot task `name`, or None for a Gymnasium id."""
    return ROBOT_TASKS.get(name)
