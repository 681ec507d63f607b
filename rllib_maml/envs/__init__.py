"""Meta envs shipped with rllib_maml and their registration under `rllib_maml/`."""

from __future__ import annotations

import functools
import importlib

import gymnasium as gym

from rllib_maml.envs.base import (
    MetaEnv,
    check_meta_env,
    missing_task_methods,
    sample_tasks_checked,
)
from rllib_maml.envs.classic_control import (
    CartPoleMassEnv,
    MountainCarContinuousMetaEnv,
    ParameterizedCartPoleEnv,
    PendulumMassEnv,
)
from rllib_maml.envs.navigation import Navigation2DEnv, Navigation2DVectorEnv

NAMESPACE = "rllib_maml"

# Registered name (without namespace) -> "module:Class". Each also gets an
# `...Oracle-v0` variant with the task parameters appended to the observation.
# Classes import lazily, so the MuJoCo ones need mujoco only when made.
ENV_SPECS: dict[str, str] = {
    "Navigation2D-v0": "rllib_maml.envs.navigation:Navigation2DEnv",
    "CartPoleMass-v0": "rllib_maml.envs.classic_control:CartPoleMassEnv",
    "PendulumMass-v0": "rllib_maml.envs.classic_control:PendulumMassEnv",
    "MountainCarContinuousMeta-v0": (
        "rllib_maml.envs.classic_control:MountainCarContinuousMetaEnv"
    ),
    "ParameterizedCartPole-v0": (
        "rllib_maml.envs.classic_control:ParameterizedCartPoleEnv"
    ),
    "HalfCheetahRandDirec-v0": "rllib_maml.envs.locomotion:HalfCheetahRandDirecEnv",
    "HalfCheetahRandVel-v0": "rllib_maml.envs.locomotion:HalfCheetahRandVelEnv",
    "HalfCheetahBackward-v0": "rllib_maml.envs.locomotion:HalfCheetahBackwardEnv",
    "AntRandGoal-v0": "rllib_maml.envs.locomotion:AntRandGoalEnv",
    "AntRandDirec-v0": "rllib_maml.envs.locomotion:AntRandDirecEnv",
    "AntRandVel-v0": "rllib_maml.envs.locomotion:AntRandVelEnv",
    # Need the `metaworld` extra (`pip install 'rllib_maml[metaworld]'`).
    "MetaWorldML1-v0": "rllib_maml.envs.metaworld:MetaWorldML1Env",
    "MetaWorldML10-v0": "rllib_maml.envs.metaworld:MetaWorldML10Env",
    "MetaWorldML45-v0": "rllib_maml.envs.metaworld:MetaWorldML45Env",
}
MUJOCO_ENVS = tuple(name for name, path in ENV_SPECS.items() if "locomotion" in path)
METAWORLD_ENVS = tuple(name for name, path in ENV_SPECS.items() if "metaworld" in path)


def env_class(name: str) -> type[MetaEnv]:
    """The class of a shipped env, by registered name (with or without namespace)."""
    name = name.split("/")[-1].replace("Oracle-", "-")
    module, cls = ENV_SPECS[name].split(":")
    return getattr(importlib.import_module(module), cls)


# Registered name (without namespace) -> "module:Class" of a vector env that
# steps all sub-envs as arrays (`set_tasks` gives each sub-env its task).
VECTOR_ENV_SPECS: dict[str, str] = {
    "Navigation2D-v0": "rllib_maml.envs.navigation:Navigation2DVectorEnv",
}


def make_env(
    name: str, oracle: bool, config: dict | None = None
) -> MetaEnv | gym.vector.VectorEnv:
    """Builds a shipped env from its env_config, with the task in the observation
    if `oracle`.

    With `num_envs` in the config (RLlib's `gym_env_vectorize_mode=
    "vector_entry_point"` puts it there) returns a vector env of that many:
    the env's own array-stepped one where it has one, else a `SyncVectorEnv`.
    """
    config = dict(config or {})
    if oracle:
        config["oracle"] = True
    num_envs = config.pop("num_envs", None)
    if num_envs is None:
        return env_class(name)(config)
    base = name.split("/")[-1].replace("Oracle-", "-")
    if base in VECTOR_ENV_SPECS:
        module, cls = VECTOR_ENV_SPECS[base].split(":")
        return getattr(importlib.import_module(module), cls)(num_envs, config)
    return gym.vector.SyncVectorEnv(
        [functools.partial(env_class(name), config) for _ in range(num_envs)]
    )


def gym_entry_point(
    name: str, oracle: bool, config: dict | None = None, **env_config
) -> MetaEnv:
    """`gym.make` entry point: takes the env_config as keyword arguments (how
    RLlib calls `gym.make(env_id, **env_config)`) or as `config=`."""
    return make_env(name, oracle, {**(config or {}), **env_config})


def gym_vector_entry_point(
    name: str, oracle: bool, num_envs: int, config: dict | None = None, **env_config
) -> gym.vector.VectorEnv:
    """`gym.make_vec(..., vectorization_mode="vector_entry_point")` entry point."""
    return make_env(
        name, oracle, {**(config or {}), **env_config, "num_envs": num_envs}
    )


def _oracle_name(name: str) -> str:
    base, version = name.rsplit("-", 1)
    return f"{base}Oracle-{version}"


def registered_env_names(
    include_mujoco: bool = True, include_metaworld: bool = True
) -> list[str]:
    """All env names this package registers (with the `rllib_maml/` namespace)."""
    names = []
    for name in ENV_SPECS:
        if (include_mujoco or name not in MUJOCO_ENVS) and (
            include_metaworld or name not in METAWORLD_ENVS
        ):
            names += [f"{NAMESPACE}/{name}", f"{NAMESPACE}/{_oracle_name(name)}"]
    return names


def register_envs() -> None:
    """Registers every shipped env with Tune and gymnasium (idempotent)."""
    from ray.tune.registry import register_env

    for name in ENV_SPECS:
        for env_id, oracle in (
            (f"{NAMESPACE}/{name}", False),
            (f"{NAMESPACE}/{_oracle_name(name)}", True),
        ):
            # A partial of a module-level function pickles by reference.
            register_env(env_id, functools.partial(make_env, name, oracle))
            if env_id not in gym.registry:
                gym.register(
                    id=env_id,
                    entry_point=functools.partial(gym_entry_point, name, oracle),
                    vector_entry_point=functools.partial(
                        gym_vector_entry_point, name, oracle
                    ),
                )


__all__ = [
    "CartPoleMassEnv",
    "ENV_SPECS",
    "METAWORLD_ENVS",
    "MUJOCO_ENVS",
    "MountainCarContinuousMetaEnv",
    "ParameterizedCartPoleEnv",
    "env_class",
    "make_env",
    "MetaEnv",
    "Navigation2DEnv",
    "Navigation2DVectorEnv",
    "VECTOR_ENV_SPECS",
    "PendulumMassEnv",
    "check_meta_env",
    "missing_task_methods",
    "register_envs",
    "registered_env_names",
    "sample_tasks_checked",
]
