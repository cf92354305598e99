"""Export a training checkpoint to ONNX, as the runner does at the end of a run.

    python -m som_robot.export_checkpoint runs/<run>/checkpoints/last.pt            # → runs/<run>/policy.onnx
    python -m som_robot.export_checkpoint runs/<run>/checkpoints/last.pt --out go2.onnx

For a run stopped before its end (a budget, a crash, Ctrl-C) or a mid-run checkpoint: the run folder's
resolved config.yaml names the algorithm, widths and task, the task gives the deployment contract, and
the graph and metadata are those of `export.export_onnx` (so the daemon and `bench walk` take the file).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

__all__ = ["export_checkpoint", "main"]


def export_checkpoint(checkpoint: Path, out: Path | None = None) -> Path:
    """Write the checkpoint's policy with its task's contract; returns the ONNX path (default: the run folder's
    policy.onnx). Raises ValueError for a task without a contract or an algorithm without an export."""
    import torch

    from sim.tasks import ROBOT_TASKS
    from som_robot.envs.factory import env_contract
    from som_robot.experiment import load_experiment
    from som_robot.export import EXPORTABLE, export_onnx
    from som_robot.runners.off_policy import make_algo

    checkpoint = Path(checkpoint)
    run_dir = checkpoint.parent.parent
    exp = load_experiment(run_dir / "config.yaml")
    contract = env_contract(exp.runner.env, ROBOT_TASKS)
    if contract is None:
        raise ValueError(f"{exp.runner.env} is not a robot task: it has no deployment contract to export")
    algo = make_algo(exp, contract.obs_dim, contract.act_dim, torch.device("cpu"), 0)
    if not isinstance(algo, EXPORTABLE):
        raise ValueError(f"no ONNX export for {exp.algo} (exportable: {[c.__name__ for c in EXPORTABLE]})")
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    algo.load_state_dict(ckpt["algo"])
    meta = {"som_robot.env": exp.runner.env, "som_robot.steps": str(int(ckpt["step"]))}
    return export_onnx(algo, contract, out or run_dir / "policy.onnx", meta)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m som_robot.export_checkpoint", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="runs/<run>/checkpoints/<name>.pt")
    p.add_argument("--out", type=Path, help="ONNX path (default: the run folder's policy.onnx)")
    args = p.parse_args(argv)
    print(json.dumps({"policy": str(export_checkpoint(args.checkpoint, args.out))}))


if __name__ == "__main__":
    main()
