"""Env throughput next to raw batched mj_step throughput, same model, envs, threads and states.

    python -m sim.go2.bench --num-envs 64 --steps 100 --nthread 2

All numbers come from one process. After a 0.5 s warm-up (spawn drop and landing), in chunks of 10
policy steps: the batch state is saved and the env is stepped, timing the batch's physics calls inside
it ("physics share": the rest is the env's torch side) and recording every torque it sent; then the
saved state is restored and the recorded torques are replayed open loop in one `Batch.rollout` call
(the same model, envs, threads and, up to auto-resets and pushes, trajectories, with no Python in the
loop), and the env continues from where it was. Alternating chunks let a noisy VM's load drift hit both
sides alike. The solver cost depends strongly on the
motion (elliptic cones, impratio 100), so compare numbers from the same call only.

    python -m sim.go2.bench --backend warp --device cuda --num-envs 4096

times the same env on MuJoCo Warp instead: env steps/s after the same warm-up, with the
device synchronised around the timed loop (on a CPU-only machine it runs on Warp's CPU device,
which is far slower than MuJoCo C; the figure that matters is the CUDA one).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from sim.go2 import constants as C
from sim.go2.config import Go2EnvConfig
from sim.go2.env import Go2VecEnv

__all__ = ["measure_throughput", "measure_warp_throughput"]


def measure_throughput(num_envs: int = 64, steps: int = 100, nthread: int = 2, action_std: float = 0.3,
                       cfg: Go2EnvConfig | None = None, seed: int = 0, chunk: int = 10) -> dict[str, float]:
    """Env steps/s (policy steps × envs) vs open-loop batched physics steps/s of the same torques, timed in
    alternating chunks of `chunk` policy steps so a noisy machine's drift hits both sides alike."""
    env = Go2VecEnv(cfg, num_envs=num_envs, seed=seed, nthread=nthread, backend="cpu")
    env.want_log = False  # as in training: the runner asks for the log scalars only on logged steps
    gen = torch.Generator().manual_seed(seed)
    acts = [torch.clamp(action_std * torch.randn(num_envs, C.NUM_JOINTS, generator=gen), -1, 1)
            for _ in range(steps)]
    env.reset(seed)
    for _ in range(int(round(0.5 / C.CTRL_DT))):  # warm-up: leave the spawn transient
        env.step(torch.zeros(num_envs, C.NUM_JOINTS))
    batch, sim_step, phys_s, torques = env.sim.batch, env.sim.step, [0.0], []

    def timed_step(nstep: int = 1) -> None:
        torques.extend([env.sim.ctrl.numpy().copy()] * nstep)  # ctrl = kp·q*, held for the nstep physics steps
        t = time.perf_counter()
        sim_step(nstep)
        phys_s[0] += time.perf_counter() - t

    env.sim.step = timed_step  # type: ignore[method-assign]
    env_s = raw_s = 0.0
    for k in range(0, steps, chunk):
        start = batch.state.copy()
        torques.clear()
        t0 = time.perf_counter()
        for a in acts[k:k + chunk]:
            env.step(a)
        env_s += time.perf_counter() - t0
        end = batch.state.copy()
        control = np.ascontiguousarray(np.stack(torques, axis=1))  # (N, chunk·DECIMATION, nu)
        batch.state[:] = start
        t0 = time.perf_counter()
        batch.rollout(control.shape[1], control, record=("qpos",))
        raw_s += time.perf_counter() - t0
        batch.state[:] = end
    env.sim.step = sim_step  # type: ignore[method-assign]
    env.close()
    env_sps = num_envs * steps / env_s
    raw_phys = num_envs * steps * C.DECIMATION / raw_s
    return {
        "num_envs": num_envs, "nthread": nthread, "steps": steps,
        "env_steps_per_s": env_sps,
        "env_physics_steps_per_s": env_sps * C.DECIMATION,
        "env_physics_share": phys_s[0] / env_s,
        "raw_physics_steps_per_s": raw_phys,
        "env_over_raw": env_sps * C.DECIMATION / raw_phys,
    }


def measure_warp_throughput(num_envs: int = 64, steps: int = 100, device: str = "cuda", action_std: float = 0.3,
                            cfg: Go2EnvConfig | None = None, seed: int = 0) -> dict[str, float]:
    """Env steps/s (policy steps × envs) of the MuJoCo Warp env; compilation and the spawn drop excluded."""
    env = Go2VecEnv(cfg, num_envs=num_envs, seed=seed, device=device, backend="warp")
    dev = env.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    acts = [torch.clamp(action_std * torch.randn(num_envs, C.NUM_JOINTS, generator=gen, device=dev), -1, 1)
            for _ in range(steps)]
    env.reset(seed)
    for _ in range(int(round(0.5 / C.CTRL_DT))):
        env.step(torch.zeros(num_envs, C.NUM_JOINTS, device=dev))
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for a in acts:
        env.step(a)
    sync()
    env_s = time.perf_counter() - t0
    env.close()
    env_sps = num_envs * steps / env_s
    return {"backend": "warp", "device": str(dev), "num_envs": num_envs, "steps": steps,
            "env_steps_per_s": env_sps, "env_physics_steps_per_s": env_sps * C.DECIMATION}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--nthread", type=int, default=2)
    p.add_argument("--action-std", type=float, default=0.3)
    p.add_argument("--terrain", choices=["flat", "rough"], default="flat")
    p.add_argument("--backend", choices=["cpu", "warp"], default="cpu")
    p.add_argument("--device", default="cuda", help="warp backend only: cuda | cpu (Warp's CPU device)")
    a = p.parse_args()
    cfg = Go2EnvConfig(terrain=a.terrain)
    if a.backend == "warp":
        res = measure_warp_throughput(a.num_envs, a.steps, a.device, a.action_std, cfg)
    else:
        res = measure_throughput(a.num_envs, a.steps, a.nthread, a.action_std, cfg)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}, indent=2))


if __name__ == "__main__":
    main()
