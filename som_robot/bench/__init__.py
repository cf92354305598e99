"""Benchmarks that write JSON and plots: `python -m som_robot.bench gym ...`."""
