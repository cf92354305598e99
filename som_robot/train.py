"""Training entry point.

    python -m som_robot.train --robot quadruped                       # Go2 joystick, SOM, exports policy.onnx
    python -m som_robot.train --robot quadruped --device cuda         # the same, GPU-sized (quadruped/som_gpu.yaml)
    python -m som_robot.train --robot quadruped --steps 20000 --num-envs 16 env.terrain=rough
    python -m som_robot.train --config gym/som.yaml runner.env=Hopper-v5 runner.seed=1
    torchrun --nproc_per_node=2 -m som_robot.train --robot quadruped   # data-parallel, envs sharded per rank

Trailing ``key=value`` arguments override the YAML; the resolved config is saved in the run folder.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "ROBOTS"]

ROBOTS = {"quadruped": "quadruped/som.yaml"}  # --robot name → experiment config (CPU-sized)
ROBOTS_GPU = {"quadruped": "quadruped/som_gpu.yaml"}  # the same task sized for one CUDA GPU


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m som_robot.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--robot", choices=sorted(ROBOTS), help="train the robot's default task (overrides --config)")
    p.add_argument("--config", default="gym/som.yaml", help="YAML file (path, or relative to configs/)")
    p.add_argument("--steps", type=int, help="shorthand for runner.total_steps")
    p.add_argument("--num-envs", type=int, help="shorthand for runner.num_envs (over all torchrun ranks)")
    p.add_argument("--seed", type=int, help="shorthand for runner.seed")
    p.add_argument("--device", help="shorthand for runner.device (auto|cpu|cuda)")
    p.add_argument("--resume", type=Path, help="checkpoint to resume from")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. params.actor_lr=1e-4")
    return p


def _wants_cuda(device: str | None) -> bool:
    """--device cuda[:N], or auto/unset with a CUDA device present: the GPU-sized robot config."""
    from som_robot.runners.off_policy import resolve_device

    return resolve_device(device or "auto").type == "cuda"


def main(argv: Sequence[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    from som_robot.experiment import load_experiment, run_experiment

    overrides = list(args.overrides)
    for flag, key in ((args.steps, "runner.total_steps"), (args.seed, "runner.seed"), (args.device, "runner.device"),
                      (args.num_envs, "runner.num_envs")):
        if flag is not None:
            overrides.append(f"{key}={flag}")
    config = args.config
    if args.robot:
        config = ROBOTS_GPU[args.robot] if _wants_cuda(args.device) else ROBOTS[args.robot]
    summary = run_experiment(load_experiment(config, overrides), resume=args.resume)
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
