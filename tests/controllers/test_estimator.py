"""State estimator: the Kalman filter against MuJoCo ground truth on a trotting Go2, input validation,
config loading, and the estimator node (in-process handlers and a real LCM round trip across processes)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import mujoco
import numpy as np
import pytest

from controllers import kinematics as K
from controllers.estimator import (
    EstimatorConfig,
    EstimatorInputError,
    KalmanEstimator,
    foot_forces_from_torque,
    load_estimator_config,
    quat_to_rotmat,
)
from controllers.estimator_node import READY_LINE, RESYNC_AFTER, EstimatorNode
from hardware import channels as ch
from hardware.msgs import foot_contact_t, imu_t, joint_state_t, state_estimate_t
from sim.go2 import constants as C
from sim.go2.model import build_spec
from som_robot.config import ConfigError

REPO = Path(__file__).resolve().parents[2]
G = 9.81

# --- MuJoCo trot ------------------------------------------------------------------------------------
TROT_T = 5.0  # [s]
TROT_START = 0.5  # stand first, then trot
TROT_PERIOD = 0.4  # [s] diagonal pairs FL+RR / FR+RL half a period apart
TROT_KP, TROT_KD = 80.0, 2.0  # stiffer than the policy's PD so the open-loop gait tracks and walks
EVAL_FROM = 1.0  # [s] score after the gait has started


@dataclass
class TrotLog:
    """Sensor stream and ground truth, each row one 500 Hz sample (sensors consistent with qpos/qvel)."""

    t: np.ndarray
    qpos: np.ndarray  # (n, 19) truth: base pos, quat, joints
    qvel: np.ndarray  # (n, 18) truth: base lin vel (world), ang vel (base), joint vel
    gyro: np.ndarray  # (n, 3) IMU site
    accel: np.ndarray  # (n, 3) IMU site, specific force in the base frame
    force: np.ndarray  # (n, 4) foot normal contact force [N]
    tau: np.ndarray  # (n, 12) actuator (motor) torque


def _trot_targets(t: float) -> np.ndarray:
    target = C.DEFAULT_JOINT_POS.copy()
    if t < TROT_START:
        return target
    phase = 2 * np.pi * t / TROT_PERIOD
    for leg, sign in ((0, 1.0), (3, 1.0), (1, -1.0), (2, -1.0)):
        s = sign * np.sin(phase)
        lift = max(0.0, s)  # swing half of the cycle
        target[3 * leg + 1] += 0.3 * sign * np.cos(phase) + 0.1 * lift  # foot forward in swing, back in stance
        target[3 * leg + 2] -= 0.5 * lift  # fold the calf to clear the ground
    return target


@pytest.fixture(scope="module")
def trot() -> TrotLog:
    spec = build_spec()
    site = mujoco.mjtObj.mjOBJ_SITE
    spec.add_sensor(name="imu_gyro", type=mujoco.mjtSensor.mjSENS_GYRO, objtype=site, objname="imu")
    spec.add_sensor(name="imu_acc", type=mujoco.mjtSensor.mjSENS_ACCELEROMETER, objtype=site, objname="imu")
    m = spec.compile()
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, m.key("home").id)
    gyro_cols, acc_cols = C.sensor_slice(m, "imu_gyro"), C.sensor_slice(m, "imu_acc")
    foot_geom = {m.geom(name).id: i for i, name in enumerate(C.FOOT_GEOMS)}
    n = int(round(TROT_T / m.opt.timestep))
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("qpos", "qvel", "gyro", "accel", "force", "tau")}
    f6 = np.zeros(6)
    for k in range(n):
        # mj_step computes sensors and contacts for the state *before* it integrates: log that state.
        qpos, qvel = d.qpos.copy(), d.qvel.copy()
        d.ctrl[:] = TROT_KP * (_trot_targets(k * m.opt.timestep) - qpos[7:]) - TROT_KD * qvel[6:]
        mujoco.mj_step(m, d)
        force = np.zeros(4)
        for i in range(d.ncon):
            con = d.contact[i]
            leg = foot_geom.get(int(con.geom1), foot_geom.get(int(con.geom2)))
            if leg is not None:
                mujoco.mj_contactForce(m, d, i, f6)
                force[leg] += f6[0]
        for key, val in (("qpos", qpos), ("qvel", qvel), ("gyro", d.sensordata[gyro_cols]),
                         ("accel", d.sensordata[acc_cols]), ("force", force), ("tau", d.actuator_force)):
            rows[key].append(np.array(val, dtype=float))
    arrays = {k: np.array(v) for k, v in rows.items()}
    return TrotLog(t=np.arange(n) * m.opt.timestep, **arrays)


def run_filter(log: TrotLog, use_force: bool, seed: int = 0,
               cfg: EstimatorConfig | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Feed the filter noisy sensors (IMU bias + white noise, joint velocity noise); also integrate the IMU alone.

    Returns (estimated velocity, estimated position, contact flags, IMU-only velocity).
    """
    rng = np.random.default_rng(seed)
    acc_bias = np.array([0.08, -0.06, 0.05])  # [m/s^2], typical uncalibrated MEMS bias
    est = KalmanEstimator(cfg)
    v_est, p_est, contact, v_imu = [], [], [], []
    v_int = log.qvel[0, :3].copy()
    for k, t in enumerate(log.t):
        accel = log.accel[k] + acc_bias + rng.normal(0.0, 0.2, 3)
        gyro = log.gyro[k] + rng.normal(0.0, 0.01, 3)
        qd = log.qvel[k, 6:] + rng.normal(0.0, 0.05, 12)
        quat = log.qpos[k, 3:7]
        e = est.update(t, log.qpos[k, 7:], qd, quat, gyro, accel,
                       foot_force=log.force[k] if use_force else None, tau=log.tau[k])
        if k:
            v_int = v_int + (t - log.t[k - 1]) * (quat_to_rotmat(quat) @ accel - np.array([0.0, 0.0, G]))
        v_est.append(e.lin_vel_world)
        p_est.append(e.position)
        contact.append(e.contact)
        v_imu.append(v_int.copy())
    return np.array(v_est), np.array(p_est), np.array(contact), np.array(v_imu)


