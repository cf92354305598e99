"""Daemon building blocks without processes: robot config vs training contract and MJCF, observation layout,
clamping, policy-target shaping, the mode machine and the input gate."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import pytest

from controllers.command import CommandShaper, PolicyTargets
from controllers.inputs import ChannelMonitor, Verdict, validate_joint_state, validate_state_estimate
from controllers.observation import ObservationBuilder, ObservationError, ObsInputs, clock_phase
from controllers.robot_config import DEFAULT_ROBOT_CONFIG, load_robot_config
from controllers.state_machine import ModeMachine
from controllers.stats import Histogram
from hardware.channels import Mode
from hardware.msgs import joint_state_t, state_estimate_t
from som_robot.config import ConfigError
from som_robot.contract import ObsTerm

CFG = load_robot_config()


def test_yaml_contract_is_the_training_contract() -> None:
    from sim.go2.contract import go2_contract

    assert CFG.contract == go2_contract()
    go2_contract().check_matches(CFG.contract)


def test_yaml_joint_limits_are_the_mjcf_ranges() -> None:
    mujoco = pytest.importorskip("mujoco")
    from sim.go2.constants import XML_PATH

    model = mujoco.MjModel.from_xml_path(str(XML_PATH))
    ranges = np.array([model.joint(name).range for name in CFG.contract.joint_names])
    np.testing.assert_array_equal(CFG.joint_limits.lower, ranges[:, 0])
    np.testing.assert_array_equal(CFG.joint_limits.upper, ranges[:, 1])


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="deploy.stand_up_s"):
        load_robot_config(DEFAULT_ROBOT_CONFIG, ["deploy.stand_up_s=-1"])
    with pytest.raises(ConfigError, match="watchdog.imu_timeout"):
        load_robot_config(DEFAULT_ROBOT_CONFIG, ["watchdog.imu_timeout=0.1"])
    with pytest.raises(ConfigError, match="interpolation"):
        load_robot_config(DEFAULT_ROBOT_CONFIG, ["deploy.interpolation=cubic"])
    assert load_robot_config(DEFAULT_ROBOT_CONFIG, ["deploy.stand_up_s=0.5"]).deploy.stand_up_s == 0.5


def test_observation_follows_contract_order_and_scales() -> None:
    c = CFG.contract
    rng = np.random.default_rng(0)
    x = ObsInputs(gravity_body=np.array([0.0, 0.1, -0.99]), ang_vel_body=rng.normal(size=3),
                  lin_vel_body=rng.normal(size=3), command=np.array([0.5, -0.2, 0.3]), q=rng.normal(size=12),
                  qd=rng.normal(size=12), last_action=rng.uniform(-1, 1, size=12),
                  gait_phase=clock_phase(7, c))
    obs = ObservationBuilder(c).build(x)
    assert obs.dtype == np.float32 and obs.shape == (c.obs_dim,)
    s = c.obs_slices()
    expect = {"gravity": x.gravity_body, "gyro": 0.25 * x.ang_vel_body, "command": x.command,
              "joint_pos": x.q - np.asarray(c.default_pose), "joint_vel": 0.05 * x.qd, "last_action": x.last_action,
              "gait_phase": [np.cos(2 * np.pi * 0.28), np.sin(2 * np.pi * 0.28)]}  # 7 steps · 20 ms · 2 Hz
    assert list(s) == list(expect)
    for name, v in expect.items():
        np.testing.assert_allclose(obs[s[name]], v, rtol=1e-6, atol=1e-6, err_msg=name)
    # a reordered contract reorders the vector: the builder is generic over obs_terms
    rev = dataclasses.replace(c, obs_terms=c.obs_terms[::-1])
    obs_rev = ObservationBuilder(rev).build(x)
    np.testing.assert_allclose(obs_rev[2:14], x.last_action, rtol=1e-6)


def test_unknown_or_misshaped_obs_term_fails_at_startup() -> None:
    with pytest.raises(ObservationError, match="'foot_height'"):
        ObservationBuilder(dataclasses.replace(CFG.contract, obs_terms=(*CFG.contract.obs_terms,
                                                                         ObsTerm("foot_height", 4))))
    with pytest.raises(ObservationError, match="'gyro' has dim 4"):
        ObservationBuilder(dataclasses.replace(CFG.contract, obs_terms=(ObsTerm("gyro", 4),)))


def test_targets_outside_joint_limits_are_clamped_and_counted() -> None:
    shaper = CommandShaper(CFG)
    lo, hi = np.array(CFG.joint_limits.lower), np.array(CFG.joint_limits.upper)
    q = CFG.default_pose.copy()
    q[0], q[5], q[7] = hi[0] + 0.5, lo[5] - 1.0, math.inf
    t = shaper.policy(q)
    assert shaper.clamped == 3
    assert t.mode == Mode.POLICY and np.all(t.q_des >= lo) and np.all(t.q_des <= hi)
    assert t.q_des[0] == hi[0] and t.q_des[5] == lo[5] and t.q_des[7] == hi[7]
    np.testing.assert_array_equal(np.delete(t.q_des, [0, 5, 7]), np.delete(q, [0, 5, 7]))
    shaper.policy(CFG.default_pose)
    assert shaper.clamped == 3  # in-range targets are not counted
    # an extreme action maps inside the limits only through the clamp; the action is clipped first
    np.testing.assert_allclose(shaper.action_to_q(np.full(12, 5.0)), CFG.default_pose + CFG.contract.action_scale)
    margin = load_robot_config(DEFAULT_ROBOT_CONFIG, ["deploy.joint_limit_margin=0.1"])
    assert CommandShaper(margin).policy(q).q_des[0] == pytest.approx(hi[0] - 0.1)


def test_damping_passive_and_stand_up_targets() -> None:
    shaper = CommandShaper(CFG)
    q = np.tile([0.0, 1.2, -2.6], 4)
    d = shaper.damping(q)
    assert d.mode == Mode.DAMPING and not d.kp.any() and np.all(d.kd == CFG.deploy.damping_kd)
    np.testing.assert_array_equal(d.q_des, q)
    p = shaper.passive(q)
    assert not p.kp.any() and not p.kd.any()
    mid, done = shaper.stand_up(q, CFG.deploy.stand_up_s / 2)
    np.testing.assert_allclose(mid.q_des, (q + CFG.default_pose) / 2)
    assert not done and np.all(mid.kp == 40.0)
    end, done = shaper.stand_up(q, CFG.deploy.stand_up_s * 1.5)
    assert done
    np.testing.assert_allclose(end.q_des, CFG.default_pose)


def test_policy_targets_hold_or_ramp_over_the_policy_period() -> None:
    a, b = np.zeros(12), np.ones(12)
    hold = PolicyTargets(10, "hold")
    hold.reset(a)
    hold.set(b)
    assert all(np.array_equal(hold.advance(), b) for _ in range(10))
    lin = PolicyTargets(10, "linear")
    lin.reset(a)
    lin.set(b)
    ramp = [lin.advance()[0] for _ in range(12)]
    np.testing.assert_allclose(ramp, [0.1 * k for k in range(1, 11)] + [1.0, 1.0])


def test_mode_machine_transitions_and_latches() -> None:
    m = ModeMachine()
    m.request(Mode.POLICY)
    m.step(healthy=False, stand_up_done=False)
    assert m.mode == Mode.PASSIVE  # waits for healthy sensors
    m.step(healthy=True, stand_up_done=False)
    assert m.mode == Mode.STAND_UP
    m.step(healthy=True, stand_up_done=False)
    assert m.mode == Mode.STAND_UP
    m.step(healthy=True, stand_up_done=True)
    assert m.mode == Mode.POLICY
    assert m.fault("imu silent") and m.mode == Mode.DAMPING
    m.step(healthy=True, stand_up_done=True)
    assert m.mode == Mode.DAMPING  # a fault resets the target: nothing re-arms on its own
    m.request(Mode.PASSIVE)
    m.step(healthy=True, stand_up_done=True)
    assert m.mode == Mode.PASSIVE  # operator re-arm
    m.estop()
    m.request(Mode.PASSIVE)
    m.step(healthy=True, stand_up_done=True)
    assert m.mode == Mode.DAMPING and m.estopped  # e-stop latches until restart
    assert [t.mode for t in m.history] == [Mode.PASSIVE, Mode.STAND_UP, Mode.POLICY, Mode.DAMPING, Mode.PASSIVE,
                                           Mode.DAMPING]


def _js(seq: int, utime: int, n: int = 12, q: float = 0.0) -> bytes:
    m = joint_state_t()
    m.utime, m.seq, m.n, m.q, m.qd, m.tau_est = utime, seq, n, [q] * n, [0.0] * n, [0.0] * n
    return m.encode()


def test_input_gate_verdicts() -> None:
    mon = ChannelMonitor("JS", joint_state_t.decode, validate_joint_state(12), 0.02)
    assert mon.offer(_js(1, 100), 1.0) == (Verdict.ACCEPTED, "")
    assert mon.offer(b"\x00garbage", 1.001)[0] is Verdict.GARBAGE
    assert mon.offer(_js(2, 200)[:30], 1.001)[0] is Verdict.GARBAGE  # right fingerprint, truncated
    assert mon.offer(_js(2, 200, q=math.nan), 1.002) == (Verdict.INVALID, "non-finite value in 'q'")
    assert "wrong array size" in mon.offer(_js(3, 300, n=11), 1.003)[1]
    assert "duplicated" in mon.offer(_js(3, 300), 1.004)[1]
    assert "out-of-order" in mon.offer(_js(1, 50), 1.005)[1]
    assert mon.offer(_js(2, 60), 1.006)[0] is Verdict.ACCEPTED  # one bad packet, then resynchronised
    assert (mon.accepted, mon.garbage, mon.invalid) == (2, 2, 4)
    assert mon.latest.seq == 2 and not mon.stale(1.02) and mon.stale(1.03)
    est = state_estimate_t()
    est.quat, est.gravity_body, est.position = [1.0, 0, 0, 0], [0, 0, -1.0], [0.0] * 3
    est.lin_vel_world, est.lin_vel_body, est.ang_vel_body = [0.0] * 3, [0.0] * 3, [0.0] * 3
    est.n_cov, est.cov_diag, est.n_feet, est.contact = 1, [math.inf], 4, [True] * 4
    assert validate_state_estimate(4)(est) == "non-finite value in 'cov_diag'"
    est.cov_diag, est.n_feet, est.contact = [0.1], 3, [True] * 3
    assert "n_feet=3" in validate_state_estimate(4)(est)


def test_histogram_percentiles_within_a_bin() -> None:
    h = Histogram()
    for x in range(1, 1001):
        h.add(float(x))
    assert h.percentile(50) == pytest.approx(500, rel=0.02)
    assert h.percentile(99) == pytest.approx(990, rel=0.02)
    assert h.percentile(100) == 1000


class _FakeLcm:
    """Captures publishes; the daemon's inputs are fed straight into its handler."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def subscribe(self, channel: str, handler: object) -> tuple[str, object]:
        return channel, handler  # lcm returns a subscription; None would mean it could not bind

    def publish(self, channel: str, data: bytes) -> None:
        self.sent.append((channel, data))


