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
    from sim.tasks import ROBOT_TASKS
    from som_robot.experiment import load_checkpoint
    from som_robot.runners.off_policy import export_policy

    checkpoint = Path(checkpoint)
    exp, algo, steps = load_checkpoint(checkpoint)
    path = export_policy(algo, exp.runner.env, steps, ROBOT_TASKS, out or checkpoint.parent.parent / "policy.onnx",
                         exp.env)
    if path is None:
        raise ValueError(f"no ONNX export for {exp.algo}")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m som_robot.export_checkpoint", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="runs/<run>/checkpoints/<name>.pt")
    p.add_argument("--out", type=Path, help="ONNX path (default: the run folder's policy.onnx)")
    args = p.parse_args(argv)
    print(json.dumps({"policy": str(export_checkpoint(args.checkpoint, args.out))}))


if __name__ == "__main__":
    main()
