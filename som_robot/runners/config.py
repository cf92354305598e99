"""Experiment configs: the runner's settings plus one algorithm's, from YAML with overrides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from som_robot.algos import ALGOS
from som_robot.config import ConfigError, apply_overrides, check, from_dict, load_yaml, merge, to_dict
from som_robot.envs.registry import NO_TASKS, TaskCatalogue

__all__ = ["RunnerConfig", "ExperimentConfig", "load_experiment", "experiment_from_dict", "CONFIG_DIR"]

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


@dataclass(frozen=True)
class RunnerConfig:
    """The off-policy loop: data collection, replay, evaluation, logging, checkpoints."""

    env: str = "InvertedPendulum-v5"  # Gymnasium id, or a robot task of the catalogue (sim.tasks)
    num_envs: int = 1  # parallel envs stepped per iteration
    total_steps: int = 100_000  # env steps (summed over envs)
    warmup_steps: int = 5_000  # uniform-random env steps before learning starts
    batch_size: int = 256
    buffer_size: int = 1_000_000
    utd: float = 1.0  # gradient updates per env step
    overlap_env: bool = False  # step the envs in a worker thread while the updates run (uses a second core)
    mirror: bool = False  # also store each transition's mirror image (the env's `mirror`: Go2 left-right)
    explore_std: tuple[float, float] = (0.0, 0.0)  # per-env Gaussian action noise: each env draws its std from
    # U[lo, hi] at the start of each episode (FastTD3's mixed exploration: some envs explore wide, others exploit)
    n_step: int = 1  # n-step returns (storage.nstep: folded per env, cut at episode ends, γ^m in the target)
    eval_every: int = 5_000  # env steps between evaluations (0 = only at the end)
    eval_episodes: int = 5
    log_every: int = 1_000  # env steps between scalar logs
    checkpoint_every: int = 0  # env steps between checkpoints (0 = only at the end)
    checkpoint_buffer: bool = True  # store the replay buffer in checkpoints for an exact resume
    stop_return: float | None = None  # stop early once an evaluation reaches this return
    max_minutes: float = 0.0  # wall-clock budget; 0 = none (benchmarks: "the longest run that fits")
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    torch_threads: int = 0  # 0 = leave torch's default
    run_dir: str = "runs"
    run_name: str = ""  # empty: <env>__<algo>__s<seed>__<time>
    progress: bool = True  # tqdm bar

    def __post_init__(self) -> None:
        check(self.num_envs >= 1, "num_envs", f"must be >= 1, got {self.num_envs}")
        check(self.total_steps > 0, "total_steps", f"must be > 0, got {self.total_steps}")
        check(self.warmup_steps >= 0, "warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        check(self.buffer_size >= self.batch_size, "buffer_size", "must be >= batch_size")
        check(self.utd > 0, "utd", f"must be > 0, got {self.utd}")
        lo, hi = self.explore_std
        check(0.0 <= lo <= hi, "explore_std", f"must be [lo, hi] with 0 <= lo <= hi, got {list(self.explore_std)}")
        check(self.n_step >= 1, "n_step", f"must be >= 1, got {self.n_step}")
        check(self.eval_episodes >= 1, "eval_episodes", "must be >= 1")
        check(self.max_minutes >= 0, "max_minutes", f"must be >= 0, got {self.max_minutes}")
        check(min(self.eval_every, self.log_every, self.checkpoint_every) >= 0, "eval_every",
              "intervals must be >= 0")


@dataclass(frozen=True)
class ExperimentConfig:
    """One run: which algorithm, its hyperparameters, and the runner."""

    algo: str
    params: Any  # SOMConfig | NCLQLConfig | SACConfig, chosen by `algo`
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    env: Any = None  # robot env config (e.g. Go2EnvConfig) when runner.env names a robot task

    def to_dict(self) -> dict[str, Any]:
        out = {"algo": self.algo, "params": to_dict(self.params), "runner": to_dict(self.runner)}
        if self.env is not None:
            out["env"] = to_dict(self.env)
        return out


def _read_with_base(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """YAML with an optional `base:` (a relative path, itself possibly with a base) whose values it overrides."""
    path = path.resolve()
    if path in _chain:
        raise ConfigError(f"{path}: circular base chain {' -> '.join(p.name for p in (*_chain, path))}")
    data = load_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    return merge(_read_with_base(path.parent / base, (*_chain, path)), data)


def experiment_from_dict(data: dict[str, Any], tasks: TaskCatalogue = NO_TASKS) -> ExperimentConfig:
    """Validate a raw mapping into an ExperimentConfig; `tasks` parses a robot task's `env:` section."""
    data = dict(data)
    unknown = sorted(set(data) - {"algo", "params", "runner", "env"})
    if unknown:
        raise ConfigError(f"unknown config key '{unknown[0]}'; valid keys: ['algo', 'env', 'params', 'runner']")
    name = data.get("algo")
    if name not in ALGOS:
        raise ConfigError(f"config key 'algo': {name!r} is not one of {sorted(ALGOS)}")
    params = from_dict(ALGOS[name][0], data.get("params"), prefix="params")
    runner = from_dict(RunnerConfig, data.get("runner"), prefix="runner")
    env = None
    if runner.env in tasks:
        env = tasks[runner.env].load_config(data.get("env") or {})
    elif data.get("env"):
        raise ConfigError(f"config key 'env': only robot tasks {sorted(tasks)} take an env section")
    return ExperimentConfig(name, params, runner, env)


def load_experiment(path: str | Path, overrides: Sequence[str] = (), tasks: TaskCatalogue = NO_TASKS
                    ) -> ExperimentConfig:
    """Load `path` (absolute, or relative to cwd or to configs/) and apply ``key=value`` overrides."""
    p = Path(path)
    if not p.exists():
        p = CONFIG_DIR / path
    if not p.exists():
        raise ConfigError(f"config file not found: {path}")
    return experiment_from_dict(apply_overrides(_read_with_base(p), overrides), tasks)
