"""`python -m som_robot.deploy`: run the LCM deploy chain (robot, state estimator, controller daemon).

Onboard-safe: numpy, lcm and the generated messages only; matplotlib (report plots) is optional.
"""

from som_robot.deploy.chain import ChainError, ChainSpec, DeployChain
from som_robot.deploy.monitor import ChainMonitor

__all__ = ["ChainError", "ChainSpec", "ChainMonitor", "DeployChain"]