def rms(err: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum(err**2, axis=-1))))


def test_trot_actually_walks(trot: TrotLog) -> None:
    sl = trot.t >= EVAL_FROM
    vx = trot.qvel[sl, 0].mean()
    print(f"trot: mean forward speed {vx:.3f} m/s, min base height {trot.qpos[:, 2].min():.3f} m")
    assert 0.3 < vx < 0.7
    assert trot.qpos[:, 2].min() > 0.15  # upright throughout
    assert (trot.force[sl] > 1.0).sum(axis=1).min() >= 1  # never airborne for long: a trot, not a bound


@pytest.mark.parametrize("use_force", [True, False], ids=["contact_force", "joint_torque"])
def test_trot_velocity_tracks_ground_truth(trot: TrotLog, use_force: bool) -> None:
    v_est, p_est, contact, v_imu = run_filter(trot, use_force)
    sl = trot.t >= EVAL_FROM
    truth = trot.qvel[:, :3]
    err_kf, err_imu = rms(v_est[sl] - truth[sl]), rms(v_imu[sl] - truth[sl])
    err_xy = rms(v_est[sl, :2] - truth[sl, :2])
    agree = float(np.mean(contact[sl] == (trot.force[sl] > 10.0)))
    drift = np.linalg.norm(p_est[-1, :2] - p_est[0, :2] - (trot.qpos[-1, :2] - trot.qpos[0, :2]))
    z_err = float(np.mean(p_est[sl, 2] - trot.qpos[sl, 2]))
    print(f"{'force' if use_force else 'torque'} contact: velocity RMS error KF {err_kf:.3f} m/s "
          f"(xy {err_xy:.3f}), IMU-only {err_imu:.3f} m/s; stance agreement {agree:.3f}; "
          f"xy travel error {drift:.3f} m over {np.linalg.norm(trot.qpos[-1, :2] - trot.qpos[0, :2]):.2f} m; "
          f"mean height error {z_err * 100:.1f} cm")
    assert err_kf < 0.15
    assert err_imu > 3 * err_kf
    assert agree > 0.85
    assert drift < 0.2
    assert abs(z_err) < 0.03  # foot-sphere sinks ~1.3 cm into MuJoCo's soft floor: a known bias


