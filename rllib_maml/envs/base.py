"""The meta-env task API: what MAML needs from an environment."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

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

    # Optional: `sample_test_tasks(n)` -> `n` tasks of a held-out split (a
    # benchmark's test tasks). The evaluation on held-out tasks then draws
    # from it instead of from `sample_tasks` with a held-out seed.


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


def env_from_config(config, env_config: dict | None = None) -> gym.Env:
    """The env of an algorithm config (a name registered with
    `tune.register_env`, a gymnasium id or an env class), created in this
    process as an env runner creates it: an `EnvContext` of worker index 0
    over the config's `env_config`, or over `env_config` where given."""
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.env.env_context import EnvContext

    _, creator = Algorithm._get_env_id_and_creator(config.env, config)
    env_config = config.env_config if env_config is None else env_config
    return creator(EnvContext(env_config, worker_index=0))


def heldout_task_method(env: gym.Env) -> str:
    """The method that draws held-out tasks: `sample_test_tasks` where `env`
    (or a wrapper around it) has a held-out split, else `sample_tasks`."""
    try:
        return (
            "sample_test_tasks"
            if callable(env.get_wrapper_attr("sample_test_tasks"))
            else "sample_tasks"
        )
    except AttributeError:
        return "sample_tasks"


def sample_tasks_checked(
    env: gym.Env, n: int, env_name: Any = None, method: str = "sample_tasks"
) -> list[Any]:
    """Calls `env.<method>(n)` (`sample_tasks` or `sample_test_tasks`) and
    checks that it returned `n` tasks."""
    try:
        tasks = env.get_wrapper_attr(method)(n)
    except Exception as e:  # noqa: BLE001 - re-raised with context
        raise RuntimeError(
            f"`{method}({n})` of env {env_name!r} raised {type(e).__name__}: {e}"
        ) from e
    if not isinstance(tasks, Sequence) or len(tasks) != n:
        got = len(tasks) if isinstance(tasks, Sequence) else type(tasks).__name__
        raise ValueError(
            f"`{method}({n})` of env {env_name!r} returned {got} tasks, "
            f"expected a list of {n}. It must return exactly `n` tasks."
        )
    return list(tasks)


def render_kwargs(config: dict) -> dict[str, Any]:
    """A MuJoCo env's rendering arguments from its env_config: gymnasium's
    `render_mode` (None: no rendering) and the frame size (`render_width`,
    `render_height`; 480 x 480 by default, gymnasium's)."""
    return {
        "render_mode": config.get("render_mode"),
        "width": int(config.get("render_width", 480)),
        "height": int(config.get("render_height", 480)),
    }


class TaskEnvMixin(MetaEnv):
    """Horizon truncation, oracle observations and task rewards around a gym env.

    Subclasses list this class first, then the gymnasium env they extend, call
    `_setup_task_env(config, default_horizon)` at the end of `__init__`, and
    implement `task_vector()` (the task parameters oracle observations end
    with). Override `task_reward(reward, info)` for tasks that change the
    reward; by default the base env's reward is kept.
    """

    def _setup_task_env(self, config: dict, default_horizon: int) -> None:
        self.horizon = int(config.get("horizon", default_horizon))
        self.oracle = bool(config.get("oracle", False))
        if self.oracle:
            space = self.observation_space
            extra = np.full(len(self.task_vector()), np.inf)
            high = np.concatenate([space.high, extra]).astype(space.dtype)
            self.observation_space = gym.spaces.Box(-high, high, dtype=space.dtype)
        self._t = 0

    def task_vector(self) -> np.ndarray:
        raise NotImplementedError

    def task_reward(self, reward: float, info: dict) -> float:
        return reward

    def _with_task(self, obs: np.ndarray) -> np.ndarray:
        if not self.oracle:
            return obs
        task = np.asarray(self.task_vector(), dtype=obs.dtype)
        return np.concatenate([obs, task])

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        self._t = 0
        return self._with_task(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self._t += 1
        truncated = bool(truncated or self._t >= self.horizon)
        reward = float(self.task_reward(float(reward), info))
        return self._with_task(obs), reward, bool(terminated), truncated, info


def check_meta_env_spaces(env: gym.Env, env_name: Any = None) -> None:
    """Raises `TypeError` for spaces MAML's default policy cannot handle."""
    obs, act = env.observation_space, env.action_space
    if not (isinstance(obs, gym.spaces.Box) and len(obs.shape) == 1):
        raise TypeError(
            f"Env {env_name!r} has observation space {obs}; MAML supports flat "
            "(1-D) Box observations. Flatten the observation, e.g. with "
            "`gymnasium.wrappers.FlattenObservation`, inside your env creator."
        )
    box_action = isinstance(act, gym.spaces.Box) and len(act.shape) == 1
    if not (box_action or isinstance(act, gym.spaces.Discrete)):
        raise TypeError(
            f"Env {env_name!r} has action space {act}; MAML supports 1-D Box "
            "(diagonal Gaussian policy) and Discrete (categorical policy) actions."
        )


def find_non_finite(episodes_by_task: dict[int, list]) -> tuple[int, str] | None:
    """The first (task index, what) with a NaN/inf reward or observation, if any."""
    for task_index, episodes in episodes_by_task.items():
        for episode in episodes:
            if not np.all(np.isfinite(np.asarray(episode.get_rewards(), float))):
                return task_index, "reward"
            if not np.all(np.isfinite(np.asarray(episode.get_observations(), float))):
                return task_index, "observation"
    return None
