"""rllib_maml: meta-RL (MAML, RL², PEARL) on Ray RLlib's new API stack.

Importing the package registers the shipped meta envs with Tune and gymnasium
under the `rllib_maml/` namespace (e.g. `rllib_maml/Navigation2D-v0`).
"""

from rllib_maml.envs import (
    CartPoleMassEnv,
    MetaEnv,
    MountainCarContinuousMetaEnv,
    Navigation2DEnv,
    ParameterizedCartPoleEnv,
    PendulumMassEnv,
    check_meta_env,
    register_envs,
    registered_env_names,
)
from rllib_maml.maml import MAML, MAMLConfig
from rllib_maml.pearl import PEARL, PEARLConfig
from rllib_maml.rl2 import RL2, RL2Config

__version__ = "0.1.0"

register_envs()

__all__ = [
    "MAML",
    "MAMLConfig",
    "RL2",
    "RL2Config",
    "PEARL",
    "PEARLConfig",
    "MetaEnv",
    "Navigation2DEnv",
    "CartPoleMassEnv",
    "PendulumMassEnv",
    "MountainCarContinuousMetaEnv",
    "ParameterizedCartPoleEnv",
    "check_meta_env",
    "register_envs",
    "registered_env_names",
]
