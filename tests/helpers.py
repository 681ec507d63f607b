"""Small builders shared by the tests (no Ray cluster needed)."""

from __future__ import annotations

from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

import rllib_maml  # noqa: F401  (registers the envs)
from rllib_maml import MAMLConfig
from rllib_maml.sampling import sample_jobs_on_env_runner


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
    runner = SingleAgentEnvRunner(config=config)
    learner = config.build_learner(env=runner.env)
    return runner, learner


def sample(runner, learner, tasks, num_episodes, weights_by_task=None):
    """Episodes per task index, sampled with the learner's current meta-policy."""
    meta = learner.inference_weights()
    jobs = [
        (i, task, (weights_by_task or {}).get(i, meta), None)
        for i, task in enumerate(tasks)
    ]
    episodes, _, failure = sample_jobs_on_env_runner(runner, jobs, num_episodes)
    assert failure is None, failure
    return episodes
