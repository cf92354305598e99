"""Gymnasium adapter: N copies of a Gymnasium env behind the `VecEnv` protocol.

Stepped in one process (Gymnasium MuJoCo envs are ~30–170 µs a step here, so a
subprocess pool would cost more in IPC than it saves on 2 cores). Actions in
[-1, 1] are rescaled to the env's own box.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from som_robot.envs.vec_env import StepResult

__all__ = ["GymVecEnv", "make_gym_env"]


def make_gym_env(env_id: str) -> gym.Env:
    """Build one env; fails early with a clear message on a non-box action space."""
    env = gym.make(env_id)
    if not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"{env_id}: only continuous (Box) action spaces are supported")
    return env


class GymVecEnv:
    """Synchronous vector of Gymnasium envs with same-step auto-reset."""

    def __init__(self, env_id: str, num_envs: int, device: str | torch.device = "cpu") -> None:
        self.env_id, self.num_envs, self.device = env_id, num_envs, torch.device(device)
        self.envs = [make_gym_env(env_id) for _ in range(num_envs)]
        space = self.envs[0].action_space
        self.low, self.high = space.low.astype(np.float64), space.high.astype(np.float64)
        self.obs_dim = int(np.prod(self.envs[0].observation_space.shape))
        self.act_dim = int(np.prod(space.shape))
        self._ret = np.zeros(num_envs)
        self._len = np.zeros(num_envs, dtype=np.int64)

    def _t(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=self.device)

    def reset(self, seed: int | None = None) -> torch.Tensor:
        obs = [e.reset(seed=None if seed is None else seed + i)[0] for i, e in enumerate(self.envs)]
        for i, e in enumerate(self.envs):
            if seed is not None:
                e.action_space.seed(seed + i)
        self._ret[:] = 0
        self._len[:] = 0
        return self._t(np.stack(obs))

    def step(self, actions: torch.Tensor) -> StepResult:
        a = actions.detach().cpu().numpy().astype(np.float64).clip(-1.0, 1.0)
        a = self.low + 0.5 * (a + 1.0) * (self.high - self.low)
        obs, final, rew = [], [], np.zeros(self.num_envs)
        term = np.zeros(self.num_envs, dtype=bool)
        trunc = np.zeros(self.num_envs, dtype=bool)
        rets, lens = [], []
        for i, env in enumerate(self.envs):
            o, r, te, tr, _ = env.step(a[i])
            rew[i], term[i], trunc[i] = r, te, tr
            self._ret[i] += r
            self._len[i] += 1
            final.append(o)
            if te or tr:
                rets.append(float(self._ret[i]))
                lens.append(int(self._len[i]))
                self._ret[i], self._len[i] = 0.0, 0
                o, _ = env.reset()
            obs.append(o)
        return StepResult(self._t(np.stack(obs)), self._t(rew), torch.as_tensor(term, device=self.device),
                          torch.as_tensor(trunc, device=self.device), self._t(np.stack(final)), rets, lens)

    def close(self) -> None:
        for e in self.envs:
            e.close()
