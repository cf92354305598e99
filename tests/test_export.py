"""ONNX export of the one-step policy and the contract check at load time (real ONNX Runtime)."""

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from som_robot.algos import SAC, SOM, SACConfig, SOMConfig
from som_robot.contract import METADATA_KEY, ContractError, ObsTerm, PolicyContract
from som_robot.export import export_onnx
from som_robot.policy_runtime import OnnxPolicy, PolicyInputError
from som_robot.storage import Batch

JOINTS = tuple(f"{leg}_{j}_joint" for leg in ("FL", "FR", "RL", "RR") for j in ("hip", "thigh", "calf"))
CONTRACT = PolicyContract(
    robot="go2", joint_names=JOINTS, default_pose=(0.0, 0.9, -1.8) * 4, kp=(20.0,) * 12, kd=(0.5,) * 12,
    torque_limits=(23.7, 23.7, 45.43) * 4, action_scale=0.25,
    obs_terms=(ObsTerm("projected_gravity", 3), ObsTerm("gyro", 3, 0.25), ObsTerm("command", 3),
               ObsTerm("joint_pos", 12), ObsTerm("joint_vel", 12, 0.05), ObsTerm("last_action", 12)),
    control_dt=0.02, sim_dt=0.002)


def obs_and_noise(seed: int, n: int = 20) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """n (observation, noise) pairs of N(0, I) float32 at the contract's sizes."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield (rng.normal(size=CONTRACT.obs_dim).astype(np.float32),
               rng.normal(size=CONTRACT.act_dim).astype(np.float32))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[SOM, Path]:
    torch.manual_seed(0)
    agent = SOM(CONTRACT.obs_dim, CONTRACT.act_dim, SOMConfig(hidden=(64, 64)))
    torch.nn.init.normal_(agent.actor.net[-1].weight, std=0.3)  # a non-trivial policy
    path = export_onnx(agent, CONTRACT, tmp_path_factory.mktemp("onnx") / "policy.onnx")
    return agent, path


def test_onnx_matches_torch_and_embeds_the_contract(exported: tuple[SOM, Path]) -> None:
    agent, path = exported
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert PolicyContract.from_json(meta[METADATA_KEY]) == CONTRACT
    policy = OnnxPolicy(path, expected=CONTRACT)
    for obs, z in obs_and_noise(0):
        with torch.no_grad():
            ref = agent.actor.sample(torch.from_numpy(obs)[None], torch.from_numpy(z)[None]).clamp(-1, 1)[0]
        np.testing.assert_allclose(policy(obs, z), ref.numpy(), atol=1e-5)
    assert np.abs(policy(obs, 10 * z)).max() <= 1.0  # clipped inside the graph


@pytest.mark.parametrize(
    ("field", "value"),
    [("joint_names", JOINTS[3:6] + JOINTS[:3] + JOINTS[6:]),  # FL/FR swapped: the classic sim2real bug
     ("default_pose", (0.0, 0.8, -1.5) * 4), ("kp", (25.0,) * 12), ("action_scale", 0.5),
     ("control_dt", 0.01), ("obs_terms", CONTRACT.obs_terms[::-1])],
)
def test_load_refuses_a_mismatched_robot(exported: tuple[SOM, Path], field: str, value: object) -> None:
    robot = dataclasses.replace(CONTRACT, **{field: value})
    with pytest.raises(ContractError, match=f"'{field}'"):
        OnnxPolicy(exported[1], expected=robot)


def test_bad_observations_raise_clear_errors(exported: tuple[SOM, Path]) -> None:
    policy = OnnxPolicy(exported[1], expected=CONTRACT)
    with pytest.raises(PolicyInputError, match="shape"):
        policy(np.zeros(44, np.float32))
    obs = np.zeros(45, np.float32)
    obs[10] = np.nan  # 9..21 is joint_pos
    with pytest.raises(PolicyInputError, match="joint_pos"):
        policy(obs)


def test_file_without_contract_is_refused(tmp_path: Path, exported: tuple[SOM, Path]) -> None:
    model = onnx.load(str(exported[1]))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(ContractError, match="metadata"):
        OnnxPolicy(bare)


def test_observation_normaliser_is_inside_the_graph(tmp_path: Path) -> None:
    torch.manual_seed(1)
    agent = SOM(CONTRACT.obs_dim, CONTRACT.act_dim, SOMConfig(hidden=(64, 64), obs_norm=True))
    torch.nn.init.normal_(agent.actor.net[-1].weight, std=0.3)
    scale = torch.linspace(0.1, 5.0, CONTRACT.obs_dim)
    for _ in range(10):  # statistics far from (0, 1), so a missing normaliser would show
        agent.obs_norm.update(3.0 + scale * torch.randn(256, CONTRACT.obs_dim))
    path = export_onnx(agent, CONTRACT, tmp_path / "normed.onnx")
    policy = OnnxPolicy(path, expected=CONTRACT)
    rng = np.random.default_rng(1)
    for _ in range(10):
        obs = (3.0 + scale.numpy() * rng.normal(size=CONTRACT.obs_dim)).astype(np.float32)
        z = rng.normal(size=CONTRACT.act_dim).astype(np.float32)
        o, zz = torch.from_numpy(obs)[None], torch.from_numpy(z)[None]
        with torch.no_grad():
            ref = agent.actor.sample(agent.normalize(o), zz).clamp(-1, 1)[0].numpy()
            raw = agent.actor.sample(o, zz).clamp(-1, 1)[0].numpy()
        np.testing.assert_allclose(policy(obs, z), ref, atol=1e-5)
        assert np.abs(raw - ref).max() > 1e-3  # the graph's normaliser matters


def test_normaliser_merges_batches_exactly() -> None:
    from som_robot.nn.normalizer import EmpiricalNormalizer

    rng = np.random.default_rng(2)
    chunks = [rng.normal(loc=i, scale=1 + i, size=(50 + 10 * i, 4)) for i in range(5)]
    norm = EmpiricalNormalizer(4)
    for c in chunks:
        norm.update(torch.from_numpy(c).float())
    allx = np.concatenate(chunks)
    np.testing.assert_allclose(norm.mean.numpy(), allx.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(norm.var.numpy(), allx.var(0), rtol=1e-4)
    assert int(norm.count) == len(allx)


def test_onnx_runtime_latency_batch1_one_thread(exported: tuple[SOM, Path]) -> None:
    from som_robot.bench.onnx_latency import onnx_latency

    lat = onnx_latency(exported[1], n=3000)
    assert lat["threads"] == 1 and lat["n"] == 3000
    assert 0 < lat["median_us"] <= lat["p99_us"]
    # The median, not the p99: on two shared cores a scheduler slice (ms) can land in 1 % of 15 µs calls.
    # ~10 µs idle; the 20 µs target itself is measured by `bench onnx`.
    assert lat["median_us"] < 200, lat


def test_export_copies_to_cpu_and_leaves_the_training_agent_untouched(tmp_path: Path) -> None:
    """Export after (CUDA) training: the module is built from CPU copies, so the agent's networks and
    normaliser keep their device, values and identity, and training after an export is unaffected."""
    from som_robot.export import OneStepPolicy

    torch.manual_seed(2)
    agent = SOM(CONTRACT.obs_dim, CONTRACT.act_dim, SOMConfig(hidden=(32, 32), obs_norm=True))
    agent.obs_norm.update(torch.randn(64, CONTRACT.obs_dim) * 2.0)
    before = {k: v.clone() for k, v in agent.state_dict()["obs_norm"].items()}
    module = OneStepPolicy(agent)
    assert module.norm is not agent.obs_norm
    assert all(p.device.type == "cpu" for p in module.parameters())
    assert not any(p.data_ptr() == q.data_ptr() for p in module.parameters() for q in agent.actor.parameters())
    module.norm.update(torch.randn(64, CONTRACT.obs_dim) + 10.0)  # mutating the export's copy ...
    for k, v in agent.state_dict()["obs_norm"].items():  # ... leaves the agent's statistics alone
        assert torch.equal(v, before[k]), k
    export_onnx(agent, CONTRACT, tmp_path / "p.onnx")
    agent.update(Batch(torch.randn(8, CONTRACT.obs_dim), torch.rand(8, CONTRACT.act_dim) * 2 - 1, torch.randn(8),
                       torch.randn(8, CONTRACT.obs_dim), torch.zeros(8)))  # training goes on after an export


def test_sac_exports_to_the_same_graph_inputs_and_matches_its_torch_actor(tmp_path: Path) -> None:
    """SAC's tanh-Gaussian through ONNX Runtime: noise 0 is its deterministic action, noise z its
    reparameterised sample tanh(μ + σz); the daemon's contract check accepts it like SOM's."""
    torch.manual_seed(1)
    agent = SAC(CONTRACT.obs_dim, CONTRACT.act_dim, SACConfig(hidden=(64, 64)))
    torch.nn.init.normal_(agent.actor.net[-1].weight, std=0.3)  # a non-trivial mean and σ
    path = export_onnx(agent, CONTRACT, tmp_path / "sac.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["som_robot.algo"] == "sac"
    policy = OnnxPolicy(path, expected=CONTRACT)
    for obs, z in obs_and_noise(1):
        with torch.no_grad():
            det, _ = agent.actor(torch.from_numpy(obs)[None], deterministic=True)
            mean, std = agent.actor.mean_std(torch.from_numpy(obs)[None])
        np.testing.assert_allclose(policy(obs), det[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(policy(obs, z), torch.tanh(mean + std * torch.from_numpy(z))[0].numpy(),
                                   atol=1e-5)
    assert not np.allclose(policy(obs, z), policy(obs))  # the noise input is live, not folded away
