"""The package layering, read from the source: robot facts at the bottom, nothing imports upwards.

robots (facts) <- sim (task, scene) <- hardware (robot backends: the MuJoCo robot, the Go2 bridge; LCM)
<- controllers (onboard) and som_robot (learning, export, deploy). `hardware.mujoco_robot` is the one
hardware module that reads the simulator: it is the simulated robot. The onboard side shares three
numpy-only modules of som_robot (config loading, the policy contract, the ONNX runtime).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# package -> project packages it must never import
FORBIDDEN = {
    "robots": {"sim", "hardware", "controllers", "som_robot"},
    "sim": {"hardware", "controllers"},
    "hardware": {"controllers", "som_robot"},
    "controllers": {"sim"},
}
ALLOWED = {("hardware/mujoco_robot.py", "sim")}
ONBOARD_SHARED = {"som_robot.config", "som_robot.contract", "som_robot.policy_runtime"}


def _modules(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def _imports(path: Path) -> set[str]:
    return {m.split(".")[0] for m in _modules(path)}


def test_no_package_imports_a_higher_layer() -> None:
    bad = []
    for pkg, forbidden in FORBIDDEN.items():
        for f in sorted((ROOT / pkg).rglob("*.py")):
            rel = str(f.relative_to(ROOT))
            for target in _imports(f) & forbidden:
                if (rel, target) not in ALLOWED:
                    bad.append(f"{rel} imports {target}")
    assert not bad, bad


def test_onboard_code_shares_only_the_numpy_core_of_som_robot() -> None:
    for pkg in ("controllers", "hardware"):
        for f in sorted((ROOT / pkg).rglob("*.py")):
            used = {m for m in _modules(f) if m.split(".")[0] == "som_robot"}
            assert used <= ONBOARD_SHARED, (str(f.relative_to(ROOT)), used - ONBOARD_SHARED)


def test_robot_facts_are_one_copy_that_the_mjcf_agrees_with() -> None:
    import numpy as np

    from robots import go2
    from sim.go2 import constants as C
    from sim.go2.model import build_model

    m = build_model()
    assert C.JOINT_NAMES is go2.JOINT_NAMES and C.DEFAULT_JOINT_POS is go2.DEFAULT_JOINT_POS
    assert tuple(m.joint(i).name for i in range(1, m.njnt)) == go2.JOINT_NAMES
    np.testing.assert_allclose(m.jnt_range[1:, 0], go2.JOINT_LOWER, atol=1e-4)
    np.testing.assert_allclose(m.jnt_range[1:, 1], go2.JOINT_UPPER, atol=1e-4)
    np.testing.assert_allclose(m.actuator_ctrlrange[:, 1], go2.TORQUE_LIMITS)


def test_the_runner_knows_no_robot_task() -> None:
    """The catalogue is wired in by the composition root (som_robot.experiment): runner, its config loader
    and the env factory import nothing of sim, and without the catalogue a robot task's env section is
    an error rather than a silent Gymnasium lookup."""
    import pytest

    from som_robot.config import ConfigError
    from som_robot.runners.config import load_experiment

    for sub in ("runners", "envs", "algos", "storage", "nn"):
        for f in sorted((ROOT / "som_robot" / sub).rglob("*.py")):
            assert "sim" not in _imports(f), str(f.relative_to(ROOT))
    with pytest.raises(ConfigError, match="only robot tasks"):
        load_experiment("quadruped/som.yaml")
