"""How fast a trot can go inside the action box: the stance sweep of a foot at standing height.

    python -m sim.go2.reach --box 0.35 0.5 --freq 2 3

Why: every learner misses the walk bar's vx 1.0 row at the same speed (0.36–0.57 m/s). In a trot at clock
frequency f with stance share `duty`, a foot is on the ground for duty / f seconds and must sweep v · duty / f
metres under the body in that time. With the thigh and calf targets inside default ± box (the PD targets the
policy can ask for), the foot can only reach so far fore and aft at the height it stands on, which bounds v.
Kinematics only (MuJoCo's, on the robot's own MJCF): targets, not achieved angles, and no flight phase.
"""

from __future__ import annotations

import argparse
import json

import mujoco
import numpy as np

from sim.go2 import constants as C

__all__ = ["stance_sweep", "trot_speed_limit"]


def stance_sweep(box: float, leg: str = "FL", grid: int = 141, tol: float = 0.005) -> dict[str, float]:
    """Fore-aft range (m, base frame) of `leg`'s foot at its default-pose height, thigh and calf in default ± box."""
    m = mujoco.MjModel.from_xml_path(str(C.XML_PATH))
    d = mujoco.MjData(m)
    foot = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, leg)
    thigh = C.JOINT_NAMES.index(f"{leg}_thigh_joint")
    calf = C.JOINT_NAMES.index(f"{leg}_calf_joint")

    def foot_xz(q_thigh: float, q_calf: float) -> np.ndarray:
        d.qpos[:] = 0.0
        d.qpos[3] = 1.0  # identity base orientation at the origin: world frame = base frame
        d.qpos[7:7 + C.NUM_JOINTS] = C.DEFAULT_JOINT_POS
        d.qpos[7 + thigh], d.qpos[7 + calf] = q_thigh, q_calf
        mujoco.mj_kinematics(m, d)
        return d.geom_xpos[foot][[0, 2]] - d.qpos[[0, 2]]

    q0_thigh, q0_calf = C.DEFAULT_JOINT_POS[thigh], C.DEFAULT_JOINT_POS[calf]
    x0, z0 = foot_xz(q0_thigh, q0_calf)
    xs = [x for t in np.linspace(q0_thigh - box, q0_thigh + box, grid)
          for c in np.linspace(q0_calf - box, q0_calf + box, grid)
          for x, z in [foot_xz(t, c)] if abs(z - z0) < tol]
    return {"box": box, "foot_x_default": float(x0), "foot_x_min": float(min(xs)), "foot_x_max": float(max(xs)),
            "sweep": float(max(xs) - min(xs))}


def trot_speed_limit(sweep: float, freq: float, duty: float = 0.5) -> float:
    """Top base speed (m/s) of a trot whose stance (duty / freq s) covers at most `sweep` metres."""
    return sweep * freq / duty


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--box", type=float, nargs="+", default=[C.ACTION_SCALE], help="half-width(s), rad")
    ap.add_argument("--freq", type=float, nargs="+", default=[2.0], help="trot clock frequencies, Hz")
    ap.add_argument("--duty", type=float, default=0.5, help="stance share of a cycle")
    args = ap.parse_args()
    for box in args.box:
        res = stance_sweep(box)
        res["top_speed_m_s"] = {f"{f:g} Hz": round(trot_speed_limit(res["sweep"], f, args.duty), 3) for f in args.freq}
        print(json.dumps(res))


if __name__ == "__main__":
    main()
