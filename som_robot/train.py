"""Training entry point.

    python -m som_robot.train --config gym/som.yaml runner.env=Hopper-v5 runner.seed=1
    python -m som_robot.train --config smoke/inverted_pendulum_som.yaml

Trailing ``key=value`` arguments override the YAML; the resolved config is saved in the run folder.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m som_robot.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="gym/som.yaml", help="YAML file (path, or relative to configs/)")
    p.add_argument("--steps", type=int, help="shorthand for runner.total_steps")
    p.add_argument("--seed", type=int, help="shorthand for runner.seed")
    p.add_argument("--device", help="shorthand for runner.device (auto|cpu|cuda)")
    p.add_argument("--resume", type=Path, help="checkpoint to resume from")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. params.actor_lr=1e-4")
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    from som_robot.runners import load_experiment, run_experiment

    overrides = list(args.overrides)
    for flag, key in ((args.steps, "runner.total_steps"), (args.seed, "runner.seed"), (args.device, "runner.device")):
        if flag is not None:
            overrides.append(f"{key}={flag}")
    summary = run_experiment(load_experiment(args.config, overrides), resume=args.resume)
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
