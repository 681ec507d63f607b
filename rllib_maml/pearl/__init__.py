"""PEARL on RLlib's new API stack (see `rllib_maml.pearl.pearl`)."""

from rllib_maml.pearl.config import PEARLConfig
from rllib_maml.pearl.env_runner import PEARLEnvRunner, PEARLJob
from rllib_maml.pearl.pearl import PEARL

__all__ = ["PEARL", "PEARLConfig", "PEARLEnvRunner", "PEARLJob"]
