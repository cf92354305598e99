"""Unitree Go2 velocity-tracking task with domain randomization on batched CPU MuJoCo.

    from sim.go2 import Go2VecEnv, load_go2_config
    env = Go2VecEnv(load_go2_config(), num_envs=64, seed=0, nthread=2)
"""

from sim.go2.config import (
    CommandConfig,
    DomainRandConfig,
    Go2EnvConfig,
    RewardConfig,
    RoughTerrainConfig,
    TerminationConfig,
    load_go2_config,
)
from sim.go2.env import Go2VecEnv
from sim.go2.model import build_model, build_spec
from sim.go2.obs import OBS_DIM, OBS_LAYOUT, ObsTerm

__all__ = [
    "CommandConfig",
    "DomainRandConfig",
    "Go2EnvConfig",
    "Go2VecEnv",
    "OBS_DIM",
    "OBS_LAYOUT",
    "ObsTerm",
    "RewardConfig",
    "RoughTerrainConfig",
    "TerminationConfig",
    "build_model",
    "build_spec",
    "load_go2_config",
]
