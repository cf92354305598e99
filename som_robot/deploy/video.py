"""Pictures of a deploy run: frames from the chain's LCM traffic, for the live viewer and for `--record`.

The simulated robot publishes its ground truth (SIM_TRUTH: base position, orientation, velocity) and
joint state with every sensor sample; the daemon publishes its mode (DAEMON_STATUS) and the operator the
command (JOYSTICK, else the chain's default). `FrameTracker` folds those messages into `Frame`s. The live
viewer (`som_robot.deploy.viewer`) feeds it from the bus; `record_video` feeds it from the run's LCM log
after the chain has stopped, so recording never competes with the 500 Hz loops it records.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hardware import channels as ch
from hardware.msgs import daemon_status_t, joint_state_t, joystick_t, state_estimate_t
from sim.go2.render import Frame

__all__ = ["FrameTracker", "frames_from_log", "record_video"]


class FrameTracker:
    """The newest truth pose, joint angles, mode and command seen on the bus; `frame()` once both poses exist."""

    def __init__(self, cmd: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
        self.cmd = cmd
        self._truth: state_estimate_t | None = None
        self._q: np.ndarray | None = None
        self.mode = ""
        self._t0: int | None = None

    def on_message(self, channel: str, data: bytes) -> None:
        if channel == ch.SIM_TRUTH:
            self._truth = state_estimate_t.decode(data)
            self._t0 = self._truth.utime if self._t0 is None else self._t0
        elif channel == ch.JOINT_STATE:
            self._q = np.asarray(joint_state_t.decode(data).q, dtype=float)
        elif channel == ch.DAEMON_STATUS:
            self.mode = ch.Mode(daemon_status_t.decode(data).mode).name
        elif channel == ch.JOYSTICK:
            j = joystick_t.decode(data)
            self.cmd = (float(j.vx), float(j.vy), float(j.yaw_rate))

    def frame(self) -> Frame | None:
        s, q = self._truth, self._q
        if s is None or q is None or self._t0 is None:
            return None
        qpos = np.concatenate([np.asarray(s.position, float), np.asarray(s.quat, float), q])
        vel = (float(s.lin_vel_body[0]), float(s.lin_vel_body[1]), float(s.ang_vel_body[2]))
        return Frame(t=(s.utime - self._t0) * 1e-6, qpos=qpos, cmd=self.cmd, vel=vel, mode=self.mode)


def frames_from_log(lcm_log: Path, fps: float, cmd: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Iterator[Frame]:
    """Frames every 1/fps s of log time (the logger's receive timestamps) from a deploy run's LCM log."""
    import lcm

    tracker, step = FrameTracker(cmd), 1e6 / fps
    next_t: float | None = None
    for ev in lcm.EventLog(str(lcm_log), "r"):
        tracker.on_message(ev.channel, ev.data)
        if ev.channel != ch.SIM_TRUTH:
            continue
        f = tracker.frame()
        if f is None:
            continue
        if next_t is None:
            next_t = float(ev.timestamp)
        if ev.timestamp >= next_t:
            next_t += step
            yield f


def record_video(lcm_log: Path, out: Path, fps: float = 30.0, cmd: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 terrain: str = "flat", width: int = 480, height: int = 320) -> int:
    """Render a deploy run's LCM log to an MP4 (offscreen, overlay on); returns the frame count."""
    from sim.go2.render import Go2Renderer, write_mp4

    with Go2Renderer(terrain, width, height) as r:
        return write_mp4((r.render(f) for f in frames_from_log(lcm_log, fps, cmd)), out, fps)
