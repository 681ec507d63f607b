"""The meta-env task API: what MAML needs from an environment."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

TASK_METHODS = ("sample_tasks", "set_task", "get_task")


class MetaEnv(gym.Env, abc.ABC):
    """A gymnasium env over a distribution of tasks.

    A task is a plain picklable value (the shipped envs use dicts of floats or
    numpy arrays). MAML samples tasks on the driver with `sample_tasks`, ships
    them to env runners and calls `set_task` there before each episode batch.

    `sample_tasks` draws from `self.np_random`, so `env.reset(seed=s)` makes the
    task draws reproducible.

    Subclasses take `horizon` from their config and end episodes with
    `truncated=True` after that many steps.
    """

    @abc.abstractmethod
    def sample_tasks(self, n: int) -> list[Any]:
        """Returns `n` tasks drawn from the task distribution."""

    @abc.abstractmethod
    def set_task(self, task: Any) -> None:
        """Makes `task` the task of all following episodes."""

    @abc.abstractmethod
    def get_task(self) -> Any:
        """Returns the current task."""


def missing_task_methods(env: Any) -> list[str]:
    """Names of the task-API methods `env` (or a wrapper around it) lacks."""
    missing = []
    for name in TASK_METHODS:
        try:
            attr = (
                env.get_wrapper_attr(name)
                if isinstance(env, gym.Env)
                else getattr(env, name)
            )
        except AttributeError:
            attr = None
        if not callable(attr):
            missing.append(name)
    return missing


def check_meta_env(env: Any, env_name: Any = None) -> None:
    """Raises `TypeError` if `env` does not implement the meta-env task API."""
    missing = missing_task_methods(env)
    if missing:
        raise TypeError(
            f"Env {env_name or type(env).__name__!r} lacks the meta-env task API: "
            f"missing {', '.join(f'`{m}`' for m in missing)}. MAML samples tasks with "
            "`sample_tasks(n)` and sets them with `set_task(task)`; subclass "
            "`rllib_maml.MetaEnv` (or add these methods) and register the env with "
            "`tune.register_env`."
        )


def sample_tasks_checked(env: gym.Env, n: int, env_name: Any = None) -> list[Any]:
    """Calls `env.sample_tasks(n)` and checks that it returned `n` tasks."""
    try:
        tasks = env.get_wrapper_attr("sample_tasks")(n)
    except Exception as e:  # noqa: BLE001 - re-raised with context
        raise RuntimeError(
            f"`sample_tasks({n})` of env {env_name!r} raised {type(e).__name__}: {e}"
        ) from e
    if not isinstance(tasks, Sequence) or len(tasks) != n:
        got = len(tasks) if isinstance(tasks, Sequence) else type(tasks).__name__
        raise ValueError(
            f"`sample_tasks({n})` of env {env_name!r} returned {got} tasks, "
            f"expected a list of {n}. It must return exactly `n` tasks."
        )
    return list(tasks)
