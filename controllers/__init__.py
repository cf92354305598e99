"""Onboard controller side: state estimator and controller daemon (numpy, lcm, pyyaml only; no torch/mujoco)."""
