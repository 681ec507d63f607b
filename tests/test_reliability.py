"""Bad envs fail clearly, failed env runners are worked around, runs repeat exactly."""

import math
import os
import sys

import gymnasium as gym
import numpy as np
import pytest
import ray
from ray.tune.registry import register_env

from rllib_maml import MAMLConfig, Navigation2DEnv

pytestmark = pytest.mark.integration

# Remote env runners cannot import this test module: ship its classes by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class NaNRewardNavigation(Navigation2DEnv):
    """Navigation2D whose tasks with x-goal > 0.4 return a NaN reward."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if self._goal[0] > 0.4:
            reward = float("nan")
        return obs, reward, terminated, truncated, info

    def sample_tasks(self, n):
        return [{"goal": np.array([0.45, 0.0])}] + super().sample_tasks(n - 1)


class DictObsNavigation(Navigation2DEnv):
    def __init__(self, config=None):
        super().__init__(config)
        self.observation_space = gym.spaces.Dict({"pos": self.observation_space})


class CrashOnceNavigation(Navigation2DEnv):
    """Raises in `step` for a task with `crash=True` while a marker file exists."""

    def __init__(self, config=None):
        super().__init__(config)
        self.marker = (config or {}).get("marker")
        self._crash = False

    def set_task(self, task):
        super().set_task(task)
        self._crash = bool(task.get("crash"))

    def sample_tasks(self, n):
        tasks = super().sample_tasks(n)
        tasks[0]["crash"] = True
        return tasks

    def step(self, action):
        if self._crash and self.marker and os.path.exists(self.marker):
            os.remove(self.marker)
            raise RuntimeError("simulated env failure")
        return super().step(action)


def config_for(env_name, creator, num_env_runners=0, **env_config):
    register_env(env_name, creator)
    return (
        MAMLConfig()
        .environment(env_name, env_config=env_config)
        .env_runners(num_env_runners=num_env_runners, num_cpus_per_env_runner=0.5)
        .training(meta_batch_size=4, episodes_per_task=2)
        .debugging(seed=0)
    )


def test_nan_reward_is_reported_with_env_and_task_and_no_update(ray_session):
    algo = config_for("tests/NaNNav-v0", lambda c: NaNRewardNavigation(c)).build_algo()
    learner = algo.learner_group._learner
    before = {
        k: v.clone() for k, v in learner.module["default_policy"].state_dict().items()
    }
    try:
        with pytest.raises(
            ValueError, match=r"tests/NaNNav-v0.*non-finite reward.*0\.45"
        ):
            algo.train()
        after = learner.module["default_policy"].state_dict()
        for key, value in before.items():
            assert value.equal(after[key]), key
    finally:
        algo.stop()


def test_unsupported_observation_space_fails_before_runners_start():
    config = config_for("tests/DictNav-v0", lambda c: DictObsNavigation(c))
    with pytest.raises(TypeError, match=r"observation space Dict.*flat \(1-D\) Box"):
        config.build_algo()


def test_same_seed_same_first_iteration(ray_session):
    def first_result():
        config = (
            MAMLConfig()
            .environment("rllib_maml/Navigation2D-v0")
            .env_runners(num_env_runners=0)
            .training(meta_batch_size=3, episodes_per_task=2)
            .debugging(seed=7)
        )
        algo = config.build_algo()
        try:
            return algo.train()
        finally:
            algo.stop()

    a, b = first_result(), first_result()
    for key in ("episode_return_mean", "episode_return_mean_adapt_1"):
        assert a["env_runners"][key] == b["env_runners"][key]
    assert (
        a["learners"]["default_policy"]["meta_loss"]
        == (b["learners"]["default_policy"]["meta_loss"])
    )


def test_failed_env_runner_tasks_are_resampled(ray_session, tmp_path, caplog):
    marker = tmp_path / "crash-once"
    marker.write_text("")
    config = config_for(
        "tests/CrashOnceNav-v0",
        lambda c: CrashOnceNavigation(c),
        num_env_runners=2,
        marker=str(marker),
    ).fault_tolerance(restart_failed_env_runners=True)
    algo = config.build_algo()
    try:
        with caplog.at_level("WARNING", logger="rllib_maml.sampling"):
            result = algo.train()
        assert not marker.exists()  # the failure really happened
        assert result["num_tasks"] == 4
        assert math.isfinite(result["adaptation_delta"])
        assert any("re-sampling" in r.message for r in caplog.records)
        # Training goes on (the failed runner is restored by RLlib).
        assert math.isfinite(algo.train()["adaptation_delta"])
    finally:
        algo.stop()
