"""Go2 joystick benchmark: train SOM, then judge the exported policy as the robot would run it.

One invocation trains (`configs/quadruped/som.yaml`, or `--config quadruped/sac.yaml`, plus overrides,
optionally under a wall-clock budget), then drives fresh Go2 envs through ONNX Runtime with the exported
`policy.onnx` over the walk bar (`bench.walk.BAR`: forward, fast, diagonal back, turning, standing, and
again with pushes), renders a PNG strip and an MP4 of one env, and plots the learning curve and tracking error.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering; must precede the first mujoco import

import json  # noqa: E402
import platform  # noqa: E402
from collections.abc import Sequence
from pathlib import Path
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from som_robot.bench.walk import fixed_command_cfg, table_markdown, walk_table  # noqa: E402
from som_robot.experiment import load_experiment, run_experiment  # noqa: E402

__all__ = ["run_quadruped_bench", "render_strip", "read_scalars"]


def render_strip(policy_path: Path, env_cfg: Any, out: Path, vx: float = 0.5, frames: int = 8,
                 every: int = 12, seed: int = 7, video: Path | None = None) -> Path:
    """A PNG strip of one Go2 under the policy (offscreen), one frame every `every` policy steps; with `video`,
    also an MP4 of the same rollout with the command/velocity overlay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.go2.env import Go2VecEnv
    from sim.go2.obs import base_kinematics
    from sim.go2.render import Frame, Go2Renderer
    from som_robot.bench.walk import as_batch_policy, write_walk_video

    policy = as_batch_policy(policy_path, env_cfg)
    env = Go2VecEnv(fixed_command_cfg(env_cfg, (vx, 0.0, 0.0), pushes=False), num_envs=1, seed=seed, nthread=1)
    poses = []
    obs = env.reset(seed=seed).numpy()
    for _ in range(frames * every):
        obs = env.step(torch.as_tensor(policy(obs), dtype=torch.float32)).obs.numpy()
        _, lin, ang, _ = base_kinematics(env.sim.qpos, env.sim.qvel)
        poses.append((env.sim.qpos[0].numpy().copy(), np.array([lin[0, 0], lin[0, 1], ang[0, 2]], dtype=float)))
    env.close()
    with Go2Renderer(env_cfg.terrain, 320, 240) as r:
        images = [r.render(Frame(t=i * env.dt, qpos=q), overlay=False) for i, (q, _) in enumerate(poses)
                  if i % every == 0]
    plt.imsave(out, np.concatenate(images, axis=1))
    if video is not None:
        write_walk_video(poses, (vx, 0.0, 0.0), video, env.dt, env_cfg.terrain)
    return out


def read_scalars(tb_dir: Path, tags: Sequence[str]) -> dict[str, list[tuple[int, float]]]:
    """(step, value) series for `tags` from a run's tensorboard event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    have = set(acc.Tags()["scalars"])
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags if t in have}


def _plot(history: list[dict[str, Any]], scalars: dict[str, list[tuple[int, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    axes[0].plot([h["step"] for h in history], [h["eval_return"] for h in history], "o-")
    axes[0].set(title="evaluation return (best-of-N, training DR)", xlabel="env steps")
    for tag, ax in (("tracking/lin_vel_error", axes[1]), ("curriculum/level", axes[2]), ("env/terminated", axes[3])):
        if tag in scalars:
            s, v = zip(*scalars[tag], strict=True)
            ax.plot(s, v)
        ax.set(title=tag, xlabel="env steps")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_quadruped_bench(out: Path, steps: int, minutes: float, overrides: Sequence[str] = (),
                        walk_envs: int = 16, walk_seconds: float = 20.0, render: bool = True,
                        config: str = "quadruped/som.yaml") -> dict[str, Any]:
    """Train, walk-test and render; writes results.json, walk_table.md, learning_curve.png, walk_strip.png and
    walk.mp4. `config` picks the learner (quadruped/sac.yaml: SAC on the same task, bar and outputs)."""
    out.mkdir(parents=True, exist_ok=True)
    ov = [f"runner.total_steps={steps}", f"runner.max_minutes={minutes}", f"runner.run_dir={out}",
          "runner.run_name=train", *overrides]
    exp = load_experiment(config, ov)
    summary = run_experiment(exp)
    run = out / "train"
    history = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    scalars = read_scalars(run / "tb", ["tracking/lin_vel_error", "curriculum/level", "env/terminated", "charts/sps"])
    _plot(history, scalars, out / "learning_curve.png")
    # SOM and SAC export ONNX (the bar then runs what the robot would run); NC-LQL is judged by its checkpoint
    policy = Path(summary["policy"]) if "policy" in summary else run / "checkpoints" / "last.pt"
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "node": platform.node(),
                    "cpu_threads": torch.get_num_threads()},
        "train": summary, "eval_history": history,
        "final_tracking_lin_vel_error": scalars.get("tracking/lin_vel_error", [(0, float("nan"))])[-1][1],
        "walk": walk_table(policy, exp.env, walk_envs, walk_seconds)}
    (out / "walk_table.md").write_text(table_markdown(results["walk"]) + "\n")
    if policy.suffix == ".onnx":
        from som_robot.bench.onnx_latency import onnx_latency

        results["onnx_latency_batch1_1thread"] = onnx_latency(policy)
    if render:
        results["strip"] = str(render_strip(policy, exp.env, out / "walk_strip.png", video=out / "walk.mp4"))
        results["video"] = str(out / "walk.mp4")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results