def test_torque_force_estimate_standing(trot: TrotLog) -> None:
    """Standing still, F = J⁻ᵀ τ matches the contact forces and carries the robot's weight."""
    k = int(TROT_START / (trot.t[1] - trot.t[0])) - 1
    R = quat_to_rotmat(trot.qpos[k, 3:7])
    f_est = foot_forces_from_torque(trot.qpos[k, 7:], trot.tau[k] - 2.0 * trot.qvel[k, 6:], R)
    assert np.allclose(f_est, trot.force[k], atol=0.15 * trot.force[k].max())
    assert f_est.sum() == pytest.approx(trot.force[k].sum(), rel=0.1)


# --- unit behaviour ----------------------------------------------------------------------------------
QUAT_ID = np.array([1.0, 0.0, 0.0, 0.0])
STAND_FORCE = np.full(4, 38.0)


def stand(est: KalmanEstimator, t: float, **kw: object):
    args = dict(q=C.DEFAULT_JOINT_POS, qd=np.zeros(12), quat=QUAT_ID, gyro=np.zeros(3),
                accel=np.array([0.0, 0.0, G]), foot_force=STAND_FORCE)
    args.update(kw)
    return est.update(t, **args)


def test_standing_still_estimate() -> None:
    est = KalmanEstimator()
    for k in range(500):
        e = stand(est, k * 0.002)
    assert np.allclose(e.lin_vel_world, 0.0, atol=1e-6)
    assert np.allclose(e.gravity_body, [0.0, 0.0, -1.0])
    expected_z = K.FOOT_RADIUS - K.foot_positions(C.DEFAULT_JOINT_POS)[:, 2].mean()
    assert e.position == pytest.approx([0.0, 0.0, expected_z], abs=1e-6)
    assert e.contact.all() and e.cov_diag.shape == (18,) and np.all(np.isfinite(e.cov_diag))
    assert np.all(e.cov_diag[3:6] < 1e-3)  # velocity is observed through the stance legs


def test_tilted_body_frame_outputs() -> None:
    """Yawed 90° and moving along world x: body velocity is along −y of the base; gravity stays −z."""
    est = KalmanEstimator()
    quat = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])
    e = stand(est, 0.0, quat=quat)
    est._x[3:6] = [0.5, 0.0, 0.0]  # inject a velocity to check the frame conversion only
    e = stand(est, 0.002, quat=quat, foot_force=np.zeros(4))  # no stance: the velocity is kept
    assert e.lin_vel_world == pytest.approx([0.5, 0.0, 0.0], abs=1e-3)
    assert e.lin_vel_body == pytest.approx([0.0, -0.5, 0.0], abs=1e-3)
    assert e.gravity_body == pytest.approx([0.0, 0.0, -1.0])


def test_contact_hysteresis_and_trust_ramp() -> None:
    cfg = EstimatorConfig(contact_on_n=20.0, contact_off_n=8.0)
    est = KalmanEstimator(cfg)
    flags = [bool(stand(est, 0.002 * i, foot_force=np.full(4, f)).contact[0])
             for i, f in enumerate([0.0, 15.0, 25.0, 15.0, 9.0, 7.0, 15.0, 21.0])]
    assert flags == [False, False, True, True, True, False, False, True]
    assert est._trust(0.002 * 7)[0] == 0.0  # just touched down: not trusted yet
    assert est._trust(0.002 * 7 + cfg.trust_ramp_s)[0] == 1.0


