"""The off-policy runner with a real Gymnasium MuJoCo env: artefacts, checkpoints and resume."""

import json
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from som_robot.config import ConfigError
from som_robot.envs import GymVecEnv
from som_robot.experiment import load_experiment
from som_robot.runners import OffPolicyRunner

TINY = ["params.hidden=[32, 32]", "runner.env=Hopper-v5", "runner.num_envs=2", "runner.warmup_steps=100",
        "runner.batch_size=32", "runner.buffer_size=5000", "runner.eval_every=200", "runner.eval_episodes=2",
        "runner.log_every=100", "runner.progress=false", "runner.utd=1.0"]


def make_runner(algo: str, run_dir: Path, steps: int, extra: list[str] = ()) -> OffPolicyRunner:
    overrides = TINY + [f"runner.total_steps={steps}"] + list(extra)
    if algo == "som":
        overrides.append("params.num_proposals=8")
    if algo == "nc_lql":
        overrides.append("params.num_levels=3")
    exp = load_experiment(f"gym/{algo}.yaml", overrides)
    return OffPolicyRunner(exp, GymVecEnv("Hopper-v5", 2), GymVecEnv("Hopper-v5", 2), run_dir)


def test_run_folder_has_config_metrics_tensorboard_and_checkpoint(tmp_path: Path) -> None:
    for algo in ("som", "nc_lql", "sac"):
        run = tmp_path / algo
        summary = make_runner(algo, run, 400).learn()
        assert summary["steps"] == 400 and summary["updates"] == 300  # (400 − 100 warm-up) × utd
        assert (run / "config.yaml").read_text().startswith(f"algo: {algo}")
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert [x["step"] for x in lines] == [200, 400]
        assert list((run / "tb").glob("events.out.tfevents.*"))
        assert (run / "checkpoints" / "last.pt").exists()
    tags = EventAccumulator(str(tmp_path / "som" / "tb")).Reload().Tags()["scalars"]
    assert {"losses/critic", "losses/actor", "policy/collect_spread"} <= set(tags), tags  # SOM's log_scalars


def test_resume_continues_exactly_where_it_stopped(tmp_path: Path) -> None:
    """Train 400 steps straight vs. 200 + resume 200: same step count and same buffer contents."""
    extra = ["runner.utd=0.5"]
    a = make_runner("sac", tmp_path / "a", 200, extra)
    a.learn()
    b = make_runner("sac", tmp_path / "b", 400, extra)
    b.load(tmp_path / "a" / "checkpoints" / "last.pt")
    assert b.step == 200 and len(b.buffer) == 200
    before = b.algo.critic.q1[0].weight.detach().clone()
    summary = b.learn()
    assert summary["steps"] == 400 and len(b.buffer) == 400
    assert b.algo.num_updates == (400 - 100) // 2
    assert not torch.equal(before, b.algo.critic.q1[0].weight)
    assert [h["step"] for h in b.history] == [200, 400]  # history carried over


def test_checkpoint_rng_streams_are_cpu_byte_tensors_and_restore_exactly(tmp_path: Path) -> None:
    """Every RNG stream is saved as the CPU ByteTensor torch requires on restore (CUDA's too, when present),
    and a resumed runner draws exactly what the saved one would have drawn next."""
    a = make_runner("sac", tmp_path / "a", 200)
    a.learn()
    ckpt = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    for key in ("gen", "torch_rng"):
        assert ckpt[key].dtype == torch.uint8 and ckpt[key].device.type == "cpu", key
    assert "cuda_rng" in ckpt and (ckpt["cuda_rng"] is None) == (not torch.cuda.is_available())
    expect_gen = torch.rand(4, generator=a.gen)
    torch.set_rng_state(ckpt["torch_rng"])
    expect_global = torch.rand(4)
    b = make_runner("sac", tmp_path / "b", 400)
    b.load(tmp_path / "a" / "checkpoints" / "last.pt")
    assert torch.equal(torch.rand(4, generator=b.gen), expect_gen)
    assert torch.equal(torch.rand(4), expect_global)


