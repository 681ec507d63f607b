"""Baselines for the few-shot evaluation: multi-task PPO and the oracle.

The "pretrained" baseline is one policy trained with RLlib's PPO on the whole
task distribution (a new task at every episode), without meta-learning. The
"oracle" baseline is the same on the oracle env, whose observations include
the task. Both use the MAML config's network, so their module states load
into a MAML algorithm and adapt with exactly MAML's inner step.
"""

from __future__ import annotations

import logging
from typing import Any

import gymnasium as gym
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.tune.registry import register_env

from rllib_maml.envs import ENV_SPECS, NAMESPACE
from rllib_maml.sampling import call_learners

logger = logging.getLogger(__name__)


class MultiTaskEnv(gym.Wrapper):
    """Draws a new task from the wrapped meta env's distribution at every reset."""

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.env.reset(seed=seed)
        (task,) = self.env.get_wrapper_attr("sample_tasks")(1)
        self.env.get_wrapper_attr("set_task")(task)
        return self.env.reset(options=options)


def oracle_env_name(env: Any) -> str:
    """The registered oracle variant of a shipped meta env."""
    name = str(env)
    short = name.split("/")[-1]
    if name.startswith(f"{NAMESPACE}/") and short in ENV_SPECS:
        base, version = short.rsplit("-", 1)
        return f"{NAMESPACE}/{base}Oracle-{version}"
    raise ValueError(
        f"No oracle env is known for env {name!r}. Pass the registered name of an "
        "env whose observations include the task (`oracle_env=...`, or "
        "`--oracle-env` on the command line), or leave out the oracle baseline."
    )


def multitask_env_name(env: Any, config) -> str:
    """Registers (once per process) `env` wrapped in `MultiTaskEnv`; its name."""
    name = f"{NAMESPACE}/MultiTask[{env}]"
    _, creator = Algorithm._get_env_id_and_creator(env, config)
    register_env(name, lambda ctx, creator=creator: MultiTaskEnv(creator(ctx)))
    return name


def train_multitask_ppo(
    maml_config, env: Any, *, num_iterations: int, seed: int
) -> dict:
    """Trains RLlib PPO on `env` with a new task per episode.

    Uses the MAML config's network, discount, env config and env-runner count.
    The runners ask for no CPUs of their own: the MAML algorithm that asked
    for this baseline holds them and waits meanwhile.

    Returns:
        The trained module's full state (policy and value function).
    """
    from ray.rllib.algorithms.ppo import PPOConfig

    ppo_config = (
        PPOConfig()
        .environment(
            multitask_env_name(env, maml_config), env_config=maml_config.env_config
        )
        .env_runners(
            num_env_runners=maml_config.num_env_runners,
            num_envs_per_env_runner=maml_config.num_envs_per_env_runner,
            num_cpus_per_env_runner=0,
        )
        .training(
            lr=3e-4,
            gamma=maml_config.gamma,
            lambda_=0.95,
            train_batch_size_per_learner=4000,
            minibatch_size=256,
            num_epochs=10,
        )
        # MAML's module: the same network and initialization (e.g. its
        # `initial_action_std`) as the meta-policy it is compared with.
        .rl_module(
            rl_module_spec=maml_config.get_default_rl_module_spec(),
            model_config=maml_config.model_config,
        )
        .debugging(seed=seed)
    )
    algo = ppo_config.build_algo()
    try:
        for i in range(num_iterations):
            result = algo.train()
            logger.info(
                "multi-task PPO on %s: iteration %d/%d, return %.2f",
                env,
                i + 1,
                num_iterations,
                result["env_runners"].get("episode_return_mean", float("nan")),
            )
        return _learner_module_state(algo)
    finally:
        algo.stop()


def build_like(algo, *, env: Any):
    """A MAML algorithm with `algo`'s config on another env (the oracle's)."""
    config = algo.config.copy(copy_frozen=False)
    config.environment(env).env_runners(num_cpus_per_env_runner=0)
    config.evaluation(evaluation_interval=None, evaluation_num_env_runners=0)
    return config.build_algo()


def module_state_from_checkpoint(path: str) -> dict:
    """The default module's full state from an RLlib algorithm checkpoint (MAML
    or PPO) or an RLModule checkpoint."""
    return module_from_checkpoint(path).get_state()


def module_from_checkpoint(path: str):
    """The default module (an `RLModule`, built with the model config it was
    saved with) from an algorithm or RLModule checkpoint."""
    import os

    from ray.rllib.core.rl_module.rl_module import RLModule

    # RLlib reads a checkpoint through pyarrow, which takes absolute paths
    # (or URIs) only.
    path = os.path.abspath(path)
    for sub in (
        os.path.join("learner_group", "learner", "rl_module", DEFAULT_MODULE_ID),
        DEFAULT_MODULE_ID,
        "",
    ):
        candidate = os.path.join(path, sub)
        if os.path.exists(os.path.join(candidate, "module_state.pkl")) or (
            os.path.exists(os.path.join(candidate, "module_state.pt"))
        ):
            return RLModule.from_checkpoint(candidate)
    raise FileNotFoundError(
        f"No RLModule state found under {path!r}. Give an algorithm checkpoint "
        "directory (from `algo.save_to_path`) or an RLModule checkpoint."
    )


def _learner_module_state(algo) -> dict:
    return call_learners(
        algo.learner_group,
        lambda learner: learner.module[DEFAULT_MODULE_ID].get_state(),
        algo="PPO",
    )[0]