@pytest.mark.parametrize("bad, match", [
    (dict(q=np.full(12, np.nan)), "q: non-finite"),
    (dict(qd=np.zeros(11)), "qd: expected 12"),
    (dict(accel=[0.0, np.inf, 9.8]), "accel: non-finite"),
    (dict(quat=np.zeros(4)), "quat: norm"),
    (dict(foot_force=None), "foot_force or tau"),
    (dict(foot_force=np.zeros(5)), "foot_force: expected 4"),
])
def test_bad_inputs_raise_and_keep_state(bad: dict, match: str) -> None:
    est = KalmanEstimator()
    good = stand(est, 0.0)
    cov = est._P.copy()
    with pytest.raises(EstimatorInputError, match=match):
        stand(est, 0.002, **bad)
    assert est.last is good and np.array_equal(est._P, cov)
    assert stand(est, 0.002).t == 0.002  # still usable afterwards


def test_time_must_increase() -> None:
    est = KalmanEstimator()
    stand(est, 1.0)
    with pytest.raises(EstimatorInputError, match="time not increasing"):
        stand(est, 1.0)
    with pytest.raises(EstimatorInputError, match="non-finite time"):
        stand(est, float("nan"))
    est.reset(position_xy=(1.0, 2.0))
    assert not est.initialized
    assert stand(est, 0.5).position[:2] == pytest.approx([1.0, 2.0])


def test_config_from_dict_and_yaml(tmp_path: Path) -> None:
    assert load_estimator_config(None) == EstimatorConfig()
    cfg = load_estimator_config({"estimator": {"contact_on_n": 30, "sensor_noise_zfoot": "1e-4"}})
    assert cfg.contact_on_n == 30.0 and cfg.sensor_noise_zfoot == 1e-4
    with pytest.raises(ConfigError, match="unknown config key 'contact_on'"):
        load_estimator_config({"contact_on": 3})
    with pytest.raises(ConfigError, match="contact_off_n"):
        load_estimator_config({"contact_on_n": 5.0, "contact_off_n": 6.0})
    with pytest.raises(ConfigError, match="max_dt"):
        replace(EstimatorConfig(), max_dt=0.0)


def test_onboard_modules_import_no_mujoco_or_torch() -> None:
    code = ("import sys, controllers.estimator_node, controllers.estimator, controllers.kinematics; "
            "bad = [m for m in ('mujoco', 'torch') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


# --- node: in-process handlers -----------------------------------------------------------------------
def js_msg(seq: int, utime: int, q: np.ndarray = C.DEFAULT_JOINT_POS, n: int = 12) -> bytes:
    m = joint_state_t()
    m.utime, m.seq, m.n = utime, seq, n
    m.q = [float(x) for x in np.resize(q, n)]
    m.qd = [0.0] * n
    m.tau_est = [0.0] * n
    return m.encode()


def imu_msg(seq: int, utime: int, accel: tuple[float, float, float] = (0.0, 0.0, G),
            quat: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0)) -> bytes:
    m = imu_t()
    m.utime, m.seq = utime, seq
    m.quat, m.gyro, m.accel = list(quat), [0.0] * 3, list(accel)
    return m.encode()


def contact_msg(seq: int, utime: int, force: float = 38.0) -> bytes:
    m = foot_contact_t()
    m.utime, m.seq, m.n = utime, seq, 4
    m.force = [force] * 4
    m.contact = [force > 20.0] * 4
    return m.encode()


