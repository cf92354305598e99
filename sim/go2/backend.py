"""Batched CPU MuJoCo: N simulations of one model on `mujoco.batch.Batch`'s thread pool.

The batch keeps each simulation's state as a row; `qpos`, `qvel` and `ctrl` here are
live (N, ·) views of those rows, so the env computes PD torques for all envs with one
numpy expression per physics step. Friction, base mass and base CoM are expanded to
per-simulation model fields, so domain randomization of the model is per env without
N MjModel copies. `sensordata` is a derived field: after `step()` it describes the state
before the last physics step (as with mj_step), i.e. it lags the state by SIM_DT.
"""

from __future__ import annotations

import mujoco
import mujoco.batch
import numpy as np

from sim.go2 import constants as C

__all__ = ["BatchSim"]

_NO_STAGE = int(mujoco.mjtStage.mjSTAGE_NONE)
# mj_step resets a simulation that blows up to the model defaults and counts one of these.
_BAD_STATE = [int(w) for w in (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL,
                               mujoco.mjtWarning.mjWARN_BADQACC)]


class BatchSim:
    """N Go2 simulations stepped together; per-env foot friction, base mass and base CoM."""

    def __init__(self, model: mujoco.MjModel, num_envs: int, nthread: int = 0) -> None:
        self.model, self.num_envs = model, num_envs
        self.batch = mujoco.batch.Batch(model, num_envs, nthread)
        b = self.batch
        self.qpos, self.qvel, self.ctrl = b.bind("qpos"), b.bind("qvel"), b.bind("ctrl")
        self.sensordata = b.bind("sensordata")
        self._friction = b.expand("geom_friction")
        self._mass = b.expand("body_mass")
        self._ipos = b.expand("body_ipos")
        self.foot_geoms = np.array([model.geom(g).id for g in C.FOOT_GEOMS])
        self.base = model.body(C.BASE_BODY).id
        self.nominal_friction = float(model.geom_friction[self.foot_geoms[0], 0])
        self.nominal_mass = float(model.body_mass[self.base])
        self.nominal_ipos = model.body_ipos[self.base].copy()
        self.key_qpos = model.key("home").qpos.copy()
        self.ctrl_low = model.actuator_ctrlrange[:, 0].copy()
        self.ctrl_high = model.actuator_ctrlrange[:, 1].copy()
        self.joint_low = model.jnt_range[1:, 0].copy()
        self.joint_high = model.jnt_range[1:, 1].copy()

    def set_dynamics(self, ids: np.ndarray, friction: np.ndarray, added_mass: np.ndarray,
                     com_offset: np.ndarray) -> None:
        """Write per-env model parameters for envs `ids`, then refresh their derived constants."""
        self._friction[ids[:, None], self.foot_geoms[None, :], 0] = friction[:, None]
        self._mass[ids, self.base] = self.nominal_mass + added_mass
        self._ipos[ids, self.base] = self.nominal_ipos + com_offset
        self.batch.set_const(np.sort(ids))  # body_mass/body_ipos feed mj_setConst (subtree mass, invweight)

    def dynamics(self, ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The model parameters the envs actually run with (for tests and logs)."""
        sel = slice(None) if ids is None else ids
        return {"friction": self._friction[sel][:, self.foot_geoms, 0],
                "mass": self._mass[sel, self.base], "ipos": self._ipos[sel, self.base]}

    def reset(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Clear envs `ids` (warm start, ctrl, applied forces, warnings) and set their state."""
        ids = np.sort(ids)
        self.batch.reset(ids, keyframe=0, stage=_NO_STAGE)
        self.qpos[ids] = qpos
        self.qvel[ids] = qvel
        self.ctrl[ids] = 0.0

    def unstable(self) -> np.ndarray:
        """(N,) bool: the simulation diverged (and MuJoCo silently reset it) since its last reset."""
        return np.any(self.batch.warning[:, _BAD_STATE, 1] > 0, axis=1)

    def step(self, nstep: int = 1) -> None:
        """Advance every env by nstep physics steps with the current ctrl."""
        self.batch.step(nstep=nstep)

    def close(self) -> None:
        self.batch = None  # type: ignore[assignment]
