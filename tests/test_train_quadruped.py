"""`python -m som_robot.train --robot quadruped` end to end on a tiny budget: train, evaluate, export.

The exported policy.onnx must load under ONNX Runtime against the Go2 contract and drive the
real batched MuJoCo env from its own observations.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from sim.go2.contract import go2_contract
from sim.go2.env import Go2VecEnv
from som_robot.experiment import load_experiment
from som_robot.policy_runtime import OnnxPolicy

TINY = ["runner.warmup_steps=200", "runner.eval_every=400", "runner.eval_episodes=2", "runner.batch_size=64",
        "runner.log_every=200", "params.num_proposals=4", "params.hidden=[64, 64]", "env.episode_length_s=1.0",
        "runner.progress=false", "runner.torch_threads=1"]


def test_train_cli_exports_a_contract_checked_policy(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "som_robot.train", "--robot", "quadruped", "--steps", "800", "--num-envs", "8",
           "--seed", "3", f"runner.run_dir={tmp_path}", "runner.run_name=go2", *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "go2"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 800 and summary["updates"] > 0
    resolved = load_experiment(run / "config.yaml")  # the saved config reloads as-is
    assert resolved.env.episode_length_s == 1.0 and resolved.runner.seed == 3
    assert list((run / "tb").glob("events.out.tfevents.*"))

    policy = OnnxPolicy(run / "policy.onnx", expected=go2_contract())
    env = Go2VecEnv(resolved.env, num_envs=1, seed=0)
    obs = env.reset(seed=0)[0].numpy()
    for _ in range(25):  # 0.5 s of closed-loop control through ONNX Runtime
        act = policy(obs)
        assert act.shape == (12,) and np.all(np.abs(act) <= 1.0)
        obs = env.step(torch.from_numpy(act)[None]).obs[0].numpy()
        assert np.isfinite(obs).all()
    env.close()


def test_env_section_overrides_and_validates() -> None:
    exp = load_experiment("quadruped/som.yaml", ["env.terrain=rough", "env.domain_rand.friction=[0.5, 1.0]"])
    assert exp.env.terrain == "rough" and exp.env.domain_rand.friction == (0.5, 1.0)
    assert exp.env.command.lin_vel_x == (-1.0, 1.0)  # untouched keys come from go2_joystick.yaml
