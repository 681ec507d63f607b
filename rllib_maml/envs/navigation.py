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
