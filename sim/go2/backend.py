"""The `Sim` protocol the Go2 env runs on, and its batched CPU MuJoCo implementation.

`Sim` is what `sim.go2.env.Go2VecEnv` needs from a simulator: N worlds of one model whose
state (`qpos`, `qvel`, `ctrl`, `sensordata`) is handed out as live torch tensors, per-world
dynamics (foot friction, base mass, base CoM) and PD gains, masked reset, n physics steps, and flags for
diverged or overflowed worlds. Two implementations: `BatchSim` here (MuJoCo C on
`mujoco.batch.Batch`'s thread pool, float64) and `sim.go2.warp_backend.WarpSim` (MuJoCo Warp on
CUDA or Warp's CPU device, float32). Because the env is written once against this protocol,
CPU tests exercise the code that runs on CUDA.

In `BatchSim` the batch keeps each simulation's state as a row; `qpos`, `qvel`, `ctrl` and
`sensordata` are `torch.from_numpy` views of those rows (same memory, no copies), so the env's torch
code reads the state and writes the actuator inputs in place. Friction, base mass
and base CoM are expanded to per-simulation model fields, so domain randomization of the model
is per env without N MjModel copies. `sensordata` is a derived field: after `step()` it describes
the state before the last physics step (as with mj_step), i.e. it lags the state by SIM_DT.
"""

from __future__ import annotations

import warnings
from typing import Protocol

import mujoco
import mujoco.batch
import numpy as np
import torch

from sim.go2 import constants as C

__all__ = ["Sim", "BatchSim", "make_sim"]


