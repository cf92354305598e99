"""Configs: every shipped YAML loads; bad values fail with the offending key named."""

from pathlib import Path

import pytest

from som_robot.config import ConfigError
from som_robot.experiment import load_experiment
from som_robot.runners.config import CONFIG_DIR

EXPERIMENTS = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if p.parent.name in ("gym", "smoke"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_configs_load(path: Path) -> None:
    exp = load_experiment(path)
    assert exp.algo in ("som", "nc_lql", "sac")
    assert exp.to_dict()["runner"]["env"] == exp.runner.env


def test_overrides_apply_and_are_typed() -> None:
    exp = load_experiment("gym/som.yaml", ["params.actor_lr=1e-4", "runner.seed=3", "params.hidden=[64, 64]"])
    assert exp.params.actor_lr == pytest.approx(1e-4)
    assert exp.runner.seed == 3 and exp.params.hidden == (64, 64)


def test_smoke_config_inherits_from_its_base() -> None:
    exp = load_experiment("smoke/inverted_pendulum_som.yaml")
    assert exp.runner.env == "InvertedPendulum-v5"
    assert exp.params.ratio_r_eq_t == pytest.approx(0.25)  # from gym/som.yaml


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("params.actor_lr=-1e-3", "params.actor_lr"),
        ("params.lr=0.1", "params.lr"),  # SOM has no 'lr'
        ("runner.num_envs=0", "runner.num_envs"),
        ("runner.batch_sise=64", "runner.batch_sise"),
        ("params.q_norm=softmax", "params.q_norm"),
        ("params.num_proposals=ten", "params.num_proposals"),
        ("params.gamma=1.5", "params.gamma"),
    ],
)
def test_bad_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_experiment("gym/som.yaml", [override])


def test_unknown_algo_and_top_level_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("algo: ppo\n")
    with pytest.raises(ConfigError, match="'algo'"):
        load_experiment(bad)
    bad.write_text("algo: sac\nrunnr: {}\n")
    with pytest.raises(ConfigError, match="runnr"):
        load_experiment(bad)


def test_gpu_config_chains_on_the_cpu_config_and_cuda_picks_it() -> None:
    from som_robot.experiment import load_experiment
    from som_robot.train import _wants_cuda

    cpu, gpu = load_experiment("quadruped/som.yaml"), load_experiment("quadruped/som_gpu.yaml")
    assert gpu.runner.device == "cuda" and gpu.runner.num_envs >= 1024 and gpu.runner.batch_size >= 4096
    assert gpu.params.alpha == cpu.params.alpha and gpu.env == cpu.env  # same task and learner, bigger sizes
    assert not gpu.runner.checkpoint_buffer
    assert _wants_cuda("cuda") and _wants_cuda("cuda:1") and not _wants_cuda("cpu")
