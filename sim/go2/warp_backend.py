"""MuJoCo Warp backend: N Go2 worlds on one Warp device, their state shared with torch without copies.

The same compiled MjModel as the CPU `BatchSim` is put on the device with `nworld = N`.
`qpos`, `qvel`, `ctrl`, `sensordata` and the randomized model fields are `wp.to_torch` views
of the Warp arrays (same memory), so the env's torch code reads the state and writes torques
in place and nothing crosses to the host per step. On CUDA one `mujoco_warp.step` is captured
in a CUDA graph and replayed on torch's current stream (so torch's PD math and the physics are
ordered without synchronisation); on Warp's CPU device it is a plain call.

Per-world model fields: mujoco_warp batches fields whose spec has a leading `*` dimension
(`put_model(batch_sizes=...)`). Foot friction (`geom_friction`), base mass (`body_mass`) and
base CoM (`body_ipos`) are batched, together with the constants `set_const` derives from
them (`body_subtreemass`, `body_invweight0`, `dof_invweight0`, `actuator_acc0`), which it
recomputes for every world after a reset that changed the masses (Warp has no per-world
set_const; recomputing unchanged worlds gives the same values). Like `BatchSim.sensordata`,
`sensordata` lags the state by one physics step (it is computed in the forward pass).

Divergence: MuJoCo C resets a diverged simulation and counts a warning; mujoco_warp does
neither, so `unstable()` flags non-finite or |x| > 1e10 (mjMAXVAL) qpos/qvel/qacc instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import mujoco
import torch
import warp as wp

wp.config.quiet = True  # no init banner and ...
wp.config.log_level = max(wp.config.log_level, wp.LOG_WARNING)  # ... no per-module compile/load lines in logs

import mujoco_warp as mjw  # noqa: E402  (after the quiet setting)

from sim.go2 import constants as C  # noqa: E402

__all__ = ["WarpSim", "warp_device"]

_log = logging.getLogger(__name__)

# Randomized per world, plus what set_const derives from them (body_mass/body_ipos feed subtree
# mass and the invweights that scale constraint regularization).
_BATCHED_FIELDS = ("geom_friction", "body_mass", "body_ipos", "body_subtreemass", "body_invweight0",
                   "dof_invweight0", "actuator_acc0", "actuator_biasprm")  # biasprm: per-world PD gains
_MAXVAL = 1e10  # MuJoCo's mjMAXVAL: the bad-qpos/qvel/qacc threshold of mj_checkPos/Vel/Acc
# Per-world capacities. mujoco_warp's defaults size the Go2 at 48 contacts and 64 constraint rows; a fallen
# Go2 flailing in MuJoCo C (60 random falls x 400 steps, random torques) reached 31 contacts / 111 rows on the
# flat floor and 50 / 180 on the rough heightfield (elliptic cones). Room for ~2x that.
NCONMAX_PER_WORLD = 96
NJMAX_PER_WORLD = 320
# d.overflow bits that mean "capacity exceeded, physics of that world is wrong" (not the solver's iteration cap)
_CAPACITY_BITS = int(mjw.OverflowType.NEFC | mjw.OverflowType.NJMAX_NNZ | mjw.OverflowType.BROADPHASE
                     | mjw.OverflowType.NARROWPHASE | mjw.OverflowType.CCD | mjw.OverflowType.HFIELD)


def warp_device(device: torch.device) -> wp.context.Device:
    """The Warp device that shares memory with torch `device` (cuda → cuda:current index)."""
    if device.type == "cuda":
        return wp.get_device(f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}")
    if device.type != "cpu":
        raise ValueError(f"MuJoCo Warp runs on cpu or cuda, not {device}")
    return wp.get_device("cpu")


class WarpSim:
    """N Go2 worlds stepped together on a Warp device; per-world foot friction, base mass and base CoM."""

    dtype = torch.float32

    def __init__(self, model: mujoco.MjModel, num_envs: int, device: str | torch.device = "cpu",
                 batch_dynamics: bool = True, nconmax: int | None = None, njmax: int | None = None,
                 steps_per_call: int = 1) -> None:
        self.model, self.num_envs = model, num_envs
        self.steps_per_call = steps_per_call  # the nstep the owner calls step() with: captured as one graph
        dev = torch.device(device)
        self.wp_device = warp_device(dev)
        self.device = torch.device("cuda", self.wp_device.ordinal) if self.wp_device.is_cuda else dev
        self.batch_dynamics = batch_dynamics
        data = mujoco.MjData(model)
        mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
        mujoco.mj_forward(model, data)
        batch = {f: num_envs for f in _BATCHED_FIELDS} if batch_dynamics else None
        with wp.ScopedDevice(self.wp_device):
            self.m = mjw.put_model(model, batch_sizes=batch)
            self.nconmax = NCONMAX_PER_WORLD if nconmax is None else nconmax
            self.njmax = NJMAX_PER_WORLD if njmax is None else njmax
            self.m.opt.warn_overflow = 0  # no per-step kernel printf: overflow is read from d.overflow instead
            self.d = mjw.put_data(model, data, nworld=num_envs, nconmax=self.nconmax, njmax=self.njmax)
        t = wp.to_torch
        self.qpos, self.qvel, self.ctrl = t(self.d.qpos), t(self.d.qvel), t(self.d.ctrl)
        self.qacc, self.sensordata = t(self.d.qacc), t(self.d.sensordata)
        self.actuator_force = t(self.d.actuator_force)
        self._biasprm = t(self.m.actuator_biasprm)  # (B, nu, 10): per-world PD gains (model.make_pd_actuators)
        self._overflow = t(self.d.overflow)  # (N,) int bitmask per world, cleared by reset
        # (B, ngeom, 3), (B, nbody), (B, nbody, 3) with B = num_envs when batched, else 1 (shared)
        self._friction, self._mass, self._ipos = t(self.m.geom_friction), t(self.m.body_mass), t(self.m.body_ipos)
        self.foot_geoms = torch.tensor([model.geom(g).id for g in C.FOOT_GEOMS], device=self.device)
        self.base = model.body(C.BASE_BODY).id
        self.nominal_friction = float(model.geom_friction[model.geom(C.FOOT_GEOMS[0]).id, 0])
        self.nominal_mass = float(model.body_mass[self.base])
        f32 = {"dtype": torch.float32, "device": self.device}
        self.nominal_ipos = torch.as_tensor(model.body_ipos[self.base], **f32)
        self.key_qpos = torch.as_tensor(model.key("home").qpos, **f32)
        self.joint_low = torch.as_tensor(model.jnt_range[1:, 0], **f32)
        self.joint_high = torch.as_tensor(model.jnt_range[1:, 1], **f32)
        self._stream = wp.stream_from_torch(self.device) if self.wp_device.is_cuda else None
        # Resets go through one persistent mask (torch writes it, Warp reads the same memory), so on CUDA
        # reset_data + set_const are one captured graph instead of ~300 launches and kernel redefinitions.
        self._mask = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self._wp_mask = wp.from_torch(self._mask, dtype=wp.bool)
        self._graph: object | None = None
        self._graph_n: object | None = None  # steps_per_call physics steps in one graph (a whole policy step)
        self._reset_graph: object | None = None
        self.capture = "none"  # what runs on CUDA: "graphs" (captured) | "launches" (fallback) | "none" (CPU)
        if self.wp_device.is_cuda:
            self._capture()

    def _capture(self) -> None:
        """Compile (one warm-up step), then capture one physics step and one masked reset in CUDA graphs; all
        worlds are reset afterwards because the warm-up moved them (the owner sets their state next).

        mujoco_warp puts conditional nodes (`capture_while`/`capture_if`) in its graphs, which need a CUDA
        driver and toolkit >= 12.4: without them it is told to run unconditionally, and if capture fails
        anyway the sim falls back to plain kernel launches, saying so in one line."""
        if not wp.is_conditional_graph_supported():
            self.m.opt.graph_conditional = False
            _log.warning("CUDA graph conditional nodes need driver and toolkit >= 12.4: mujoco_warp runs its "
                         "solver and collision loops unconditionally")
        self._graph = self._try_capture("physics step", lambda: mjw.step(self.m, self.d))
        if self.steps_per_call > 1 and self._graph is not None:
            def n_steps() -> None:
                for _ in range(self.steps_per_call):
                    mjw.step(self.m, self.d)

            self._graph_n = self._try_capture(f"{self.steps_per_call} physics steps", n_steps)
        self._mask.fill_(True)
        self._reset_graph = self._try_capture("masked reset", self._reset_body)
        self.capture = "graphs" if self._graph is not None and self._reset_graph is not None else "launches"
        self._reset_masked()  # the mask still selects every world

    def _scope(self) -> wp.ScopedStream | wp.ScopedDevice:
        """Run Warp work on torch's current stream (CUDA) so torch ops before and after are ordered."""
        return wp.ScopedStream(self._stream) if self._stream is not None else wp.ScopedDevice(self.wp_device)

    def step(self, nstep: int = 1) -> None:
        """Advance every world by `nstep` physics steps with the current ctrl."""
        if self._graph_n is not None and nstep == self.steps_per_call:
            wp.capture_launch(self._graph_n, stream=self._stream)  # the whole policy step: one launch
        elif self._graph is not None:
            for _ in range(nstep):
                wp.capture_launch(self._graph, stream=self._stream)
        else:
            with self._scope():
                for _ in range(nstep):
                    mjw.step(self.m, self.d)

    def set_gains(self, ids: torch.Tensor, kp: torch.Tensor, kd: torch.Tensor) -> None:
        """PD gains (n, nu) of worlds `ids` (with DR off the worlds share one model row: all get kp[0], kd[0])."""
        if self._biasprm.shape[0] == 1:
            self._biasprm[0, :, 1], self._biasprm[0, :, 2] = -kp[0].to(torch.float32), -kd[0].to(torch.float32)
            return
        self._biasprm[ids, :, 1] = -kp.to(torch.float32)
        self._biasprm[ids, :, 2] = -kd.to(torch.float32)

    def _try_capture(self, what: str, body: Callable[[], None]) -> object | None:
        """Run `body` once (compiles its kernels), then capture it in a CUDA graph; None (plain launches from
        then on, said in one line) where capture fails."""
        try:
            with wp.ScopedDevice(self.wp_device):
                body()
                with wp.ScopedCapture(device=self.wp_device) as cap:
                    body()
            wp.synchronize_device(self.wp_device)
            return cap.graph
        except Exception as e:  # noqa: BLE001  (any capture failure: old driver, unsupported node, ...)
            _log.warning("CUDA graph capture of the %s failed (%s: %s): MuJoCo Warp runs it with plain kernel "
                         "launches", what, type(e).__name__, e)
            return None

    def _reset_body(self) -> None:
        """reset_data for the worlds in the persistent mask, then the derived per-world constants (set_const
        recomputes every world: unchanged ones get the same values)."""
        mjw.reset_data(self.m, self.d, self._wp_mask)
        if self.batch_dynamics:
            mjw.set_const(self.m, self.d)

    def _reset_masked(self) -> None:
        if self._reset_graph is not None:
            wp.capture_launch(self._reset_graph, stream=self._stream)
        else:
            with self._scope():
                self._reset_body()

    def reset(self, ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Clear worlds `ids` (warm start, contacts, applied forces, time) and set their state; ctrl = 0.
        The derived constants of `set_dynamics` are refreshed here too (one pass for both)."""
        self._mask.zero_()
        self._mask[ids] = True
        self._reset_masked()
        self.qpos[ids] = qpos.to(torch.float32)
        self.qvel[ids] = qvel.to(torch.float32)
        self.ctrl[ids] = 0.0

    def set_dynamics(self, ids: torch.Tensor, friction: torch.Tensor, added_mass: torch.Tensor,
                     com_offset: torch.Tensor) -> None:
        """Write per-world model parameters for worlds `ids`, then refresh the derived constants."""
        if not self.batch_dynamics:
            raise RuntimeError("WarpSim(batch_dynamics=False) shares one model across worlds")
        self._friction[ids[:, None], self.foot_geoms[None, :], 0] = friction[:, None].to(torch.float32)
        self._mass[ids, self.base] = (self.nominal_mass + added_mass).to(torch.float32)
        self._ipos[ids, self.base] = (self.nominal_ipos + com_offset).to(torch.float32)
        # set_const runs in the reset that follows (the env always resets the worlds it re-randomizes)

    def dynamics(self, ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The model parameters the worlds actually run with (for tests and logs)."""
        sel = slice(None) if ids is None else ids
        return {"friction": self._friction[sel][:, self.foot_geoms, 0], "mass": self._mass[sel, self.base],
                "ipos": self._ipos[sel, self.base]}

    def unstable(self) -> torch.Tensor:
        """(N,) bool: non-finite or beyond-mjMAXVAL qpos, qvel or qacc (mujoco_warp does not reset these)."""
        bad = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        for x in (self.qpos, self.qvel, self.qacc):
            bad |= ~torch.isfinite(x).all(dim=1) | (x.abs() > _MAXVAL).any(dim=1)
        return bad

    def overflowed(self) -> torch.Tensor:
        """(N,) bool: a contact / constraint / collision buffer overflowed in the world since its reset, so its
        physics is wrong (mujoco_warp drops what does not fit); the env terminates and counts such worlds."""
        return (self._overflow & _CAPACITY_BITS) != 0

    def shares_memory(self) -> bool:
        """The torch views alias the Warp arrays (zero-copy), checked by pointer."""
        pairs = ((self.qpos, self.d.qpos), (self.qvel, self.d.qvel), (self.ctrl, self.d.ctrl),
                 (self.sensordata, self.d.sensordata), (self._mass, self.m.body_mass))
        return all(t.data_ptr() == a.ptr for t, a in pairs)

    def close(self) -> None:
        self._graph = self._graph_n = self._reset_graph = None

