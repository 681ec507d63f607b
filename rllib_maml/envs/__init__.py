"""Meta envs shipped with rllib_maml and their registration under `rllib_maml/`."""

from __future__ import annotations

import functools
from collections.abc import Callable

import gymnasium as gym

from rllib_maml.envs.base import (
    MetaEnv,
    check_meta_env,
    missing_task_methods,
    sample_tasks_checked,
)
from rllib_maml.envs.classic_control import CartPoleMassEnv, PendulumMassEnv
from rllib_maml.envs.navigation import Navigation2DEnv

NAMESPACE = "rllib_maml"

# Registered name (without namespace) -> env class. Each also gets an
# `...Oracle-v0` variant with the task parameters appended to the observation.
ENV_CLASSES: dict[str, type[MetaEnv]] = {
    "Navigation2D-v0": Navigation2DEnv,
    "CartPoleMass-v0": CartPoleMassEnv,
    "PendulumMass-v0": PendulumMassEnv,
}


def make_env(cls: type[MetaEnv], oracle: bool, config: dict | None = None) -> MetaEnv:
    """Builds `cls(config)`, with the task appended to observations if `oracle`."""
    config = dict(config or {})
    if oracle:
        config["oracle"] = True
    return cls(config)


def _creator(cls: type[MetaEnv], oracle: bool) -> Callable[..., MetaEnv]:
    # A partial of a module-level function pickles by reference (plain pickle).
    return functools.partial(make_env, cls, oracle)


def registered_env_names() -> list[str]:
    """All env names this package registers (with the `rllib_maml/` namespace)."""
    names = []
    for name in ENV_CLASSES:
        base, version = name.rsplit("-", 1)
        names += [f"{NAMESPACE}/{name}", f"{NAMESPACE}/{base}Oracle-{version}"]
    return names


def register_envs() -> None:
    """Registers every shipped env with Tune and gymnasium (idempotent)."""
    from ray.tune.registry import register_env

    for name, cls in ENV_CLASSES.items():
        base, version = name.rsplit("-", 1)
        for env_id, oracle in (
            (f"{NAMESPACE}/{name}", False),
            (f"{NAMESPACE}/{base}Oracle-{version}", True),
        ):
            creator = _creator(cls, oracle)
            register_env(env_id, creator)
            if env_id not in gym.registry:
                gym.register(id=env_id, entry_point=creator)


__all__ = [
    "CartPoleMassEnv",
    "ENV_CLASSES",
    "MetaEnv",
    "Navigation2DEnv",
    "PendulumMassEnv",
    "check_meta_env",
    "missing_task_methods",
    "register_envs",
    "registered_env_names",
    "sample_tasks_checked",
]
