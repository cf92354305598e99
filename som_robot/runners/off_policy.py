"""The off-policy loop shared by SOM, NC-LQL and SAC.

The runner owns the env, the replay buffer, logging and the filesystem; the
algorithm owns the math. `learn()` reads like the pseudocode:
collect → buffer.add → algo.update → log → evaluate → checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from som_robot import distributed as dist
from som_robot.algos import ALGOS, Algorithm
from som_robot.algos.common import clip_action, uniform_actions
from som_robot.config import ConfigError, dump_yaml
from som_robot.envs import VecEnv
from som_robot.envs.factory import env_contract, make_vec_env
from som_robot.envs.registry import NO_TASKS, TaskCatalogue
from som_robot.export import EXPORTABLE, export_onnx
from som_robot.runners.config import ExperimentConfig, RunnerConfig
from som_robot.storage import NStepFolder, ReplayBuffer

__all__ = ["OffPolicyRunner", "resolve_device", "make_algo", "evaluate", "run_experiment", "shard_envs"]


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_algo(exp: ExperimentConfig, obs_dim: int, act_dim: int, device: torch.device, seed: int) -> Algorithm:
    """Instantiate the configured algorithm."""
    return ALGOS[exp.algo][1](obs_dim, act_dim, exp.params, device=device, seed=seed)


@torch.no_grad()
def evaluate(policy: Callable[[torch.Tensor], torch.Tensor], env: VecEnv, episodes: int, seed: int) -> list[float]:
    """Returns of `episodes` episodes, taking each env's first episode per round (no bias to short ones)."""
    returns: list[float] = []
    rnd = 0
    while len(returns) < episodes:
        obs = env.reset(seed=seed + 1000 * rnd)
        acc = torch.zeros(env.num_envs, device=env.device)
        finished = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)
        while not bool(finished.all()):
            res = env.step(policy(obs))
            acc += torch.where(finished, 0.0, res.reward)
            finished |= res.terminated | res.truncated
            obs = res.obs
        returns.extend(acc.tolist())
        rnd += 1
    return returns[:episodes]


