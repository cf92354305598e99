"""Learning smoke tests: each algorithm balances InvertedPendulum-v5 within a CI-sized budget.

These are real training runs (minutes on 2 cores). The run stops as soon as an evaluation
(best-of-N for SOM, 5 episodes) reaches 1000; the test asserts an evaluation reached ≥ 900.
"""

from pathlib import Path

import pytest

from som_robot.experiment import load_experiment, run_experiment


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sac", "som", "nc_lql"])
def test_inverted_pendulum_reaches_900(algo: str, tmp_path: Path) -> None:
    exp = load_experiment(f"smoke/inverted_pendulum_{algo}.yaml",
                          [f"runner.run_dir={tmp_path}", "runner.progress=false", "runner.torch_threads=2"])
    summary = run_experiment(exp)
    assert summary["best_return"] >= 900, summary