def test_updates_return_device_tensors_not_host_floats() -> None:
    """`update` must not synchronise a CUDA device: every metric stays a 0-d tensor until the runner logs it."""
    from som_robot.algos import ALGOS
    from som_robot.storage import Batch

    b = Batch(torch.randn(16, 5), torch.rand(16, 2) * 2 - 1, torch.randn(16), torch.randn(16, 5), torch.zeros(16))
    for name in ("som", "nc_lql", "sac"):
        exp = load_experiment(f"gym/{name}.yaml", ["params.hidden=[16, 16]"])
        agent = ALGOS[exp.algo][1](5, 2, exp.params)
        for _ in range(2):  # SOM's delayed actor: both kinds of step
            metrics = agent.update(b)
        assert metrics and all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in metrics.values()), name
        assert not any(v.requires_grad for v in metrics.values()), name


def test_overlapped_env_stepping_keeps_every_transition_and_update(tmp_path: Path) -> None:
    """overlap_env: the env steps in a worker thread while the updates run; the counts match the serial loop,
    every transition reaches the buffer, and the steps after warm-up really ran off the main thread."""
    import threading

    runner = make_runner("sac", tmp_path / "o", 400, ["runner.overlap_env=true"])
    threads: set[str] = set()
    step = runner.env.step

    def spy(act: torch.Tensor):  # noqa: ANN202
        threads.add(threading.current_thread().name)
        return step(act)

    runner.env.step = spy  # type: ignore[method-assign]
    summary = runner.learn()
    assert summary["steps"] == 400 and summary["updates"] == 300 and len(runner.buffer) == 400
    assert threading.main_thread().name in threads and any(t.startswith("env") for t in threads)


def test_n_step_returns_reach_the_buffer_and_the_update(tmp_path: Path) -> None:
    """runner.n_step=3: every env step eventually lands as one transition (all but the ≤ n·N still pending),
    holding 1..3 rewards, and the updates run on them."""
    runner = make_runner("sac", tmp_path / "n", 400, ["runner.n_step=3"])
    summary = runner.learn()
    assert summary["steps"] == 400 and summary["updates"] == 300
    assert 400 - 3 * 2 <= len(runner.buffer) <= 400
    m = runner.buffer.nstep[: len(runner.buffer)]
    assert set(m.unique().tolist()) <= {1.0, 2.0, 3.0} and (m == 3.0).float().mean() > 0.5


def test_mirror_stores_each_transition_and_its_go2_mirror_image(tmp_path: Path) -> None:
    """runner.mirror=true on the Go2: the buffer holds each transition and, right after its batch, the mirror
    image (sim.go2.symmetry) with the same reward and done (1-step, so the batches line up; the n-step folder's
    output goes through the same `_store`); an env without a mirror refuses the switch instead of training on
    one copy silently."""
    from sim.go2.env import Go2VecEnv
    from sim.go2.symmetry import GO2_MIRROR

    n = 4
    over = ["params.hidden=[32, 32]", "runner.num_envs=4", "runner.warmup_steps=80", "runner.batch_size=32",
            "runner.eval_every=0", "runner.log_every=80", "runner.progress=false", "runner.total_steps=160",
            "runner.mirror=true", "runner.n_step=1", "env.episode_length_s=0.5"]
    exp = load_experiment("quadruped/sac.yaml", over)
    env = Go2VecEnv(exp.env, num_envs=n, seed=0, nthread=1)
    runner = OffPolicyRunner(exp, env, None, tmp_path / "m")
    runner.learn()
    size = len(runner.buffer)
    assert size == 2 * 160
    b = runner.buffer
    rows = torch.arange(size).view(-1, 2 * n)
    orig, mirr = rows[:, :n].reshape(-1), rows[:, n:].reshape(-1)
    assert torch.allclose(GO2_MIRROR.obs(b.obs[orig]), b.obs[mirr])
    assert torch.allclose(GO2_MIRROR.obs(b.next_obs[orig]), b.next_obs[mirr])
    assert torch.allclose(GO2_MIRROR.act(b.act[orig]), b.act[mirr])
    assert torch.equal(b.rew[orig], b.rew[mirr]) and torch.equal(b.done[orig], b.done[mirr])
    assert not torch.allclose(b.obs[orig], b.obs[mirr])  # the images differ from the originals
    env.close()

    gym_exp = load_experiment("gym/sac.yaml", TINY + ["runner.mirror=true"])
    with pytest.raises(ConfigError, match="runner.mirror"):
        OffPolicyRunner(gym_exp, GymVecEnv("Hopper-v5", 2), None, tmp_path / "g")


