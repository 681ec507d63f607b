"""MuJoCo locomotion meta envs (gymnasium `*-v5` envs, mujoco >= 3).

Tasks change the reward only; the dynamics are gymnasium's. Each env keeps the
base env's control (and for Ant contact and healthy) terms and replaces the
forward term with the task's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import mujoco  # noqa: F401
    from gymnasium.envs.mujoco.ant_v5 import AntEnv
    from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
    from gymnasium.utils import EzPickle
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError(
        f"The MuJoCo meta envs need gymnasium's MuJoCo extra ({e}): "
        "pip install 'rllib_maml[mujoco]' (mujoco and gymnasium[mujoco])."
    ) from e

from rllib_maml.envs.base import TaskEnvMixin, render_kwargs

# The HalfCheetah tasks' control-cost weight: 0.5 * 0.1, as in ProMP's,
# pytorch-maml-rl's and RLlib's former HalfCheetahRandDirec (results in those
# units compare).
HALF_CHEETAH_CTRL_COST = 0.05


class _LocomotionTask(TaskEnvMixin):
    def _finish_init(self, config: dict, default_horizon: int) -> None:
        # gymnasium's MuJoCo envs pickle by re-calling __init__ with their
        # recorded arguments; record ours (the env_config) instead.
        EzPickle.__init__(self, config)
        self._setup_task_env(config, default_horizon)


class _DirectionTask:
    """Task `{"direction": d}`, d in {-1, +1} with equal probability."""

    direction = 1.0

    def sample_tasks(self, n: int) -> list[dict[str, float]]:
        return [{"direction": float(d)} for d in self.np_random.choice([-1.0, 1.0], n)]

    def set_task(self, task: dict[str, Any]) -> None:
        self.direction = float(task["direction"])

    def get_task(self) -> dict[str, float]:
        return {"direction": self.direction}

    def task_vector(self) -> np.ndarray:
        return np.array([self.direction])


class _VelocityTask:
    """Task `{"velocity": v}`, v ~ U(`velocity_range`), (0, 2) by default."""

    def _setup_velocity(self, config: dict) -> None:
        low, high = config.get("velocity_range", (0.0, 2.0))
        self.velocity_range = (float(low), float(high))
        self.velocity = float(np.mean(self.velocity_range))

    def sample_tasks(self, n: int) -> list[dict[str, float]]:
        return [
            {"velocity": float(v)}
            for v in self.np_random.uniform(*self.velocity_range, size=n)
        ]

    def set_task(self, task: dict[str, Any]) -> None:
        self.velocity = float(task["velocity"])

    def get_task(self) -> dict[str, float]:
        return {"velocity": self.velocity}

    def task_vector(self) -> np.ndarray:
        return np.array([self.velocity])


class HalfCheetahRandDirecEnv(_DirectionTask, _LocomotionTask, HalfCheetahEnv):
    """HalfCheetah running forward or backward (Finn et al. 2017, ProMP).

    - Task: `{"direction": d}`, d in {-1, +1} with equal probability.
    - Reward: `d * forward velocity - 0.05 * |action|^2` (the control cost of
      ProMP's, pytorch-maml-rl's and RLlib's former env; HalfCheetah-v5's own
      weight is 0.1).
    - Observation: HalfCheetah-v5's 17 values. Oracle: then d (18,).
    - Horizon 200 by default (`horizon`).
    """

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        super().__init__(
            ctrl_cost_weight=HALF_CHEETAH_CTRL_COST, **render_kwargs(config)
        )
        self._finish_init(config, default_horizon=200)

    def task_reward(self, reward: float, info: dict) -> float:
        return self.direction * info["x_velocity"] + info["reward_ctrl"]


class HalfCheetahBackwardEnv(HalfCheetahRandDirecEnv):
    """The fixed task "run backwards" (`direction = -1`), for held-out evaluation."""

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        self.direction = -1.0

    def sample_tasks(self, n: int) -> list[dict[str, float]]:
        return [{"direction": -1.0} for _ in range(n)]


class HalfCheetahRandVelEnv(_VelocityTask, _LocomotionTask, HalfCheetahEnv):
    """HalfCheetah running at a target velocity (Finn et al. 2017, ProMP).

    - Task: `{"velocity": v}`, v ~ U(0, 2) by default (`velocity_range`; ProMP
      uses (0, 3)).
    - Reward: `-|forward velocity - v| - 0.05 * |action|^2` (as ProMP's).
    - Observation: HalfCheetah-v5's 17 values. Oracle: then v (18,).
    - Horizon 200 by default.
    """

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        super().__init__(
            ctrl_cost_weight=HALF_CHEETAH_CTRL_COST, **render_kwargs(config)
        )
        self._setup_velocity(config)
        self._finish_init(config, default_horizon=200)

    def task_reward(self, reward: float, info: dict) -> float:
        return -abs(info["x_velocity"] - self.velocity) + info["reward_ctrl"]


class AntRandGoalEnv(_LocomotionTask, AntEnv):
    """Ant walking to a goal position (ProMP).

    - Task: `{"goal": (gx, gy)}` = r (cos a, sin a), a ~ U(0, 2 pi),
      r = `goal_radius` * sqrt(U(0, 1)) (uniform over a disc of radius 3).
    - Reward: `-|xy - goal|_1` + Ant-v5's control and contact costs.
    - No early termination (`terminate_when_unhealthy=False`).
    - Observation: Ant-v5's with the torso's x, y included (107,). Oracle:
      then gx, gy (109,).
    - Horizon 200 by default.
    """

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        super().__init__(
            exclude_current_positions_from_observation=False,
            terminate_when_unhealthy=False,
            **render_kwargs(config),
        )
        self.goal_radius = float(config.get("goal_radius", 3.0))
        self.goal = np.zeros(2)
        self._finish_init(config, default_horizon=200)

    def sample_tasks(self, n: int) -> list[dict[str, np.ndarray]]:
        angle = self.np_random.uniform(0.0, 2 * np.pi, size=n)
        radius = self.goal_radius * np.sqrt(self.np_random.uniform(0.0, 1.0, size=n))
        goals = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        return [{"goal": g} for g in goals]

    def set_task(self, task: dict[str, Any]) -> None:
        self.goal = np.asarray(task["goal"], dtype=np.float64).copy()

    def get_task(self) -> dict[str, np.ndarray]:
        return {"goal": self.goal.copy()}

    def task_vector(self) -> np.ndarray:
        return self.goal

    def task_reward(self, reward: float, info: dict) -> float:
        xy = np.array([info["x_position"], info["y_position"]])
        distance = np.abs(xy - self.goal).sum()
        return -distance + info["reward_ctrl"] + info["reward_contact"]


class AntRandDirecEnv(_DirectionTask, _LocomotionTask, AntEnv):
    """Ant walking forward or backward along x (ProMP's AntRandDirec).

    - Task: `{"direction": d}`, d in {-1, +1} (forward/backward, not a 2D
      direction on the circle).
    - Reward: `d * x velocity` + Ant-v5's healthy reward, control and contact
      costs; episodes end when the Ant is unhealthy, as in Ant-v5.
    - Observation: Ant-v5's (105,). Oracle: then d (106,). Horizon 200.
    """

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        super().__init__(**render_kwargs(config))
        self._finish_init(config, default_horizon=200)

    def task_reward(self, reward: float, info: dict) -> float:
        return (
            self.direction * info["x_velocity"]
            + info["reward_survive"]
            + info["reward_ctrl"]
            + info["reward_contact"]
        )


class AntRandVelEnv(_VelocityTask, _LocomotionTask, AntEnv):
    """Ant walking along x at a target velocity.

    - Task: `{"velocity": v}`, v ~ U(0, 2) by default (`velocity_range`), as
      HalfCheetahRandVel.
    - Reward: `-|x velocity - v|` + Ant-v5's healthy reward, control and
      contact costs; episodes end when the Ant is unhealthy.
    - Observation: Ant-v5's (105,). Oracle: then v (106,). Horizon 200.
    """

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        super().__init__(**render_kwargs(config))
        self._setup_velocity(config)
        self._finish_init(config, default_horizon=200)

    def task_reward(self, reward: float, info: dict) -> float:
        return (
            -abs(info["x_velocity"] - self.velocity)
            + info["reward_survive"]
            + info["reward_ctrl"]
            + info["reward_contact"]
        )
