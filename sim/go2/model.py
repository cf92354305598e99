"""Build the Go2 MjModel: the collision-only MJCF plus floor/terrain, contact sensors and foot sites.

Everything added to the stock MJCF happens here, with MjSpec, so the XML stays a
verbatim (collision-only) copy of the upstream file.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim.go2 import constants as C
from sim.go2.config import Go2EnvConfig, RoughTerrainConfig

__all__ = ["build_spec", "build_model", "rough_heights", "pose_height_shift"]

_FOUND = 1 << int(mujoco.mjtConDataField.mjCONDATA_FOUND)  # contact sensor reports the match count


def _contact_sensor(spec: mujoco.MjSpec, name: str, objtype: mujoco.mjtObj, objname: str) -> None:
    """Count of contacts between an object and any floor geom (both live in the world body)."""
    spec.add_sensor(name=name, type=mujoco.mjtSensor.mjSENS_CONTACT, objtype=objtype, objname=objname,
                    reftype=mujoco.mjtObj.mjOBJ_BODY, refname=C.FLOOR_BODY, intprm=[_FOUND, 0, 1])


def rough_heights(cfg: RoughTerrainConfig) -> np.ndarray:
    """Heightfield in [0, 1] (scaled by max_height in the model): box-filtered uniform noise, seeded."""
    n = int(round(2 * cfg.half_size / cfg.resolution)) + 1
    h = np.random.default_rng(cfg.seed).uniform(0.0, 1.0, size=(n, n))
    for _ in range(cfg.smoothing):
        p = np.pad(h, 1, mode="edge")
        h = sum(p[i:i + n, j:j + n] for i in range(3) for j in range(3)) / 9.0
    h -= h.min()
    return h / max(float(h.max()), 1e-9)


def _add_terrain(spec: mujoco.MjSpec, cfg: Go2EnvConfig) -> None:
    spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05])
    if cfg.terrain == "flat":
        return
    r = cfg.rough
    h = rough_heights(r)
    spec.add_hfield(name="terrain", size=[r.half_size, r.half_size, max(r.max_height, 1e-4), 0.1],
                    nrow=h.shape[0], ncol=h.shape[1], userdata=h.ravel().tolist())
    spec.worldbody.add_geom(name="terrain", type=mujoco.mjtGeom.mjGEOM_HFIELD, hfieldname="terrain")


def build_spec(cfg: Go2EnvConfig | None = None) -> mujoco.MjSpec:
    """Spec of the task's world; compile it, or edit it first (e.g. for a viewer scene)."""
    cfg = cfg or Go2EnvConfig()
    spec = mujoco.MjSpec.from_file(str(C.XML_PATH))
    _add_terrain(spec, cfg)
    for leg in C.LEGS:
        foot = spec.geom(leg)
        calf = spec.body(f"{leg}_calf")
        calf.add_site(name=f"{leg}_foot", pos=foot.pos)
        shanks = [g for g in calf.geoms if g.name != leg]
        for i, g in enumerate(shanks):
            g.name = f"{leg}_calf{i}"
            _contact_sensor(spec, f"{leg}_calf{i}_contact", mujoco.mjtObj.mjOBJ_GEOM, g.name)
        _contact_sensor(spec, f"{leg}_thigh_contact", mujoco.mjtObj.mjOBJ_BODY, f"{leg}_thigh")
        _contact_sensor(spec, f"{leg}_foot_contact", mujoco.mjtObj.mjOBJ_GEOM, leg)
        spec.add_sensor(name=f"{leg}_foot_pos", type=mujoco.mjtSensor.mjSENS_FRAMEPOS,
                        objtype=mujoco.mjtObj.mjOBJ_SITE, objname=f"{leg}_foot")  # swing-height reward
    _contact_sensor(spec, C.BASE_CONTACT_SENSOR, mujoco.mjtObj.mjOBJ_BODY, C.BASE_BODY)
    key = spec.key("home")
    key.ctrl = np.zeros(C.NUM_JOINTS)  # the stock keyframe's ctrl is a leftover pose, not torques
    qpos = np.array(key.qpos, dtype=float)
    qpos[2] = C.INIT_BASE_HEIGHT
    key.qpos = qpos
    return spec