def test_per_env_exploration_noise_is_drawn_per_env_and_redrawn_at_episode_starts(tmp_path: Path) -> None:
    """runner.explore_std=[lo, hi]: each env acts with the algorithm's action plus N(0, σ_i²) noise (clipped to the
    box), σ_i ~ U[lo, hi] drawn per env and redrawn when its episode ends; the buffer holds the noisy actions."""
    runner = make_runner("sac", tmp_path / "e", 600, ["runner.explore_std=[0.1, 0.6]", "runner.utd=0.2"])
    first = runner.explore_std.clone()
    assert first.shape == (2, 1) and bool(((first >= 0.1) & (first <= 0.6)).all()) and first[0] != first[1]
    clean: list[torch.Tensor] = []
    act = runner.algo.act

    def spy(obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        a = act(obs, deterministic)
        clean.append(a.clone())
        return a

    runner.algo.act = spy  # type: ignore[method-assign]
    stds: list[torch.Tensor] = []
    draw = runner._draw_explore_std

    def watch(envs: torch.Tensor) -> None:
        draw(envs)
        stds.append(runner.explore_std.clone())

    runner._draw_explore_std = watch  # type: ignore[method-assign]
    runner.learn()
    stored = runner.buffer.act[100:600].reshape(-1, 2, runner.env.act_dim)  # after the 100 warm-up steps
    noise = stored - torch.stack(clean[: len(stored)])
    inside = torch.stack(clean[: len(stored)]).abs() < 0.5  # far from the box: the noise was not clipped there
    for e in range(2):
        sigma = torch.stack(stds)[:, e, 0]
        assert len(sigma.unique()) > 2, "a Hopper env ends several episodes in 500 steps: σ redrawn each time"
        assert bool(((sigma >= 0.1) & (sigma <= 0.6)).all())
        n = noise[:, e][inside[:, e]]
        assert 0.08 < float(n.std()) < 0.65 and abs(float(n.mean())) < 0.05
    assert bool((stored.abs() <= 1.0).all())
    with pytest.raises(ConfigError, match="explore_std"):
        make_runner("sac", tmp_path / "bad", 200, ["runner.explore_std=[0.5, 0.1]"])


def test_checkpoint_carries_the_go2_curriculum_level(tmp_path: Path) -> None:
    """A resume keeps the command curriculum's level (it restarted at 0 before and re-climbed for minutes);
    the Gymnasium env has no task state and its checkpoints carry none."""
    from sim.go2.env import Go2VecEnv

    over = ["params.hidden=[32, 32]", "runner.num_envs=2", "runner.progress=false", "runner.eval_every=0"]
    exp = load_experiment("quadruped/sac.yaml", over)
    env = Go2VecEnv(exp.env, num_envs=2, seed=0, nthread=1)
    assert env.cmd_level == 0.0  # the curriculum starts at forward commands
    env.cmd_level = 0.75
    path = OffPolicyRunner(exp, env, None, tmp_path / "a").save()
    fresh = Go2VecEnv(exp.env, num_envs=2, seed=1, nthread=1)
    OffPolicyRunner(exp, fresh, None, tmp_path / "b").load(path)
    assert fresh.cmd_level == 0.75
    fresh.reset(seed=3)  # what `learn` does first: it must not lower the level again
    assert fresh.cmd_level == 0.75
    env.close()
    fresh.close()
    gym = make_runner("sac", tmp_path / "g", 200)
    assert "env" not in torch.load(gym.save(), map_location="cpu", weights_only=False)
