"""Robot-side interfaces: LCM message schemas (`lcm/*.lcm` → `msgs/`), channel names, and the
hardware interface implemented by the MuJoCo robot and by the physical-robot bridge.

Onboard code: numpy, lcm and pyyaml only (no torch, no mujoco).
"""