class Sim(Protocol):
    """N Go2 worlds with torch state views; see the module docstring."""

    num_envs: int
    device: torch.device
    dtype: torch.dtype
    qpos: torch.Tensor  # (N, nq) live
    qvel: torch.Tensor  # (N, nv) live
    ctrl: torch.Tensor  # (N, nu) live; the env writes kp·q* here (the actuators are the PD law)
    sensordata: torch.Tensor  # (N, nsensordata), lags the state by one physics step
    actuator_force: torch.Tensor  # (N, nu) the PD torques of the last physics step (lags like sensordata)
    key_qpos: torch.Tensor
    joint_low: torch.Tensor
    joint_high: torch.Tensor
    nominal_friction: float
    nominal_mass: float
    nominal_ipos: torch.Tensor
    nconmax: int | None  # per-world contact capacity (None: sized by MuJoCo C's arena)
    njmax: int | None

    def reset(self, ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None: ...
    def set_gains(self, ids: torch.Tensor, kp: torch.Tensor, kd: torch.Tensor) -> None: ...
    def set_dynamics(self, ids: torch.Tensor, friction: torch.Tensor, added_mass: torch.Tensor,
                     com_offset: torch.Tensor) -> None: ...
    def dynamics(self, ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]: ...
    def step(self, nstep: int = 1) -> None: ...
    def unstable(self) -> torch.Tensor: ...
    def overflowed(self) -> torch.Tensor: ...
    def close(self) -> None: ...


def make_sim(model: mujoco.MjModel, backend: str, num_envs: int, device: str | torch.device = "cpu",
             nthread: int = 0, batch_dynamics: bool = True, nconmax: int | None = None,
             njmax: int | None = None, steps_per_call: int = 1) -> Sim:
    """`BatchSim` for backend 'cpu', `WarpSim` for 'warp' (imported only then: MuJoCo Warp is optional)."""
    if backend == "cpu":
        if torch.device(device).type != "cpu":
            raise ValueError(f"the cpu backend (MuJoCo C) keeps its state in host memory, not on {device}")
        return BatchSim(model, num_envs, nthread)
    if backend == "warp":
        from sim.go2.warp_backend import WarpSim

        return WarpSim(model, num_envs, device, batch_dynamics=batch_dynamics, nconmax=nconmax, njmax=njmax,
                       steps_per_call=steps_per_call)
    raise ValueError(f"unknown simulator backend {backend!r} (cpu | warp)")

_NO_STAGE = int(mujoco.mjtStage.mjSTAGE_NONE)
# mj_step resets a simulation that blows up to the model defaults and counts one of these.
_BAD_STATE = [int(w) for w in (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL,
                               mujoco.mjtWarning.mjWARN_BADQACC)]


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class BatchSim:
    """N Go2 simulations stepped together on the CPU; per-env foot friction, base mass and base CoM."""

    dtype = torch.float64
    nconmax = njmax = None  # MuJoCo C sizes contacts and constraints from its arena

    def __init__(self, model: mujoco.MjModel, num_envs: int, nthread: int = 0) -> None:
        self.model, self.num_envs = model, num_envs
        self.device = torch.device("cpu")
        self.batch = mujoco.batch.Batch(model, num_envs, nthread)
        b, t = self.batch, torch.from_numpy
        self.qpos, self.qvel, self.ctrl = t(b.bind("qpos")), t(b.bind("qvel")), t(b.bind("ctrl"))
        with warnings.catch_warnings():  # a derived, read-only field: the env only reads it
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            self.sensordata = t(b.bind("sensordata"))
            self.actuator_force = t(b.bind("actuator_force"))
        self._biasprm = b.expand("actuator_biasprm")  # per-env PD gains (model.make_pd_actuators)
        self._friction = b.expand("geom_friction")
        self._mass = b.expand("body_mass")
        self._ipos = b.expand("body_ipos")
        self.foot_geoms = np.array([model.geom(g).id for g in C.FOOT_GEOMS])
        self.base = model.body(C.BASE_BODY).id
        self.nominal_friction = float(model.geom_friction[self.foot_geoms[0], 0])
        self.nominal_mass = float(model.body_mass[self.base])
        self.nominal_ipos = t(model.body_ipos[self.base].copy())
        self.key_qpos = t(model.key("home").qpos.copy())
        self.joint_low = t(model.jnt_range[1:, 0].copy())
        self.joint_high = t(model.jnt_range[1:, 1].copy())
        self._no_overflow = torch.zeros(num_envs, dtype=torch.bool)

    def set_dynamics(self, ids: torch.Tensor, friction: torch.Tensor, added_mass: torch.Tensor,
                     com_offset: torch.Tensor) -> None:
        """Write per-env model parameters for envs `ids`, then refresh their derived constants."""
        ids_np = _np(ids)
        self._friction[ids_np[:, None], self.foot_geoms[None, :], 0] = _np(friction)[:, None]
        self._mass[ids_np, self.base] = self.nominal_mass + _np(added_mass)
        self._ipos[ids_np, self.base] = self.nominal_ipos.numpy() + _np(com_offset)
        self.batch.set_const(np.sort(ids_np))  # body_mass/body_ipos feed mj_setConst (subtree mass, invweight)

    def set_gains(self, ids: torch.Tensor, kp: torch.Tensor, kd: torch.Tensor) -> None:
        """PD gains (n, nu) of envs `ids`: the actuators' force is ctrl − kp·q − kd·qd."""
        ids_np = _np(ids)
        self._biasprm[ids_np, :, 1] = -_np(kp)
        self._biasprm[ids_np, :, 2] = -_np(kd)

    def dynamics(self, ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The model parameters the envs actually run with (for tests and logs)."""
        sel = slice(None) if ids is None else _np(ids)
        return {"friction": torch.from_numpy(self._friction[sel][:, self.foot_geoms, 0]),
                "mass": torch.from_numpy(self._mass[sel, self.base]),
                "ipos": torch.from_numpy(self._ipos[sel, self.base])}

    def reset(self, ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Clear envs `ids` (warm start, ctrl, applied forces, warnings) and set their state."""
        order = torch.argsort(torch.as_tensor(ids))
        ids = torch.as_tensor(ids)[order]
        self.batch.reset(ids.numpy(), keyframe=0, stage=_NO_STAGE)
        self.qpos[ids] = torch.as_tensor(qpos, dtype=self.dtype)[order]
        self.qvel[ids] = torch.as_tensor(qvel, dtype=self.dtype)[order]
        self.ctrl[ids] = 0.0

    def unstable(self) -> torch.Tensor:
        """(N,) bool: the simulation diverged (and MuJoCo silently reset it) since its last reset."""
        return torch.from_numpy(np.any(self.batch.warning[:, _BAD_STATE, 1] > 0, axis=1))

    def overflowed(self) -> torch.Tensor:
        """(N,) all False: MuJoCo C grows contacts and constraints within its arena (key parity with Warp)."""
        return self._no_overflow

    def step(self, nstep: int = 1) -> None:
        """Advance every env by `nstep` physics steps with the current ctrl."""
        self.batch.step(nstep=nstep)

    def close(self) -> None:
        self.batch = None  # type: ignore[assignment]
