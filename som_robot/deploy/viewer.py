"""Live MuJoCo viewer of a deploy run, as its own process on the chain's LCM bus.

    python -m som_robot.deploy.viewer [--url URL] [--cmd vx,vy,yaw] [--terrain flat|rough] [--fps 30]

It keeps its own MjModel/MjData of the scene and poses them from SIM_TRUTH and JOINT_STATE (kinematics
only, no physics), so the robot's 1 kHz physics, the estimator and the daemon never wait for it: the
viewer can only fall behind, never slow the loop it shows. The camera follows the base; the commanded and
measured velocity and the daemon's mode are the overlay. `som_robot.deploy --sim --viewer` starts it.
Without a display it prints one line and exits 0, and the run goes on headless.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
from collections.abc import Sequence

from controllers.cmd_arg import parse_cmd
from hardware import channels as ch

__all__ = ["main", "display_available", "NO_DISPLAY_LINE"]

READY_LINE = "READY som_robot.deploy.viewer"
NO_DISPLAY_LINE = "viewer: no display (DISPLAY and WAYLAND_DISPLAY unset); running headless"


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m som_robot.deploy.viewer", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=None)
    p.add_argument("--cmd", type=parse_cmd, default=(0.0, 0.0, 0.0), help="command shown until a joystick publishes")
    p.add_argument("--terrain", choices=("flat", "rough"), default="flat")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--duration", type=float, default=0.0, help="seconds, 0 = until the window closes or SIGTERM")
    args = p.parse_args(argv)
    if not display_available():
        print(NO_DISPLAY_LINE, flush=True)
        return 0
    os.nice(19)  # the lowest CPU priority: on a busy box the control loops win, the picture stutters
    os.environ.setdefault("MUJOCO_GL", "glfw")  # an on-screen context (the window)
    os.environ.setdefault("LP_NUM_THREADS", "1")  # Mesa's software rasteriser (no GPU) on one thread, not all
    import mujoco
    import mujoco.viewer

    from sim.go2.config import Go2EnvConfig
    from sim.go2.model import build_model
    from sim.go2.render import follow_camera, light_scene, overlay_lines, show_collision_geoms
    from som_robot.deploy.video import FrameTracker

    model = build_model(Go2EnvConfig(terrain=args.terrain))
    light_scene(model)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    tracker = FrameTracker(args.cmd)
    try:
        lc = ch.open_lcm(args.url)
        for c in (ch.SIM_TRUTH, ch.JOINT_STATE, ch.DAEMON_STATUS, ch.JOYSTICK):
            ch.subscribe(lc, c, tracker.on_message)
    except ch.LcmUnavailableError as e:  # a watcher only: say so, the chain goes on without it
        print(f"viewer: {e}", flush=True)
        return 2
    try:
        viewer = mujoco.viewer.launch_passive(model, data, show_left_ui=False, show_right_ui=False)
    except Exception as e:  # noqa: BLE001  (no GLFW, no GL on this display: say so, stay out of the way)
        print(f"viewer: cannot open a window ({type(e).__name__}: {e}); running headless", flush=True)
        return 0
    print(READY_LINE, flush=True)
    fd, period = lc.fileno(), 1.0 / args.fps
    t_end = time.monotonic() + args.duration if args.duration else float("inf")
    next_draw = time.monotonic()
    frames = 0
    try:
        while viewer.is_running() and time.monotonic() < t_end:
            while (wait := next_draw - time.monotonic()) > 0:  # serve the bus until the next draw
                if select.select([fd], [], [], wait)[0]:
                    lc.handle()
            for _ in range(1000):  # a slow draw must not leave the bus behind: drain what is queued
                if not select.select([fd], [], [], 0)[0]:
                    break
                lc.handle()
            next_draw = max(next_draw + period, time.monotonic())
            f = tracker.frame()
            if f is None:
                continue
            with viewer.lock():
                show_collision_geoms(viewer.opt)  # set under the lock: the viewer's UI owns opt between syncs
                data.qpos[:] = f.qpos
                mujoco.mj_kinematics(model, data)
                follow_camera(viewer.cam, data.qpos[:3])
            left, right = overlay_lines(f)
            viewer.set_texts((None, mujoco.mjtGridPos.mjGRID_TOPLEFT, left, right))  # takes the lock itself
            viewer.sync()
            frames += 1
    except KeyboardInterrupt:
        pass
    finally:
        viewer.close()
    print(f"DONE som_robot.deploy.viewer {{\"frames\": {frames}}}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
