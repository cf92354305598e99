"""What a robot task is to the learner: config loader, env class and its simulator backends, contract.

The catalogue of tasks lives beside the tasks (`sim.tasks.ROBOT_TASKS`) and is handed to the runner by
the composition root (`som_robot.experiment`): the runner and its config loader know a `TaskCatalogue`,
never a robot. Imports are lazy (dotted paths), so a Gymnasium run never imports MuJoCo Warp and a CPU
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

__all__ = ["RobotTask", "TaskCatalogue", "NO_TASKS", "BACKENDS", "resolve_backend"]

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
    contract_builder: str  # 'module:function' (task config or None) → the PolicyContract

    def backend(self, cfg: Any, device: torch.device) -> str:
        return resolve_backend(getattr(cfg, "backend", "auto"), device)

    def make_env(self, cfg: Any, num_envs: int, device: torch.device, seed: int) -> VecEnv:
        """The task's VecEnv on the backend its config (or the device, for `auto`) selects."""
        backend = self.backend(cfg, device)
        if backend not in self.backends:
            raise ValueError(f"robot task {self.name!r} has no {backend!r} backend; has {list(self.backends)}")
        return _load(self.env_class)(cfg, num_envs=num_envs, seed=seed, device=device, backend=backend)

    def contract(self, cfg: Any = None) -> PolicyContract:
        """The contract of a policy trained on this task with config `cfg` (None: the task's defaults)."""
        return _load(self.contract_builder)(cfg)


TaskCatalogue = Mapping[str, RobotTask]
NO_TASKS: TaskCatalogue = MappingProxyType({})  # Gymnasium ids only
