"""The CUDA device check: Warp env throughput, CUDA-vs-MuJoCo-C trajectory match, SOM update rate at the
GPU config, and a short SOM training run with a walk test of its exported policy, into one JSON.

    python -m som_robot.bench gpu --out $OUT                                  # on the lent GPU machine
    python -m som_robot.bench gpu --device cpu --worlds 8,16 --train-minutes 0.5 --out /tmp/gpu_rehearsal

Resumable: each stage's result is written to `gpu_check.json` as soon as it finishes and a later call
with the same --out skips the stages already there (a device call that ran out of time resumes where it
stopped). `scripts/device_check.sh` brings the wheels the GPU image lacks; the CPU rehearsal above runs
the same code with Warp's CPU device standing in for CUDA.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["run_gpu_check"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def env_throughput(worlds: Sequence[int], device: torch.device, steps: int = 50) -> dict[str, Any]:
    """Go2 env steps/s on MuJoCo Warp (and physics steps/s = ×10) at each world count, DR on, random actions."""
    from sim.go2.config import load_go2_config
    from sim.go2.env import Go2VecEnv

    out: dict[str, Any] = {}
    for n in worlds:
        env = Go2VecEnv(load_go2_config(), num_envs=n, seed=0, device=device, backend="warp")
        env.reset(0)
        acts = torch.rand(steps, n, 12, device=env.device) * 2 - 1
        for a in acts[:5]:  # compile / capture / first resets
            env.step(a)
        _sync(env.device)
        t0 = time.perf_counter()
        for a in acts:
            env.step(a)
        _sync(env.device)
        dt = time.perf_counter() - t0
        out[str(n)] = {"env_steps_per_s": n * steps / dt, "physics_steps_per_s": 10 * n * steps / dt,
                       "overflow_worlds": env.overflow_worlds, "capture": getattr(env.sim, "capture", "none")}
        env.close()
    return out


def trajectory_match(device: torch.device, steps: int = 50) -> dict[str, float]:
    """Max |qpos|, |obs| and |reward| gaps between MuJoCo C and Warp on `device`, DR off, same actions."""
    from sim.go2.config import DomainRandConfig, Go2EnvConfig
    from sim.go2.env import Go2VecEnv

    cfg = Go2EnvConfig(domain_rand=DomainRandConfig(enabled=False))
    cpu = Go2VecEnv(cfg, num_envs=4, seed=0, nthread=1, backend="cpu")
    warp = Go2VecEnv(cfg, num_envs=4, seed=0, device=device, backend="warp")
    cpu.reset(0)
    warp.reset(0)
    warp.sim.qpos[:] = cpu.sim.qpos.to(warp.device)
    warp.sim.qvel[:] = cpu.sim.qvel.to(warp.device)
    warp.commands[:] = cpu.commands.to(warp.device)
    g, a = torch.Generator().manual_seed(0), torch.zeros(4, 12)
    dq = dobs = drew = 0.0
    for _ in range(steps):
        a = (0.8 * a + 0.3 * torch.randn(4, 12, generator=g)).clamp(-1, 1)
        rc, rw = cpu.step(a), warp.step(a.to(warp.device))
        dq = max(dq, float((cpu.sim.qpos - warp.sim.qpos.cpu().double()).abs().max()))
        dobs = max(dobs, float((rc.obs - rw.obs.cpu()).abs().max()))
        drew = max(drew, float((rc.reward - rw.reward.cpu()).abs().max()))
    cpu.close()
    warp.close()
    return {"max_qpos_gap": dq, "max_obs_gap": dobs, "max_reward_gap": drew, "steps": steps,
            "pass": dq < 1e-4 and dobs < 1e-4 and drew < 1e-5}


def update_rate(device: torch.device, config: str, seconds: float = 20.0) -> dict[str, Any]:
    """SOM updates/s at the GPU config's batch size and widths (the replay batch is random but fixed)."""
    from sim.go2.obs import OBS_DIM
    from som_robot.algos.som import SOM
    from som_robot.experiment import load_experiment
    from som_robot.storage import Batch

    exp = load_experiment(config)
    agent = SOM(OBS_DIM, 12, exp.params, device=device)
    n = exp.runner.batch_size
    b = Batch(torch.randn(n, OBS_DIM, device=device), torch.rand(n, 12, device=device) * 2 - 1,
              torch.randn(n, device=device), torch.randn(n, OBS_DIM, device=device), torch.zeros(n, device=device))
    for _ in range(4):
        agent.update(b)
    _sync(device)
    t0, k = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        agent.update(b)
        k += 1
        if k % 10 == 0:
            _sync(device)
    _sync(device)
    return {"updates_per_s": k / (time.perf_counter() - t0), "batch_size": n, "hidden": list(exp.params.hidden),
            "num_proposals": exp.params.num_proposals, "config": config}


def short_training(device: torch.device, config: str, minutes: float, out: Path,
                   overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Train SOM for `minutes` on `device`, export, and walk-test the policy at 0.5 m/s (MuJoCo C, ONNX)."""
    from som_robot.bench.curves import compare_runs
    from som_robot.bench.walk import walk_test
    from som_robot.experiment import load_experiment, run_experiment

    ov = [f"runner.max_minutes={minutes}", f"runner.device={device}", f"runner.run_dir={out}",
          "runner.run_name=gpu_train", "runner.progress=false", *overrides]
    exp = load_experiment(config, ov)
    summary = run_experiment(exp)
    curves = compare_runs([out / "gpu_train"], out / "gpu_learning_curve.png")["gpu_train"]
    walk = walk_test(Path(summary["policy"]), exp.env, (0.5, 0.0, 0.0), num_envs=8, seconds=10.0)
    return {"summary": summary, "walk_vx_0.5": walk, "curves": curves}


def run_gpu_check(out: Path, device: str = "cuda", worlds: Sequence[int] = (1024, 4096, 8192),
                  train_minutes: float = 3.0, config: str = "quadruped/som_gpu.yaml",
                  train_overrides: Sequence[str] = (), update_seconds: float = 20.0,
                  only: Sequence[str] = ()) -> dict[str, Any]:
    """Every stage (or those in `only`) not yet in `out/gpu_check.json`, in order, saving after each."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "gpu_check.json"
    res: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    dev = torch.device(device)
    import mujoco
    import warp

    res.setdefault("machine", {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                               "mujoco": mujoco.__version__, "warp": warp.__version__,
                               "mujoco_from": str(Path(mujoco.__file__).parent),
                               "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                               "device": device})
    stages: dict[str, Callable[[], Any]] = {
        "trajectory_match": lambda: trajectory_match(dev),
        "env_throughput": lambda: env_throughput(worlds, dev),
        "som_update_rate": lambda: update_rate(dev, config, update_seconds),
        "short_training": lambda: short_training(dev, config, train_minutes, out, train_overrides),
    }
    for name, fn in stages.items():
        if only and name not in only:
            continue
        if name in res:
            print(f"[gpu check] {name}: done earlier, skipped", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            res[name] = fn() | {"wall_s": time.perf_counter() - t0}
        except Exception as e:  # noqa: BLE001 - record the failure, keep the other stages' figures
            res[name + "_error"] = f"{type(e).__name__}: {e}"
            print(f"[gpu check] {name} failed: {e}", flush=True)
            continue
        path.write_text(json.dumps(res, indent=2, default=str))
        print(f"[gpu check] {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    path.write_text(json.dumps(res, indent=2, default=str))
    return res
