"""A circular replay buffer of torch tensors that lives on the training device.

Keeping it on the device means a GPU run samples batches without host copies.
`terminated` (not `truncated`) is stored so time-outs still bootstrap. `nstep` is the number of rewards
a transition's `rew` sums (1, or up to n with n-step returns, `storage.nstep`): the TD target discounts
the bootstrap by γ^nstep.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Batch", "ReplayBuffer"]


@dataclass(frozen=True)
class Batch:
    """One sampled minibatch; shapes (B, obs_dim), (B, act_dim), (B,), (B, obs_dim), (B,), (B,)."""

    obs: torch.Tensor
    act: torch.Tensor
    rew: torch.Tensor
    next_obs: torch.Tensor
    done: torch.Tensor
    nstep: torch.Tensor | None = None  # rewards summed in `rew` (None: one)

    def discount(self, gamma: float) -> torch.Tensor:
        """γ^nstep·(1 − done): what multiplies the bootstrap value in the TD target."""
        g = gamma if self.nstep is None else torch.pow(gamma, self.nstep)
        return g * (1.0 - self.done)


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions, uniform sampling with a dedicated generator."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int, device: torch.device | str = "cpu", seed: int = 0):
        self.capacity, self.device = int(capacity), torch.device(device)
        self.obs = torch.zeros(self.capacity, obs_dim, device=self.device)
        self.act = torch.zeros(self.capacity, act_dim, device=self.device)
        self.rew = torch.zeros(self.capacity, device=self.device)
        self.next_obs = torch.zeros(self.capacity, obs_dim, device=self.device)
        self.done = torch.zeros(self.capacity, device=self.device)
        self.nstep = torch.ones(self.capacity, device=self.device)
        self.ptr, self.size = 0, 0
        self.gen = torch.Generator(device=self.device).manual_seed(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, obs: torch.Tensor, act: torch.Tensor, rew: torch.Tensor, next_obs: torch.Tensor,
            done: torch.Tensor, nstep: torch.Tensor | None = None) -> None:
        """Append a batch of transitions (one per env, or what an n-step folder emitted), wrapping around."""
        n = obs.shape[0]
        if n == 0:
            return
        idx = (self.ptr + torch.arange(n, device=self.device)) % self.capacity
        self.obs[idx] = obs.to(self.device, torch.float32)
        self.act[idx] = act.to(self.device, torch.float32)
        self.rew[idx] = rew.to(self.device, torch.float32).reshape(-1)
        self.next_obs[idx] = next_obs.to(self.device, torch.float32)
        self.done[idx] = done.to(self.device, torch.float32).reshape(-1)
        self.nstep[idx] = 1.0 if nstep is None else nstep.to(self.device, torch.float32).reshape(-1)
        self.ptr = int((self.ptr + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """Uniform sample with replacement."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = torch.randint(0, self.size, (batch_size,), device=self.device, generator=self.gen)
        return Batch(self.obs[idx], self.act[idx], self.rew[idx], self.next_obs[idx], self.done[idx], self.nstep[idx])

    def state_dict(self) -> dict:
        """Filled part of the buffer plus pointers, for exact resume."""
        n = self.size
        return {"obs": self.obs[:n].cpu(), "act": self.act[:n].cpu(), "rew": self.rew[:n].cpu(),
                "next_obs": self.next_obs[:n].cpu(), "done": self.done[:n].cpu(), "nstep": self.nstep[:n].cpu(),
                "ptr": self.ptr,
                "gen": self.gen.get_state()}

    def load_state_dict(self, sd: dict) -> None:
        n = sd["obs"].shape[0]
        for k in ("obs", "act", "rew", "next_obs", "done", "nstep"):
            if k in sd:  # checkpoints from before n-step returns have no nstep (all ones)
                getattr(self, k)[:n] = sd[k].to(self.device)
        self.size, self.ptr = n, int(sd["ptr"])
        self.gen.set_state(sd["gen"])
