"""Gymnasium MuJoCo benchmark: final returns, learning curves, per-action inference time, update cost.

Every number in one output file comes from one invocation on one machine, so ratios
(SOM vs. the 20-step flow sampler, SOM vs. NC-LQL) are measured side by side.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from som_robot.algos import SOM
from som_robot.bench.timing import interleaved_us, median_us, paired_ratio
from som_robot.envs import GymVecEnv
from som_robot.experiment import load_experiment, run_experiment
from som_robot.nn.meanflow import adaptive_l2, meanflow_target
from som_robot.runners import make_algo
from som_robot.storage import Batch

__all__ = ["run_gym_bench", "time_inference", "time_updates", "plot_curves"]


def time_inference(agents: dict[str, Any], obs_dim: int, n: int = 2000) -> dict[str, dict[str, float]]:
    """Batch-1 CPU latency of one action per algorithm, single thread, same process and run.

    som: one network evaluation (acting); som_best_of_N: N candidates + critic scoring (evaluation);
    flow_20step: the same MeanFlow network Euler-integrated with 20 steps (multi-step reference);
    nc_lql: the 20-gradient-step annealed Langevin sampler; sac: one Gaussian-actor pass.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    obs = torch.randn(1, obs_dim)
    out: dict[str, dict[str, float]] = {}
    try:
        for name, agent in agents.items():
            if not isinstance(agent, SOM):
                out[name] = median_us(lambda a=agent: a.act(obs, deterministic=False), n)
                continue
            z = torch.randn(1, agent.act_dim)

            @torch.no_grad()
            def flow20(a: SOM = agent, z: torch.Tensor = z) -> torch.Tensor:
                return a.actor.sample_ode(obs, z, steps=20).clamp(-1, 1)

            stats, raw = interleaved_us({
                name: lambda a=agent: a.act(obs, deterministic=False),
                f"som_best_of_{agent.cfg.eval_candidates}": lambda a=agent: a.act(obs, deterministic=True),
                "flow_20step": flow20}, n)
            out.update(stats)
            out["ratio_flow20_over_som"] = {"value": paired_ratio(raw["flow_20step"], raw[name])}
    finally:
        torch.set_num_threads(threads)
    return out


def time_updates(agents: dict[str, Any], obs_dim: int, act_dim: int, batch: int = 256, n: int = 10
                 ) -> dict[str, Any]:
    """Milliseconds per update at `batch`, plus SOM's cost split (score estimate vs. JVP) on the same nets."""
    b = Batch(torch.randn(batch, obs_dim), torch.rand(batch, act_dim) * 2 - 1, torch.randn(batch),
              torch.randn(batch, obs_dim), torch.zeros(batch))
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "batch": batch}
    for name, agent in agents.items():
        out[f"{name}_ms"] = median_us(lambda a=agent: a.update(b), n, warmup=2)["median_us"] / 1e3
        if isinstance(agent, SOM):
            out["som_profile_ms"] = _som_profile(agent, b, n)
    return out


def _som_profile(agent: SOM, b: Batch, n: int) -> dict[str, float]:
    r, t, mu, sigma, beta, a_t = agent.noised_batch(b)

    def score() -> torch.Tensor:
        return agent.estimate_score(b.obs, a_t, mu, sigma)

    v = agent.teacher(a_t, t, beta, score())

    def jvp_step() -> None:
        u, u_tgt = meanflow_target(lambda z, tt: agent.actor(b.obs, z, r, tt), a_t, r, t, v)
        adaptive_l2(u, u_tgt).backward()

    def plain_step() -> None:
        adaptive_l2(agent.actor(b.obs, a_t, r, t), v).backward()

    def critic_step() -> None:
        agent.critic_loss(b)[0].backward()

    return {k: median_us(f, n, warmup=2)["median_us"] / 1e3 for k, f in
            (("mc_score", score), ("actor_jvp_fwd_bwd", jvp_step), ("actor_plain_fwd_bwd", plain_step),
             ("critic_fwd_bwd", critic_step))}


def plot_curves(curves: dict[str, dict[str, list[list[tuple[int, float]]]]], path: Path) -> None:
    """One panel per env; mean ± std over seeds of the evaluation return against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(curves)
    fig, axes = plt.subplots(1, len(envs), figsize=(4.5 * len(envs), 3.6), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        for algo, runs in curves[env].items():
            if not runs:
                continue
            steps = sorted({s for run in runs for s, _ in run})
            mat = np.array([[dict(run).get(s, np.nan) for s in steps] for run in runs], dtype=float)
            mean, std = np.nanmean(mat, 0), np.nanstd(mat, 0)
            ax.plot(steps, mean, label=algo)
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_gym_bench(algos: Sequence[str], envs: Sequence[str], steps: int, seeds: int, out: Path,
                  overrides: Sequence[str] = (), algo_overrides: dict[str, Sequence[str]] | None = None,
                  timing_n: int = 2000) -> dict[str, Any]:
    """Train every (env, algo, seed), then time inference and updates; write JSON + PNG into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    algo_overrides = algo_overrides or {}
    results: dict[str, Any] = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                                           "cpu_threads": torch.get_num_threads(), "node": platform.node()},
                               "steps": steps, "seeds": seeds, "returns": {}, "timing": {}}
    curves: dict[str, dict[str, list]] = {}
    for env in envs:
        results["returns"][env], curves[env] = {}, {}
        agents: dict[str, Any] = {}
        dims = None
        for algo in algos:
            finals, runs = [], []
            for seed in range(seeds):
                ov = [*overrides, *algo_overrides.get(algo, ()), f"runner.env={env}",
                      f"runner.total_steps={steps}", f"runner.seed={seed}", f"runner.run_dir={out / 'runs'}",
                      f"runner.run_name={env}__{algo}__s{seed}", "runner.device=cpu"]
                exp = load_experiment(f"gym/{algo}.yaml", ov)
                if exp.runner.warmup_steps >= steps:  # short runs: keep a 10 % random warm-up
                    exp = load_experiment(f"gym/{algo}.yaml", [*ov, f"runner.warmup_steps={steps // 10}"])
                summary = run_experiment(exp)
                finals.append(summary["final_return"])
                run_dir = out / "runs" / f"{env}__{algo}__s{seed}"
                hist = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
                runs.append([(h["step"], h["eval_return"]) for h in hist])
                ckpt = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
                if dims is None:
                    probe = GymVecEnv(env, 1)
                    dims = (probe.obs_dim, probe.act_dim)
                    probe.close()
                agent = make_algo(exp, dims[0], dims[1], torch.device("cpu"), seed)
                agent.load_state_dict(ckpt["algo"])
                agents[algo] = agent
            results["returns"][env][algo] = {"mean": float(np.mean(finals)), "std": float(np.std(finals)),
                                             "per_seed": finals}
            curves[env][algo] = runs
        results["timing"][env] = {"inference_batch1_cpu": time_inference(agents, dims[0], timing_n),
                                  "update": time_updates(agents, dims[0], dims[1])}
        (out / "results.json").write_text(json.dumps(results, indent=2))
        plot_curves(curves, out / "learning_curves.png")  # after every env: partial runs still leave a plot
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results

