"""Small builders shared by the tests (no Ray cluster needed)."""

from __future__ import annotations

import os
import sys

import ray

import rllib_maml  # noqa: F401  (registers the envs)
from rllib_maml import MAMLConfig, Navigation2DEnv
from rllib_maml.env_runner import MAMLEnvRunner, TaskJob


def local_config(env="rllib_maml/Navigation2D-v0", **training) -> MAMLConfig:
    training.setdefault("meta_batch_size", 2)
    training.setdefault("episodes_per_task", 3)
    return (
        MAMLConfig()
        .environment(env)
        .env_runners(num_env_runners=0)
        .debugging(seed=0)
        .training(**training)
    )


def local_runner_and_learner(config: MAMLConfig):
    """An env runner and a learner in this process, built like the algorithm does."""
    config.validate()
    runner = MAMLEnvRunner(config=config)
    learner = config.build_learner(env=runner.env)
    return runner, learner


def sample(runner, learner, tasks, num_episodes, params_by_task=None, entropy=0):
    """Episodes per task index, sampled with `params_by_task` (default: the
    learner's current meta-policy)."""
    meta = learner.policy_params_numpy()
    jobs = [
        TaskJob(i, task, (params_by_task or {}).get(i, meta))
        for i, task in enumerate(tasks)
    ]
    return runner.sample_tasks(
        jobs, num_episodes=num_episodes, entropy=entropy
    ).episodes_by_task


# Remote env runners cannot import the tests' modules: ship these by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class CrashOnceNavigation(Navigation2DEnv):
    """Raises in `step` for a task with `crash=True` while a marker file exists."""

    def __init__(self, config=None):
        super().__init__(config)
        self.marker = (config or {}).get("marker")
        self.always = bool((config or {}).get("always", False))
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
            if not self.always:
                os.remove(self.marker)
            raise RuntimeError("simulated env failure")
        return super().step(action)
