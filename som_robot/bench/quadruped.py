"""Go2 joystick benchmark: train SOM, then judge the exported policy as the robot would run it.

One invocation trains (`configs/quadruped/som.yaml` plus overrides, optionally under a wall-clock
budget), then drives fresh Go2 envs through ONNX Runtime with the exported `policy.onnx` over the
walk bar (`bench.walk.BAR`: forward, fast, diagonal back, turning, standing, and again with pushes),
renders a PNG strip of one env, and plots the learning curve and tracking error.
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
from som_robot.runners import load_experiment, run_experiment  # noqa: E402

__all__ = ["run_quadruped_bench", "render_strip", "read_scalars"]


def render_strip(policy_path: Path, env_cfg: Any, out: Path, vx: float = 0.5, frames: int = 8,
                 every: int = 12, seed: int = 7) -> Path:
    """A PNG strip of one Go2 under the policy (MUJOCO_GL=egl offscreen), one frame every `every` steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mujoco

    from sim.go2.contract import go2_contract
    from sim.go2.env import Go2VecEnv
    from som_robot.policy_runtime import OnnxPolicy

    policy = OnnxPolicy(policy_path, expected=go2_contract())
    env = Go2VecEnv(fixed_command_cfg(env_cfg, (vx, 0.0, 0.0), pushes=False), num_envs=1, seed=seed, nthread=1)
    data = mujoco.MjData(env.model)
    env.model.vis.headlight.ambient[:] = 0.4  # the scene has no lights of its own
    env.model.vis.headlight.diffuse[:] = 0.7
    opt = mujoco.MjvOption()
    opt.geomgroup[:] = 1  # visual meshes are stripped: draw the collision geoms (group 3)
    cam = mujoco.MjvCamera()
    cam.distance, cam.azimuth, cam.elevation = 1.6, 135.0, -20.0
    images = []
    with mujoco.Renderer(env.model, 240, 320) as renderer:
        obs = env.reset(seed=seed).numpy()
        for i in range(frames * every):
            obs = env.step(torch.from_numpy(policy(obs[0])[None])).obs.numpy()
            if i % every == 0:
                data.qpos[:], data.qvel[:] = env.sim.qpos[0].numpy(), env.sim.qvel[0].numpy()
                mujoco.mj_forward(env.model, data)
                cam.lookat[:] = data.qpos[:3]
                renderer.update_scene(data, cam, opt)
                images.append(renderer.render().copy())
    env.close()
    strip = np.concatenate(images, axis=1)
    plt.imsave(out, strip)
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
                        walk_envs: int = 16, walk_seconds: float = 20.0, render: bool = True) -> dict[str, Any]:
    """Train, walk-test and render; writes results.json, walk_table.md, learning_curve.png and walk_strip.png."""
    out.mkdir(parents=True, exist_ok=True)
    ov = [f"runner.total_steps={steps}", f"runner.max_minutes={minutes}", f"runner.run_dir={out}",
          "runner.run_name=train", *overrides]
    exp = load_experiment("quadruped/som.yaml", ov)
    summary = run_experiment(exp)
    run = out / "train"
    history = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    scalars = read_scalars(run / "tb", ["tracking/lin_vel_error", "curriculum/level", "env/terminated", "charts/sps"])
    _plot(history, scalars, out / "learning_curve.png")
    policy = Path(summary["policy"])
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "node": platform.node(),
                    "cpu_threads": torch.get_num_threads()},
        "train": summary, "eval_history": history,
        "final_tracking_lin_vel_error": scalars.get("tracking/lin_vel_error", [(0, float("nan"))])[-1][1],
        "walk": walk_table(policy, exp.env, walk_envs, walk_seconds)}
    (out / "walk_table.md").write_text(table_markdown(results["walk"]) + "\n")
    from som_robot.bench.onnx_latency import onnx_latency

    results["onnx_latency_batch1_1thread"] = onnx_latency(policy)
    if render:
        results["strip"] = str(render_strip(policy, exp.env, out / "walk_strip.png"))
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results
