"""Transition storage for off-policy learning."""

from som_robot.storage.nstep import NStepFolder
from som_robot.storage.replay import Batch, ReplayBuffer

__all__ = ["Batch", "ReplayBuffer", "NStepFolder"]
