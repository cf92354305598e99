"""Export a trained policy to a self-describing ONNX file: SOM's one-step map, or SAC's Gaussian.

Graph: (obs (B, obs_dim), noise (B, act_dim)) → action (B, act_dim).
- SOM: clip(z − u(z, 0, 1 | norm(obs))), where norm is the agent's empirical observation normaliser when
  it has one (its statistics become graph constants, so the runtime feeds the contract's observation as is).
- SAC: clip(tanh(μ(s) + σ(s)·z)), the same reparameterised sample SAC trains with.
The noise is an input so the runtime decides: zeros for a repeatable action, N(0, I) for the
stochastic policy. Both graphs have the same inputs, so the daemon and `bench walk` run either, and a
side-by-side comparison judges both learners through ONNX Runtime. The contract goes into metadata_props.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn

from som_robot.algos.sac import SAC, GaussianActor
from som_robot.algos.som import SOM
from som_robot.contract import METADATA_KEY, PolicyContract

__all__ = ["OneStepPolicy", "GaussianPolicy", "export_onnx", "EXPORTABLE", "INPUT_NAMES", "OUTPUT_NAMES"]

INPUT_NAMES = ("obs", "noise")
OUTPUT_NAMES = ("action",)
EXPORTABLE = (SOM, SAC)  # the agents `export_onnx` writes (the runner exports these at the end of a run)


class OneStepPolicy(nn.Module):
    """The exported module: observation normaliser, one MeanFlow evaluation, clip to the action box.

    The one-step sample always evaluates u(z, r=0, t=1 | s), so the two time embeddings are constants.
    Their contribution to the first layer, W_emb · emb + b, is folded into that layer's bias: the graph
    holds only [norm(obs), z] → MLP, with no sinusoids or embedding networks left to run on the robot.
    """

    def __init__(self, agent: SOM, action_clip: float = 1.0) -> None:
        super().__init__()
        # CPU copies: the agent may live on CUDA, and it keeps training (its normaliser must not move or alias).
        actor = copy.deepcopy(agent.actor).to("cpu")
        norm = getattr(agent, "obs_norm", None)
        self.norm = copy.deepcopy(norm).to("cpu") if norm is not None else nn.Identity()
        self.action_clip = action_clip
        layers = list(actor.net)
        first = layers[0]
        assert isinstance(first, nn.Linear)
        with torch.no_grad():
            one, zero = torch.ones(1, 1), torch.zeros(1, 1)
            emb = torch.cat([actor.emb_t(one), actor.emb_gap(one - zero)], dim=-1)[0]  # t = 1, t − r = 1
            n_in = first.in_features - emb.shape[0]
            folded = nn.Linear(n_in, first.out_features)
            folded.weight.copy_(first.weight[:, :n_in])
            folded.bias.copy_(first.bias + first.weight[:, n_in:] @ emb)
        self.net = nn.Sequential(folded, *layers[1:])

    def forward(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        u = self.net(torch.cat([self.norm(obs), noise], dim=-1))
        return (noise - u).clamp(-self.action_clip, self.action_clip)


class GaussianPolicy(nn.Module):
    """SAC's actor as the runtime sees it: tanh(μ + σ·noise), clipped to the action box (noise 0 = its mean)."""

    def __init__(self, actor: GaussianActor, action_clip: float = 1.0) -> None:
        super().__init__()
        self.actor = copy.deepcopy(actor).to("cpu")
        self.action_clip = action_clip

    def forward(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        mean, std = self.actor.mean_std(obs)
        return torch.tanh(mean + std * noise).clamp(-self.action_clip, self.action_clip)


def export_onnx(agent: SOM | SAC, contract: PolicyContract, path: str | Path,
                extra_metadata: dict[str, str] | None = None) -> Path:
    """Write `path` (single file, dynamic batch) and embed `contract`; returns the path."""
    import onnx

    if agent.obs_dim != contract.obs_dim or agent.act_dim != contract.act_dim:
        raise ValueError(f"agent dims ({agent.obs_dim}, {agent.act_dim}) do not match the contract "
                         f"({contract.obs_dim}, {contract.act_dim})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(agent, SOM):
        module: nn.Module = OneStepPolicy(agent, contract.action_clip)
        algo = "som"
    elif isinstance(agent, SAC):
        module, algo = GaussianPolicy(agent.actor, contract.action_clip), "sac"
    else:
        raise TypeError(f"no ONNX export for {type(agent).__name__}")
    module = module.to("cpu").eval()
    dummy = (torch.zeros(1, contract.obs_dim), torch.zeros(1, contract.act_dim))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation notice
        torch.onnx.export(module, dummy, str(path), input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                          dynamic_axes={"obs": {0: "batch"}, "noise": {0: "batch"}, "action": {0: "batch"}},
                          opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    meta = {METADATA_KEY: contract.to_json(), "som_robot.algo": algo, **(extra_metadata or {})}
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
