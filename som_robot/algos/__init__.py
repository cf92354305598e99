"""Off-policy algorithms: SOM (one-step MeanFlow), NC-LQL (annealed Langevin) and SAC.

`ALGOS` maps a name to its (config class, agent class); explicit, no reflection.
"""

from som_robot.algos.common import Algorithm
from som_robot.algos.nc_lql import NCLQL, NCLQLConfig
from som_robot.algos.sac import SAC, SACConfig
from som_robot.algos.som import SOM, SOMConfig

ALGOS: dict[str, tuple[type, type]] = {
    "som": (SOMConfig, SOM),
    "nc_lql": (NCLQLConfig, NCLQL),
    "sac": (SACConfig, SAC),
}

__all__ = ["ALGOS", "Algorithm", "SOM", "SOMConfig", "NCLQL", "NCLQLConfig", "SAC", "SACConfig"]