def test_node_handlers_publish_and_reject() -> None:
    sent: list[tuple[str, bytes]] = []
    node = EstimatorNode(EstimatorConfig(), lambda c, b: sent.append((c, b)), clock=lambda: 123.0)
    t0 = 1_700_000_000_000_000
    assert node.on_joint_state(js_msg(0, t0)) is None  # no IMU yet
    assert node.rejected[f"{ch.IMU} stale"] == 1
    node.on_imu(imu_msg(0, t0))
    node.on_foot_contact(contact_msg(0, t0))
    est = node.on_joint_state(js_msg(1, t0 + 2000))
    assert est is not None and est.contact.all()
    out = state_estimate_t.decode(sent[-1][1])
    assert sent[-1][0] == ch.STATE_ESTIMATE
    assert out.source_utime == t0 + 2000 and out.utime == 123_000_000 and out.seq == 0
    assert out.n_cov == 18 and len(out.cov_diag) == 18 and out.n_feet == 4 and all(out.contact)
    n_sent = len(sent)

    node.on_joint_state(js_msg(2, t0 + 4000, q=np.full(12, np.nan)))
    node.on_joint_state(js_msg(3, t0 + 6000, n=6))
    node.on_joint_state(js_msg(1, t0 + 8000))  # seq went back
    node.on_joint_state(js_msg(9, t0 + 2000))  # utime went back
    node.on_joint_state(b"\x00garbage")
    node.on_imu(imu_msg(1, t0 + 1000, accel=(np.nan, 0.0, G)))
    node.on_imu(imu_msg(2, t0 + 1000, quat=(2.0, 0.0, 0.0, 0.0)))
    node.on_imu(b"")
    node.on_foot_contact(b"\xff" * 40)
    assert len(sent) == n_sent  # nothing published for bad input
    assert node.on_joint_state(js_msg(4, t0 + 30_000)) is None  # IMU (t0) now 28 ms old: stale
    for key in (f"{ch.JOINT_STATE} non-finite", f"{ch.JOINT_STATE} wrong size", f"{ch.JOINT_STATE} undecodable",
                f"{ch.IMU} non-finite", f"{ch.IMU} bad quaternion", f"{ch.IMU} undecodable",
                f"{ch.FOOT_CONTACT} undecodable"):
        assert node.rejected[key] == 1, key
    assert node.rejected[f"{ch.JOINT_STATE} out of order"] == 2
    assert node.rejected[f"{ch.IMU} stale"] == 2

    node.on_imu(imu_msg(3, t0 + 31_000))
    assert node.on_joint_state(js_msg(5, t0 + 32_000)) is not None  # good input is used again
    assert state_estimate_t.decode(sent[-1][1]).seq == 1


def test_node_adopts_restarted_stream() -> None:
    """A robot process restart resets seq; after RESYNC_AFTER in-order messages the node follows it."""
    sent: list[tuple[str, bytes]] = []
    node = EstimatorNode(EstimatorConfig(), lambda c, b: sent.append((c, b)))
    t0 = 1_700_000_000_000_000
    node.on_imu(imu_msg(1000, t0))
    node.on_joint_state(js_msg(1000, t0))
    t1 = t0 - 10_000_000  # the restarted robot's clock is even behind (worst case)
    for i in range(RESYNC_AFTER + 5):
        node.on_imu(imu_msg(i, t1 + 2000 * i))
        node.on_joint_state(js_msg(i, t1 + 2000 * i))
    assert node.rejected[f"{ch.JOINT_STATE} out of order"] == RESYNC_AFTER - 1
    assert len(sent) == 1 + 6  # the first message, then the adopted stream's last six


