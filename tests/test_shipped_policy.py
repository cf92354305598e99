"""The policy the repo ships (`policies/go2_som.onnx`) loads against the robot config and drives the Go2.

What a user tries first: the file's embedded contract must equal `configs/robots/go2.yaml` (the daemon
refuses it otherwise), and through ONNX Runtime it must walk a domain-randomised Go2 forward at a 0.5 m/s
command without falling (the model card's walk table: vx 0.48 m/s over 16 envs × 20 s).
"""

from pathlib import Path

import numpy as np

from controllers.robot_config import load_robot_config
from sim.go2.config import load_go2_config
from som_robot.bench.walk import walk_test
from som_robot.policy_runtime import OnnxPolicy

POLICY = Path(__file__).resolve().parents[1] / "policies" / "go2_som.onnx"


def test_shipped_policy_matches_the_robot_contract() -> None:
    policy = OnnxPolicy(POLICY, expected=load_robot_config().contract)
    assert policy.metadata["som_robot.algo"] == "som"
    a = policy(np.zeros(policy.contract.obs_dim, np.float32))
    assert a.shape == (12,) and np.all(np.abs(a) <= 1.0)
    assert (POLICY.parent / "README.md").read_text().count("|") > 20  # the model card with its walk table


def test_shipped_policy_walks_forward_at_half_a_metre_per_second() -> None:
    res = walk_test(POLICY, load_go2_config(), (0.5, 0.0, 0.0), num_envs=4, seconds=6.0, seed=11)
    assert res["falls"] == 0, res
    assert res["mean_vx"] > 0.35, res  # the card: 0.48 m/s (16 envs × 20 s); the first 2 s include the start