def test_an_exception_in_a_tick_damps_and_is_recorded(tmp_path_factory: pytest.TempPathFactory) -> None:
    from daemon_harness import estimate, imu, joint_state, now_us, policy_file

    from controllers.daemon import ControllerDaemon
    from hardware import channels as ch
    from hardware.msgs import daemon_status_t, joint_command_t
    from som_robot.policy_runtime import OnnxPolicy

    lc = _FakeLcm()
    cfg = load_robot_config(DEFAULT_ROBOT_CONFIG, ["deploy.stand_up_s=0.001"])
    d = ControllerDaemon(cfg, OnnxPolicy(policy_file(tmp_path_factory.getbasetemp(), CFG.contract), CFG.contract),
                         lc, auto=True)
    seq = iter(range(1, 100))

    def tick() -> None:  # fresh inputs, then one loop iteration
        i, u = next(seq), now_us()
        for c, make in ((ch.JOINT_STATE, joint_state), (ch.IMU, imu), (ch.STATE_ESTIMATE, estimate)):
            d._on_message(c, make(i, u).encode())
        d.loop.start_tick()
        d._tick()

    for _ in range(3):
        tick()
        time.sleep(0.002)
    assert d.machine.mode == Mode.POLICY

    def broken(obs: np.ndarray) -> np.ndarray:
        raise RuntimeError("onnxruntime exploded")

    d.policy = broken
    d._policy_tick = 0  # next tick infers
    tick()
    assert d.machine.mode == Mode.DAMPING and "onnxruntime exploded" in d.last_error
    cmd = joint_command_t.decode([b for c, b in lc.sent if c == ch.JOINT_COMMAND][-1])
    assert cmd.mode == Mode.DAMPING and not any(cmd.kp)
    status = daemon_status_t.decode([b for c, b in lc.sent if c == ch.DAEMON_STATUS][-1])
    assert status.mode == Mode.DAMPING and "onnxruntime exploded" in status.last_error


