"""The off-policy runner with a real Gymnasium MuJoCo env: artefacts, checkpoints and resume."""

import json
from pathlib import Path

import torch

from som_robot.envs import GymVecEnv
from som_robot.runners import OffPolicyRunner, load_experiment

TINY = ["params.hidden=[32, 32]", "runner.env=Hopper-v5", "runner.num_envs=2", "runner.warmup_steps=100",
        "runner.batch_size=32", "runner.buffer_size=5000", "runner.eval_every=200", "runner.eval_episodes=2",
        "runner.log_every=100", "runner.progress=false", "runner.utd=1.0"]


def make_runner(algo: str, run_dir: Path, steps: int, extra: list[str] = ()) -> OffPolicyRunner:
    overrides = TINY + [f"runner.total_steps={steps}"] + list(extra)
    if algo == "som":
        overrides.append("params.num_proposals=8")
    if algo == "nc_lql":
        overrides.append("params.num_levels=3")
    exp = load_experiment(f"gym/{algo}.yaml", overrides)
    return OffPolicyRunner(exp, GymVecEnv("Hopper-v5", 2), GymVecEnv("Hopper-v5", 2), run_dir)


def test_run_folder_has_config_metrics_tensorboard_and_checkpoint(tmp_path: Path) -> None:
    for algo in ("som", "nc_lql", "sac"):
        run = tmp_path / algo
        summary = make_runner(algo, run, 400).learn()
        assert summary["steps"] == 400 and summary["updates"] == 300  # (400 − 100 warm-up) × utd
        assert (run / "config.yaml").read_text().startswith(f"algo: {algo}")
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert [x["step"] for x in lines] == [200, 400]
        assert list((run / "tb").glob("events.out.tfevents.*"))
        assert (run / "checkpoints" / "last.pt").exists()


def test_resume_continues_exactly_where_it_stopped(tmp_path: Path) -> None:
    """Train 400 steps straight vs. 200 + resume 200: same step count and same buffer contents."""
    extra = ["runner.utd=0.5"]
    a = make_runner("sac", tmp_path / "a", 200, extra)
    a.learn()
    b = make_runner("sac", tmp_path / "b", 400, extra)
    b.load(tmp_path / "a" / "checkpoints" / "last.pt")
    assert b.step == 200 and len(b.buffer) == 200
    before = b.algo.critic.q1[0].weight.detach().clone()
    summary = b.learn()
    assert summary["steps"] == 400 and len(b.buffer) == 400
    assert b.algo.num_updates == (400 - 100) // 2
    assert not torch.equal(before, b.algo.critic.q1[0].weight)
    assert [h["step"] for h in b.history] == [200, 400]  # history carried over
