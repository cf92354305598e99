"""Walk test: drive fresh domain-randomised Go2s with an exported policy, as the robot would run it.

The policy goes through ONNX Runtime with its contract checked against the training contract (the
daemon's path), on `Go2VecEnv` with the training DR (pushes optional) and a fixed command. A fallen
env restarts, so averages include getting going again, as a field test would. `walk_table` runs the
issue's bar: forward, fast, diagonal back, turning, standing, and all of them again with pushes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["BAR", "fixed_command_cfg", "walk_test", "walk_table", "table_markdown", "as_batch_policy",
           "write_walk_video"]

# (name, command, checks): the walk bar on 16 envs x 20 s per command, DR on. A check is
# (metric, "min" | "max", threshold); `falls_per_minute <= 0.5` applies to every row, with and without pushes.
BAR: tuple[tuple[str, tuple[float, float, float], tuple[tuple[str, str, float], ...]], ...] = (
    ("vx 0.5", (0.5, 0.0, 0.0), (("mean_vx", "min", 0.40), ("lin_vel_error", "max", 0.15))),
    ("vx 1.0", (1.0, 0.0, 0.0), (("mean_vx", "min", 0.80),)),
    ("vx -0.5 vy 0.3", (-0.5, 0.3, 0.0), (("lin_vel_error", "max", 0.20),)),
    ("vx -0.5 vy -0.3", (-0.5, -0.3, 0.0), (("lin_vel_error", "max", 0.20),)),
    ("yaw 0.8", (0.0, 0.0, 0.8), (("ang_vel_error", "max", 0.25),)),
    ("yaw -0.8", (0.0, 0.0, -0.8), (("ang_vel_error", "max", 0.25),)),
    ("stand", (0.0, 0.0, 0.0), (("mean_speed_xy", "max", 0.05),)),
)
MAX_FALLS_PER_MINUTE = 0.5
# |action| at or above this counts as on the box bound (`action_saturation`): a policy that lives there is
# bang-bang at its joints, which the PD gains, the motors and the state estimator all feel on hardware.
SATURATED = 0.99


def fixed_command_cfg(env_cfg: Any, cmd: Sequence[float], pushes: bool) -> Any:
    """The env config with one constant command (no curriculum, no resampling) and pushes on or off."""
    vx, vy, yaw = (float(c) for c in cmd)
    c = dataclasses.replace(env_cfg.command, lin_vel_x=(vx, vx), lin_vel_y=(vy, vy), ang_vel_yaw=(yaw, yaw),
                            zero_below=0.0, stand_prob=0.0, curriculum=False, resample_interval_s=1e6)
    dr = env_cfg.domain_rand
    if not pushes:
        dr = dataclasses.replace(dr, push_interval_s=0.0)
    elif dr.push_interval_s == 0.0:
        dr = dataclasses.replace(dr, push_interval_s=10.0)
    return dataclasses.replace(env_cfg, command=c, domain_rand=dr, episode_length_s=1e6)


BatchPolicy = Callable[[np.ndarray], np.ndarray]  # (N, obs_dim) float32 → (N, 12) actions in [-1, 1]


def onnx_batch_policy(path: Path, env_cfg: Any = None, noise_std: float = 0.0, seed: int = 0) -> BatchPolicy:
    """An exported policy through ONNX Runtime, its contract checked against the one `env_cfg` trains (None: the
    defaults, e.g. the action box), one call per env (as onboard).
    `noise_std` > 0 feeds noise ~ N(0, noise_std²) instead of zeros: the stochastic policy that collected
    the training data (SOM: `collect_z_scale`; SAC: 1), to tell a bad mode from a bad policy."""
    from sim.go2.contract import go2_contract
    from som_robot.policy_runtime import OnnxPolicy

    policy = OnnxPolicy(path, expected=go2_contract(env_cfg))
    rng, dim = np.random.default_rng(seed), policy.contract.act_dim

    def noise() -> np.ndarray | None:  # None: the runtime's zeros
        return noise_std * rng.standard_normal(dim) if noise_std > 0.0 else None

    return lambda obs: np.stack([policy(o, noise()) for o in obs])


def checkpoint_batch_policy(path: Path, env_cfg: Any = None) -> BatchPolicy:
    """Any algorithm's training checkpoint (SAC, NC-LQL, SOM) acting deterministically in torch: NC-LQL has
    no ONNX export, and a mid-run checkpoint has none yet. Its run's contract is checked against `env_cfg`'s
    as an exported file's is (a run with another box, clock or foot lift would otherwise walk silently wrong)."""
    from sim.go2.contract import go2_contract
    from sim.tasks import ROBOT_TASKS
    from som_robot.envs.factory import env_contract
    from som_robot.experiment import load_checkpoint

    exp, algo, _ = load_checkpoint(path)
    trained = env_contract(exp.runner.env, ROBOT_TASKS, exp.env)
    assert trained is not None  # load_checkpoint refuses a run without a contract
    trained.check_matches(go2_contract(env_cfg))
    return lambda obs: algo.act(torch.as_tensor(obs), deterministic=True).numpy()


