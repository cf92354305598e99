"""Benchmark CLI.

    python -m som_robot.bench gym --algos som,nc_lql,sac --envs HalfCheetah-v5,Hopper-v5 \\
        --steps 200000 --seeds 3 --out bench_out/gym

    python -m som_robot.bench quadruped --minutes 60 --out bench_out/quadruped
    python -m som_robot.bench onnx --policy runs/.../policy.onnx
    python -m som_robot.bench update                       # SOM vs SAC ms per update, one process
    python -m som_robot.bench update --threads 1 params.actor_every=1   # ... with SOM's config changed
    python -m som_robot.bench gpu --out $OUT                # the CUDA device check (scripts/device_check.sh)
    python -m som_robot.bench walk --policy policies/go2_som.onnx --vx 0.5 [--pushes] [env.terrain=rough]
    python -m som_robot.bench walk --policy policies/go2_som.onnx --table   # the whole walk bar
    python -m som_robot.bench walk --policy policies/go2_som.onnx --noise-std 0.3  # the collecting policy, not z = 0
    python -m som_robot.bench walk --policy policies/go2_som.onnx --vx 0.5 --video walk.mp4  # + a video of env 0

gym writes results.json (final returns mean ± std over seeds, µs per action at batch 1 on CPU,
ms per update) and learning_curves.png into --out. quadruped trains SOM on the Go2 joystick task
(under a wall-clock budget), then walk-tests the exported policy.onnx through ONNX Runtime at a
0.5 m/s command (mean vx, falls per minute) and writes results.json, learning_curve.png and
walk_strip.png and walk.mp4.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # strips and videos render offscreen; must precede mujoco's import


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
    q = sub.add_parser("quadruped", help="Go2 joystick: train SOM (or --config's learner), walk-test and render")
    q.add_argument("--config", default="quadruped/som.yaml",
                   help="quadruped/sac.yaml runs SAC through the same budget and walk bar")
    q.add_argument("--steps", type=int, default=2_000_000)
    q.add_argument("--minutes", type=float, default=60.0, help="wall-clock training budget (0 = none)")
    q.add_argument("--out", type=Path, default=Path("bench_out/quadruped"))
    q.add_argument("--walk-envs", type=int, default=16)
    q.add_argument("--walk-seconds", type=float, default=20.0)
    q.add_argument("--no-render", action="store_true")
    q.add_argument("overrides", nargs="*", help="key=value overrides of --config")
    o = sub.add_parser("onnx", help="ONNX Runtime latency of a policy.onnx, batch 1, one thread")
    o.add_argument("--policy", type=Path, required=True)
    o.add_argument("-n", type=int, default=20_000)
    u = sub.add_parser("update", help="ms per SOM update vs SAC of the same widths, side by side (JSON)")
    u.add_argument("--rounds", type=int, default=7)
    u.add_argument("--per-round", type=int, default=20)
    u.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    u.add_argument("overrides", nargs="*", help="key=value overrides of SOM's config, e.g. params.actor_every=1")
    w = sub.add_parser("walk", help="drive DR'd Go2s with an exported policy through ONNX Runtime (JSON)")
    w.add_argument("--policy", type=Path, required=True,
                   help="exported .onnx (ONNX Runtime, contract-checked) or a training checkpoint .pt (any algo)")
    w.add_argument("--vx", type=float, default=0.5)
    w.add_argument("--vy", type=float, default=0.0)
    w.add_argument("--yaw", type=float, default=0.0)
    w.add_argument("--envs", type=int, default=16)
    w.add_argument("--seconds", type=float, default=20.0)
    w.add_argument("--pushes", action="store_true", help="keep the training DR's pushes on")
    w.add_argument("--table", action="store_true", help="run the whole walk bar (every command, +pushes)")
    w.add_argument("--seed", type=int, default=123)
    w.add_argument("--noise-std", type=float, default=0.0,
                   help="feed noise ~ N(0, s^2) to the policy's noise input (0: the daemon's repeatable action)")
    w.add_argument("--video", type=Path, help="MP4 of env 0 with the command/velocity overlay (rendered after the run)")
    w.add_argument("overrides", nargs="*", help="key=value overrides of the env config, e.g. env.terrain=rough")
    gp = sub.add_parser("gpu", help="the CUDA device check (resumable JSON; --device cpu rehearses it)")
    gp.add_argument("--out", type=Path, default=Path("bench_out/gpu"))
    gp.add_argument("--device", default="cuda")
    gp.add_argument("--worlds", default="1024,4096,8192")
    gp.add_argument("--train-minutes", type=float, default=3.0)
    gp.add_argument("--update-seconds", type=float, default=20.0)
    gp.add_argument("--config", default="quadruped/som_gpu.yaml")
    gp.add_argument("--stages", default="", help="comma-separated subset: trajectory_match, env_throughput, "
                    "som_update_rate, short_training (default: all)")
    gp.add_argument("overrides", nargs="*", help="key=value overrides of the training config")
    c = sub.add_parser("curves", help="learning curves of finished runs against wall-clock time (PNG + JSON)")
    c.add_argument("--runs", required=True, help="comma-separated run folders")
    c.add_argument("--out", type=Path, default=Path("bench_out/curves.png"))
    c.add_argument("--x", choices=("minutes", "steps"), default="minutes",
                   help="x axis: wall-clock minutes (runs made side by side) or env steps (runs from other VMs)")
    args = p.parse_args(argv)
    if args.suite == "curves":
        from som_robot.bench.curves import compare_runs

        print(json.dumps(compare_runs([Path(r) for r in args.runs.split(",")], args.out, x=args.x), indent=2))
        return
    if args.suite == "gpu":
        from som_robot.bench.gpu import run_gpu_check

        res = run_gpu_check(args.out, args.device, [int(w) for w in args.worlds.split(",")], args.train_minutes,
                            args.config, args.overrides, args.update_seconds,
                            [x for x in args.stages.split(",") if x])
        print(json.dumps({k: v for k, v in res.items() if k != "short_training"}, indent=2, default=str))
        return
    if args.suite == "update":
        from som_robot.bench.update import update_costs

        res = update_costs(args.rounds, args.per_round, args.threads, som_overrides=args.overrides)
        print(json.dumps({k: v for k, v in res.items() if k != "all_ms"}, indent=2))
        return
    if args.suite == "walk":
        from sim.go2.config import load_go2_config
        from som_robot.bench.walk import as_batch_policy, table_markdown, walk_table, walk_test
        from som_robot.contract import ContractError

        env_cfg = load_go2_config(overrides=[o.removeprefix("env.") for o in args.overrides])
        try:  # loads the policy and checks its contract against the env's
            policy = as_batch_policy(args.policy, env_cfg, args.noise_std)
        except ContractError as e:
            raise SystemExit(f"bench walk: {e} (a run's env.* settings go on the command line, e.g. "
                             "env.action_scale=0.5)") from None
        if args.table:
            table = {**walk_table(policy, env_cfg, args.envs, args.seconds, args.seed), "noise_std": args.noise_std}
            print(table_markdown(table))
            print(json.dumps(table, indent=2))
        else:
            print(json.dumps(walk_test(policy, env_cfg, (args.vx, args.vy, args.yaw), args.envs, args.seconds,
                                       args.pushes, args.seed, video=args.video),
                             indent=2))
        return
    if args.suite == "onnx":
        from som_robot.bench.onnx_latency import onnx_latency

        print(json.dumps(onnx_latency(args.policy, args.n), indent=2))
        return
    if args.suite == "quadruped":
        from som_robot.bench.quadruped import run_quadruped_bench

        res = run_quadruped_bench(args.out, args.steps, args.minutes, args.overrides, args.walk_envs,
                                  args.walk_seconds, not args.no_render, config=args.config)
        print((args.out / "walk_table.md").read_text())
        print(json.dumps({"all_pass": res["walk"]["all_pass"],
                          "final_tracking_lin_vel_error": res["final_tracking_lin_vel_error"]}, indent=2))
        print(f"wrote {args.out / 'results.json'}, learning_curve.png, walk_strip.png, walk.mp4")
        return
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
