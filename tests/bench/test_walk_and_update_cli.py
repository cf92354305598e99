"""`python -m som_robot.bench walk` and `... update` as a user runs them: real ONNX Runtime, real MuJoCo."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sim.go2.contract import go2_contract
from sim.go2.obs import OBS_DIM
from som_robot.algos import SOM, SOMConfig
from som_robot.export import export_onnx


def _policy(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    agent = SOM(OBS_DIM, 12, SOMConfig(hidden=(32, 32)))
    return export_onnx(agent, go2_contract(), tmp_path / "policy.onnx")


def _json_tail(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{"):])


def test_walk_cli_reports_velocities_errors_and_falls_and_takes_env_overrides(tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    cmd = [sys.executable, "-m", "som_robot.bench", "walk", "--policy", str(policy), "--vx", "0.0", "--yaw", "0.8",
           "--envs", "2", "--seconds", "0.5", "--pushes", "env.terrain=rough"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = _json_tail(proc.stdout)
    assert {"mean_vx", "mean_vy", "mean_yaw_rate", "lin_vel_error", "ang_vel_error", "falls_per_minute"} <= set(res)
    assert res["command"] == [0.0, 0.0, 0.8] and res["pushes"] is True
    assert res["ang_vel_error"] > 0.3  # an untrained policy does not turn at 0.8 rad/s
    bad = subprocess.run([*cmd[:-1], "env.terrain=lava"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "terrain" in bad.stderr  # overrides reach the validated env config


def test_walk_cli_writes_a_video_of_env_0(tmp_path: Path) -> None:
    """--video: an MP4 of env 0, rendered offscreen after the run: 1 s at 50 Hz resampled to 25 fps."""
    from sim.go2.render import read_mp4

    video = tmp_path / "walk.mp4"
    cmd = [sys.executable, "-m", "som_robot.bench", "walk", "--policy", str(_policy(tmp_path)), "--envs", "2",
           "--seconds", "1.0", "--video", str(video)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    frames, h, w, fps = read_mp4(video)
    assert (frames, h, w) == (25, 320, 480) and fps == 25.0


def test_update_cli_prints_som_and_sac_costs_side_by_side() -> None:
    proc = subprocess.run([sys.executable, "-m", "som_robot.bench", "update", "--rounds", "1", "--per-round", "2",
                           "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = _json_tail(proc.stdout)
    assert res["som_ms"] > 0 and res["sac_ms"] > 0 and res["ratio"] == res["som_ms"] / res["sac_ms"]
    assert res["hidden"] == [256, 256] and res["num_proposals"] == 16 and res["batch_size"] == 256
    assert res["actor_every"] == 2


def test_update_cli_overrides_reach_som_only() -> None:
    proc = subprocess.run([sys.executable, "-m", "som_robot.bench", "update", "--rounds", "1", "--per-round", "2",
                           "--threads", "1", "params.actor_every=1", "params.num_proposals=8"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = _json_tail(proc.stdout)
    assert res["actor_every"] == 1 and res["num_proposals"] == 8 and res["sac_ms"] > 0
    bad = subprocess.run([sys.executable, "-m", "som_robot.bench", "update", "--rounds", "1", "params.no_such_key=1"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "no_such_key" in bad.stderr


def test_curves_cli_plots_runs_against_wall_time(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    for name, err in (("a", 0.5), ("b", 0.1)):
        w = SummaryWriter(str(tmp_path / name / "tb"))
        for i in range(50):
            w.add_scalar("tracking/lin_vel_error", err + 0.001 * i, i * 1000, walltime=1e9 + 6.0 * i)  # 5 min
        w.close()
    out = tmp_path / "curves.png"
    proc = subprocess.run([sys.executable, "-m", "som_robot.bench", "curves", "--runs",
                           f"{tmp_path / 'a'},{tmp_path / 'b'}", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = _json_tail(proc.stdout)
    assert res["a"]["env_steps"] == 49_000 and abs(res["b"]["final_tracking/lin_vel_error"] - 0.148) < 0.01
    assert out.stat().st_size > 10_000
    # b's error is under 0.15 from its first scalar on, a's never is; the env step is where that minute falls
    assert res["b"]["env_steps_to_tracking_error_below"]["0.15"] == 0
    assert res["a"]["env_steps_to_tracking_error_below"]["0.3"] is None
    by_steps = tmp_path / "steps.png"
    proc = subprocess.run([sys.executable, "-m", "som_robot.bench", "curves", "--runs", str(tmp_path / "a"),
                           "--out", str(by_steps), "--x", "steps"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and by_steps.stat().st_size > 10_000, proc.stderr[-3000:]


def test_walk_reports_the_share_of_actions_on_the_box_bound() -> None:
    """`action_saturation`: a bang-bang policy reads 1, one inside the box 0, one with half its joints at the
    bound 0.5 (the figure that showed the Q-ascent SOM living at its clamp); `action_at_upper` / `_lower` say
    which joints, at which bound."""
    import numpy as np

    from som_robot.bench.walk import walk_test
    from som_robot.experiment import load_experiment

    env_cfg = load_experiment("quadruped/som.yaml").env
    half = np.where(np.arange(12) % 2 == 0, -1.0, 0.3).astype(np.float32)
    for act, share in ((np.ones(12, np.float32), 1.0), (np.full(12, 0.5, np.float32), 0.0), (half, 0.5)):
        res = walk_test(lambda obs, a=act: np.tile(a, (len(obs), 1)), env_cfg, (0.5, 0.0, 0.0), num_envs=2,
                        seconds=0.2)
        assert res["action_saturation"] == share, (act, res["action_saturation"])
        # per joint and side: which joint sits at which bound (a rear thigh pinned at +1 reads 1 there)
        assert res["action_at_upper"] == [float(a >= 0.99) for a in act], res["action_at_upper"]
        assert res["action_at_lower"] == [float(a <= -0.99) for a in act], res["action_at_lower"]


def test_walk_policy_noise_input_drives_the_collecting_policy_and_is_repeatable(tmp_path: Path) -> None:
    """--noise-std: the ONNX noise input gets N(0, s²) draws (seeded), 0 keeps the daemon's repeatable action."""
    import numpy as np

    from som_robot.bench.walk import onnx_batch_policy

    policy = _policy(tmp_path)
    obs = np.random.default_rng(0).standard_normal((4, OBS_DIM)).astype(np.float32)
    mode = onnx_batch_policy(policy)
    np.testing.assert_array_equal(mode(obs), mode(obs))
    noisy = onnx_batch_policy(policy, noise_std=0.3, seed=5)
    first, second = noisy(obs), noisy(obs)
    assert np.abs(first - mode(obs)).max() > 1e-3 and np.abs(first - second).max() > 1e-3
    np.testing.assert_array_equal(first, onnx_batch_policy(policy, noise_std=0.3, seed=5)(obs))


@pytest.mark.parametrize(("field", "value"), [("action_scale", 0.5), ("gait_freq", 3.0)])
def test_walk_checks_the_action_box_and_clock_a_policy_was_trained_with(field: str, value: float,
                                                                        tmp_path: Path) -> None:
    """A policy exported from a run with `env.action_scale=0.5` (or `env.gait_freq=3.0`) embeds that box (clock):
    the walk test (and the daemon) refuse it under the default, naming the field, and run it under its own."""
    import dataclasses

    from sim.go2.config import load_go2_config
    from som_robot.bench.walk import walk_test
    from som_robot.contract import ContractError

    torch.manual_seed(0)
    wide = dataclasses.replace(load_go2_config(), **{field: value})
    policy = export_onnx(SOM(OBS_DIM, 12, SOMConfig(hidden=(32, 32))), go2_contract(wide), tmp_path / "wide.onnx")
    with pytest.raises(ContractError, match=field):
        walk_test(policy, load_go2_config(), num_envs=1, seconds=0.1)
    res = walk_test(policy, wide, num_envs=1, seconds=0.1)
    assert res["env_minutes"] > 0