def as_batch_policy(policy: Path | BatchPolicy, env_cfg: Any = None, noise_std: float = 0.0) -> BatchPolicy:
    if callable(policy):
        return policy
    if Path(policy).suffix == ".pt":
        if noise_std > 0.0:
            raise ValueError("noise_std needs an exported .onnx policy (its noise is an input)")
        return checkpoint_batch_policy(policy, env_cfg)
    return onnx_batch_policy(Path(policy), env_cfg, noise_std)


def walk_test(policy: Path | BatchPolicy, env_cfg: Any, cmd: Sequence[float] = (0.5, 0.0, 0.0), num_envs: int = 16,
              seconds: float = 20.0, pushes: bool = False, seed: int = 123,
              video: Path | None = None, noise_std: float = 0.0) -> dict[str, Any]:
    """Mean achieved base-frame velocities, tracking errors and falls of `num_envs` Go2s at command `cmd`.
    `policy`: an exported .onnx, a training checkpoint .pt (deterministic torch act), or a batch callable.
    `video`: an MP4 of env 0 with the command/velocity overlay, rendered after the run from its logged poses.
    `noise_std`: the ONNX noise input's std (0: the repeatable action the daemon runs)."""
    from sim.go2.env import Go2VecEnv
    from sim.go2.obs import base_kinematics

    act_fn = as_batch_policy(policy, env_cfg, noise_std)
    env = Go2VecEnv(fixed_command_cfg(env_cfg, cmd, pushes), num_envs=num_envs, seed=seed, nthread=1)
    obs = env.reset(seed=seed).numpy()
    steps = int(round(seconds / env.dt))
    target = np.asarray(cmd, np.float64)
    vel_sum, speed_sum, lin_err, ang_err, falls = np.zeros(3), 0.0, 0.0, 0.0, 0
    at_upper, at_lower = np.zeros(env.act_dim), np.zeros(env.act_dim)  # per joint: a static offset pinned at a bound
    poses: list[tuple[np.ndarray, np.ndarray]] = []  # env 0's (qpos, velocity) per step, for `video`
    for _ in range(steps):
        act = act_fn(obs)
        at_upper += (act >= SATURATED).mean(axis=0)
        at_lower += (act <= -SATURATED).mean(axis=0)
        res = env.step(torch.as_tensor(act, dtype=torch.float32))
        _, lin_vel, ang_vel, _ = base_kinematics(env.sim.qpos, env.sim.qvel)  # base frame, after the step
        v = torch.cat([lin_vel[:, :2], ang_vel[:, 2:3]], dim=1).double().numpy()
        if video is not None:
            poses.append((env.sim.qpos[0].double().numpy().copy(), v[0].copy()))
        vel_sum += v.mean(axis=0)
        speed_sum += float(np.linalg.norm(v[:, :2], axis=1).mean())
        lin_err += float(np.linalg.norm(v[:, :2] - target[:2], axis=1).mean())
        ang_err += float(np.abs(v[:, 2] - target[2]).mean())
        falls += int(res.terminated.sum())
        obs = res.obs.numpy()
    env.close()
    if video is not None:
        write_walk_video(poses, cmd, video, env.dt, env_cfg.terrain)
    minutes = num_envs * seconds / 60.0
    return {"command": [float(c) for c in cmd], "pushes": pushes, "mean_vx": float(vel_sum[0] / steps),
            "mean_vy": float(vel_sum[1] / steps), "mean_yaw_rate": float(vel_sum[2] / steps),
            "mean_speed_xy": speed_sum / steps,
            "lin_vel_error": lin_err / steps, "ang_vel_error": ang_err / steps, "falls_per_minute": falls / minutes,
            "falls": falls, "env_minutes": minutes, "action_saturation": float((at_upper + at_lower).mean() / steps),
            "action_at_upper": (at_upper / steps).round(4).tolist(),
            "action_at_lower": (at_lower / steps).round(4).tolist()}


