"""`MAMLConfig`: the settings of MAML, their defaults and their validation."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override
from ray.util import log_once

from rllib_maml import runner_settings
from rllib_maml.envs.base import missing_task_methods

logger = logging.getLogger(__name__)

INNER_LOSSES = ("lvc", "vpg")
META_GRADIENTS = ("second_order", "first_order")
OUTER_OPTIMIZERS = ("ppo", "trpo")
ADVANTAGE_BASELINES = ("value_function", "linear")

# What `validate()` checks. Settings named `evaluation_*` are set with
# `config.evaluation(...)`, the others with `config.training(...)`.
# Integers: name -> (minimum, a valid value for the error's fix).
INT_SETTINGS: dict[str, tuple[int, int]] = {
    "meta_batch_size": (1, 20),
    "episodes_per_task": (1, 20),
    "inner_adaptation_steps": (1, 1),
    "maml_optimizer_steps": (1, 5),
    "cg_iters": (1, 10),
    "line_search_steps": (1, 15),
    "evaluation_num_tasks": (1, 20),
    "evaluation_adaptation_steps": (0, 3),
}
# The integer settings that may also be None.
OPTIONAL_SETTINGS = frozenset({"evaluation_adaptation_steps"})
# Finite numbers: name -> (low, low included, high, high included, a valid value).
FLOAT_SETTINGS: dict[str, tuple[float, bool, float, bool, float]] = {
    "inner_lr": (0.0, False, float("inf"), False, 0.1),
    "clip_param": (0.0, False, float("inf"), False, 0.3),
    "kl_target": (0.0, False, float("inf"), False, 0.01),
    "kl_coeff": (0.0, True, float("inf"), False, 0.0005),
    "vf_loss_coeff": (0.0, True, float("inf"), False, 0.5),
    "max_kl": (0.0, False, float("inf"), False, 0.01),
    "cg_damping": (0.0, True, float("inf"), False, 1e-5),
    "lambda_": (0.0, True, 1.0, True, 1.0),
    "backtrack_ratio": (0.0, False, 1.0, False, 0.8),
}
# Choices: name -> the allowed values (the first one is the error's fix).
CHOICE_SETTINGS: dict[str, tuple[str, ...]] = {
    "inner_loss": INNER_LOSSES,
    "meta_gradient": META_GRADIENTS,
    "outer_optimizer": OUTER_OPTIMIZERS,
    "advantage_baseline": ADVANTAGE_BASELINES,
}
# Switches: must be True or False.
BOOL_SETTINGS = ("batched_meta_loss", "batched_sampling", "keep_freed_memory")

# Env-runner settings that `validate()` chooses while the user has not set them
# (in a builder call, a config dict, a Tune param_space or by assignment):
# `num_envs_per_env_runner`: one sub-env per (task, episode) slot of a runner
# (`sampling_slots_per_env_runner`), at most `MAX_AUTO_ENVS_PER_ENV_RUNNER`;
# `gym_env_vectorize_mode`: "vector_entry_point" for a shipped env that steps
# its sub-envs as arrays (`has_array_vector_env`), else RLlib's "sync".
AUTO_ENV_RUNNER_SETTINGS = frozenset(
    {"num_envs_per_env_runner", "gym_env_vectorize_mode"}
)
# Attribute holding the settings of `AUTO_ENV_RUNNER_SETTINGS` not set by the user.
_AUTO_FLAG = "_auto_env_runner_settings"


class MAMLConfig(AlgorithmConfig):
    """Configuration of the MAML algorithm (ProMP-style meta-update).

    Example:
        .. code-block:: python

            import rllib_maml  # registers the shipped meta envs
            from rllib_maml import MAMLConfig

            config = (
                MAMLConfig()
                .environment("rllib_maml/Navigation2D-v0")
                .env_runners(num_env_runners=2)
                .training(meta_batch_size=20, episodes_per_task=20, inner_lr=0.1)
            )
            algo = config.build_algo()
            print(algo.train()["adaptation_delta"])

    Fast by default: unless you set them, `validate()` gives every env runner
    one sub-env per (task, episode) slot it samples per adaptation step
    (`num_envs_per_env_runner`, at most 256) and steps Navigation2D's sub-envs
    as arrays (`gym_env_vectorize_mode="vector_entry_point"`). Values you set
    with `config.env_runners(...)`, in a config dict or a Tune param_space win.
    """

    def __init__(self, algo_class: type | None = None):
        if algo_class is None:
            from rllib_maml.maml import MAML as algo_class
        super().__init__(algo_class=algo_class)
        from rllib_maml.env_runner import MAMLEnvRunner

        # Samples several tasks per call, each with its own parameters.
        self.env_runner_cls = MAMLEnvRunner
        # Defaults of rllib-contrib's MAML and the ProMP paper.
        self.meta_batch_size = 20
        self.episodes_per_task = 20
        self.inner_adaptation_steps = 1
        self.inner_lr = 0.1
        self.inner_loss = "lvc"
        self.meta_gradient = "second_order"
        self.maml_optimizer_steps = 5
        self.clip_param = 0.3
        self.kl_coeff = 0.0005
        self.kl_target = 0.01
        self.vf_loss_coeff = 0.5
        self.lambda_ = 1.0
        # The MAML and ProMP code fit a linear baseline per task and step.
        self.advantage_baseline = "linear"
        # Outer optimizer: ProMP's clipped objective, or TRPO as in the MAML
        # paper (trust-region settings of pytorch-maml-rl / the MAML code).
        self.outer_optimizer = "ppo"
        self.max_kl = 0.01
        self.cg_iters = 10
        self.cg_damping = 1e-5
        self.line_search_steps = 15
        self.backtrack_ratio = 0.8
        # One vmap-ed pass over all tasks (True) or a Python loop over tasks.
        self.batched_meta_loss = True
        self.batched_sampling = True
        # The learner's process keeps freed memory for reuse (`allocator`).
        self.keep_freed_memory = True
        self.lr = 1e-3
        self.gamma = 0.99
        self.num_env_runners = 2
        # Every task samples whole episodes.
        self.batch_mode = "complete_episodes"
        # `algo.evaluate()` (and `evaluation_interval`): adapt to held-out tasks.
        self.evaluation_num_tasks = 20
        self.evaluation_adaptation_steps = None  # None: `inner_adaptation_steps`
        # `num_envs_per_env_runner` and `gym_env_vectorize_mode`: chosen by
        # `validate()` until the user sets them (`AUTO_ENV_RUNNER_SETTINGS`).
        self._auto_env_runner_settings = AUTO_ENV_RUNNER_SETTINGS

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        meta_batch_size: int | None = NotProvided,
        episodes_per_task: int | None = NotProvided,
        inner_adaptation_steps: int | None = NotProvided,
        inner_lr: float | None = NotProvided,
        inner_loss: str | None = NotProvided,
        meta_gradient: str | None = NotProvided,
        maml_optimizer_steps: int | None = NotProvided,
        clip_param: float | None = NotProvided,
        kl_coeff: float | None = NotProvided,
        kl_target: float | None = NotProvided,
        vf_loss_coeff: float | None = NotProvided,
        lambda_: float | None = NotProvided,
        advantage_baseline: str | None = NotProvided,
        outer_optimizer: str | None = NotProvided,
        max_kl: float | None = NotProvided,
        cg_iters: int | None = NotProvided,
        cg_damping: float | None = NotProvided,
        line_search_steps: int | None = NotProvided,
        backtrack_ratio: float | None = NotProvided,
        batched_meta_loss: bool | None = NotProvided,
        batched_sampling: bool | None = NotProvided,
        keep_freed_memory: bool | None = NotProvided,
        **kwargs,
    ) -> MAMLConfig:
        """Sets the training-related configuration.

        Args:
            meta_batch_size: Tasks sampled per meta-iteration. Independent of the
                number of env runners: tasks are spread over the runners.
            episodes_per_task: Episodes sampled per task at every adaptation step.
            inner_adaptation_steps: Inner policy-gradient steps per task (K).
            inner_lr: Step size of the inner policy-gradient steps.
            inner_loss: Inner objective: "lvc" (ProMP's low-variance curvature
                estimator, the likelihood ratio to the sampling policy) or "vpg"
                (plain log-likelihood times advantage).
            meta_gradient: "second_order" differentiates through the inner steps
                (exact MAML); "first_order" treats the inner gradients as
                constants (FOMAML).
            maml_optimizer_steps: Optimizer steps of the meta-update per
                iteration, all on the same data (ProMP).
            clip_param: PPO clip parameter of the meta-objective's surrogate.
            kl_coeff: Initial coefficient of the inner-KL penalty (one per
                inner step, each adapted towards `kl_target`).
            kl_target: Target inner KL. A coefficient halves when its KL is
                below `kl_target / 1.5` and doubles above `1.5 * kl_target`.
            vf_loss_coeff: Weight of the value-function loss.
            lambda_: GAE lambda of the advantages (1.0: Monte-Carlo returns
                minus the value baseline).
            advantage_baseline: Baseline of the advantages: "linear" (a linear
                feature baseline fitted to each task's episodes at each
                adaptation step, as in the MAML and ProMP code; it knows the
                task through its returns) or "value_function" (the module's
                value function, meta-learned with `vf_loss_coeff`; it sees only
                the observation, which usually does not show the task).
            outer_optimizer: "ppo" (ProMP: clipped surrogate plus inner-KL
                penalty, `maml_optimizer_steps` Adam steps) or "trpo" (MAML
                paper: one natural-gradient step in a KL trust region through
                the inner steps; the value function still takes Adam steps).
            max_kl: TRPO trust-region size (KL of the adapted policies).
            cg_iters: TRPO conjugate-gradient iterations.
            cg_damping: TRPO damping added to the Fisher-vector product.
            line_search_steps: TRPO backtracking line-search tries.
            backtrack_ratio: TRPO step shrink factor per line-search try.
            batched_meta_loss: Compute the meta-objective for all tasks in one
                `torch.func.vmap` pass (True) or in a loop over tasks (False).
            batched_sampling: Sample all of a runner's (task, episode) slots
                on its `num_envs_per_env_runner` sub-envs, one episode per
                sub-env at a time and one batched forward pass with each
                task's own weights per step (True); or each task in turn with RLlib's
                `EnvRunner.sample()` (False, also used where batching cannot
                run: an `AsyncVectorEnv`, custom connectors or episode
                callbacks, a stateful module).
            keep_freed_memory: The learner's process keeps freed heap memory
                for reuse instead of returning it to the OS (glibc's mallopt;
                `rllib_maml.allocator`): the meta-update runs about a fifth
                faster, and the process's resident memory stays at its peak.
                False: glibc's defaults.
            **kwargs: Forwarded to `AlgorithmConfig.training()` (lr, gamma,
                grad_clip, ...).

        Returns:
            This updated MAMLConfig object.
        """
        super().training(**kwargs)
        for name, value in (
            ("meta_batch_size", meta_batch_size),
            ("episodes_per_task", episodes_per_task),
            ("inner_adaptation_steps", inner_adaptation_steps),
            ("inner_lr", inner_lr),
            ("inner_loss", inner_loss),
            ("meta_gradient", meta_gradient),
            ("maml_optimizer_steps", maml_optimizer_steps),
            ("clip_param", clip_param),
            ("kl_coeff", kl_coeff),
            ("kl_target", kl_target),
            ("vf_loss_coeff", vf_loss_coeff),
            ("lambda_", lambda_),
            ("advantage_baseline", advantage_baseline),
            ("outer_optimizer", outer_optimizer),
            ("max_kl", max_kl),
            ("cg_iters", cg_iters),
            ("cg_damping", cg_damping),
            ("line_search_steps", line_search_steps),
            ("backtrack_ratio", backtrack_ratio),
            ("batched_meta_loss", batched_meta_loss),
            ("batched_sampling", batched_sampling),
            ("keep_freed_memory", keep_freed_memory),
        ):
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    @override(AlgorithmConfig)
    def evaluation(
        self,
        *,
        evaluation_num_tasks: int | None = NotProvided,
        evaluation_adaptation_steps: int | None = NotProvided,
        **kwargs,
    ) -> MAMLConfig:
        """Sets the evaluation settings.

        `algo.evaluate()` (run every `evaluation_interval` iterations if set)
        adapts the meta-policy to held-out tasks exactly as in training and
        reports the returns after 0..N inner steps (see
        `rllib_maml.evaluation`). The other arguments are RLlib's.

        Args:
            evaluation_num_tasks: held-out tasks per evaluation.
            evaluation_adaptation_steps: inner steps per held-out task (N);
                None: `inner_adaptation_steps`.

        Returns:
            This updated MAMLConfig object.
        """
        super().evaluation(**kwargs)
        if evaluation_num_tasks is not NotProvided:
            self.evaluation_num_tasks = evaluation_num_tasks
        if evaluation_adaptation_steps is not NotProvided:
            self.evaluation_adaptation_steps = evaluation_adaptation_steps
        return self

    @property
    @override(AlgorithmConfig)
    def _model_config_auto_includes(self) -> dict[str, Any]:
        # The field's policy (64, 64) tanh MLP with a separate value network;
        # keys the user sets in `config.rl_module(model_config=...)` win.
        return {
            **super()._model_config_auto_includes,
            "fcnet_hiddens": [64, 64],
            "fcnet_activation": "tanh",
            "vf_share_layers": False,
        }

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_maml.module import MAMLTorchRLModule

        return RLModuleSpec(module_class=MAMLTorchRLModule)

    @override(AlgorithmConfig)
    def get_default_learner_class(self) -> type | str:
        from rllib_maml.learner import MAMLTorchLearner

        return MAMLTorchLearner

    @override(AlgorithmConfig)
    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, value)
        self._mark_set_by_user(key)

    @override(AlgorithmConfig)
    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._mark_set_by_user(key)

    def _mark_set_by_user(self, key: str) -> None:
        # Every way of setting a value ends here: `env_runners(...)`,
        # `update_from_dict` (`from_dict`, Tune's trial configs, evaluation
        # overrides) and plain assignment. `AlgorithmConfig.__init__` sets the
        # RLlib defaults before the flag exists, so they do not count.
        auto = self.__dict__.get(_AUTO_FLAG)
        if auto and key in auto:
            self.__dict__[_AUTO_FLAG] = auto - {key}

    def _set_automatically(self, key: str, value: Any) -> None:
        AlgorithmConfig.__setattr__(self, key, value)

    @override(AlgorithmConfig)
    def to_dict(self) -> dict[str, Any]:
        # A setting MAML chooses is left out, so that a config built from the
        # dict (`from_dict`, a Tune trial's config) chooses it again for its
        # own settings, while a value the user put into the dict counts as set.
        config = super().to_dict()
        for key in config.pop(_AUTO_FLAG, ()):
            config.pop(key, None)
        return config

    @classmethod
    @override(AlgorithmConfig)
    def from_state(cls, state: dict[str, Any]) -> MAMLConfig:
        config = super().from_state(state)
        if _AUTO_FLAG not in state:
            # Saved before MAML chose env-runner settings: keep the saved ones.
            config.__dict__[_AUTO_FLAG] = frozenset()
        return config

    @override(AlgorithmConfig)
    def validate(self) -> None:
        if self.framework_str != "torch":
            self._value_error(
                f"`framework` must be 'torch', got {self.framework_str!r}. "
                "rllib_maml's learner differentiates through the inner steps with "
                "torch; set `config.framework('torch')`."
            )
        if self.algo_class is not None:
            # RLlib logs once per process "You are running MAML on the new API
            # stack! ... If you don't want to use the new API stack, set
            # `config.api_stack(...=False)`" (`_validate_new_api_stack_settings`).
            # MAML has no old-stack version, so mark that advice as given.
            log_once(f"{self.algo_class.__name__}_on_new_api_stack")
        super().validate()
        require_new_api_stack(self, "MAML")
        if self.is_multi_agent:
            self._value_error(
                "MAML supports single-agent envs only, but the config is multi-agent. "
                "Remove `config.multi_agent(...)`."
            )
        if self.num_learners > 1 and self.meta_batch_size < self.num_learners:
            self._value_error(
                f"`meta_batch_size` ({self.meta_batch_size}) is smaller than "
                f"`num_learners` ({self.num_learners}): each learner meta-updates "
                "on its share of a meta-batch's tasks, so every learner needs at "
                f"least one. Set `meta_batch_size >= {self.num_learners}` or fewer "
                "learners."
            )
        if self.num_learners > 1 and 0 < self.num_gpus_per_learner < 1:
            self._value_error(
                f"`num_gpus_per_learner` ({self.num_gpus_per_learner}) is a fraction "
                f"with `num_learners` ({self.num_learners}): the learners sum their "
                "gradients over NCCL, which takes one whole GPU per learner. Set "
                "`num_gpus_per_learner=1`, or 0 for CPU learners."
            )
        if self.env is None:
            self._value_error(
                "`env` is not set. MAML needs a meta env with `sample_tasks`/"
                "`set_task`; set `config.environment('rllib_maml/Navigation2D-v0')` "
                "or a name you registered with `tune.register_env`."
            )
        if isinstance(self.env, type):
            missing = missing_task_methods(self.env)
            if missing:
                self._value_error(
                    f"`env` {self.env.__name__} lacks the meta-env task API: missing "
                    f"{', '.join(f'`{m}`' for m in missing)}. Subclass "
                    "`rllib_maml.MetaEnv` or add these methods."
                )
        from rllib_maml.env_runner import MAMLEnvRunner

        require_env_runner_cls(
            self, MAMLEnvRunner, "samples several tasks per call (`sample_tasks`)"
        )
        if self.batch_mode != "complete_episodes":
            self._value_error(
                f"`batch_mode` must be 'complete_episodes', got {self.batch_mode!r}. "
                "MAML samples whole episodes per task and adaptation step; remove "
                "`batch_mode` from `config.env_runners(...)`."
            )
        if self.evaluation_parallel_to_training:
            self._value_error(
                "`evaluation_parallel_to_training=True` is not supported: MAML's "
                "evaluation adapts on the learner, between training iterations. "
                "Set `config.evaluation(evaluation_parallel_to_training=False)`."
            )
        self._validate_setting_tables()
        self._validate_initial_action_std()
        self._choose_env_runner_settings()
        self._warn_if_sampling_is_slow()

    def _validate_setting_tables(self) -> None:
        for name, (minimum, example) in INT_SETTINGS.items():
            value = getattr(self, name)
            if value is None and name in OPTIONAL_SETTINGS:
                continue
            if not is_int_at_least(value, minimum):
                allowed = "an integer"
                if name in OPTIONAL_SETTINGS:
                    allowed = "None or an integer"
                self._value_error(
                    f"`{name}` must be {allowed} >= {minimum}, got {value!r}. Set "
                    f"`{_builder(name)}({name}={example!r})`."
                )
        for name, (low, low_in, high, high_in, example) in FLOAT_SETTINGS.items():
            value = getattr(self, name)
            ok = (
                isinstance(value, (int, float, np.integer, np.floating))
                and not isinstance(value, (bool, np.bool_))
                and np.isfinite(value)
                and (value >= low if low_in else value > low)
                and (value <= high if high_in else value < high)
            )
            if not ok:
                if high == float("inf"):
                    bound = f"a finite number {'>=' if low_in else '>'} {low:g}"
                else:
                    bound = (
                        f"in {'[' if low_in else '('}{low:g}, {high:g}"
                        f"{']' if high_in else ')'}"
                    )
                self._value_error(
                    f"`{name}` must be {bound}, got {value!r}. Set "
                    f"`{_builder(name)}({name}={example!r})`."
                )
        for name, choices in CHOICE_SETTINGS.items():
            value = getattr(self, name)
            if value not in choices:
                self._value_error(
                    f"`{name}` must be one of {choices}, got {value!r}. Set "
                    f"`{_builder(name)}({name}={choices[0]!r})`."
                )
        for name in BOOL_SETTINGS:
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                self._value_error(
                    f"`{name}` must be True or False, got {value!r}. Set "
                    f"`{_builder(name)}({name}=True)`."
                )

    def _validate_initial_action_std(self) -> None:
        from rllib_maml.module import INITIAL_ACTION_STD_KEY

        std = self.model_config.get(INITIAL_ACTION_STD_KEY)
        if std is not None and not (
            isinstance(std, (int, float))
            and not isinstance(std, bool)
            and 0 < std < float("inf")
        ):
            self._value_error(
                f"`model_config['{INITIAL_ACTION_STD_KEY}']` must be a positive "
                f"number (the policy's action std at initialization), got {std!r}. "
                "Set e.g. `config.rl_module(model_config="
                f"{{'{INITIAL_ACTION_STD_KEY}': 0.5}})`, or remove the key for "
                "RLlib's initialization."
            )

    def _choose_env_runner_settings(self) -> None:
        """Sets the env-runner settings the user left to MAML (see
        `AUTO_ENV_RUNNER_SETTINGS`) for the current env and training settings."""
        auto = getattr(self, _AUTO_FLAG, frozenset())
        if self._is_frozen or not auto:
            return
        if "gym_env_vectorize_mode" in auto:
            self._set_automatically(
                "gym_env_vectorize_mode",
                "vector_entry_point"
                if runner_settings.has_array_vector_env(self.env)
                else "sync",
            )
        if "num_envs_per_env_runner" in auto and self._slot_settings_valid():
            self._set_automatically(
                "num_envs_per_env_runner",
                runner_settings.auto_envs_per_env_runner(self),
            )

    def _slot_settings_valid(self) -> bool:
        # False only where `experimental(_validate_config=False)` let a bad
        # value through: then MAML chooses nothing and does not warn.
        return all(
            is_int_at_least(getattr(self, name), 1)
            for name in ("meta_batch_size", "episodes_per_task", "evaluation_num_tasks")
        )

    def _warn_if_sampling_is_slow(self) -> None:
        auto = getattr(self, _AUTO_FLAG, frozenset())
        if (
            "num_envs_per_env_runner" in auto
            or self.in_evaluation
            or not is_int_at_least(self.num_envs_per_env_runner, 1)
            or not self._slot_settings_valid()
        ):
            return
        runner_settings.warn_if_few_envs(self)


def require_new_api_stack(config: AlgorithmConfig, name: str) -> None:
    """`config._value_error` unless both of RLlib's new-API-stack flags are on
    (`name`: the algorithm, which has no old-stack version)."""
    if not (
        config.enable_rl_module_and_learner
        and config.enable_env_runner_and_connector_v2
    ):
        config._value_error(
            f"{name} runs on RLlib's new API stack only, but it is disabled. Remove "
            "`config.api_stack(...)` or set both its flags to True."
        )


def require_env_runner_cls(config: AlgorithmConfig, cls: type, does: str) -> None:
    """`config._value_error` unless `config.env_runner_cls` is `cls` or a
    subclass (`does`: what that runner does for the algorithm)."""
    given = config.env_runner_cls
    if not (isinstance(given, type) and issubclass(given, cls)):
        config._value_error(
            f"`env_runner_cls` must be `{cls.__name__}` or a subclass of it, got "
            f"{given!r}; it {does}. Subclass `{cls.__module__}.{cls.__name__}` or "
            "remove the setting."
        )


def is_int_at_least(value: Any, minimum: int) -> bool:
    return (
        isinstance(value, (int, np.integer))
        and not isinstance(value, bool)
        and value >= minimum
    )


def _builder(name: str) -> str:
    """The `config.<builder>` call that sets the MAML setting `name`."""
    if name.startswith("evaluation_"):
        return "config.evaluation"
    return "config.training"


def check_local_learner_device(config: MAMLConfig) -> None:
    """Refuses a GPU for the local learner where torch sees none.

    Checked where the algorithm runs (not in `validate()`, which Tune also
    calls on a driver that may have no GPU while the trial's node has one).
    A remote learner (`num_learners=1`) is placed by Ray on a node with the GPU.
    """
    import torch

    if (
        config.num_learners == 0
        and config.num_gpus_per_learner > 0
        and not torch.cuda.is_available()
    ):
        raise ValueError(
            f"`num_gpus_per_learner={config.num_gpus_per_learner}` asks for a GPU "
            "for the local learner (`num_learners=0`), but torch sees no CUDA GPU "
            f"in this process (torch {torch.__version__}). Set "
            "`config.learners(num_gpus_per_learner=0)` to learn on the CPU, or run "
            "where a GPU is visible."
        )
