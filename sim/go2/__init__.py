"""Unitree Go2 velocity-tracking task with domain randomization on batched CPU MuJoCo or MuJoCo Warp.

    from sim.go2 import Go2VecEnv, load_go2_config
    env = Go2VecEnv(load_go2_config(), num_envs=64, seed=0, nthread=2)            # MuJoCo C
    env = Go2VecEnv(load_go2_config(), num_envs=4096, seed=0, device="cuda")      # MuJoCo Warp (auto)

Names resolve lazily (PEP 562), so onboard code can import `sim.go2.constants` and
`sim.go2.contract` (numpy only) without pulling in torch or mujoco.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CommandConfig": "sim.go2.config", "DomainRandConfig": "sim.go2.config", "Go2EnvConfig": "sim.go2.config",
    "RewardConfig": "sim.go2.config", "RoughTerrainConfig": "sim.go2.config", "TerminationConfig": "sim.go2.config",
    "load_go2_config": "sim.go2.config", "Go2VecEnv": "sim.go2.env",
    "build_model": "sim.go2.model", "build_spec": "sim.go2.model", "OBS_DIM": "sim.go2.obs",
    "OBS_LAYOUT": "sim.go2.obs", "ObsTerm": "sim.go2.obs", "GO2_MIRROR": "sim.go2.symmetry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sim.go2' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
