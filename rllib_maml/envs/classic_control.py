"""Classic-control meta envs whose tasks change the physics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.classic_control.continuous_mountain_car import (
    Continuous_MountainCarEnv,
)
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from rllib_maml.envs.base import TaskEnvMixin


def _range(config: dict, key: str, default: tuple[float, float]) -> tuple[float, float]:
    low, high = config.get(key, default)
    return float(low), float(high)


class CartPoleMassEnv(TaskEnvMixin, CartPoleEnv):
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


class PendulumMassEnv(TaskEnvMixin, PendulumEnv):
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


class MountainCarContinuousMetaEnv(TaskEnvMixin, Continuous_MountainCarEnv):
    """MountainCarContinuous whose goal position and gravity vary per task.

    - Task: `{"goal_position": g, "gravity": k}`, g ~ U(0.45, 0.55) and
      k ~ U(0.0025, 0.006) by default (`goal_position_range`, `gravity_range`).
      `gravity` replaces the constant 0.0025 of the velocity update
      `v += force * power - gravity * cos(3 x)`.
    - Observation: (position, velocity). Oracle: then g, k (4,).
    - Action: force in [-1, 1]; reward +100 at the goal minus 0.1 * force^2;
      horizon 999 (gymnasium's).
    """

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        super().__init__()
        self.goal_position_range = _range(config, "goal_position_range", (0.45, 0.55))
        self.gravity_range = _range(config, "gravity_range", (0.0025, 0.006))
        self.gravity = 0.0025
        self._setup_task_env(config, default_horizon=999)

    def sample_tasks(self, n: int) -> list[dict[str, float]]:
        goals = self.np_random.uniform(*self.goal_position_range, size=n)
        gravity = self.np_random.uniform(*self.gravity_range, size=n)
        return [
            {"goal_position": float(g), "gravity": float(k)}
            for g, k in zip(goals, gravity)
        ]

    def set_task(self, task: dict[str, Any]) -> None:
        self.goal_position = float(task["goal_position"])
        self.gravity = float(task["gravity"])

    def get_task(self) -> dict[str, float]:
        return {"goal_position": self.goal_position, "gravity": self.gravity}

    def task_vector(self) -> np.ndarray:
        return np.array([self.goal_position, self.gravity], dtype=np.float32)

    def _physics_step(self, action):
        """Continuous_MountainCarEnv.step with the task's gravity."""
        position, velocity = float(self.state[0]), float(self.state[1])
        force = min(max(float(action[0]), self.min_action), self.max_action)
        velocity += force * self.power - self.gravity * math.cos(3 * position)
        velocity = min(max(velocity, -self.max_speed), self.max_speed)
        position = min(max(position + velocity, self.min_position), self.max_position)
        if position == self.min_position and velocity < 0:
            velocity = 0.0
        terminated = bool(
            position >= self.goal_position and velocity >= self.goal_velocity
        )
        reward = (100.0 if terminated else 0.0) - 0.1 * force**2
        self.state = np.array([position, velocity], dtype=np.float32)
        return self.state, reward, terminated, False, {}

    def step(self, action):
        obs, reward, terminated, _, info = self._physics_step(action)
        self._t += 1
        truncated = self._t >= self.horizon
        return self._with_task(obs), reward, terminated, truncated, info


PARAMETERIZED_CARTPOLE_FAMILIES = (
    "pole_length",
    "mass",
    "gravity",
    "mixed",
    "force_direction",
)


class ParameterizedCartPoleEnv(TaskEnvMixin, CartPoleEnv):
    """CartPole with a family of physical parameters varying per task.

    - `family` (env_config, default "pole_length"):
      - "pole_length": `length` (CartPole's half pole length) ~ U(0.3, 0.8);
      - "mass": pole mass ~ U(0.05, 0.2) and cart mass ~ U(0.8, 1.5);
      - "gravity": gravity ~ U(8, 12);
      - "mixed": all of the above and a reward scale ~ U(0.8, 1.2);
      - "force_direction": which way the actions push, `force_sign` = +1
        (CartPole's) or -1 (action 1 pushes left) with equal probability.
        No single policy balances both (a policy that ignores the task
        fails on half of them): the family where adaptation is needed.
      Ranges: `length_range`, `masspole_range`, `masscart_range`,
      `gravity_range`, `reward_scale_range`.
    - Task: `{"length", "masspole", "masscart", "gravity", "reward_scale"}`
      (parameters outside the family keep CartPole's defaults), and
      `force_sign` in the "force_direction" family.
    - Observation: CartPole's 4 values. Oracle: then the five task values in
      that order (9,), and `force_sign` in the "force_direction" family (10,).
    - Discrete actions {0, 1}; reward `reward_scale` per step; horizon 200.
    """

    DEFAULTS = {
        "length": 0.5,
        "masspole": 0.1,
        "masscart": 1.0,
        "gravity": 9.8,
        "reward_scale": 1.0,
    }
    FORCE_MAG = 10.0  # CartPole's
    FAMILY_PARAMS = {
        "pole_length": ("length",),
        "mass": ("masspole", "masscart"),
        "gravity": ("gravity",),
        "mixed": ("length", "masspole", "masscart", "gravity", "reward_scale"),
    }

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        super().__init__()
        self.family = config.get("family", "pole_length")
        if self.family not in PARAMETERIZED_CARTPOLE_FAMILIES:
            raise ValueError(
                f"`family` must be one of {PARAMETERIZED_CARTPOLE_FAMILIES}, got "
                f"{self.family!r}. Set env_config={{'family': 'pole_length'}}."
            )
        self.ranges = {
            "length": _range(config, "length_range", (0.3, 0.8)),
            "masspole": _range(config, "masspole_range", (0.05, 0.2)),
            "masscart": _range(config, "masscart_range", (0.8, 1.5)),
            "gravity": _range(config, "gravity_range", (8.0, 12.0)),
            "reward_scale": _range(config, "reward_scale_range", (0.8, 1.2)),
        }
        self.reward_scale = 1.0
        self.force_sign = 1.0
        self._setup_task_env(config, default_horizon=200)

    def sample_tasks(self, n: int) -> list[dict[str, float]]:
        tasks = [dict(self.DEFAULTS) for _ in range(n)]
        if self.family == "force_direction":
            for task, sign in zip(tasks, self.np_random.choice([-1.0, 1.0], n)):
                task["force_sign"] = float(sign)
            return tasks
        for name in self.FAMILY_PARAMS[self.family]:
            values = self.np_random.uniform(*self.ranges[name], size=n)
            for task, value in zip(tasks, values):
                task[name] = float(value)
        return tasks

    def set_task(self, task: dict[str, Any]) -> None:
        task = {**self.DEFAULTS, **task}
        self.length = float(task["length"])
        self.masspole = float(task["masspole"])
        self.masscart = float(task["masscart"])
        self.gravity = float(task["gravity"])
        self.reward_scale = float(task["reward_scale"])
        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length
        self.force_sign = float(task.get("force_sign", 1.0))
        # CartPole pushes with +force_mag for action 1 and -force_mag for 0.
        self.force_mag = self.FORCE_MAG * self.force_sign

    def _task_names(self) -> tuple[str, ...]:
        extra = ("force_sign",) if self.family == "force_direction" else ()
        return (*self.DEFAULTS, *extra)

    def get_task(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in self._task_names()}

    def task_vector(self) -> np.ndarray:
        values = [getattr(self, n) for n in self._task_names()]
        return np.array(values, dtype=np.float32)

    def task_reward(self, reward: float, info: dict) -> float:
        return self.reward_scale * reward
