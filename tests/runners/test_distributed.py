"""torchrun with 2 CPU processes (gloo): gradients all-reduced, envs sharded, rank 0 writes the run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.parametrize("algo", ["som", "sac"])
def test_torchrun_two_ranks_stay_in_sync(tmp_path: Path, algo: str) -> None:
    extra = ["params.num_proposals=8"] if algo == "som" else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=0", "--rdzv_backend=c10d",
         "--rdzv_endpoint=127.0.0.1:0", str(WORKER), str(tmp_path), algo, *extra],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert r0["steps"] == r1["steps"] == 400  # global env steps: 2 ranks × 1 env × 200 iterations
    assert r0["updates"] == r1["updates"] == 150  # (400 − 100)/2 per rank at utd 1 on local steps
    assert r0["param_sum"] == pytest.approx(r1["param_sum"], rel=1e-6, abs=1e-6)  # identical networks
    assert r0["param_abs"] == pytest.approx(r1["param_abs"], rel=1e-6)
    assert r0["buffer_sum"] != r1["buffer_sum"]  # but each rank collected its own data
    assert (tmp_path / "run" / "metrics.jsonl").exists() and (tmp_path / "run" / "checkpoints" / "last.pt").exists()
