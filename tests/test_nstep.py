"""n-step returns folded per env: against a brute-force fold of the same random stream, episode ends
(terminations without bootstrap, time-outs with γ^m bootstrap) and the TD target's discount."""

from __future__ import annotations

import torch

from som_robot.storage import Batch, NStepFolder, ReplayBuffer


def brute_force(rew: torch.Tensor, term: torch.Tensor, trunc: torch.Tensor, n: int, gamma: float) -> set:
    """Every (env, start, return, m, done, bootstrap step) an n-step fold must emit, by direct summation."""
    T, N = rew.shape
    out = set()
    for e in range(N):
        for t0 in range(T):
            ret = 0.0
            for k, t in enumerate(range(t0, T)):
                ret += gamma ** k * float(rew[t, e])
                if term[t, e] or trunc[t, e] or k + 1 == n:
                    out.add((e, t0, round(ret, 4), k + 1, bool(term[t, e]), t))
                    break
    return out


def test_fold_matches_direct_summation_across_episode_ends() -> None:
    g = torch.Generator().manual_seed(0)
    T, N, n, gamma = 40, 3, 4, 0.9
    rew = torch.rand(T, N, generator=g)
    term = torch.rand(T, N, generator=g) < 0.08
    trunc = (torch.rand(T, N, generator=g) < 0.08) & ~term
    folder = NStepFolder(n, gamma, N, obs_dim=2, act_dim=1)
    got = set()
    for t in range(T):
        obs = torch.stack([torch.full((N,), float(t)), torch.arange(N, dtype=torch.float32)], dim=1)  # (t, env)
        nxt = obs + torch.tensor([1000.0, 0.0])  # bootstrap state of step t: t + 1000
        o, a, r, no, d, m = folder.step(obs, torch.zeros(N, 1), rew[t], nxt, term[t], trunc[t])
        for i in range(len(r)):
            got.add((int(o[i, 1]), int(o[i, 0]), round(float(r[i]), 4), int(m[i]), bool(d[i]), int(no[i, 0]) - 1000))
    want = {x for x in brute_force(rew, term, trunc, n, gamma) if x[5] < T}  # windows complete within the stream
    assert got == want
    assert any(x[3] < n and not x[4] for x in got) and any(x[4] for x in got)  # cut by time-outs and by falls


def test_one_step_fold_is_the_plain_transition_and_the_target_uses_gamma_to_the_m() -> None:
    folder = NStepFolder(1, 0.99, 2, 3, 1)
    o, a, r, no, d, m = folder.step(torch.ones(2, 3), torch.zeros(2, 1), torch.tensor([0.5, 0.25]), torch.zeros(2, 3),
                                    torch.tensor([False, True]), torch.tensor([False, False]))
    assert r.tolist() == [0.5, 0.25] and m.tolist() == [1.0, 1.0] and d.tolist() == [0.0, 1.0]
    buf = ReplayBuffer(3, 1, 10)
    buf.add(o, a, r, no, d, nstep=torch.tensor([3.0, 3.0]))
    b = buf.sample(64)
    assert torch.allclose(b.discount(0.9), 0.9 ** 3 * (1 - b.done))
    plain = Batch(b.obs, b.act, b.rew, b.next_obs, b.done)
    assert torch.allclose(plain.discount(0.9), 0.9 * (1 - b.done))
