"""`PEARLConfig`: RLlib's `SACConfig` plus PEARL's settings.

Defaults follow the reference code's (Rakelly et al. 2019, oyster
`configs/default.py`) where they are PEARL's own, with its iteration split in
five (1 task collected and 400 gradient steps per iteration instead of 5 and
2000: the same ratio). Learning rates are the paper's (3e-4; RLlib's SAC
actor uses 3e-5); the networks are close to the paper's in size (see
`__init__`).
"""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.sac import SACConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override
from ray.util import log_once

from rllib_maml.config import (
    is_int_at_least,
    require_env_runner_cls,
    require_new_api_stack,
)

# name -> (minimum, meaning): the integer settings and their lower bounds.
INT_SETTINGS = {
    "num_train_tasks": (1, "the fixed set of training tasks"),
    "meta_batch_size": (1, "tasks per gradient step"),
    "num_tasks_sample": (0, "tasks collected per iteration"),
    "num_initial_steps": (1, "env steps per task before training"),
    "num_steps_prior": (0, "env steps per sampled task with z from the prior"),
    "num_steps_posterior": (0, "env steps per sampled task with z from the posterior"),
    "num_extra_rl_steps_posterior": (0, "posterior env steps for the replay only"),
    "num_train_steps_per_iteration": (1, "gradient steps per iteration"),
    "embedding_batch_size": (1, "context transitions per task and step"),
    "latent_dim": (1, "the size of z"),
}