def make_pd_actuators(m: mujoco.MjModel) -> None:
    """Turn the torque motors into the motor drivers' PD law, in place: force = ctrl − kp·q − kd·qd, clipped
    to the motor limit (the MJCF's ctrlrange becomes the force range), with kp, kd in actuator_biasprm[:, 1:3]
    (written per env) and ctrl = kp·q* (+ kd·qd* + τ_ff on the robot). MuJoCo then runs the PD at every
    physics step inside `mj_step(nstep=...)`, with no Python between physics steps; with Euler integration
    the actuator forces stay explicit, so it is the same law as computing τ before each mj_step."""
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
    limits = m.actuator_ctrlrange.copy()
    m.actuator_gaintype[:] = mujoco.mjtGain.mjGAIN_FIXED
    m.actuator_gainprm[:, :] = 0.0
    m.actuator_gainprm[:, 0] = 1.0
    m.actuator_biastype[:] = mujoco.mjtBias.mjBIAS_AFFINE
    m.actuator_biasprm[:, :] = 0.0
    m.actuator_ctrllimited[:] = 0
    m.actuator_forcelimited[:] = 1
    m.actuator_forcerange[:] = limits


def build_model(cfg: Go2EnvConfig | None = None) -> mujoco.MjModel:
    """Compiled model with PD actuators (`make_pd_actuators`); checks the joint/actuator order the rest of
    the stack assumes."""
    m = build_spec(cfg).compile()
    make_pd_actuators(m)
    joints = tuple(m.joint(i).name for i in range(1, m.njnt))
    acts = tuple(m.actuator(i).name for i in range(m.nu))
    assert joints == C.JOINT_NAMES, joints
    assert acts == C.ACTUATOR_NAMES, acts
    assert abs(m.opt.timestep - C.SIM_DT) < 1e-12, m.opt.timestep
    assert np.allclose(m.key("home").qpos[7:], C.DEFAULT_JOINT_POS)
    return m


def pose_height_shift(m: mujoco.MjModel, pose: np.ndarray) -> float:
    """Base-height change (m) that puts the lowest foot of `pose` where the home keyframe's is: a reset in
    another default pose (longer legs) then starts standing, not with its feet in the floor."""
    d = mujoco.MjData(m)

    def lowest_foot(joints: np.ndarray) -> float:
        d.qpos[:] = m.key("home").qpos
        d.qpos[7:] = joints
        mujoco.mj_kinematics(m, d)
        return min(float(d.geom(g).xpos[2] - m.geom(g).size[0]) for g in C.FOOT_GEOMS)

    return lowest_foot(np.asarray(C.DEFAULT_JOINT_POS, np.float64)) - lowest_foot(np.asarray(pose, np.float64))


def foot_lift_offsets(m: mujoco.MjModel, pose: np.ndarray, lift: float, iters: int = 20) -> np.ndarray:
    """(12,) thigh/calf offsets (rad, policy joint order; hips 0) that raise each foot `lift` m straight up
    from where `pose` puts it (base level, at rest): the full lift of the foot-lift trajectory generator
    (Lee et al. 2020's periodic foot trajectories, vertical only). Newton on MuJoCo's own kinematics; rounded
    to 1e-6 rad, so the robot config can carry exactly the numbers the env trained with."""
    d = mujoco.MjData(m)
    pose = np.asarray(pose, np.float64)
    out = np.zeros(C.NUM_JOINTS)
    if lift == 0.0:
        return out

    def foot_xz(joints: np.ndarray, geom: str) -> np.ndarray:
        d.qpos[:] = 0.0
        d.qpos[3] = 1.0  # base at the origin, level: world frame = base frame
        d.qpos[7:] = joints
        mujoco.mj_kinematics(m, d)
        return d.geom(geom).xpos[[0, 2]].copy()

    for leg, geom in enumerate(C.FOOT_GEOMS):
        ix = [3 * leg + 1, 3 * leg + 2]  # thigh, calf
        goal = foot_xz(pose, geom) + np.array([0.0, lift])
        q = pose.copy()
        for _ in range(iters):
            err = goal - foot_xz(q, geom)
            if np.abs(err).max() < 1e-7:
                break
            jac = np.empty((2, 2))
            for k, j in enumerate(ix):
                dq = q.copy()
                dq[j] += 1e-6
                jac[:, k] = (foot_xz(dq, geom) - foot_xz(q, geom)) / 1e-6
            q[ix] += np.linalg.solve(jac, err)
        out[ix] = q[ix] - pose[ix]
    return np.round(out, 6)
