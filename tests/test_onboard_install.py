"""`pip install .` with no extras is enough to run the onboard side: daemon, estimator, robot bridge server.

A real clean venv (no torch, no mujoco, no matplotlib), the package installed from this checkout, and the
daemon started from it against its packaged robot config and a policy exported by the test.
"""

import subprocess
import venv
from pathlib import Path

from hardware import channels as ch
from sim.go2.contract import go2_contract
from som_robot.algos import SOM, SOMConfig
from som_robot.export import export_onnx

ROOT = Path(__file__).resolve().parents[1]


def test_pip_install_without_extras_runs_the_daemon(tmp_path: Path) -> None:
    env_dir = tmp_path / "onboard"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    res = subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT)], capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    listed = subprocess.run([str(py), "-m", "pip", "list"], capture_output=True, text=True).stdout.lower()
    assert "onnxruntime" in listed and "lcm" in listed
    assert not any(name in listed for name in ("torch", "mujoco", "matplotlib"))

    probe = ("import sys, controllers.daemon, controllers.estimator_node, hardware.server, som_robot.deploy; "
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mujoco')); "
             "assert not heavy, heavy")
    res = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]

    contract = go2_contract()
    policy = export_onnx(SOM(contract.obs_dim, contract.act_dim, SOMConfig(hidden=(32, 32))), contract,
                         tmp_path / "policy.onnx")
    # cwd outside the checkout: the daemon must find its robot config inside the installed package
    res = subprocess.run([str(py), "-m", "controllers.daemon", "--policy", str(policy), "--duration", "0.5",
                          "--url", ch.private_udpm_url()], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "READY controllers.daemon" in res.stdout
    assert str(env_dir) in subprocess.run([str(py), "-c", "import controllers; print(controllers.__file__)"],
                                          capture_output=True, text=True, cwd=tmp_path).stdout
