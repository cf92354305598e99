"""`python -m som_robot.bench quadruped` end to end on a tiny budget: train, export, ONNX walk test, render."""

import json
import subprocess
import sys
from pathlib import Path

TINY = ["runner.warmup_steps=200", "runner.eval_every=400", "runner.eval_episodes=2", "runner.batch_size=64",
        "runner.log_every=200", "params.num_proposals=4", "params.hidden=[64, 64]", "env.episode_length_s=1.0",
        "runner.progress=false", "runner.torch_threads=1", "runner.num_envs=8"]


def test_quadruped_bench_writes_walk_figures_curves_a_strip_and_a_video(tmp_path: Path) -> None:
    out = tmp_path / "q"
    cmd = [sys.executable, "-m", "som_robot.bench", "quadruped", "--steps", "600", "--minutes", "0", "--out",
           str(out), "--walk-envs", "2", "--walk-seconds", "1", *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    assert res["train"]["steps"] == 600 and Path(res["train"]["policy"]).exists()
    rows = {r["name"]: r for r in res["walk"]["rows"]}
    assert len(rows) == 14 and {"vx 0.5", "stand", "yaw -0.8 +pushes"} <= set(rows)  # the bar, twice
    for row in rows.values():
        assert abs(row["env_minutes"] - 2 / 60) < 1e-9 and row["falls_per_minute"] >= 0 and abs(row["mean_vx"]) < 3
    assert rows["vx 1.0"]["command"] == [1.0, 0.0, 0.0] and rows["yaw 0.8"]["command"] == [0.0, 0.0, 0.8]
    # an untrained policy does not walk: the tracking error at 0.5 m/s is about the command, and the bar fails
    assert rows["vx 0.5"]["lin_vel_error"] > 0.2 and not rows["vx 0.5"]["pass"] and not res["walk"]["all_pass"]
    assert "| vx 0.5 |" in (out / "walk_table.md").read_text()
    assert res["onnx_latency_batch1_1thread"]["p99_us"] > 0
    assert (out / "learning_curve.png").stat().st_size > 10_000
    assert (out / "walk_strip.png").stat().st_size > 10_000  # 8 EGL frames of the robot
    from sim.go2.render import read_mp4

    assert read_mp4(out / "walk.mp4")[:3] == (48, 320, 480)  # the strip's 96 policy steps at 25 fps

    # the run's last checkpoint exported after the fact gives the runner's policy.onnx, contract and all
    again = tmp_path / "again.onnx"
    proc = subprocess.run([sys.executable, "-m", "som_robot.export_checkpoint",
                           str(out / "train" / "checkpoints" / "last.pt"), "--out", str(again)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and json.loads(proc.stdout)["policy"] == str(again), proc.stderr[-3000:]
    import numpy as np

    from sim.go2.contract import go2_contract
    from som_robot.policy_runtime import OnnxPolicy

    shipped, exported = (OnnxPolicy(p, expected=go2_contract()) for p in (Path(res["train"]["policy"]), again))
    assert exported.metadata["som_robot.steps"] == "600"
    for obs in np.random.default_rng(0).standard_normal((5, go2_contract().obs_dim)).astype(np.float32):
        assert np.array_equal(shipped(obs), exported(obs))

    # a checkpoint walks only on the task it was trained for: its run's contract is checked like a file's
    import pytest

    from sim.go2.config import load_go2_config
    from som_robot.bench.walk import walk_test
    from som_robot.contract import ContractError

    ckpt = out / "train" / "checkpoints" / "last.pt"
    assert walk_test(ckpt, load_go2_config(), num_envs=1, seconds=0.1)["env_minutes"] > 0
    with pytest.raises(ContractError, match="'foot_lift'"):
        walk_test(ckpt, load_go2_config(overrides=["foot_lift=0.1"]), num_envs=1, seconds=0.1)


def test_quadruped_bench_runs_sac_through_the_same_bar_and_export(tmp_path: Path) -> None:
    """`--config quadruped/sac.yaml`: the side-by-side baseline is exported to the same ONNX graph inputs and
    judged over the same 14 rows through ONNX Runtime."""
    out = tmp_path / "sac"
    tiny = [t for t in TINY if "num_proposals" not in t]
    cmd = [sys.executable, "-m", "som_robot.bench", "quadruped", "--config", "quadruped/sac.yaml", "--steps", "600",
           "--minutes", "0", "--out", str(out), "--walk-envs", "2", "--walk-seconds", "1", "--no-render", *tiny]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    assert res["train"]["algo"] == "sac" and res["train"]["steps"] == 600
    assert Path(res["train"]["policy"]).suffix == ".onnx" and res["onnx_latency_batch1_1thread"]["p99_us"] > 0
    rows = {r["name"]: r for r in res["walk"]["rows"]}
    assert len(rows) == 14 and rows["vx 0.5"]["lin_vel_error"] > 0.2 and not res["walk"]["all_pass"]
