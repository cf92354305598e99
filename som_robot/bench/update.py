"""Cost of one gradient update: SOM at the quadruped config against SAC of the same widths, side by side.

Both agents live in one process and are timed in interleaved rounds on the same fixed batch, so machine
load and thermal state hit them alike (these VMs vary 2-3x between sessions); the figure that matters is
the ratio of medians. SAC is timed twice: as configured for the quadruped (LayerNorm critics, like SOM's)
and as plain SAC (ReLU MLPs), the stricter reference.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any

import torch

from som_robot.algos.sac import SAC, SACConfig
from som_robot.algos.som import SOM
from som_robot.bench.timing import interleaved_us
from som_robot.experiment import load_experiment
from som_robot.storage import Batch

__all__ = ["update_costs"]


def _batch(obs_dim: int, act_dim: int, n: int, gen: torch.Generator) -> Batch:
    return Batch(torch.randn(n, obs_dim, generator=gen), torch.rand(n, act_dim, generator=gen) * 2 - 1,
                 torch.randn(n, generator=gen), torch.randn(n, obs_dim, generator=gen), torch.zeros(n))


def update_costs(rounds: int = 7, per_round: int = 20, threads: int = 0, som_config: str = "quadruped/som.yaml",
                 sac_config: str = "quadruped/sac.yaml", som_overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Median ms per update of SOM and SAC (interleaved rounds of `per_round` updates), and their ratios.
    `som_overrides` (key=value) change SOM's config only, e.g. `params.actor_every=1`: SAC stays the reference."""
    from sim.go2.obs import OBS_DIM

    if threads:
        torch.set_num_threads(threads)
    som_exp, sac_exp = load_experiment(som_config, som_overrides), load_experiment(sac_config)
    batch_size = som_exp.runner.batch_size
    obs_dim, act_dim = OBS_DIM, 12
    agents: dict[str, Any] = {
        "som": SOM(obs_dim, act_dim, som_exp.params),
        "sac": SAC(obs_dim, act_dim, dataclasses.replace(sac_exp.params, hidden=som_exp.params.hidden)),
        "sac_plain": SAC(obs_dim, act_dim, SACConfig(hidden=som_exp.params.hidden)),
    }
    batch = _batch(obs_dim, act_dim, batch_size, torch.Generator().manual_seed(0))
    for a in agents.values():  # warm-up (allocator, first-call paths); an even count keeps SOM's actor phase
        for _ in range(4):
            a.update(batch)

    def block(a: Any) -> None:  # one timed sample: per_round updates
        for _ in range(per_round):
            a.update(batch)

    _, raw_us = interleaved_us({k: lambda a=a: block(a) for k, a in agents.items()}, rounds, warmup=0)
    times = {k: [t / per_round / 1e3 for t in v] for k, v in raw_us.items()}  # ms per update, per round
    ms = {k: statistics.median(v) for k, v in times.items()}
    p = som_exp.params
    return {"som_ms": ms["som"], "sac_ms": ms["sac"], "sac_plain_ms": ms["sac_plain"],
            "ratio": ms["som"] / ms["sac"], "ratio_vs_plain_sac": ms["som"] / ms["sac_plain"],
            "batch_size": batch_size, "hidden": list(p.hidden), "num_proposals": p.num_proposals,
            "target_candidates": p.target_candidates, "actor_every": p.actor_every,
            "activation": p.activation, "critic_activation": p.critic_activation or p.activation,
            "critic_layer_norm": p.critic_layer_norm, "torch_threads": torch.get_num_threads(),
            "rounds": rounds, "per_round": per_round, "all_ms": times}