class PEARLConfig(SACConfig):
    """Configures `rllib_maml.PEARL`.

    Example:
        config = (
            PEARLConfig()
            .environment("rllib_maml/Navigation2D-v0")
            .training(num_train_tasks=40, meta_batch_size=16, latent_dim=2)
        )
        algo = config.build_algo()
    """

    def __init__(self, algo_class=None):
        from rllib_maml.pearl.env_runner import PEARLEnvRunner
        from rllib_maml.pearl.pearl import PEARL

        super().__init__(algo_class=algo_class or PEARL)
        # PEARL's settings (the reference code's names where they differ).
        self.num_train_tasks = 100
        self.meta_batch_size = 16  # meta_batch
        # The paper's iteration (5 tasks collected, 2000 gradient steps) in five:
        # the same ratio of env steps to gradient steps, 5x more often reported.
        self.num_tasks_sample = 1
        self.num_initial_steps = 2000
        self.num_steps_prior = 400
        self.num_steps_posterior = 0
        self.num_extra_rl_steps_posterior = 600
        self.num_train_steps_per_iteration = 400  # num_train_steps_per_itr
        self.embedding_batch_size = 100
        self.latent_dim = 5
        self.context_hiddens = [200, 200, 200]
        self.kl_lambda = 0.1
        self.encoder_lr = 3e-4  # context_lr
        self.reward_scale = 1.0
        # RLlib's SAC settings: the batch is per task; the buffer capacity is
        # each task's; buffers go into checkpoints (a resumed run needs them).
        self.actor_lr = 3e-4
        self.train_batch_size_per_learner = 256
        self.replay_buffer_config = {
            "type": "EpisodeReplayBuffer",
            "capacity": 1_000_000,
        }
        self.store_buffer_in_checkpoints = True
        # About the paper's networks (three hidden layers of 300, ReLU): RLlib's
        # SAC critic is [obs -> 256 | action -> 256] -> 256 -> 256 -> Q here,
        # the actor obs -> 256 -> 256; RLlib's defaults (tanh, two more
        # layers) take 1.5x longer per gradient step.
        self.rl_module(
            model_config={
                "fcnet_hiddens": [256],
                "fcnet_activation": "relu",
                "fusionnet_hiddens": [256],
                "fusionnet_activation": "relu",
                "head_fcnet_hiddens": [256],
                "head_fcnet_activation": "relu",
            }
        )
        self.num_steps_sampled_before_learning_starts = 0
        # One `train()` is one PEARL iteration: RLlib's SAC repeats its
        # training step until 1 s and 100 env steps have passed.
        self.min_time_s_per_iteration = None
        self.min_sample_timesteps_per_iteration = 0
        self.env_runner_cls = PEARLEnvRunner

    @override(SACConfig)
    def training(
        self,
        *,
        num_train_tasks: int = NotProvided,
        meta_batch_size: int = NotProvided,
        num_tasks_sample: int = NotProvided,
        num_initial_steps: int = NotProvided,
        num_steps_prior: int = NotProvided,
        num_steps_posterior: int = NotProvided,
        num_extra_rl_steps_posterior: int = NotProvided,
        num_train_steps_per_iteration: int = NotProvided,
        embedding_batch_size: int = NotProvided,
        latent_dim: int = NotProvided,
        context_hiddens: list[int] = NotProvided,
        kl_lambda: float = NotProvided,
        encoder_lr: float = NotProvided,
        reward_scale: float = NotProvided,
        **kwargs,
    ) -> PEARLConfig:
        """PEARL's settings; the rest go to `SACConfig.training`.

        Args:
            num_train_tasks: training tasks, drawn once from the env's
                `sample_tasks` (seeded by `config.seed`).
            meta_batch_size: tasks per gradient step (without replacement).
            num_tasks_sample: tasks whose data is collected each iteration.
            num_initial_steps: env steps of every training task, z from the
                prior, before the first gradient step.
            num_steps_prior: env steps per collected task with z from the
                prior (into the replay and encoder buffers).
            num_steps_posterior: env steps with z from the posterior (both
                buffers).
            num_extra_rl_steps_posterior: env steps with z from the posterior
                into the replay buffer only.
            num_train_steps_per_iteration: gradient steps per iteration.
            embedding_batch_size: context transitions per task and gradient
                step (from the task's encoder buffer).
            latent_dim: size of z.
            context_hiddens: hidden layer sizes of the context encoder.
            kl_lambda: weight of KL(q(z|c) || N(0, I)) in the encoder loss.
            encoder_lr: the context encoder's learning rate.
            reward_scale: multiplies rewards in the critics' targets (the
                context sees them unscaled).
        """
        super().training(**kwargs)
        for name, value in locals().items():
            if name in ("self", "kwargs", "__class__") or value is NotProvided:
                continue
            setattr(self, name, value)
        return self

    @override(SACConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_maml.pearl.module import PEARLTorchRLModule

        return RLModuleSpec(module_class=PEARLTorchRLModule)

    @override(SACConfig)
    def get_default_learner_class(self):
        from rllib_maml.pearl.learner import PEARLTorchLearner

        return PEARLTorchLearner

    @property
    @override(SACConfig)
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return super()._model_config_auto_includes | {
            "latent_dim": self.latent_dim,
            "context_hiddens": list(self.context_hiddens),
        }

    @override(SACConfig)
    def validate(self) -> None:
        log_once(f"{self.algo_class.__name__}_on_new_api_stack")
        super().validate()
        require_new_api_stack(self, "PEARL")
        for name, (minimum, meaning) in INT_SETTINGS.items():
            value = getattr(self, name)
            if not is_int_at_least(value, minimum):
                self._value_error(
                    f"`{name}` must be an integer >= {minimum}, got {value!r} "
                    f"({meaning}); set `config.training({name}=...)`."
                )
        if self.meta_batch_size > self.num_train_tasks:
            self._value_error(
                f"`meta_batch_size` ({self.meta_batch_size}) is larger than "
                f"`num_train_tasks` ({self.num_train_tasks}): a gradient step "
                "draws its tasks without replacement. Lower `meta_batch_size` or "
                "raise `num_train_tasks`."
            )
        if self.num_tasks_sample > self.num_train_tasks:
            self._value_error(
                f"`num_tasks_sample` ({self.num_tasks_sample}) is larger than "
                f"`num_train_tasks` ({self.num_train_tasks}); set "
                f"`config.training(num_tasks_sample={self.num_train_tasks})` or less."
            )
        if self.num_tasks_sample and not (
            self.num_steps_prior or self.num_steps_posterior
        ):
            self._value_error(
                "`num_steps_prior` and `num_steps_posterior` are both 0: a collected "
                "task's encoder buffer is emptied each iteration and would stay "
                "empty. Set `config.training(num_steps_prior=400)` (the paper's)."
            )
        if not isinstance(self.kl_lambda, (int, float)) or self.kl_lambda < 0:
            self._value_error(
                f"`kl_lambda` must be a number >= 0, got {self.kl_lambda!r}; set "
                "`config.training(kl_lambda=0.1)` (the paper's)."
            )
        for name in ("encoder_lr", "reward_scale"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value <= 0:
                self._value_error(
                    f"`{name}` must be a number > 0, got {value!r}; set "
                    f"`config.training({name}=...)`."
                )
        if self.num_learners > 1:
            self._value_error(
                f"`num_learners` is {self.num_learners}; PEARL updates on one "
                "learner (the local one, or one remote with `num_learners=1`)."
            )
        if self.env is None:
            self._value_error(
                "`env` is not set. PEARL needs a meta env with `sample_tasks`/"
                "`set_task`; set `config.environment('rllib_maml/Navigation2D-v0')`."
            )
        from rllib_maml.pearl.env_runner import PEARLEnvRunner

        require_env_runner_cls(self, PEARLEnvRunner, "samples with z")
