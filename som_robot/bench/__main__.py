"""Benchmark CLI.

    python -m som_robot.bench gym --algos som,nc_lql,sac --envs HalfCheetah-v5,Hopper-v5 \\
        --steps 200000 --seeds 3 --out bench_out/gym

Writes results.json (final returns mean ± std over seeds, µs per action at batch 1 on CPU,
ms per update) and learning_curves.png into --out.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m som_robot.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="suite", required=True)
    g = sub.add_parser("gym", help="Gymnasium MuJoCo locomotion benchmark")
    g.add_argument("--algos", default="som,nc_lql,sac")
    g.add_argument("--envs", default="HalfCheetah-v5,Hopper-v5")
    g.add_argument("--steps", type=int, default=200_000)
    g.add_argument("--seeds", type=int, default=3)
    g.add_argument("--out", type=Path, default=Path("bench_out/gym"))
    g.add_argument("--timing-n", type=int, default=2000, help="timed calls per inference measurement")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override for every algo, e.g. runner.eval_every=5000")
    g.add_argument("--set-algo", action="append", default=[], metavar="ALGO:KEY=VALUE",
                   help="override for one algo, e.g. som:params.num_proposals=32")
    args = p.parse_args(argv)
    from som_robot.bench.gym import run_gym_bench

    per_algo: dict[str, list[str]] = {}
    for item in args.set_algo:
        algo, _, kv = item.partition(":")
        per_algo.setdefault(algo, []).append(kv)
    res = run_gym_bench(args.algos.split(","), args.envs.split(","), args.steps, args.seeds, args.out,
                        args.set, per_algo, args.timing_n)
    print(json.dumps({"returns": res["returns"], "timing": res["timing"]}, indent=2))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'learning_curves.png'}")


if __name__ == "__main__":
    main()