class OffPolicyRunner:
    """Runs one experiment: collection, updates, evaluation, tensorboard, checkpoints, resume."""

    def __init__(self, exp: ExperimentConfig, env: VecEnv, eval_env: VecEnv | None, run_dir: Path,
                 algo: Algorithm | None = None) -> None:
        self.exp, self.cfg = exp, exp.runner
        self.env, self.eval_env = env, eval_env
        self.device = env.device
        self.run_dir = Path(run_dir)
        self.rank, self.world = dist.rank(), dist.world_size()
        self.main = self.rank == 0  # only rank 0 logs, evaluates and writes files
        self.algo = algo or make_algo(exp, env.obs_dim, env.act_dim, self.device, self.cfg.seed)
        for module in vars(self.algo).values():  # identical start on every rank
            if isinstance(module, torch.nn.Module):
                dist.broadcast_module(module)
        self.seed = dist.rank_seed(self.cfg.seed)
        torch.manual_seed(self.seed)  # independent sampling noise per rank
        self.mirror = getattr(env, "mirror", None) if self.cfg.mirror else None
        if self.cfg.mirror and self.mirror is None:
            raise ConfigError(f"runner.mirror: env {self.cfg.env!r} has no mirror (a symmetry of its MDP)")
        self.buffer = ReplayBuffer(env.obs_dim, env.act_dim, self.cfg.buffer_size, self.device, self.seed)
        self.gen = torch.Generator(device=self.device).manual_seed(self.seed + 1)
        self.explore_std = torch.zeros(env.num_envs, 1, device=self.device)  # per env, redrawn at episode starts
        if self.cfg.explore_std[1] > 0:  # off: the generator's draws (warm-up actions) stay as before
            self._draw_explore_std(torch.ones(env.num_envs, dtype=torch.bool, device=self.device))
        self.step = 0  # env steps so far, summed over envs and ranks
        self.update_credit = 0.0
        self.history: list[dict[str, Any]] = []
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            dump_yaml(exp.to_dict(), self.run_dir / "config.yaml")

    # --------------------------------------------------------------------------------------------
    def learn(self) -> dict[str, Any]:
        """Train until `total_steps`; returns a summary (final and best evaluation return)."""
        cfg, n = self.cfg, self.env.num_envs
        writer = SummaryWriter(str(self.run_dir / "tb")) if self.main else None
        obs = self.env.reset(seed=self.seed)
        metrics: dict[str, float] = {}
        ep_returns: list[float] = []
        next_log, next_eval, next_ckpt = self._next(cfg.log_every), self._next(cfg.eval_every), \
            self._next(cfg.checkpoint_every)
        t0, s0 = time.perf_counter(), self.step
        # overlap_env: the policy acts, then the env steps in a worker thread while this thread runs the updates
        # that the previous transitions earned; the new transitions join the buffer after (one step of lag).
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="env") if cfg.overlap_env else None
        folder = NStepFolder(cfg.n_step, self.exp.params.gamma, n, self.env.obs_dim, self.env.act_dim,
                             self.device) if cfg.n_step > 1 else None  # pending transitions are not checkpointed
        bar = tqdm(total=cfg.total_steps, initial=self.step, disable=not (cfg.progress and self.main), unit="step",
                   desc=f"{self.exp.algo}:{cfg.env}", dynamic_ncols=True)
        stop = False
        while self.step < cfg.total_steps and not stop:
            learning = self.step >= cfg.warmup_steps
            if not learning:
                act = uniform_actions(n, self.env.act_dim, self.device, self.gen)
            else:
                act = self.algo.act(obs, deterministic=False)
                if self.cfg.explore_std[1] > 0:
                    act = clip_action(act + self.explore_std * torch.randn(act.shape, device=self.device,
                                                                           generator=self.gen))
            if hasattr(self.env, "want_log"):  # the env builds its log scalars only for the steps logged
                self.env.want_log = self.step + n * self.world >= next_log
            can_update = learning and len(self.buffer) >= cfg.batch_size
            if can_update and pool is not None:  # env physics (GIL released) beside the updates
                pending = pool.submit(self.env.step, act)
                metrics = self._updates(n) or metrics
                res = pending.result()
            else:
                res = self.env.step(act)
            if folder is None:
                self._store(obs, act, res.reward, res.final_obs, res.terminated)
            else:
                *tr, m = folder.step(obs, act, res.reward, res.final_obs, res.terminated, res.truncated)
                self._store(*tr, nstep=m)
            obs = res.obs
            if self.cfg.explore_std[1] > 0:
                self._draw_explore_std(res.terminated | res.truncated)
            self.step += n * self.world
            bar.update(n * self.world)
            ep_returns.extend(res.episode_returns)
            if can_update and pool is None:
                metrics = self._updates(n) or metrics
            if self.step >= next_log:
                next_log += cfg.log_every
                sps = (self.step - s0) / max(time.perf_counter() - t0, 1e-9)
                if writer is not None:
                    extra = self.algo.log_scalars(obs) if hasattr(self.algo, "log_scalars") else {}
                    self._log(writer, metrics | extra | res.log | {"charts/sps": sps}, ep_returns)
                    post = {}
                    if "tracking/lin_vel_error" in res.log:  # the figure that matters for a joystick task
                        post = {"track": f"{res.log['tracking/lin_vel_error']:.3f}",
                                "level": f"{res.log.get('curriculum/level', 1.0):.2f}"}
                    if cfg.max_minutes:  # the bar's ETA counts steps; the budget ends the run first
                        post["budget_left"] = f"{cfg.max_minutes - (time.perf_counter() - t0) / 60:.0f}min"
                    if post:
                        bar.set_postfix(post, refresh=False)
                ep_returns = []
                if cfg.max_minutes:  # wall-clock budget, decided by rank 0 at a step every rank reaches
                    stop = dist.broadcast_flag(time.perf_counter() - t0 > 60.0 * cfg.max_minutes, self.device)
            if cfg.eval_every and self.step >= next_eval:
                next_eval += cfg.eval_every
                if writer is not None:
                    ret = self._evaluate(writer)
                    bar.set_postfix(eval=f"{ret:.1f}")
                    stop = stop or (cfg.stop_return is not None and ret >= cfg.stop_return)
                stop = dist.broadcast_flag(stop, self.device)
            if cfg.checkpoint_every and self.step >= next_ckpt:
                next_ckpt += cfg.checkpoint_every
                if self.main:
                    self.save()
        bar.close()
        if pool is not None:
            pool.shutdown()
        summary: dict[str, Any] = {"algo": self.exp.algo, "env": cfg.env, "seed": cfg.seed, "steps": self.step,
                                   "updates": getattr(self.algo, "num_updates", 0), "world_size": self.world}
        if writer is None:  # not rank 0: nothing to evaluate or write
            return summary | {"rank": self.rank}
        if not self.history or self.history[-1]["step"] != self.step:
            self._evaluate(writer)
        self.save()
        writer.close()
        summary |= {"final_return": self.history[-1]["eval_return"],
                    "best_return": max(h["eval_return"] for h in self.history), "wall_s": time.perf_counter() - t0}
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    def _draw_explore_std(self, envs: torch.Tensor) -> None:
        """New per-env action-noise stds U[lo, hi] for the envs whose episode starts now (`envs`: bool mask)."""
        lo, hi = self.cfg.explore_std
        draw = lo + (hi - lo) * torch.rand(self.explore_std.shape, device=self.device, generator=self.gen)
        self.explore_std = torch.where(envs[:, None], draw, self.explore_std)

    def _store(self, obs: torch.Tensor, act: torch.Tensor, rew: torch.Tensor, next_obs: torch.Tensor,
               done: torch.Tensor, nstep: torch.Tensor | None = None) -> None:
        """Transitions into the buffer, and with `mirror` their mirror images too (same reward, same done)."""
        self.buffer.add(obs, act, rew, next_obs, done, nstep=nstep)
        if self.mirror is not None:
            m = self.mirror
            self.buffer.add(m.obs(obs), m.act(act), rew, m.obs(next_obs), done, nstep=nstep)

    def _updates(self, n: int) -> dict[str, Any]:
        """The gradient updates that `n` new env steps earn at the configured UTD; the last update's metrics."""
        metrics: dict[str, Any] = {}
        self.update_credit += self.cfg.utd * n
        while self.update_credit >= 1.0:
            metrics = self.algo.update(self.buffer.sample(self.cfg.batch_size))
            self.update_credit -= 1.0
        return metrics

    def _next(self, every: int) -> int:
        return (self.step // every + 1) * every if every else 1 << 62

    def _log(self, writer: SummaryWriter, scalars: dict[str, float], ep_returns: list[float]) -> None:
        for k, v in scalars.items():
            writer.add_scalar(k, v, self.step)
        if ep_returns:
            writer.add_scalar("charts/episodic_return", float(np.mean(ep_returns)), self.step)

    def _evaluate(self, writer: SummaryWriter) -> float:
        env = self.eval_env or self.env
        rets = evaluate(lambda o: self.algo.act(o, deterministic=True), env, self.cfg.eval_episodes,
                        seed=10_000 + self.cfg.seed)
        mean = float(np.mean(rets))
        writer.add_scalar("charts/eval_return", mean, self.step)
        rec = {"step": self.step, "eval_return": mean, "eval_std": float(np.std(rets)), "time": time.time()}
        self.history.append(rec)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.eval_env is None:  # evaluation reset the training env
            self.env.reset(seed=self.cfg.seed + self.step)
        return mean

    # --------------------------------------------------------------------------------------------
    def save(self, path: Path | None = None) -> Path:
        """Checkpoint the algorithm, the counters, the RNG streams and (optionally) the buffer."""
        path = path or self.run_dir / "checkpoints" / "last.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        ckpt = {"algo": self.algo.state_dict(), "step": self.step, "update_credit": self.update_credit,
                "history": self.history, "gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "explore_std": self.explore_std.cpu(), "config": self.exp.to_dict()}
        if hasattr(self.env, "state_dict"):  # task state such as a command curriculum's level
            ckpt["env"] = self.env.state_dict()
        if self.cfg.checkpoint_buffer:
            ckpt["buffer"] = self.buffer.state_dict()
        tmp = path.with_suffix(".tmp")
        torch.save(ckpt, tmp)
        tmp.replace(path)  # atomic: a crash mid-write never leaves a torn checkpoint
        return path

    def load(self, path: Path) -> None:
        """Resume from a checkpoint written by `save`."""
        # map to the CPU: RNG states must stay CPU ByteTensors (Generator.set_state / set_rng_state refuse
        # anything else), and load_state_dict copies tensors onto the parameters' own device anyway.
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        self.algo.load_state_dict(ckpt["algo"])
        self.step, self.update_credit = int(ckpt["step"]), float(ckpt["update_credit"])
        self.history = list(ckpt["history"])
        self.gen.set_state(ckpt["gen"])
        if "explore_std" in ckpt:
            self.explore_std = ckpt["explore_std"].to(self.device)
        torch.set_rng_state(ckpt["torch_rng"])
        if ckpt.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        if "env" in ckpt and hasattr(self.env, "load_state_dict"):
            self.env.load_state_dict(ckpt["env"])
        if "buffer" in ckpt:
            self.buffer.load_state_dict(ckpt["buffer"])


def run_experiment(exp: ExperimentConfig, resume: Path | None = None, tasks: TaskCatalogue = NO_TASKS
                   ) -> dict[str, Any]:
    """Build the envs `exp` names (a Gymnasium id, or a robot task of `tasks`), train, return the summary."""
    cfg: RunnerConfig = exp.runner
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    device = resolve_device(cfg.device)
    distributed = dist.init_from_env(device)
    if device.type == "cuda" and distributed:
        device = torch.device("cuda", torch.cuda.current_device())
    name = cfg.run_name or f"{cfg.env}__{exp.algo}__s{cfg.seed}__{time.strftime('%Y%m%d-%H%M%S')}"
    env = make_vec_env(cfg.env, exp.env, shard_envs(cfg.num_envs), device, dist.rank_seed(cfg.seed), tasks)
    eval_env = make_vec_env(cfg.env, exp.env, min(cfg.eval_episodes, 10), device, 10_000 + cfg.seed,
                            tasks) \
        if dist.is_main() else None
    runner = OffPolicyRunner(exp, env, eval_env, Path(cfg.run_dir) / name)
    if resume is not None:
        runner.load(resume)
    try:
        summary = runner.learn()
        policy = export_policy(runner.algo, cfg.env, runner.step, tasks, runner.run_dir / "policy.onnx", exp.env) \
            if dist.is_main() else None
        if policy is not None:
            summary["policy"] = str(policy)
            (runner.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary
    finally:
        env.close()
        if eval_env is not None:
            eval_env.close()
        dist.shutdown()


def export_policy(algo: Algorithm, env: str, steps: int, tasks: TaskCatalogue, path: Path,
                  env_cfg: object = None) -> Path | None:
    """`path` as ONNX with the contract of the task trained with `env_cfg`, and the run's env and step count in
    its metadata; None for a task without a contract (Gymnasium benchmarks) or an algorithm without an export
    (NC-LQL)."""
    contract = env_contract(env, tasks, env_cfg)
    if contract is None or not isinstance(algo, EXPORTABLE):
        return None
    return export_onnx(algo, contract, path, {"som_robot.env": env, "som_robot.steps": str(steps)})


def shard_envs(num_envs: int) -> int:
    """This rank's share of `num_envs` (the config counts envs over all ranks)."""
    world = dist.world_size()
    if num_envs % world:
        raise ValueError(f"runner.num_envs={num_envs} is not divisible by the {world} torchrun processes")
    return num_envs // world
