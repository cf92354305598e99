"""Worker launched by torchrun in test_distributed.py: trains briefly, dumps per-rank fingerprints."""

import json
import sys
from pathlib import Path

import torch

from som_robot import distributed as dist
from som_robot.envs import GymVecEnv
from som_robot.experiment import load_experiment
from som_robot.runners import OffPolicyRunner
from som_robot.runners.off_policy import shard_envs


def main() -> None:
    out, algo = Path(sys.argv[1]), sys.argv[2]
    exp = load_experiment(f"gym/{algo}.yaml", [
        "runner.env=Pendulum-v1", "runner.num_envs=2", "runner.total_steps=400", "runner.warmup_steps=100",
        "runner.batch_size=32", "runner.buffer_size=1000", "runner.eval_every=200", "runner.eval_episodes=1",
        "runner.progress=false", "runner.utd=1.0", "params.hidden=[32, 32]", f"runner.run_dir={out}",
        "runner.device=cpu", *sys.argv[3:]])
    dist.init_from_env(torch.device("cpu"))
    env = GymVecEnv("Pendulum-v1", shard_envs(exp.runner.num_envs))
    ev = GymVecEnv("Pendulum-v1", 1) if dist.is_main() else None
    runner = OffPolicyRunner(exp, env, ev, out / "run")
    summary = runner.learn()
    params = torch.cat([p.detach().reshape(-1) for m in vars(runner.algo).values()
                        if isinstance(m, torch.nn.Module) for p in m.parameters()])
    rec = {"rank": dist.rank(), "world": dist.world_size(), "steps": summary["steps"],
           "updates": summary["updates"], "param_sum": float(params.double().sum()),
           "param_abs": float(params.double().abs().sum()), "buffer_sum": float(runner.buffer.obs.double().sum()),
           "buffer_size": len(runner.buffer)}
    (out / f"rank{dist.rank()}.json").write_text(json.dumps(rec))
    dist.shutdown()


if __name__ == "__main__":
    main()
