"""Onboard Go2 kinematics (hard-coded from the MJCF) against MuJoCo: foot sites, Jacobians, velocities."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from controllers import kinematics as K
from sim.go2 import constants as C
from sim.go2.model import build_model


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return build_model()


def random_state(m: mujoco.MjModel, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random base pose and joint angles inside the joint ranges, plus random velocities."""
    qpos = np.zeros(m.nq)
    qpos[:3] = rng.normal(size=3)
    quat = rng.normal(size=4)
    qpos[3:7] = quat / np.linalg.norm(quat)
    qpos[7:] = rng.uniform(m.jnt_range[1:, 0], m.jnt_range[1:, 1])
    return qpos, rng.normal(size=m.nv)


def test_foot_positions_match_mujoco_sites(model: mujoco.MjModel) -> None:
    d = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    for _ in range(50):
        d.qpos[:], _ = random_state(model, rng)
        mujoco.mj_kinematics(model, d)
        R = d.xmat[model.body(C.BASE_BODY).id].reshape(3, 3)
        p = d.xpos[model.body(C.BASE_BODY).id]
        sites = np.array([d.site(s).xpos for s in C.FOOT_SITES])
        fk_world = p + K.foot_positions(d.qpos[7:]) @ R.T
        assert np.abs(fk_world - sites).max() < 1e-6  # 1 µm: the constants are the MJCF's, exactly


def test_foot_radius_matches_mjcf(model: mujoco.MjModel) -> None:
    for leg in C.FOOT_GEOMS:
        assert model.geom(leg).size[0] == pytest.approx(K.FOOT_RADIUS)


def test_jacobian_matches_finite_differences_and_mujoco(model: mujoco.MjModel) -> None:
    d = mujoco.MjData(model)
    rng = np.random.default_rng(1)
    jacp = np.zeros((3, model.nv))
    for _ in range(20):
        qpos, _ = random_state(model, rng)
        q = qpos[7:]
        J = K.foot_jacobians(q)
        eps = 1e-6
        for i in range(12):
            dq = np.zeros(12)
            dq[i] = eps
            fd = (K.foot_positions(q + dq) - K.foot_positions(q - dq)) / (2 * eps)
            leg, col = divmod(i, 3)
            assert np.allclose(fd[leg], J[leg][:, col], atol=1e-8)
            others = [lg for lg in range(4) if lg != leg]
            assert np.allclose(fd[others], 0.0, atol=1e-12)  # a joint moves only its own foot
        # MuJoCo's site Jacobian (world frame), rotated into the base frame, leg-joint columns.
        d.qpos[:] = qpos
        mujoco.mj_kinematics(model, d)
        mujoco.mj_comPos(model, d)
        R = d.xmat[model.body(C.BASE_BODY).id].reshape(3, 3)
        for leg, site in enumerate(C.FOOT_SITES):
            mujoco.mj_jacSite(model, d, jacp, None, model.site(site).id)
            J_mj = R.T @ jacp[:, 6 + 3 * leg:9 + 3 * leg]
            assert np.allclose(J_mj, J[leg], atol=1e-9)


def test_foot_velocities_match_mujoco(model: mujoco.MjModel) -> None:
    """J q̇ plus ω × p_foot is the foot's velocity relative to the base origin's motion, in the base frame."""
    d = mujoco.MjData(model)
    rng = np.random.default_rng(2)
    v6 = np.zeros(6)
    for _ in range(10):
        d.qpos[:], d.qvel[:] = random_state(model, rng)
        mujoco.mj_forward(model, d)
        R = d.xmat[model.body(C.BASE_BODY).id].reshape(3, 3)
        omega_b = d.qvel[3:6]  # free-joint angular velocity is in the base frame
        rel_b = np.cross(omega_b, K.foot_positions(d.qpos[7:])) + K.foot_velocities(d.qpos[7:], d.qvel[6:])
        for leg, site in enumerate(C.FOOT_SITES):
            mujoco.mj_objectVelocity(model, d, mujoco.mjtObj.mjOBJ_SITE, model.site(site).id, v6, 0)
            assert np.allclose(v6[3:], d.qvel[:3] + R @ rel_b[leg], atol=1e-9)


def test_calf_angular_velocities_match_mujoco(model: mujoco.MjModel) -> None:
    d = mujoco.MjData(model)
    rng = np.random.default_rng(3)
    v6 = np.zeros(6)
    for _ in range(10):
        d.qpos[:], d.qvel[:] = random_state(model, rng)
        mujoco.mj_forward(model, d)
        R = d.xmat[model.body(C.BASE_BODY).id].reshape(3, 3)
        omega_b = d.qvel[3:6] + K.calf_angular_velocities(d.qpos[7:], d.qvel[6:])
        for leg, name in enumerate(C.LEGS):
            mujoco.mj_objectVelocity(model, d, mujoco.mjtObj.mjOBJ_BODY, model.body(f"{name}_calf").id, v6, 0)
            assert np.allclose(v6[:3], R @ omega_b[leg], atol=1e-9)


def test_bad_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match="12 joint values"):
        K.foot_positions(np.zeros(11))