def write_walk_video(poses: Sequence[tuple[np.ndarray, np.ndarray]], cmd: Sequence[float], path: Path,
                     dt: float, terrain: str, fps: float = 25.0) -> int:
    """MP4 of logged (qpos, velocity) pairs, one every policy step, resampled to `fps`; returns frames written."""
    from sim.go2.render import Frame, render_mp4

    every = max(1, round(1.0 / (fps * dt)))
    c = tuple(float(x) for x in cmd)
    frames = [Frame(t=i * dt, qpos=q, cmd=c, vel=tuple(float(x) for x in v))  # type: ignore[arg-type]
              for i, (q, v) in enumerate(poses) if i % every == 0]
    return render_mp4(frames, path, 1.0 / (every * dt), terrain)


def _judge(row: dict[str, Any], checks: Sequence[tuple[str, str, float]]) -> list[str]:
    failed = [f"{m} {row[m]:.3f} {'<' if how == 'min' else '>'} {thr}" for m, how, thr in checks
              if (row[m] < thr if how == "min" else row[m] > thr)]
    if row["falls_per_minute"] > MAX_FALLS_PER_MINUTE:
        failed.append(f"falls_per_minute {row['falls_per_minute']:.2f} > {MAX_FALLS_PER_MINUTE}")
    return failed


def walk_table(policy: Path | BatchPolicy, env_cfg: Any, num_envs: int = 16, seconds: float = 20.0,
               seed: int = 123, noise_std: float = 0.0) -> dict[str, Any]:
    """Every row of `BAR`, without and with pushes; each row says whether it passes and why not."""
    policy = as_batch_policy(policy, env_cfg, noise_std)
    rows = []
    for pushes in (False, True):
        for name, cmd, checks in BAR:
            row = walk_test(policy, env_cfg, cmd, num_envs, seconds, pushes, seed)
            failed = _judge(row, checks if not pushes else ())  # with pushes the bar is the fall rate
            rows.append({"name": name + (" +pushes" if pushes else ""), **row, "pass": not failed,
                         "failed": failed})
    return {"rows": rows, "all_pass": all(r["pass"] for r in rows), "num_envs": num_envs, "seconds": seconds,
            "noise_std": noise_std}


def table_markdown(table: dict[str, Any]) -> str:
    """The walk table as Markdown (model cards, notes)."""
    lines = ["| command | mean vx | mean vy | mean yaw | xy err | yaw err | falls/min | at box | pass |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table["rows"]:
        lines.append(f"| {r['name']} | {r['mean_vx']:.2f} | {r['mean_vy']:.2f} | {r['mean_yaw_rate']:.2f} | "
                     f"{r['lin_vel_error']:.3f} | {r['ang_vel_error']:.3f} | {r['falls_per_minute']:.2f} | "
                     f"{r['action_saturation']:.0%} | "
                     f"{'yes' if r['pass'] else 'no: ' + '; '.join(r['failed'])} |")
    return "\n".join(lines)
