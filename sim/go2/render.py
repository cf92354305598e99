"""Pictures of the Go2: offscreen frames with an overlay, MP4 writing, and the overlay text the live viewer shows.

One `Frame` is what a picture needs: the MuJoCo pose (qpos) and what to print over it (commanded and
measured base-frame velocity, the controller's mode). Every producer (the walk benchmark's env, the deploy
chain's LCM log, the live viewer's LCM feed) builds Frames; `Go2Renderer` draws them with MuJoCo's
offscreen renderer (EGL on a headless box: set MUJOCO_GL=egl before mujoco is imported) with a camera that
follows the base, and `write_mp4` encodes them through imageio's ffmpeg plugin. Rendering always happens
from recorded states after a run, never inside a timed loop.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen by default; only effective before mujoco's first import
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Frame", "overlay_lines", "Go2Renderer", "write_mp4", "read_mp4", "render_mp4", "follow_camera",
           "light_scene", "show_collision_geoms"]


@dataclass(frozen=True)
class Frame:
    """One picture's state: pose, and the overlay's figures (base frame)."""

    t: float  # s
    qpos: np.ndarray  # (19,) free joint (pos, wxyz quat) + 12 joints
    cmd: tuple[float, float, float] = (0.0, 0.0, 0.0)  # commanded vx, vy, yaw rate
    vel: tuple[float, float, float] = (0.0, 0.0, 0.0)  # measured vx, vy, yaw rate
    mode: str = ""  # the daemon's mode (deploy), empty for the training env


def overlay_lines(f: Frame) -> tuple[str, str]:
    """(labels, values) columns of the overlay, as MuJoCo's viewer shows two text columns."""
    labels = ["t", "cmd vx vy yaw", "vel vx vy yaw"] + (["mode"] if f.mode else [])
    values = [f"{f.t:6.2f} s", "{:+.2f} {:+.2f} {:+.2f}".format(*f.cmd), "{:+.2f} {:+.2f} {:+.2f}".format(*f.vel)]
    if f.mode:
        values.append(f.mode)
    return "\n".join(labels), "\n".join(values)


def follow_camera(cam: object, base_pos: np.ndarray, distance: float = 1.6, azimuth: float = 135.0,
                  elevation: float = -20.0) -> None:
    """Point a free MjvCamera at the base from a fixed offset (the camera follows, the view does not spin)."""
    cam.distance, cam.azimuth, cam.elevation = distance, azimuth, elevation  # type: ignore[attr-defined]
    cam.lookat[:] = base_pos  # type: ignore[attr-defined]


def light_scene(model: object) -> None:
    """The scene has no lights of its own: a brighter headlight, as the strip, the videos and the viewer use."""
    model.vis.headlight.ambient[:] = 0.4  # type: ignore[attr-defined]
    model.vis.headlight.diffuse[:] = 0.7  # type: ignore[attr-defined]


def show_collision_geoms(opt: object) -> None:
    """Visual meshes are stripped from the model: draw the collision geoms (group 3) as the robot's look."""
    opt.geomgroup[:] = 1  # type: ignore[attr-defined]


class Go2Renderer:
    """Offscreen frames of the Go2 scene (flat or rough, as trained) with the overlay drawn in."""

    def __init__(self, terrain: str = "flat", width: int = 480, height: int = 320) -> None:
        import mujoco

        from sim.go2.config import Go2EnvConfig
        from sim.go2.model import build_model

        self._mj = mujoco
        self.model = build_model(Go2EnvConfig(terrain=terrain))  # type: ignore[arg-type]
        light_scene(self.model)
        self.model.vis.global_.offwidth = max(int(self.model.vis.global_.offwidth), width)
        self.model.vis.global_.offheight = max(int(self.model.vis.global_.offheight), height)
        self.data = mujoco.MjData(self.model)
        self.width, self.height = width, height
        self.opt = mujoco.MjvOption()
        show_collision_geoms(self.opt)
        self.cam = mujoco.MjvCamera()
        self._renderer = mujoco.Renderer(self.model, height, width)

    def render(self, f: Frame, overlay: bool = True) -> np.ndarray:
        """(H, W, 3) uint8 picture of `f`."""
        mj, d = self._mj, self.data
        d.qpos[:] = f.qpos
        mj.mj_kinematics(self.model, d)
        follow_camera(self.cam, d.qpos[:3])
        self._renderer.update_scene(d, self.cam, self.opt)
        img = self._renderer.render().copy()
        return _draw_overlay(img, f) if overlay else img

    def close(self) -> None:
        self._renderer.close()

    def __enter__(self) -> Go2Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _draw_overlay(img: np.ndarray, f: Frame) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray(img)
    draw = ImageDraw.Draw(im)
    labels, values = overlay_lines(f)
    rows = list(zip(labels.split("\n"), values.split("\n"), strict=True))
    draw.rectangle([4, 4, 230, 8 + 14 * len(rows)], fill=(0, 0, 0))
    for i, (k, v) in enumerate(rows):
        draw.text((8, 6 + 14 * i), f"{k:<14} {v}", fill=(255, 255, 255))
    return np.asarray(im)


def write_mp4(frames: Iterable[np.ndarray], path: Path, fps: float) -> int:
    """Encode (H, W, 3) uint8 frames as H.264 MP4 (imageio + its bundled ffmpeg); returns the frame count."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=16, quality=7,
                            ffmpeg_log_level="error") as w:
        for img in frames:
            w.append_data(img)
            n += 1
    return n


def read_mp4(path: Path) -> tuple[int, int, int, float]:
    """(frames, height, width, fps) of an MP4, decoded through the same library (to check what was written)."""
    import imageio.v2 as imageio

    with imageio.get_reader(path) as r:
        fps = float(r.get_meta_data()["fps"])
        shape, n = None, 0
        for img in r:
            shape, n = img.shape, n + 1
    if shape is None:
        return 0, 0, 0, fps
    return n, int(shape[0]), int(shape[1]), fps


def render_mp4(frames: Sequence[Frame], path: Path, fps: float, terrain: str = "flat", width: int = 480,
               height: int = 320) -> int:
    """Render `frames` offscreen (overlay on) and stream them into an MP4 at `path`; returns the frame count."""
    with Go2Renderer(terrain, width, height) as r:
        return write_mp4((r.render(f) for f in frames), path, fps)
