"""Classic-control meta envs whose tasks change the physics."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from rllib_maml.envs.base import MetaEnv


def _range(config: dict, key: str, default: tuple[float, float]) -> tuple[float, float]:
    low, high = config.get(key, default)
    return float(low), float(high)


class _ClassicControlTask(MetaEnv):
    """Horizon truncation and oracle observations for a gymnasium classic-control env.

    Subclasses list this class first, then the gymnasium env, and implement
    `task_vector()` (the task parameters appended to oracle observations).
    """

    def _setup_task_env(self, config: dict, default_horizon: int) -> None:
        self.horizon = int(config.get("horizon", default_horizon))
        self.oracle = bool(config.get("oracle", False))
        if self.oracle:
            extra = np.full(len(self.task_vector()), np.inf, dtype=np.float32)
            high = np.concatenate([self.observation_space.high, extra])
            self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self._t = 0

    def task_vector(self) -> np.ndarray:
        raise NotImplementedError

    def _with_task(self, obs: np.ndarray) -> np.ndarray:
        if not self.oracle:
            return obs
        return np.concatenate([obs, self.task_vector()]).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        self._t = 0
        return self._with_task(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self._t += 1
        truncated = bool(truncated or self._t >= self.horizon)
        return self._with_task(obs), float(reward), terminated, truncated, info


class CartPoleMassEnv(_ClassicControlTask, CartPoleEnv):
    """CartPole whose cart and pole masses vary per task.

    - Task: `{"masscart": m_c, "masspole": m_p}`, m_c ~ U(0.5, 2.0) and
      m_p ~ U(0.05, 0.2) by default (`masscart_range`, `masspole_range`).
    - Setting a task recomputes `total_mass` and `polemass_length`, the two
      quantities the dynamics actually use.
    - Observation: CartPole's 4 values. Oracle variant: then m_c, m_p (6,).
    - Discrete actions {0, 1}; reward 1 per step; horizon 200 by default.
    """

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        super().__init__()
        self.masscart_range = _range(config, "masscart_range", (0.5, 2.0))
        self.masspole_range = _range(config, "masspole_range", (0.05, 0.2))
        self._setup_task_env(config, default_horizon=200)

    def sample_tasks(self, n: int) -> list[dict[str, float]]:
        cart = self.np_random.uniform(*self.masscart_range, size=n)
        pole = self.np_random.uniform(*self.masspole_range, size=n)
        return [
            {"masscart": float(c), "masspole": float(p)} for c, p in zip(cart, pole)
        ]

    def set_task(self, task: dict[str, Any]) -> None:
        self.masscart = float(task["masscart"])
        self.masspole = float(task["masspole"])
        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length

    def get_task(self) -> dict[str, float]:
        return {"masscart": self.masscart, "masspole": self.masspole}

    def task_vector(self) -> np.ndarray:
        return np.array([self.masscart, self.masspole], dtype=np.float32)


class PendulumMassEnv(_ClassicControlTask, PendulumEnv):
    """Pendulum whose mass varies per task.

    - Task: `{"mass": m}`, m ~ U(0.5, 2.0) by default (`mass_range`).
    - Observation: Pendulum's (cos, sin, angular velocity). Oracle: then m (4,).
    - Action: torque in [-2, 2]; reward as in Pendulum-v1; horizon 200.
    """

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        super().__init__()
        self.mass_range = _range(config, "mass_range", (0.5, 2.0))
        self._setup_task_env(config, default_horizon=200)

    def sample_tasks(self, n: int) -> list[dict[str, float]]:
        masses = self.np_random.uniform(*self.mass_range, size=n)
        return [{"mass": float(m)} for m in masses]

    def set_task(self, task: dict[str, Any]) -> None:
        self.m = float(task["mass"])

    def get_task(self) -> dict[str, float]:
        return {"mass": self.m}

    def task_vector(self) -> np.ndarray:
        return np.array([self.m], dtype=np.float32)
