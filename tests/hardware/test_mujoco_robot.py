"""MujocoGo2 in-process: 1 kHz PD motor-driver law and torque clamp, standing, sensors, seeded noise, start poses."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from hardware.interface import DAMPING_KD, MotorCommand, validate_command
from hardware.mujoco_robot import ImuNoise, MujocoGo2
from sim.go2 import constants as C
from sim.go2.contract import TORQUE_LIMITS


@pytest.fixture(scope="module")
def robot() -> MujocoGo2:
    r = MujocoGo2(seed=0)
    r.start()
    return r


def test_runs_at_sim_hz_and_starts_damped(robot: MujocoGo2) -> None:
    robot.reset()
    assert robot.dt == pytest.approx(1e-3) and robot.model.opt.timestep == pytest.approx(1e-3)
    assert robot.num_joints == 12
    assert robot.command.is_damping() and np.all(robot.command.kd == DAMPING_KD)


def test_pd_law_and_torque_clamp(robot: MujocoGo2) -> None:
    robot.reset()
    d = robot.data
    rng = np.random.default_rng(1)
    cmd = MotorCommand(q_des=C.DEFAULT_JOINT_POS + rng.uniform(-0.05, 0.05, 12), qd_des=rng.uniform(-1, 1, 12),
                       kp=np.full(12, 40.0), kd=np.full(12, 1.0), tau_ff=rng.uniform(-1, 1, 12))
    robot.write(cmd)
    q, qd = d.qpos[7:].copy(), d.qvel[6:].copy()
    robot.step()
    expect = cmd.kp * (cmd.q_des - q) + cmd.kd * (cmd.qd_des - qd) + cmd.tau_ff
    assert np.all(np.abs(expect) < np.asarray(TORQUE_LIMITS))  # unclipped case
    assert np.allclose(robot.read().tau_est, expect) and np.allclose(d.actuator_force, expect)

    robot.write(MotorCommand.hold(d.qpos[7:] + np.tile([1.0, -1.0, 1.0], 4), kp=200.0, kd=0.0))
    robot.step()
    limits = np.asarray(TORQUE_LIMITS)
    assert np.allclose(robot.read().tau_est, np.tile([1.0, -1.0, 1.0], 4) * limits)
    assert np.allclose(d.actuator_force, robot.read().tau_est)


def test_physics_steps_in_c_equal_the_explicit_per_step_pd() -> None:
    """`step(n)` runs n physics steps in one mj_step call with the PD law as MuJoCo actuators; the trajectory
    equals n Python iterations of the explicit law τ = clip(kp(q* − q) + kd(qd* − qd) + τ_ff) → mj_step."""
    fast, ref = MujocoGo2(imu_noise=ImuNoise.none()), MujocoGo2(imu_noise=ImuNoise.none())
    for r in (fast, ref):
        r.start()
    m, d = ref.model, ref.data
    m.actuator_biasprm[:] = 0.0  # the reference applies raw torques
    limits = np.asarray(TORQUE_LIMITS)
    rng = np.random.default_rng(0)
    for k in range(40):  # 40 commands x 10 physics steps: stepping, contacts, some clipped torques
        cmd = MotorCommand(q_des=C.DEFAULT_JOINT_POS + rng.uniform(-0.4, 0.4, 12), qd_des=np.zeros(12),
                           kp=np.full(12, 40.0 if k % 5 else 300.0), kd=np.full(12, 1.0), tau_ff=rng.uniform(-1, 1, 12))
        fast.write(cmd)
        fast.step(10)
        for _ in range(10):
            tau = np.clip(cmd.kp * (cmd.q_des - d.qpos[7:]) + cmd.kd * (cmd.qd_des - d.qvel[6:]) + cmd.tau_ff,
                          -limits, limits)
            d.ctrl[:] = tau
            mujoco.mj_step(m, d)
    assert fast.data.time == pytest.approx(ref.data.time)
    np.testing.assert_allclose(fast.data.qpos, d.qpos, atol=1e-9)
    np.testing.assert_allclose(fast.read().tau_est, tau, atol=1e-9)


def test_pd_hold_stands_with_feet_loaded(robot: MujocoGo2) -> None:
    robot.reset()
    robot.write(MotorCommand.hold(C.DEFAULT_JOINT_POS, C.KP, C.KD))
    for _ in range(1500):
        robot.step()
    s = robot.read()
    assert s.t == pytest.approx(1.5)
    assert 0.22 < s.base_pos[2] < 0.28
    assert s.foot_contact.all()
    weight = mujoco.mj_getTotalmass(robot.model) * 9.81
    assert s.foot_force.sum() == pytest.approx(weight, rel=0.1)
    assert np.allclose(s.accel, [0.0, 0.0, 9.81], atol=0.5)  # specific force at rest (+ noise)
    assert np.allclose(s.quat, s.base_quat, atol=0.02) and np.linalg.norm(s.quat) == pytest.approx(1.0)
    assert np.allclose(s.gyro, s.base_ang_vel_body, atol=0.06)

    robot.damp()
    for _ in range(1500):
        robot.step()
    s = robot.read()
    assert s.base_pos[2] < 0.2  # damping alone does not hold the pose
    assert np.allclose(s.tau_est, -DAMPING_KD * s.qd, atol=0.05)


def test_imu_noise_is_seeded() -> None:
    def reads(seed: int, noise: ImuNoise) -> np.ndarray:
        r = MujocoGo2(seed=seed, imu_noise=noise)
        r.start()
        out = []
        for _ in range(3):
            r.step()
            s = r.read()
            out.append(np.concatenate([s.quat, s.gyro, s.accel]))
        return np.array(out)

    a, b, c = reads(3, ImuNoise()), reads(3, ImuNoise()), reads(4, ImuNoise())
    assert np.array_equal(a, b) and not np.allclose(a, c)
    clean = reads(3, ImuNoise.none())
    assert not np.allclose(a, clean) and np.allclose(a, clean, atol=0.3)


def test_lying_start() -> None:
    r = MujocoGo2(init="lying")
    r.start()
    s = r.read()
    assert s.t == 0.0 and s.base_pos[2] < 0.15
    assert np.all(s.q[2::3] < -2.5)  # calves folded
    assert r.command.is_damping()


def test_validate_command_reasons() -> None:
    z, ok = np.zeros(12), np.full(12, 1.0)
    assert validate_command(12, z, z, ok, ok, z) is None
    assert "n=11" in validate_command(11, z[:11], z[:11], ok[:11], ok[:11], z[:11])
    assert "not finite" in validate_command(12, np.full(12, np.nan), z, ok, ok, z)
    assert "kp" in validate_command(12, z, z, -ok, ok, z)
    assert "kd" in validate_command(12, z, z, ok, ok * 1e3, z)
    assert "shape" in validate_command(12, z[:5], z, ok, ok, z)
