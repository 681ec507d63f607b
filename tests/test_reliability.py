"""Bad envs fail clearly, failed env runners are worked around, runs repeat exactly."""

import math
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import ray
from helpers import CrashOnceNavigation
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


def config_for(env_name, creator, num_env_runners=0, **env_config):
    register_env(env_name, creator)
    return (
        MAMLConfig()
        .environment(env_name, env_config=env_config)
        .env_runners(num_env_runners=num_env_runners, num_cpus_per_env_runner=0.5)
        .training(meta_batch_size=4, episodes_per_task=2)
        .debugging(seed=0)
    )


def crash_config(
    tmp_path, *, num_env_runners, fault_tolerant, always=False, num_envs=1
):
    """A config whose first task's env raises (once, or always while the marker
    file exists), and the marker file. `num_envs=4` samples two tasks per
    batched pass."""
    marker = tmp_path / "crash-marker"
    marker.write_text("")
    config = config_for(
        "tests/CrashNav-v0",
        lambda c: CrashOnceNavigation(c),
        num_env_runners=num_env_runners,
        marker=str(marker),
        always=always,
    ).fault_tolerance(
        restart_failed_env_runners=fault_tolerant,
        # RLlib waits this long in a failed runner before it exits (default 60).
        delay_between_env_runner_restarts_s=0.0,
    )
    config.env_runners(num_envs_per_env_runner=num_envs)
    return config, marker


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


@pytest.mark.parametrize("num_envs", [1, 4])
def test_failed_env_runner_tasks_are_resampled(ray_session, tmp_path, caplog, num_envs):
    config, marker = crash_config(
        tmp_path, num_env_runners=2, fault_tolerant=True, num_envs=num_envs
    )
    algo = config.build_algo()
    try:
        with caplog.at_level("WARNING", logger="rllib_maml.sampling"):
            result = algo.train()
        assert not marker.exists()  # the failure really happened
        assert result["num_tasks"] == 4
        assert math.isfinite(result["adaptation_delta"])
        messages = [r.getMessage() for r in caplog.records]
        assert any("have no data" in m and "again" in m for m in messages)
        # The exception reached RLlib, which took the runner out of service ...
        group = algo.env_runner_group
        assert group.num_healthy_remote_env_runners() == 1
        # ... and Ray Core restarts it; RLlib brings it back into service
        # (`restore_env_runners`, run before every iteration) once it is up.
        deadline = time.monotonic() + 60
        while group.num_healthy_remote_env_runners() < 2:
            assert time.monotonic() < deadline, "the failed env runner never came back"
            time.sleep(1)
            algo.restore_env_runners(group)
        assert algo._counters["total_num_restored_workers"] == 1
        assert math.isfinite(algo.train()["adaptation_delta"])
    finally:
        algo.stop()


def test_checkpoint_with_another_network_is_rejected_clearly(ray_session, tmp_path):
    base = (
        MAMLConfig()
        .environment("rllib_maml/Navigation2D-v0")
        .env_runners(num_env_runners=0)
        .training(meta_batch_size=2, episodes_per_task=1)
    )
    algo = base.copy().rl_module(model_config={"fcnet_hiddens": [16]}).build_algo()
    path = algo.save_to_path(tmp_path / "ckpt")
    algo.stop()
    other = base.copy().rl_module(model_config={"fcnet_hiddens": [32, 32]}).build_algo()
    try:
        with pytest.raises(ValueError, match=r"do not fit this config's network"):
            other.restore_from_path(path)
    finally:
        other.stop()


def test_env_runner_failure_without_fault_tolerance_names_the_cause(
    ray_session, tmp_path
):
    config, _ = crash_config(tmp_path, num_env_runners=1, fault_tolerant=False)
    algo = config.build_algo()
    try:
        with pytest.raises(
            RuntimeError,
            match=r"Env runner\(s\) \[1\] failed while sampling MAML tasks "
            r"\[0, 1, 2, 3\] "
            r".*'crash': True.*the runner raised and exited; its log has the "
            r"exception.*restart_failed_env_runners=True",
        ):
            algo.train()
    finally:
        algo.stop()


def test_missing_mujoco_names_the_extra(monkeypatch):
    import importlib

    monkeypatch.setitem(sys.modules, "mujoco", None)  # import mujoco -> ImportError
    monkeypatch.delitem(sys.modules, "rllib_maml.envs.locomotion", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'rllib_maml\[mujoco\]'"):
        importlib.import_module("rllib_maml.envs.locomotion")


class RaisingTasksNavigation(Navigation2DEnv):
    def sample_tasks(self, n):
        raise KeyError("no task table")


class MultiDiscreteNavigation(Navigation2DEnv):
    def __init__(self, config=None):
        super().__init__(config)
        self.action_space = gym.spaces.MultiDiscrete([3, 3])


def test_sample_tasks_raising_is_reported():
    config = config_for("tests/RaisingTasks-v0", lambda c: RaisingTasksNavigation(c))
    algo = config.build_algo()
    try:
        with pytest.raises(
            RuntimeError, match=r"`sample_tasks\(4\)`.*KeyError.*no task"
        ):
            algo.train()
    finally:
        algo.stop()


def test_unsupported_action_space_fails_before_runners_start():
    config = config_for("tests/MultiDiscrete-v0", lambda c: MultiDiscreteNavigation(c))
    with pytest.raises(TypeError, match=r"action space MultiDiscrete.*1-D Box"):
        config.build_algo()


def test_killed_env_runner_actor_is_worked_around(ray_session, caplog):
    config = config_for(
        "tests/Nav-v0", lambda c: Navigation2DEnv(c), num_env_runners=2
    ).fault_tolerance(restart_failed_env_runners=True)
    algo = config.build_algo()
    try:
        algo.train()
        actor = algo.env_runner_group._worker_manager._actors[1]
        ray.kill(actor, no_restart=True)
        with caplog.at_level("WARNING", logger="rllib_maml.sampling"):
            result = algo.train()
        assert result["num_tasks"] == 4
        assert math.isfinite(result["adaptation_delta"])
        assert any("again" in r.getMessage() for r in caplog.records)
    finally:
        algo.stop()


def test_task_failing_on_every_runner_is_an_error_not_a_smaller_batch(
    ray_session, tmp_path
):
    config, _ = crash_config(
        tmp_path, num_env_runners=1, fault_tolerant=True, always=True
    )
    algo = config.build_algo()
    try:
        with pytest.raises(
            RuntimeError, match=r"Every env runner failed .*tasks \[0, 1, 2, 3\]"
        ):
            algo.train()
    finally:
        algo.stop()


@pytest.mark.parametrize(
    "num_envs, batched, expected",
    [
        (4, False, ("`num_envs_per_env_runner` (4)", "num_envs_per_env_runner=2")),
        (5, True, ("larger than the 4 (task, episode) slots", "runner=4)")),
    ],
)
def test_envs_per_runner_that_waste_envs_warn(
    ray_session, caplog, num_envs, batched, expected
):
    config = (
        MAMLConfig()
        .environment("rllib_maml/Navigation2D-v0")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=num_envs)
        .training(meta_batch_size=2, episodes_per_task=2, batched_sampling=batched)
    )
    with caplog.at_level("WARNING", logger="rllib_maml.config"):
        algo = config.build_algo()
    algo.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "rllib_maml.config"]
    assert any(all(part in m for part in expected) for m in messages), messages