# --- node: separate process over real LCM --------------------------------------------------------------
def test_node_over_lcm_across_processes() -> None:
    import lcm

    url = ch.private_udpm_url()  # private port: parallel test runs
    proc = subprocess.Popen([sys.executable, "-m", "controllers.estimator_node", "--url", url, "--duration", "30"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == READY_LINE, (line, proc.stderr.read() if proc.poll() is not None else "")
        lc = lcm.LCM(url)
        received: list[state_estimate_t] = []
        done = threading.Event()

        def on_estimate(_c: str, data: bytes) -> None:
            received.append(state_estimate_t.decode(data))

        lc.subscribe(ch.STATE_ESTIMATE, on_estimate)
        def listen() -> None:
            while not done.is_set():
                lc.handle_timeout(20)

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()

        good_utimes: list[int] = []
        bad_utimes: list[int] = []
        t_start = time.time()
        for i in range(750):  # 1.5 s at 500 Hz
            utime = int(time.time() * 1e6)
            lc.publish(ch.IMU, imu_msg(i, utime))
            lc.publish(ch.FOOT_CONTACT, contact_msg(i, utime))
            if i % 200 in (100, 101, 102, 103) and i > 200:  # bursts of bad input mid-stream, twice (i 300-303
                k = i % 200 + 200  # and 500-503): UDP on a loaded CI box may drop one datagram of a burst
                lc.publish(ch.JOINT_STATE, {300: js_msg(i, utime, q=np.full(12, np.nan)),
                                            301: js_msg(i, utime, n=5),
                                            302: js_msg(0, utime),  # seq went back
                                            303: b"not an lcm message"}[k])
                lc.publish(ch.IMU, {300: imu_msg(i, utime, accel=(np.nan, 0.0, G)),
                                    301: b"\x01\x02",
                                    302: imu_msg(0, utime),
                                    303: imu_msg(i, utime, quat=(0.0, 0.0, 0.0, 0.0))}[k])
                bad_utimes.append(utime)
            else:
                lc.publish(ch.JOINT_STATE, js_msg(i, utime))
                good_utimes.append(utime)
            time.sleep(max(0.0, t_start + 0.002 * (i + 1) - time.time()))
        time.sleep(0.3)
        done.set()
        listener.join(timeout=2)
        assert proc.poll() is None, "estimator node died"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert proc.returncode == 0, stderr

    sources = [m.source_utime for m in received]
    assert len(received) > 0.8 * len(good_utimes), (len(received), len(good_utimes))  # UDP may drop a few
    assert set(sources) <= set(good_utimes) and not set(sources) & set(bad_utimes)
    assert max(sources) > max(bad_utimes)  # still publishing after the bad input
    assert [m.seq for m in received] == sorted(m.seq for m in received)
    last = received[-1]
    assert np.allclose(last.lin_vel_world, 0.0, atol=0.02)
    assert np.allclose(last.gravity_body, [0.0, 0.0, -1.0], atol=1e-6)
    assert np.allclose(last.quat, [1.0, 0.0, 0.0, 0.0])
    assert last.n_cov == 18 and last.n_feet == 4 and all(last.contact)
    for reason in ("non-finite", "wrong size", "out of order", "undecodable", "bad quaternion"):
        assert reason in stderr, (reason, stderr)


def test_node_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from controllers.estimator_node import main

    bad = tmp_path / "est.yaml"
    bad.write_text("estimator:\n  contact_on: 3\n")
    assert main(["--config", str(bad), "--duration", "0"]) == 2
    assert "unknown config key 'contact_on'" in capsys.readouterr().err


def test_node_rejects_physically_implausible_inputs_with_the_robot_bounds() -> None:
    """The estimator's input gate uses the daemon's bounds: a finite encoder or gyro reading far outside what
    the robot can produce is dropped (and counted), so no estimate is built on it."""
    from controllers.robot_config import load_robot_config

    sent: list[tuple[str, bytes]] = []
    node = EstimatorNode(EstimatorConfig(), lambda c, b: sent.append((c, b)), clock=lambda: 1.0,
                         bounds=load_robot_config().input_bounds())
    t0 = 1_700_000_000_000_000
    node.on_imu(imu_msg(0, t0))
    assert node.on_joint_state(js_msg(0, t0 + 500)) is not None
    far = C.DEFAULT_JOINT_POS.copy()
    far[5] = 4.0  # FR calf: range [-2.72, -0.84] rad
    assert node.on_joint_state(js_msg(1, t0 + 2500, q=far)) is None
    m = imu_t()
    m.utime, m.seq, m.quat, m.gyro, m.accel = t0 + 3000, 1, [1.0, 0, 0, 0], [0.0, 0.0, 90.0], [0.0, 0.0, G]
    node.on_imu(m.encode())
    assert node.rejected[f"{ch.JOINT_STATE} implausible"] == 1 and node.rejected[f"{ch.IMU} implausible"] == 1
    assert len(sent) == 1
