"""The policies the repo ships load against the robot config and drive the Go2.

`policies/go2_som.onnx` (the product, SOM) and `policies/go2_sac.onnx` (the SAC baseline of the same task,
budget and graph inputs). What a user tries first: each file's embedded contract must equal
`configs/robots/go2.yaml` (the daemon refuses it otherwise), and through ONNX Runtime it must walk a
domain-randomised Go2 forward at a 0.5 m/s command without falling and stand at a zero command (the model
card's walk table over 16 envs × 20 s: SOM vx 0.50, SAC 0.48; stand ‖v‖ 0.017 and 0.016 m/s).
"""

from pathlib import Path

import numpy as np
import pytest

from controllers.robot_config import load_robot_config
from sim.go2.config import load_go2_config
from som_robot.bench.walk import walk_test
from som_robot.policy_runtime import OnnxPolicy

POLICIES = Path(__file__).resolve().parents[1] / "policies"
SHIPPED = pytest.mark.parametrize("algo", ["som", "sac"])


@SHIPPED
def test_shipped_policy_matches_the_robot_contract(algo: str) -> None:
    policy = OnnxPolicy(POLICIES / f"go2_{algo}.onnx", expected=load_robot_config().contract)
    assert policy.metadata["som_robot.algo"] == algo
    a = policy(np.zeros(policy.contract.obs_dim, np.float32))
    assert a.shape == (12,) and np.all(np.abs(a) <= 1.0)
    assert (POLICIES / "README.md").read_text().count("|") > 20  # the model card with its walk tables


@SHIPPED
def test_shipped_policy_walks_forward_at_half_a_metre_per_second(algo: str) -> None:
    res = walk_test(POLICIES / f"go2_{algo}.onnx", load_go2_config(), (0.5, 0.0, 0.0), num_envs=4, seconds=6.0,
                    seed=11)
    assert res["falls"] == 0, res
    assert res["mean_vx"] > 0.3, res  # 4 envs × 6 s: SOM 0.502, SAC 0.439 (the first 2 s are the start)


@SHIPPED
def test_shipped_policy_stands_still_at_a_zero_command(algo: str) -> None:
    res = walk_test(POLICIES / f"go2_{algo}.onnx", load_go2_config(), (0.0, 0.0, 0.0), num_envs=4, seconds=6.0,
                    seed=11)
    assert res["falls"] == 0 and res["mean_speed_xy"] < 0.05, res
