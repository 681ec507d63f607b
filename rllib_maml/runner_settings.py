"""The env-runner settings MAML chooses when the user has not set them, and
its advice about the ones the user set (used by `MAMLConfig` and `MAML`)."""

from __future__ import annotations

import logging
from typing import Any

from rllib_maml.envs import NAMESPACE, VECTOR_ENV_SPECS

logger = logging.getLogger("rllib_maml.config")

# A runner with more slots samples them in several passes. Past a few hundred
# sub-envs the one batched forward pass per step no longer saves much: a
# `SyncVectorEnv` steps its sub-envs one after another anyway, and every
# sub-env is a full env instance (MuJoCo ones hold a simulator each), so more
# would only add memory and start-up time.
MAX_AUTO_ENVS_PER_ENV_RUNNER = 256
# An explicit `num_envs_per_env_runner` below a quarter of the slots and below
# this gets a warning that sampling will be slow. Measured on 2 cores: at the
# MAML paper's Navigation2D setting 1 env per runner takes 13x longer per
# iteration than 200; HalfCheetah samples 3.4x slower with 1 env than with 10,
# but no faster with 256 than with 20 (MuJoCo's step dominates).
SLOW_NUM_ENVS_BELOW = 8
_SLOW_SAMPLING_WARNED: set[tuple[int, int]] = set()


def auto_envs_per_env_runner(config) -> int:
    """One sub-env per (task, episode) slot of a runner, at most
    `MAX_AUTO_ENVS_PER_ENV_RUNNER`."""
    return min(sampling_slots_per_env_runner(config), MAX_AUTO_ENVS_PER_ENV_RUNNER)


def warn_if_few_envs(config) -> None:
    """One warning when an explicit `num_envs_per_env_runner` is far below the
    slots (below a quarter of them and below `SLOW_NUM_ENVS_BELOW`)."""
    num_envs = config.num_envs_per_env_runner
    slots = sampling_slots_per_env_runner(config)
    if num_envs * 4 >= slots or num_envs >= SLOW_NUM_ENVS_BELOW:
        return
    if (num_envs, slots) in _SLOW_SAMPLING_WARNED:
        return  # `validate()` runs several times per config
    _SLOW_SAMPLING_WARNED.add((num_envs, slots))
    suggested = min(slots, MAX_AUTO_ENVS_PER_ENV_RUNNER)
    logger.warning(
        "`num_envs_per_env_runner` is %d, but each env runner samples %d (task, "
        "episode) slots per adaptation step (%s): it runs them %d at a time, so "
        "sampling will be slow. Remove `num_envs_per_env_runner` from "
        "`config.env_runners(...)` to let MAML choose %d, or set "
        "`config.env_runners(num_envs_per_env_runner=%d)`.",
        num_envs,
        slots,
        _slots_formula(config),
        num_envs,
        suggested,
        suggested,
    )


def sampling_slots_per_env_runner(config) -> int:
    """The (task, episode) slots one env runner samples per adaptation step.

    Batched sampling runs all of a runner's tasks at once, one slot per
    sub-env: ceil(tasks / runners) * `episodes_per_task`, where a config
    without remote env runners counts as one runner (the local one) and an
    evaluation config counts `evaluation_num_tasks`. Task-by-task sampling
    (`batched_sampling=False`, an async vector env, custom connectors or
    episode callbacks, which batching cannot use) runs one task's
    `episodes_per_task` episodes at a time.
    """
    if not _samples_tasks_at_once(config):
        return config.episodes_per_task
    tasks = config.meta_batch_size
    if config.in_evaluation:
        tasks = config.evaluation_num_tasks
    runners = max(config.num_env_runners or 0, 1)
    return -(-tasks // runners) * config.episodes_per_task


def has_array_vector_env(env: Any) -> bool:
    """Whether `env` names a shipped env with an array-stepped vector env
    (`rllib_maml.envs.VECTOR_ENV_SPECS`; its Oracle variant too)."""
    prefix = f"{NAMESPACE}/"
    if not isinstance(env, str) or not env.startswith(prefix):
        return False
    return env[len(prefix) :].replace("Oracle-", "-") in VECTOR_ENV_SPECS


def _samples_tasks_at_once(config) -> bool:
    from rllib_maml.env_runner import config_unbatchable

    mode = config.gym_env_vectorize_mode
    return (
        config.batched_sampling
        and getattr(mode, "value", mode) != "async"
        and config_unbatchable(config) is None
    )


def _slots_formula(config) -> str:
    if not _samples_tasks_at_once(config):
        return (
            f"episodes_per_task={config.episodes_per_task}, one task at a time "
            "without batched sampling"
        )
    runners = max(config.num_env_runners or 0, 1)
    return (
        f"ceil(meta_batch_size={config.meta_batch_size} / {runners} env "
        f"runner(s)) x episodes_per_task={config.episodes_per_task}"
    )


def warn_about_envs_per_runner(config) -> None:
    """One warning when envs per runner exceed the (task, episode) slots."""
    num_envs, episodes = config.num_envs_per_env_runner, config.episodes_per_task
    runners = max(config.num_env_runners, 1)
    slots = -(-config.meta_batch_size // runners) * episodes
    if config.batched_sampling and num_envs > slots:
        logger.warning(
            "`num_envs_per_env_runner` (%d) is larger than the %d (task, "
            "episode) slots a runner samples per adaptation step: the other "
            "envs step unused. Set `config.env_runners("
            "num_envs_per_env_runner=%d)`.",
            num_envs,
            slots,
            slots,
        )
    elif not config.batched_sampling and num_envs > episodes:
        logger.warning(
            "`num_envs_per_env_runner` (%d) is larger than `episodes_per_task` "
            "(%d): every task steps all %d envs and keeps only the first %d "
            "episodes to finish. Set `config.env_runners("
            "num_envs_per_env_runner=%d)` or fewer, or "
            "`config.training(batched_sampling=True)`.",
            num_envs,
            episodes,
            num_envs,
            episodes,
            episodes,
        )
