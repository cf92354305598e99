"""Training loops, experiment configs and checkpoints."""

from som_robot.runners.config import ExperimentConfig, RunnerConfig, load_experiment
from som_robot.runners.off_policy import OffPolicyRunner, evaluate, make_algo, resolve_device, run_experiment

__all__ = ["ExperimentConfig", "OffPolicyRunner", "RunnerConfig", "evaluate", "load_experiment", "make_algo",
           "resolve_device", "run_experiment"]
