"""Mode coverage on a one-step bandit with two separated maxima.

Q(a) = −20·min((a − ½)², (a + ½)²) on a ∈ [−1, 1] has equal peaks at ±½. SOM's one-step
MeanFlow actor, trained against this Q (a fixed critic), must put mass near both peaks; a
SAC tanh-Gaussian actor trained against the same Q collapses onto one.
"""

import torch

from som_robot.algos import SAC, SOM, SACConfig, SOMConfig
from som_robot.algos.common import clip_inverting_gradients, optimizer_step
from som_robot.storage import Batch

PEAKS = (0.5, -0.5)


def bandit_q(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    return -20.0 * torch.minimum((act - PEAKS[0]) ** 2, (act - PEAKS[1]) ** 2).sum(-1)


def mass_near_peaks(actions: torch.Tensor, radius: float = 0.2) -> list[float]:
    return [float(((actions - p).abs() < radius).float().mean()) for p in PEAKS]


TARGET_12D = torch.full((12,), 0.6)


def concave_q_12d(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """A concave 12-D critic with its optimum at 0.6 on every joint."""
    return 10.0 - (act - TARGET_12D).pow(2).sum(-1)


def som_12d(**kw: float | str) -> SOM:
    """The Go2-like SOM actor of the 12-D tests: K = 16, α = 32 on advantage-normalised Q, z scale 0.3."""
    return SOM(4, 12, SOMConfig(hidden=(64, 64), activation="silu", num_proposals=16, alpha=32.0, q_norm="advantage",
                                collect_z_scale=0.3, actor_lr=1e-3, **kw), seed=0)


def test_som_covers_both_modes_sac_collapses_to_one() -> None:
    torch.manual_seed(0)
    B, n = 256, 4000
    obs = torch.zeros(B, 1)
    som = SOM(1, 1, SOMConfig(hidden=(128, 128), num_proposals=64, actor_lr=1e-3), seed=0)
    sac = SAC(1, 1, SACConfig(hidden=(128, 128), init_alpha=0.1), seed=0)  # autotuned from 0.1
    for _ in range(1500):
        buffer_actions = torch.rand(B, 1) * 2 - 1  # what a replay buffer of uniform exploration holds
        loss, _ = som.actor_loss(Batch(obs, buffer_actions, torch.zeros(B), obs, torch.zeros(B)), q_fn=bandit_q)
        som._step(som.actor_opt, loss)
        aloss, logp = sac.actor_loss(obs, q_fn=bandit_q)
        optimizer_step(sac.actor_opt, aloss)
        optimizer_step(sac.alpha_opt, -(sac.log_alpha * (logp.detach() + sac.target_entropy)).mean())

    som_mass = mass_near_peaks(som.act(torch.zeros(n, 1)))
    sac_mass = mass_near_peaks(sac.act(torch.zeros(n, 1)))
    # SOM: a sizeable share of its one-step samples sits at each peak (measured ≈ 0.31 / 0.31).
    assert min(som_mass) > 0.2, som_mass
    # SAC: (nearly) everything at one peak, (nearly) nothing at the other.
    assert max(sac_mass) > 0.6 and min(sac_mass) < 0.05, sac_mass
    assert min(som_mass) > 4 * min(sac_mass)


def test_q_weight_moves_the_one_step_policy_up_a_12d_critic() -> None:
    """In 12-D the best of 16 proposals barely beats their spread; the Q-ascent term (q_weight) must
    carry the one-step map much closer to the optimum in the same number of actor steps."""
    B, dists = 256, {}
    obs = torch.zeros(B, 4)
    for w in (0.0, 10.0):
        torch.manual_seed(0)
        som = som_12d(q_weight=w)
        for _ in range(150):
            buffer_actions = (torch.rand(B, 12) * 2 - 1) * 0.5  # an old, timid policy's actions
            loss, m = som.actor_loss(Batch(obs, buffer_actions, torch.zeros(B), obs, torch.zeros(B)),
                                     q_fn=concave_q_12d)
            som._step(som.actor_opt, loss)
        assert ("losses/actor_q" in m) == (w > 0)
        a0 = som.actor.sample(obs[:1], torch.zeros(1, 12)).detach()
        dists[w] = float((a0 - TARGET_12D).norm())
    assert dists[10.0] < 0.5 * dists[0.0], dists


def test_q_ascent_loss_leaves_the_critic_without_gradient() -> None:
    som = SOM(4, 3, SOMConfig(hidden=(32, 32), num_proposals=4, q_weight=1.0), seed=0)
    som.q_ascent_loss(torch.randn(8, 4)).backward()
    assert all(p.grad is None for p in som.critic.parameters())
    assert all(p.requires_grad for p in som.critic.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in som.actor.parameters())


def test_ascent_critic_picks_which_twin_value_the_actor_climbs() -> None:
    """With twins that disagree (Q2 = Q1 − 5), "min" climbs Q2 and "mean" climbs (Q1 + Q2) / 2: the loss is
    −Q / mean|Q| of that value on the same samples."""
    for mode in ("min", "mean"):
        som = SOM(4, 3, SOMConfig(hidden=(32, 32), num_proposals=4, q_weight=1.0, ascent_critic=mode), seed=0)
        obs = torch.randn(8, 4)
        torch.manual_seed(1)
        raw = som.collect_raw(obs, 1)[0]
        with torch.no_grad():
            q1, q2 = som.critic(obs, raw.clamp(-1, 1))
            q2_shift = q2 - 5.0
        twin = som.critic.forward
        som.critic.forward = lambda s, a, twin=twin: (twin(s, a)[0], twin(s, a)[1] - 5.0)  # type: ignore[method-assign]
        q = torch.minimum(q1, q2_shift) if mode == "min" else 0.5 * (q1 + q2_shift)
        expected = -(q / q.abs().mean()).mean()
        assert torch.allclose(som.q_ascent_loss(obs, raw=raw), expected, atol=1e-5), mode


def test_score_critic_picks_the_value_the_score_reweights_by() -> None:
    """"mean" and "min" reweight proposals by those of the twins; "q1" gives the twin's Q1 exactly and never runs
    Q2, which is what halves the score's K·B-row forward."""
    obs, act = torch.randn(8, 4), torch.rand(8, 3) * 2 - 1
    for mode in ("mean", "min", "q1"):
        som = SOM(4, 3, SOMConfig(hidden=(32, 32), num_proposals=4, score_critic=mode), seed=0)
        with torch.no_grad():
            q1, q2 = som.critic(obs, act)
        calls: list[int] = []
        hook = som.critic.q2.register_forward_hook(lambda *_, calls=calls: calls.append(1))
        with torch.no_grad():
            q = som.score_q(obs, act)
        hook.remove()
        expected = {"mean": 0.5 * (q1 + q2), "min": torch.minimum(q1, q2), "q1": q1}[mode]
        assert torch.allclose(q, expected, atol=1e-6), mode
        assert (len(calls) == 0) == (mode == "q1"), mode


def test_collect_spread_measures_the_collecting_samples_std() -> None:
    """The logged exploration figure is the std of a = clip(z − u): with u ≡ 0 it is the z scale (clipped at ±1,
    clipped N(0, 1) has std 0.72), and a freshly initialised actor spreads more at a larger z scale."""
    torch.manual_seed(0)
    obs = torch.randn(64, 4)
    fresh, expected = [], {0.3: (0.27, 0.33), 1.0: (0.66, 0.78)}
    for zs, (lo, hi) in expected.items():
        som = SOM(4, 12, SOMConfig(hidden=(32, 32), num_proposals=4, collect_z_scale=zs), seed=0)
        fresh.append(float(som.collect_spread(obs)))
        for p in som.actor.parameters():
            p.data.zero_()
        assert lo < float(som.collect_spread(obs)) < hi, zs
    assert fresh[1] > 2 * fresh[0], fresh


def test_inverting_gradients_keep_the_q_ascent_actor_inside_the_box() -> None:
    """Half the joints of this critic want the bound (Q grows with a up to the box, as a ReLU critic's often
    does), half an interior 0.55. Through a plain clamp the actor's raw outputs run past the bound (the
    critic's gradient vanishes there and nothing pulls them back) and most samples clip; inverting gradients
    keep the raw outputs at the bound and the interior joints where they were."""

    def q_fn(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return act.sum(-1) - 2.0 * (act[:, 6:] - 0.3).pow(2).sum(-1)

    B, out = 256, {}
    obs = torch.zeros(B, 4)
    for q_bound in ("clip", "invert"):
        torch.manual_seed(0)
        som = som_12d(q_weight=10.0, q_bound=q_bound)
        for _ in range(300):
            buffer_actions = torch.rand(B, 12) * 2 - 1
            loss, _ = som.actor_loss(Batch(obs, buffer_actions, torch.zeros(B), obs, torch.zeros(B)), q_fn=q_fn)
            som._step(som.actor_opt, loss)
        with torch.no_grad():
            raw = som.actor.sample(obs, 0.3 * torch.randn(B, 12))
        out[q_bound] = (float(raw[:, :6].mean()), float((raw[:, :6] >= 0.99).float().mean()), float(raw[:, 6:].mean()))
    (clip_mean, clip_sat, clip_inner), (inv_mean, inv_sat, inv_inner) = out["clip"], out["invert"]
    assert clip_mean > 1.1 and clip_sat > 0.7, out  # measured 1.30, 87 % at the bound
    assert 0.6 < inv_mean < 1.0 and inv_sat < 0.5 * clip_sat, out  # measured 0.84, 25 %
    assert abs(inv_inner - 0.55) < 0.15 and abs(clip_inner - 0.55) < 0.15, out


def test_clip_inverting_gradients_scales_and_turns_the_gradient() -> None:
    a = torch.tensor([0.5, 0.5, -0.5, 1.5], requires_grad=True)
    out = clip_inverting_gradients(a)
    assert torch.equal(out.detach(), a.detach().clamp(-1, 1))
    (-(out * torch.tensor([1.0, -1.0, 1.0, 1.0]))).sum().backward()  # ascend +, −, +, + (the last past the bound)
    # room left: (1 − 0.5)/2 up, (1 + 0.5)/2 down, (1 + 0.5)/2 up from −0.5; past the bound the push turns round
    assert torch.allclose(a.grad, torch.tensor([-0.25, 0.75, -0.75, 0.25]))


def test_spread_target_keeps_the_q_ascent_actor_from_collapsing() -> None:
    """Q-ascent on a concave 12-D critic collapses the one-step map onto the optimum (collect spread ~0.03 per
    joint); the auto-tuned spread weight must hold the spread near its target while the mode (z = 0) still
    reaches the optimum."""
    B, out = 256, {}
    obs = torch.zeros(B, 4)
    for st in (0.0, 0.13):
        torch.manual_seed(0)
        som = som_12d(q_weight=10.0, spread_target=st, spread_lr=1e-2)
        for _ in range(800):
            buffer_actions = (torch.rand(B, 12) * 2 - 1) * 0.5
            m = som.actor_step(Batch(obs, buffer_actions, torch.zeros(B), obs, torch.zeros(B)), q_fn=concave_q_12d)
        assert ("policy/spread_coef" in m) == (st > 0)
        mode = som.actor.sample(obs[:1], torch.zeros(1, 12)).detach()
        out[st] = (float(som.collect_spread(obs)), float((mode - TARGET_12D).norm()))
    (free_spread, free_dist), (held_spread, held_dist) = out[0.0], out[0.13]
    assert free_spread < 0.06, out  # measured 0.02-0.03
    assert 0.09 < held_spread < 0.2, out  # measured 0.146 at 800 steps (0.13 at 1000)
    assert free_dist < 0.2 and held_dist < 0.2, out  # both modes at the optimum (measured 0.060 / 0.063)
