"""2D point navigation to a goal (Finn et al. 2017, Sec. 5.3)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rllib_maml.envs.base import MetaEnv


class Navigation2DEnv(MetaEnv):
    """A point starts at (0, 0) and moves to a goal it cannot see.

    - Task: `{"goal": array([gx, gy])}`, goal uniform in `goal_low..goal_high`
      (default [-0.5, 0.5]^2).
    - Observation: the position (2,). Oracle variant: position then goal (4,).
    - Action: the step (2,), clipped to [-0.1, 0.1]^2.
    - Reward: minus the Euclidean distance to the goal after the step.
    - Episode ends when |dx| < 0.01 and |dy| < 0.01, or after `horizon` (100) steps.
    """

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        self.horizon = int(config.get("horizon", 100))
        self.goal_low = float(config.get("goal_low", -0.5))
        self.goal_high = float(config.get("goal_high", 0.5))
        self.oracle = bool(config.get("oracle", False))
        obs_dim = 4 if self.oracle else 2
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-0.1, 0.1, (2,), np.float32)
        self._goal = np.zeros(2, dtype=np.float64)
        self._pos = np.zeros(2, dtype=np.float64)
        self._t = 0

    def sample_tasks(self, n: int) -> list[dict[str, Any]]:
        goals = self.np_random.uniform(self.goal_low, self.goal_high, size=(n, 2))
        return [{"goal": g} for g in goals]

    def set_task(self, task: dict[str, Any]) -> None:
        self._goal = np.asarray(task["goal"], dtype=np.float64).copy()

    def get_task(self) -> dict[str, Any]:
        return {"goal": self._goal.copy()}

    def _obs(self) -> np.ndarray:
        if self.oracle:
            return np.concatenate([self._pos, self._goal]).astype(np.float32)
        return self._pos.astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._pos = np.zeros(2, dtype=np.float64)
        self._t = 0
        return self._obs(), {}

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64), -0.1, 0.1)
        self._pos = self._pos + action
        self._t += 1
        dx, dy = self._pos - self._goal
        reward = -float(np.sqrt(dx * dx + dy * dy))
        terminated = bool(abs(dx) < 0.01 and abs(dy) < 0.01)
        truncated = self._t >= self.horizon
        return self._obs(), reward, terminated, truncated, {}


class Navigation2DVectorEnv(gym.vector.VectorEnv):
    """`num_envs` Navigation2D envs stepped as arrays, one task per sub-env.

    Same observations, rewards and episode ends as a `SyncVectorEnv` of
    `Navigation2DEnv`s with gymnasium's default (next-step) autoreset: a
    sub-env that ended is reset by the following `step`, which ignores its
    action and returns reward 0. Made by `gym.make_vec(...,
    vectorization_mode="vector_entry_point")`, i.e.
    `config.env_runners(gym_env_vectorize_mode="vector_entry_point")`.
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, config: dict | None = None):
        single = Navigation2DEnv(config)
        self.num_envs = int(num_envs)
        self.horizon, self.oracle = single.horizon, single.oracle
        self.single_observation_space = single.observation_space
        self.single_action_space = single.action_space
        self.observation_space = gym.vector.utils.batch_space(
            single.observation_space, self.num_envs
        )
        self.action_space = gym.vector.utils.batch_space(
            single.action_space, self.num_envs
        )
        self._goals = np.zeros((self.num_envs, 2), dtype=np.float64)
        self._pos = np.zeros((self.num_envs, 2), dtype=np.float64)
        self._t = np.zeros(self.num_envs, dtype=np.int64)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)

    def set_task(self, task: dict[str, Any]) -> None:
        """Gives every sub-env `task`."""
        self._goals[:] = np.asarray(task["goal"], dtype=np.float64)

    def set_tasks(self, tasks: list[dict[str, Any]]) -> None:
        """Gives sub-env i `tasks[i]`."""
        self._goals[:] = np.asarray([t["goal"] for t in tasks], dtype=np.float64)

    def call(self, name: str, *args, **kwargs) -> tuple:
        """Runs this vector env's method `name` (e.g. `set_task`) once; one
        result per sub-env, as `SyncVectorEnv.call` returns."""
        return (getattr(self, name)(*args, **kwargs),) * self.num_envs

    def _obs(self) -> np.ndarray:
        if self.oracle:
            return np.concatenate([self._pos, self._goals], axis=1).astype(np.float32)
        return self._pos.astype(np.float32)

    def reset(self, *, seed=None, options=None):
        """Resets all sub-envs, or those in `options["reset_mask"]` (as
        gymnasium's vector envs do). Resets are deterministic: `seed` (an int
        or one entry per sub-env) only seeds `np_random`."""
        mask = (options or {}).get("reset_mask")
        if mask is None:
            mask = np.ones(self.num_envs, dtype=bool)
        super().reset(seed=seed if isinstance(seed, int) else None)
        self._pos[mask] = 0.0
        self._t[mask] = 0
        self._autoreset[mask] = False
        return self._obs(), {}

    def step(self, actions):
        actions = np.clip(np.asarray(actions, dtype=np.float64), -0.1, 0.1)
        restart = self._autoreset
        self._pos = np.where(restart[:, None], 0.0, self._pos + actions)
        self._t = np.where(restart, 0, self._t + 1)
        dx, dy = (self._pos - self._goals).T
        rewards = np.where(restart, 0.0, -np.sqrt(dx * dx + dy * dy))
        terminated = ~restart & (np.abs(dx) < 0.01) & (np.abs(dy) < 0.01)
        truncated = ~restart & (self._t >= self.horizon)
        self._autoreset = terminated | truncated
        return self._obs(), rewards, terminated, truncated, {}