def test_plausibility_bounds_name_the_field_and_fall_angles_match_training() -> None:
    from controllers.inputs import roll_pitch_from_quat, validate_imu
    from hardware.msgs import imu_t
    from sim.go2.obs import quat_to_rotmat, roll_pitch

    b = CFG.input_bounds()
    check = validate_joint_state(12, b)
    msg = joint_state_t()
    msg.n, msg.q, msg.qd, msg.tau_est = 12, list(CFG.default_pose), [0.0] * 12, [0.0] * 12
    assert check(msg) is None
    msg.q[4] = CFG.joint_limits.upper[4] + CFG.plausibility.joint_pos_margin - 0.01  # inside the margin
    assert check(msg) is None
    msg.q[4] += 0.02
    assert check(msg).startswith("implausible 'q'[4]")
    msg.q = list(CFG.default_pose)
    msg.tau_est[2] = 2.0 * CFG.contract.torque_limits[2]
    assert check(msg).startswith("implausible 'tau_est'[2]")
    m = imu_t()
    m.quat, m.gyro, m.accel = [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 9.81]
    assert validate_imu(m, b) is None
    m.quat = [1.3, 0.0, 0.0, 0.0]
    assert validate_imu(m, b).startswith("implausible 'quat' norm")
    m.quat, m.accel = [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 200.0]
    assert validate_imu(m, b).startswith("implausible 'accel'[2]")
    rng = np.random.default_rng(1)
    for q in rng.normal(size=(20, 4)):  # the daemon's fall angles are the training env's termination angles
        q /= np.linalg.norm(q)
        r, p = roll_pitch(quat_to_rotmat(q[None]))
        assert roll_pitch_from_quat(q) == pytest.approx((float(r[0]), float(p[0])), abs=1e-9)
