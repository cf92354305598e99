"""Simulation environments (MuJoCo) behind the som_robot `VecEnv` protocol."""
