"""SOM: Score-Based One-step MeanFlow Policy Optimization (Kim, Ki, Ahn, Lee 2026).

The story, following `shared/research/algorithms.md` §3 and §6.1:

1. Twin critics learn Q by TD, with next actions from the one-step actor.
2. The critic defines a Boltzmann target p_0(a|s) ∝ exp(α·Q̃(s,a)) over actions.
3. A VP-SDE noises it: a_t = μ_t a_0 + σ_t ε. An iDEM-style Monte-Carlo estimator gives the
   score of the noised marginal from K proposals a_0^k = a_t/μ_t + (σ_t/μ_t)·δ_k.
4. The (unit-normalised, rescaled) score becomes a probability-flow-ODE velocity
   v* = −½β(t)(a_t + s̄), the "instantaneous velocity" MeanFlow needs.
5. The actor u_θ(z, r, t | s) is trained on the MeanFlow identity with a JVP target.
6. Acting takes one forward pass: a = clip(z − u_θ(z, 0, 1 | s), −1, 1), z ~ N(0, I);
   evaluation takes the best of N one-step candidates under min(Q1, Q2).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from som_robot.algos.common import (
    QFn,
    TwinQ,
    best_of,
    clip_action,
    clip_inverting_gradients,
    frozen,
    optimizer_step,
    polyak_update,
)
from som_robot.config import check
from som_robot.nn.meanflow import MeanFlowNet, adaptive_l2, meanflow_target
from som_robot.nn.normalizer import EmpiricalNormalizer
from som_robot.storage import Batch

__all__ = ["SOMConfig", "SOM", "noise_schedule", "linear_path_velocity", "vp_schedule", "mc_score",
           "truncated_normal", "teacher_velocity", "sample_rt"]

@dataclass(frozen=True)
class SOMConfig:
    """SOM hyperparameters. Tags in algorithms.md §3.7: K, β, r=t ratio from [T]; the rest proposals."""

    hidden: tuple[int, ...] = (256, 256, 256)  # actor and critic MLP widths
    activation: str = "mish"  # actor (smooth: its JVP target differentiates the network)
    critic_activation: str = ""  # "" = same as `activation`; relu is ~3x cheaper than mish on CPU
    critic_layer_norm: bool = False  # LayerNorm in the critics' hidden layers (BRO / FastSAC)
    actor_every: int = 1  # actor (score + MeanFlow) step every k critic steps (FastSAC-style delayed policy)
    time_dim: int = 16  # sinusoidal time-embedding width
    time_scale: float = 1.0  # t is multiplied by this before the sinusoid (large values make du/dt noisy)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005  # Polyak rate of the target critics
    reward_scale: float = 0.2  # c_r in the TD target (relax default)
    num_proposals: int = 100  # K, Monte-Carlo proposals per state
    path: Literal["linear", "vp"] = "linear"  # noising path of the actor's flow, see `noise_schedule`
    beta_min: float = 0.1  # VP schedule
    beta_max: float = 20.0
    alpha: float = 1.0  # Boltzmann inverse temperature on normalised Q
    score_scale: float = 25.0  # w (vp path): bound on, or with score_norm=unit the value of, the score norm
    score_norm: Literal["clip", "unit", "none"] = "clip"  # how ŝ is rescaled, see teacher_velocity
    q_norm: Literal["batch", "state", "advantage", "none"] = "batch"  # see _normalise_q
    score_estimator: Literal["tweedie", "grad"] = "tweedie"  # noise- or gradient-expectation form
    box_target: bool = True  # Boltzmann target restricted to the [-1, 1] action box
    score_critic: Literal["mean", "min", "q1"] = "mean"
    a0_source: Literal["buffer", "policy", "mix"] = "buffer"  # which clean actions get noised
    t_min: float = 1e-3
    t_max: float = 1.0 - 1e-3
    ratio_r_eq_t: float = 0.25  # fraction of samples with r = t (plain flow matching)
    loss_p: float = 0.0  # adaptive-weight power; 0 = plain L2 (p > 0 regresses towards a median: mode bias)
    loss_c: float = 1e-3  # adaptive-weight offset
    eval_candidates: int = 10  # N for best-of-N at evaluation (1 = plain one-step sample)
    target_candidates: int = 1  # best-of-N next action in the TD target under the target critics (1 = one sample)
    explore_noise: float = 0.0  # extra Gaussian action noise while collecting
    collect_z_scale: float = 1.0  # collect with z ~ N(0, s²I): s < 1 narrows the one-step samples towards the mode
    grad_clip: float = 0.0  # 0 = off
    q_weight: float = 0.0  # λ of a Q-ascent term on the one-step sample (FQL-style; proposal, not the paper's)
    # how the Q-ascent sample meets the action box: "clip" (the critic's gradient vanishes at and past the bound)
    # or "invert" (Hausknecht & Stone's inverting gradients: scaled by the room left, turned round past it)
    q_bound: Literal["clip", "invert"] = "clip"
    # which twin value the Q-ascent term climbs: "min" (clipped double Q, TD3's actor uses Q1) or "mean" (FastSAC's
    # actor: min-of-twin pessimism may hold back an actor distilled from the critic; research note §5)
    ascent_critic: Literal["min", "mean"] = "min"
    # Target per-joint std of the collecting samples (0 = off; a proposal, not the paper's). The Q-ascent term
    # pulls the one-step map onto its mode with nothing pushing back (DDPG-like); this adds SAC's answer, an
    # entropy bonus with an auto-tuned weight: −η·E log‖a(z₁) − a(z₂)‖ (a nearest-neighbour entropy surrogate
    # of the implicit policy), η raised while the spread sits below the target and lowered above it.
    spread_target: float = 0.0
    spread_lr: float = 1e-3  # Adam rate of log η
    obs_norm: bool = False  # empirical observation normalisation (exported inside the ONNX graph)

    def __post_init__(self) -> None:
        for k in ("actor_lr", "critic_lr", "reward_scale", "beta_min", "beta_max", "alpha"):
            check(getattr(self, k) > 0, k, f"must be > 0, got {getattr(self, k)}")
        check(0.0 < self.gamma <= 1.0, "gamma", f"must be in (0, 1], got {self.gamma}")
        check(0.0 < self.tau <= 1.0, "tau", f"must be in (0, 1], got {self.tau}")
        check(self.num_proposals >= 1, "num_proposals", "must be >= 1")
        check(self.beta_max >= self.beta_min, "beta_max", "must be >= beta_min")
        check(0.0 < self.t_min < self.t_max < 1.0, "t_max", "need 0 < t_min < t_max < 1")
        check(0.0 <= self.ratio_r_eq_t <= 1.0, "ratio_r_eq_t", "must be in [0, 1]")
        check(self.eval_candidates >= 1, "eval_candidates", "must be >= 1")
        check(self.target_candidates >= 1, "target_candidates", "must be >= 1")
        check(self.score_scale > 0 and self.explore_noise >= 0 and self.grad_clip >= 0, "score_scale",
              "score_scale must be > 0; explore_noise and grad_clip >= 0")
        check(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), "hidden", "needs positive widths")
        check(self.actor_every >= 1, "actor_every", "must be >= 1")
        check(self.collect_z_scale > 0, "collect_z_scale", "must be > 0")
        check(self.q_weight >= 0, "q_weight", "must be >= 0")
        check(0.0 <= self.spread_target < 1.0, "spread_target", "must be in [0, 1) (0 = off)")
        check(self.spread_lr > 0, "spread_lr", "must be > 0")


def vp_schedule(t: torch.Tensor, beta_min: float, beta_max: float) -> tuple[torch.Tensor, ...]:
    """Linear-β VP-SDE: returns (μ_t, σ_t, β(t)) with μ = exp(−½∫β), σ = sqrt(1 − μ²)."""
    integral = beta_min * t + 0.5 * (beta_max - beta_min) * t * t
    mu = torch.exp(-0.5 * integral)
    sigma = torch.sqrt((1.0 - mu * mu).clamp_min(1e-12))
    return mu, sigma, beta_min + t * (beta_max - beta_min)


def noise_schedule(t: torch.Tensor, path: str, beta_min: float = 0.1, beta_max: float = 20.0):
    """(μ_t, σ_t, β_t) of a_t = μ_t a_0 + σ_t ε: "linear" (rectified, μ = 1 − t, σ = t; β unused) or "vp"."""
    if path == "linear":
        return 1.0 - t, t, torch.zeros_like(t)
    if path == "vp":
        return vp_schedule(t, beta_min, beta_max)
    raise ValueError(f"unknown path '{path}'")


def linear_path_velocity(a_t: torch.Tensor, t: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """PF-ODE velocity of the rectified path, v = −(a_t + t·ŝ)/(1 − t) = (a_t − E[a_0|a_t])/t.

    Written through the posterior mean it has no 1/(1 − t) singularity: E[a_0|a_t] =
    (a_t + t²ŝ)/(1 − t) by Tweedie, so v = E[ε − a_0 | a_t], the rectified-flow velocity.
    """
    post_mean = (a_t + t * t * score) / (1.0 - t)
    return (a_t - post_mean) / t


def _normalise_q(q: torch.Tensor, mode: str) -> torch.Tensor:
    """Normalise Q (B, K) with no-grad statistics, so α is scale-free across tasks.

    batch: z-score over all B·K proposals (state values dominate the spread);
    state: z-score within each state's K proposals (sharp everywhere, also where Q is flat);
    advantage: subtract each state's mean, divide by the batch-wide std of those advantages
    (action preferences keep their relative size across states).
    """
    if mode == "none":
        return q
    with torch.no_grad():
        if mode == "batch":
            mean, std = q.mean(), q.std()
        elif mode == "state":
            mean, std = q.mean(1, keepdim=True), q.std(1, keepdim=True)
        else:
            mean = q.mean(1, keepdim=True)
            std = (q - mean).std()
    return (q - mean) / (std + 1e-6)


def _ndtr(x: torch.Tensor) -> torch.Tensor:
    """Φ(x) = ½·erfc(−x/√2): keeps relative precision for x ≪ 0 (torch's float32 ndtr returns 0 at −6)."""
    return 0.5 * torch.special.erfc(-x * 0.7071067811865476)


def truncated_normal(mean: torch.Tensor, std: torch.Tensor, lo: float, hi: float,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-coordinate N(mean, std²) restricted to [lo, hi], by inverse CDF in the input's dtype.

    A coordinate whose mean lies below the box is drawn reflected (x → −x), so the box always sits on the
    side where the normal CDF is small: Φ(β) − Φ(α) of two values near 1 would cancel in float32, but Φ of
    large negative arguments, through erfc, keeps its relative precision. No float64, which GPUs run at a
    fraction of float32 speed.
    """
    s = std.expand_as(mean)
    flip = (lo + hi) > 2 * mean  # box centre above the mean: reflect
    m = torch.where(flip, -mean, mean)
    lo_r, hi_r = torch.where(flip, -hi, lo), torch.where(flip, -lo, hi)
    a, b = _ndtr((lo_r - m) / s), _ndtr((hi_r - m) / s)
    u = a + (b - a) * torch.rand(m.shape, dtype=m.dtype, device=m.device, generator=generator)
    fi = torch.finfo(m.dtype)
    x = m + s * torch.special.ndtri(u.clamp(fi.tiny, 1.0 - fi.eps))
    x = torch.minimum(torch.maximum(x, lo_r), hi_r)
    return torch.where(flip, -x, x)


def mc_score(q_fn: QFn, obs: torch.Tensor, a_t: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor,
             num_proposals: int, alpha: float, q_norm: str = "batch", box: float | None = 1.0,
             estimator: str = "tweedie", generator: torch.Generator | None = None) -> torch.Tensor:
    """Monte-Carlo score of the noised Boltzmann target p_t(a_t) = ∫ p_0(a_0) N(a_t; μ a_0, σ²) da_0.

    p_0(a) ∝ exp(α·Q̃(s,a)) restricted to the action box [−box, box]^d (no box: unrestricted).
    The posterior of a_0 given a_t is ∝ p_0(a_0)·N(a_0; a_t/μ, (σ/μ)²), so K proposals from that
    Gaussian (truncated to the box) reweighted by softmax_k(α·Q̃_k) are self-normalised
    importance samples of it. Two estimators of ∇ log p_t:

    * "tweedie" (noise-expectation form): (μ·Σ_k w_k a_0^k − a_t)/σ². Forward passes of Q only,
      and exact about the box: proposals never leave it, so no mass is extrapolated.
    * "grad" (gradient-expectation form, iDEM): (α/μ)·Σ_k w_k ∇_a Q̃(s, a_0^k), via autodiff of
      logsumexp; with a box, out-of-box proposals get zero weight (rows with none fall back to
      the prior score −a_t).

    Shapes: obs (B, S), a_t (B, d), mu/sigma (B, 1) → (B, d). No gradient reaches q_fn's parameters.
    """
    B, d = a_t.shape
    K = num_proposals
    mean = (a_t.detach() / mu)[:, None, :].expand(B, K, d)
    std = (sigma / mu)[:, None, :]
    s_rep = obs[:, None, :].expand(B, K, obs.shape[-1]).reshape(B * K, -1)
    if estimator == "tweedie":
        if box is None:
            a0 = mean + std * torch.randn(B, K, d, device=a_t.device, dtype=a_t.dtype, generator=generator)
        else:
            a0 = truncated_normal(mean, std, -box, box, generator)
        with torch.no_grad():
            q = q_fn(s_rep, a0.reshape(B * K, d)).reshape(B, K)
            w = torch.softmax(alpha * _normalise_q(q, q_norm), dim=1)
            post_mean = (w[:, :, None] * a0).sum(1)
        return (mu * post_mean - a_t) / sigma.pow(2)
    if estimator != "grad":
        raise ValueError(f"unknown score estimator '{estimator}'")
    delta = torch.randn(B, K, d, device=a_t.device, dtype=a_t.dtype, generator=generator)
    with torch.enable_grad():
        x = a_t.detach().requires_grad_(True)
        a0 = x[:, None, :] / mu[:, None, :] + (sigma / mu)[:, None, :] * delta  # (B, K, d)
        logits = alpha * _normalise_q(q_fn(s_rep, a0.reshape(B * K, d)).reshape(B, K), q_norm)
        if box is not None:
            inside = (a0.detach().abs() <= box).all(-1)
            logits = torch.where(inside, logits, torch.full_like(logits, -torch.inf))
        lse = torch.logsumexp(logits, dim=1)
        ok = torch.isfinite(lse)
        (score,) = torch.autograd.grad(torch.where(ok, lse, 0.0).sum(), x)
    return torch.where(ok[:, None], score, -a_t.detach())


def teacher_velocity(a_t: torch.Tensor, score: torch.Tensor, beta: torch.Tensor, score_scale: float,
                     mode: str = "clip") -> torch.Tensor:
    """PF-ODE velocity in forward time, v* = −½β(t)(a_t + s̄).

    s̄ rescales the estimate ŝ: "unit" → w·ŝ/‖ŝ‖ (the third-party default), "clip" →
    ŝ·min(1, w/‖ŝ‖) (caps the 1/σ² blow-up near t = 0 but keeps the exact PF-ODE elsewhere),
    "none" → ŝ.
    """
    norm = score.norm(dim=-1, keepdim=True)
    if mode == "unit":
        score = score_scale * score / (norm + 1e-6)
    elif mode == "clip":
        score = score * (score_scale / (norm + 1e-6)).clamp(max=1.0)
    elif mode != "none":
        raise ValueError(f"unknown score normalisation '{mode}'")
    return -0.5 * beta * (a_t + score)


def pair_spread(a1: torch.Tensor, a2: torch.Tensor) -> torch.Tensor:
    """Per-joint std of a policy from two independent draws per state: E[(a₁ − a₂)²] = 2·Var."""
    return (0.5 * (a1 - a2).pow(2).mean()).sqrt()


def sample_rt(n: int, t_min: float, t_max: float, ratio_r_eq_t: float, device: torch.device,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """t ~ U(t_min, t_max), r ~ U(0, t), and r = t on a `ratio_r_eq_t` fraction: shapes (n, 1)."""
    t = t_min + (t_max - t_min) * torch.rand(n, 1, device=device, generator=generator)
    r = t * torch.rand(n, 1, device=device, generator=generator)
    same = torch.rand(n, 1, device=device, generator=generator) < ratio_r_eq_t
    return torch.where(same, t, r), t


class SOM:
    """SOM agent: one-step MeanFlow actor, twin critics with targets, and its update step."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: SOMConfig, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        self.device = torch.device(device)
        torch.manual_seed(seed)
        self.actor = MeanFlowNet(obs_dim, act_dim, cfg.hidden, cfg.activation, cfg.time_dim, cfg.time_scale).to(
            self.device)
        self.critic = TwinQ(obs_dim, act_dim, cfg.hidden, cfg.critic_activation or cfg.activation,
                            layer_norm=cfg.critic_layer_norm).to(self.device)
        self.critic_targ = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.obs_norm = EmpiricalNormalizer(obs_dim).to(self.device) if cfg.obs_norm else None
        self.log_spread_coef = torch.zeros((), device=self.device, requires_grad=True)  # log η, η = 1 at start
        self.spread_opt = torch.optim.Adam([self.log_spread_coef], lr=cfg.spread_lr)
        self.num_updates = 0
        self._actor_metrics: dict[str, torch.Tensor] = {}

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """What the networks see: the observation through the normaliser (identity when off)."""
        return obs if self.obs_norm is None else self.obs_norm(obs)

    # ----- acting -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, obs: torch.Tensor, z_scale: float = 1.0) -> torch.Tensor:
        """One-step policy sample in [-1, 1] from z ~ N(0, z_scale²I)."""
        z = torch.randn(obs.shape[0], self.act_dim, device=obs.device)
        return clip_action(self.actor.sample(obs, z * z_scale if z_scale != 1.0 else z))

    @torch.no_grad()
    def best_sample(self, obs: torch.Tensor, n: int, critic: torch.nn.Module) -> torch.Tensor:
        """Draw n one-step samples per state in one batched call; keep the argmax of min(Q1, Q2)."""
        return best_of(obs, n, self.sample, lambda s, a: torch.minimum(*critic(s, a)))

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Collect with one sample (+ optional noise); evaluate with best-of-N under min(Q1, Q2)."""
        obs = self.normalize(obs)
        if not deterministic:
            a = self.sample(obs, self.cfg.collect_z_scale)
            if self.cfg.explore_noise > 0:
                a = clip_action(a + self.cfg.explore_noise * torch.randn_like(a))
            return a
        return self.best_sample(obs, self.cfg.eval_candidates, self.critic)

    # ----- losses -------------------------------------------------------------------------------
    def score_q(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The Q used by the score estimator (mean of the online critics by default; "q1" runs only the first
        critic, half the cost of the score's K·B-row forward, which dominates SOM's actor step on CPU)."""
        if self.cfg.score_critic == "q1":
            return self.critic.first(obs, act)
        q1, q2 = self.critic(obs, act)
        return 0.5 * (q1 + q2) if self.cfg.score_critic == "mean" else torch.minimum(q1, q2)

    def critic_loss(self, b: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Twin TD loss, y = c_r·r + γ^m(1−d)·min_i Q̄_i(s', a'), a' a one-step sample (or best of N); m = 1
        unless the buffer holds n-step returns."""
        c = self.cfg
        with torch.no_grad():
            a_next = self.best_sample(b.next_obs, c.target_candidates, self.critic_targ)
            q_next = torch.minimum(*self.critic_targ(b.next_obs, a_next))
            y = c.reward_scale * b.rew + b.discount(c.gamma) * q_next
        q1, q2 = self.critic(b.obs, b.act)
        loss = (q1 - y).pow(2).mean() + (q2 - y).pow(2).mean()
        return loss, {"losses/critic": loss.detach(), "values/q_mean": q1.mean().detach()}

    def clean_actions(self, b: Batch) -> torch.Tensor:
        """a_0 that gets noised: buffer actions, fresh policy samples, or a 50/50 mix."""
        if self.cfg.a0_source == "buffer":
            return b.act
        pol = self.sample(b.obs)
        if self.cfg.a0_source == "policy":
            return pol
        mask = torch.rand(b.act.shape[0], 1, device=self.device) < 0.5
        return torch.where(mask, pol, b.act)

    def noised_batch(self, b: Batch) -> tuple[torch.Tensor, ...]:
        """(r, t, μ_t, σ_t, β_t, a_t): times and noised clean actions for one actor step."""
        c = self.cfg
        B = b.obs.shape[0]
        r, t = sample_rt(B, c.t_min, c.t_max, c.ratio_r_eq_t, self.device)
        mu, sigma, beta = noise_schedule(t, c.path, c.beta_min, c.beta_max)
        a_t = mu * self.clean_actions(b) + sigma * torch.randn(B, self.act_dim, device=self.device)
        return r, t, mu, sigma, beta, a_t

    def estimate_score(self, obs: torch.Tensor, a_t: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor,
                       q_fn: QFn | None = None) -> torch.Tensor:
        """MC score of the noised Boltzmann target under the configured estimator (see `mc_score`)."""
        c = self.cfg
        return mc_score(q_fn or self.score_q, obs, a_t, mu, sigma, c.num_proposals, c.alpha, c.q_norm,
                        1.0 if c.box_target else None, c.score_estimator)

    def teacher(self, a_t: torch.Tensor, t: torch.Tensor, beta: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """Stop-gradient PF-ODE velocity of the configured path."""
        c = self.cfg
        if c.path == "vp":
            return teacher_velocity(a_t, score, beta, c.score_scale, c.score_norm).detach()
        return linear_path_velocity(a_t, t, score).detach()

    def actor_loss(self, b: Batch, q_fn: QFn | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """MeanFlow loss with the score-based PF-ODE teacher velocity (algorithms.md §3.3–3.4), plus the
        optional Q-ascent and spread terms on the collecting samples."""
        c, obs = self.cfg, b.obs
        r, t, mu, sigma, beta, a_t = self.noised_batch(b)
        score = self.estimate_score(obs, a_t, mu, sigma, q_fn)
        v = self.teacher(a_t, t, beta, score)
        u, u_tgt = meanflow_target(lambda z, tt: self.actor(obs, z, r, tt), a_t, r, t, v)
        loss = adaptive_l2(u, u_tgt, c.loss_p, c.loss_c)
        metrics = {"losses/actor": loss.detach(), "score/norm": score.norm(dim=-1).mean().detach(),
                   "score/target_norm": u_tgt.norm(dim=-1).mean().detach()}
        if c.q_weight > 0 or c.spread_target > 0:
            raw = self.collect_raw(obs, 2 if c.spread_target > 0 else 1)
            if c.q_weight > 0:
                q_loss = self.q_ascent_loss(obs, q_fn, raw[0])
                loss = loss + c.q_weight * q_loss
                metrics["losses/actor_q"] = q_loss.detach()
            if c.spread_target > 0:
                a1, a2 = clip_action(raw[0]), clip_action(raw[1])
                entropy = (a1 - a2).norm(dim=-1).clamp_min(1e-6).log().mean()
                eta = self.log_spread_coef.exp().detach()
                loss = loss - eta * entropy
                metrics |= {"policy/train_spread": pair_spread(a1.detach(), a2.detach()), "policy/spread_coef": eta}
        return loss, metrics

    def collect_raw(self, obs: torch.Tensor, n: int) -> torch.Tensor:
        """n differentiable one-step outputs per state (n, B, d) before the box, z ~ N(0, collect_z_scale²I)."""
        B = obs.shape[0]
        z = self.cfg.collect_z_scale * torch.randn(n * B, self.act_dim, device=obs.device)
        return self.actor.sample(obs.repeat(n, 1), z).reshape(n, B, self.act_dim)

    def spread_coef_loss(self, spread: torch.Tensor) -> torch.Tensor:
        """Dual step on log η (SAC's α loss with the spread for the entropy): raise η below the target."""
        return self.log_spread_coef * (spread.log() - math.log(self.cfg.spread_target))

    def log_scalars(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Diagnostics of the collecting policy at the envs' current observations, built only on the steps the
        runner logs (not on every update, whose metrics the runner drops until the next log)."""
        return {"policy/collect_spread": self.collect_spread(self.normalize(obs[:64]))}

    @torch.no_grad()
    def collect_spread(self, obs: torch.Tensor) -> torch.Tensor:
        """Per-joint std of the collecting one-step samples (z ~ N(0, collect_z_scale²I), before explore_noise),
        from two draws per state: E[(a₁ − a₂)²] = 2·Var. The one-step map is far from linear in z: on Go2 runs
        that stood it was 0.03 at z scale 0.3 (0.14 at 0.5, 0.42 at 1), where SAC's actions spread 0.13."""
        return pair_spread(self.sample(obs, self.cfg.collect_z_scale), self.sample(obs, self.cfg.collect_z_scale))

    def q_ascent_loss(self, obs: torch.Tensor, q_fn: QFn | None = None, raw: torch.Tensor | None = None
                      ) -> torch.Tensor:
        """−Q(s, a_θ(z)) / mean|Q| on the collected-noise one-step samples (TD3+BC's scale-free form); Q is the
        min or the mean of the twins (`ascent_critic`).

        The MC score moves the actor by the best of K proposals, which in 12-D barely beats the proposals'
        spread (measured on a Go2 critic: 300 steps moved min Q by −0.003 where 300 Q-gradient steps moved
        it +0.08); the gradient term gives the one-step map the critic's local direction directly.
        """
        raw = self.collect_raw(obs, 1)[0] if raw is None else raw
        a = clip_inverting_gradients(raw) if self.cfg.q_bound == "invert" else clip_action(raw)
        if q_fn is None:
            with frozen(self.critic):  # the gradient reaches the actor only
                q1, q2 = self.critic(obs, a)
                q = torch.minimum(q1, q2) if self.cfg.ascent_critic == "min" else 0.5 * (q1 + q2)
        else:
            q = q_fn(obs, a)
        return -(q / q.detach().abs().mean().clamp_min(1e-6)).mean()

    # ----- update -------------------------------------------------------------------------------
    def update(self, b: Batch) -> dict[str, torch.Tensor]:
        """One critic step, Polyak targets, and every `actor_every`-th call one actor step (normalised obs)."""
        if self.obs_norm is not None:
            self.obs_norm.update(b.obs)
            b = dataclasses.replace(b, obs=self.obs_norm(b.obs), next_obs=self.obs_norm(b.next_obs))
        closs, m = self.critic_loss(b)
        self._step(self.critic_opt, closs)
        polyak_update(self.critic_targ, self.critic, self.cfg.tau)
        if self.num_updates % self.cfg.actor_every == 0:
            self._actor_metrics = self.actor_step(b)
        self.num_updates += 1
        return m | self._actor_metrics

    def actor_step(self, b: Batch, q_fn: QFn | None = None) -> dict[str, torch.Tensor]:
        """One actor step and, with a spread target, one dual step on the spread weight."""
        aloss, metrics = self.actor_loss(b, q_fn)
        self._step(self.actor_opt, aloss)
        if self.cfg.spread_target > 0:
            self._step(self.spread_opt, self.spread_coef_loss(metrics["policy/train_spread"]))
        return metrics

    def _step(self, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer_step(opt, loss, self.cfg.grad_clip)

    # ----- persistence / export -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_targ": self.critic_targ.state_dict(), "actor_opt": self.actor_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict(), "num_updates": self.num_updates,
                "log_spread_coef": self.log_spread_coef.detach().clone(), "spread_opt": self.spread_opt.state_dict(),
                **({"obs_norm": self.obs_norm.state_dict()} if self.obs_norm is not None else {})}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        for k in ("actor", "critic", "critic_targ", "actor_opt", "critic_opt"):
            getattr(self, k).load_state_dict(sd[k])
        if self.obs_norm is not None:
            self.obs_norm.load_state_dict(sd["obs_norm"])
        self.num_updates = int(sd["num_updates"])
        if "log_spread_coef" in sd:  # checkpoints from before the spread target have neither
            with torch.no_grad():
                self.log_spread_coef.copy_(sd["log_spread_coef"])
            self.spread_opt.load_state_dict(sd["spread_opt"])
