"""MAML on RLlib's new API stack: `MAMLConfig` and the `MAML` algorithm.

One training iteration (`MAML.training_step`):

1) Sample `meta_batch_size` tasks from the env's task distribution.
2) For adaptation step k = 0..K: every task samples `episodes_per_task`
   episodes on the env runners with its current parameters (the meta-policy at
   k = 0, its adapted policy after that); the learner stores the data and, for
   k < K, takes one inner policy-gradient step per task.
3) Meta-update: `maml_optimizer_steps` optimizer steps on the ProMP objective
   (clipped surrogate on post-adaptation data through the replayed inner steps,
   plus the adaptive inner-KL penalty, plus the value loss).
4) Sync the new meta-policy to the env runners.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import numpy as np
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.env_context import EnvContext
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    EPISODE_LEN_MEAN,
    EPISODE_RETURN_MAX,
    EPISODE_RETURN_MEAN,
    EPISODE_RETURN_MIN,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from rllib_maml.envs.base import (
    check_meta_env,
    check_meta_env_spaces,
    find_non_finite,
    missing_task_methods,
    sample_tasks_checked,
)

logger = logging.getLogger(__name__)

# Result keys (top level and under `result["env_runners"]`).
ADAPTATION_DELTA = "adaptation_delta"
NUM_TASKS = "num_tasks"
# Timers under `result["timers"]`.
INNER_ADAPTATION_TIMER = "inner_adaptation"
# This iteration's wall-clock seconds per phase, under
# `result["timers"]["iteration_seconds"]`: `sampling_step_<k>`,
# `inner_adaptation`, `meta_update`, `weight_sync` (RLlib's timers above are
# moving averages).
ITERATION_SECONDS = "iteration_seconds"
# Learner result keys (under `result["learners"]["default_policy"]`); the
# per-step ones get a `_<k>` suffix.
LEARNER_RESULTS_META_LOSS_KEY = "meta_loss"
LEARNER_RESULTS_POLICY_LOSS_KEY = "policy_loss"
LEARNER_RESULTS_VF_LOSS_KEY = "vf_loss"
LEARNER_RESULTS_NUM_TASKS_KEY = "num_tasks"
LEARNER_RESULTS_INNER_KL_KEY = "inner_kl"
LEARNER_RESULTS_INNER_KL_COEFF_KEY = "inner_kl_coeff"
LEARNER_RESULTS_INNER_LOSS_KEY = "inner_loss"

INNER_LOSSES = ("lvc", "vpg")
META_GRADIENTS = ("second_order", "first_order")
OUTER_OPTIMIZERS = ("ppo", "trpo")
ADVANTAGE_BASELINES = ("value_function", "linear")


def episode_return_mean_adapt_key(step: int) -> str:
    """Result key (under `env_runners`) of the mean return after `step` inner steps."""
    return f"{EPISODE_RETURN_MEAN}_adapt_{step}"


def sampling_timer_key(step: int) -> str:
    """Timer key (under `timers`) of sampling at adaptation step `step`."""
    return f"{ENV_RUNNER_SAMPLING_TIMER}_step_{step}"


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
    """

    def __init__(self, algo_class: type | None = None):
        super().__init__(algo_class=algo_class or MAML)
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
        self.lr = 1e-3
        self.gamma = 0.99
        self.num_env_runners = 2
        # Every task samples whole episodes.
        self.batch_mode = "complete_episodes"
        # `algo.evaluate()` (and `evaluation_interval`): adapt to held-out tasks.
        self.evaluation_num_tasks = 20
        self.evaluation_adaptation_steps = None  # None: `inner_adaptation_steps`

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
    def validate(self) -> None:
        if self.framework_str != "torch":
            self._value_error(
                f"`framework` must be 'torch', got {self.framework_str!r}. "
                "rllib_maml's learner differentiates through the inner steps with "
                "torch; set `config.framework('torch')`."
            )
        super().validate()
        if not (
            self.enable_rl_module_and_learner
            and self.enable_env_runner_and_connector_v2
        ):
            self._value_error(
                "MAML runs on RLlib's new API stack only, but it is disabled. Remove "
                "`config.api_stack(...)` or set both its flags to True."
            )
        if self.is_multi_agent:
            self._value_error(
                "MAML supports single-agent envs only, but the config is multi-agent. "
                "Remove `config.multi_agent(...)`."
            )
        if self.num_learners > 1:
            self._value_error(
                f"`num_learners` must be 0 or 1, got {self.num_learners}. The "
                "meta-update runs on one learner; set `config.learners(num_learners=0)`"
                " (local) or 1 (e.g. with `num_gpus_per_learner=1`)."
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
        if self.batch_mode != "complete_episodes":
            self._value_error(
                f"`batch_mode` must be 'complete_episodes', got {self.batch_mode!r}. "
                "MAML samples whole episodes per task and adaptation step; remove "
                "`batch_mode` from `config.env_runners(...)`."
            )
        self._validate_maml_training_settings()
        self._validate_initial_action_std()

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

    def _validate_maml_training_settings(self) -> None:
        for name, fix_value in (
            ("meta_batch_size", 20),
            ("episodes_per_task", 20),
            ("inner_adaptation_steps", 1),
            ("maml_optimizer_steps", 5),
            ("cg_iters", 10),
            ("line_search_steps", 15),
        ):
            value = getattr(self, name)
            if (
                not isinstance(value, (int, np.integer))
                or isinstance(value, bool)
                or (value < 1)
            ):
                self._value_error(
                    f"`{name}` must be an integer >= 1, got {value!r}. Set "
                    f"`config.training({name}={fix_value})`."
                )
        for name, fix_value, low, low_ok in (
            ("inner_lr", 0.1, 0.0, False),
            ("clip_param", 0.3, 0.0, False),
            ("kl_target", 0.01, 0.0, False),
            ("kl_coeff", 0.0005, 0.0, True),
            ("vf_loss_coeff", 0.5, 0.0, True),
            ("max_kl", 0.01, 0.0, False),
            ("cg_damping", 1e-5, 0.0, True),
        ):
            value = getattr(self, name)
            ok = isinstance(value, (int, float, np.floating)) and (
                value >= low if low_ok else value > low
            )
            if not ok or not np.isfinite(value):
                bound = ">= 0" if low_ok else "> 0"
                self._value_error(
                    f"`{name}` must be a finite number {bound}, got {value!r}. Set "
                    f"`config.training({name}={fix_value})`."
                )
        steps = self.evaluation_adaptation_steps
        if steps is not None and (
            not isinstance(steps, (int, np.integer))
            or isinstance(steps, bool)
            or steps < 0
        ):
            self._value_error(
                f"`evaluation_adaptation_steps` must be None or an integer >= 0, got "
                f"{steps!r}. Set `config.evaluation(evaluation_adaptation_steps=3)`."
            )
        tasks = self.evaluation_num_tasks
        if (
            not isinstance(tasks, (int, np.integer))
            or isinstance(tasks, bool)
            or (tasks < 1)
        ):
            self._value_error(
                f"`evaluation_num_tasks` must be an integer >= 1, got {tasks!r}. Set "
                "`config.evaluation(evaluation_num_tasks=20)`."
            )
        if self.evaluation_parallel_to_training:
            self._value_error(
                "`evaluation_parallel_to_training=True` is not supported: MAML's "
                "evaluation adapts on the learner, between training iterations. "
                "Set `config.evaluation(evaluation_parallel_to_training=False)`."
            )
        if not 0.0 <= self.lambda_ <= 1.0:
            self._value_error(
                f"`lambda_` must be in [0, 1], got {self.lambda_!r}. Set "
                "`config.training(lambda_=1.0)`."
            )
        if not 0.0 < self.backtrack_ratio < 1.0:
            self._value_error(
                f"`backtrack_ratio` must be in (0, 1), got {self.backtrack_ratio!r}. "
                "Set `config.training(backtrack_ratio=0.8)`."
            )
        if self.outer_optimizer not in OUTER_OPTIMIZERS:
            self._value_error(
                f"`outer_optimizer` must be one of {OUTER_OPTIMIZERS}, got "
                f"{self.outer_optimizer!r}. Set "
                "`config.training(outer_optimizer='ppo')`."
            )
        if self.advantage_baseline not in ADVANTAGE_BASELINES:
            self._value_error(
                f"`advantage_baseline` must be one of {ADVANTAGE_BASELINES}, got "
                f"{self.advantage_baseline!r}. Set "
                "`config.training(advantage_baseline='value_function')`."
            )
        if self.inner_loss not in INNER_LOSSES:
            self._value_error(
                f"`inner_loss` must be one of {INNER_LOSSES}, got {self.inner_loss!r}."
                " Set `config.training(inner_loss='lvc')`."
            )
        if self.meta_gradient not in META_GRADIENTS:
            self._value_error(
                f"`meta_gradient` must be one of {META_GRADIENTS}, got "
                f"{self.meta_gradient!r}. Set "
                "`config.training(meta_gradient='second_order')`."
            )


class PhaseClock:
    """Adds up wall-clock seconds per named phase: `with clock("phase"): ...`."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[phase] = self.seconds.get(phase, 0.0) + elapsed


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


class MAML(Algorithm):
    """Model-Agnostic Meta-Learning (Finn et al. 2017) with ProMP's meta-objective.

    Result keys per iteration: `env_runners/episode_return_mean` (before
    adaptation), `env_runners/episode_return_mean_adapt_<k>` (after k inner
    steps), `adaptation_delta` (after K steps minus before), `num_tasks`, and
    the learner's `meta_loss`, `inner_kl_<k>`, `inner_kl_coeff_<k>` under
    `learners/default_policy`.
    """

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> MAMLConfig:
        return MAMLConfig()

    @override(Algorithm)
    def setup(self, config: MAMLConfig) -> None:
        check_local_learner_device(config)
        # The driver's own env instance samples the tasks. Check the task API
        # before any env runner starts.
        self.task_env = self.env_creator(EnvContext(config.env_config, worker_index=0))
        check_meta_env(self.task_env, config.env)
        check_meta_env_spaces(self.task_env, config.env)
        if config.seed is not None:
            self.task_env.reset(seed=config.seed)
        num_envs, episodes = config.num_envs_per_env_runner, config.episodes_per_task
        runners = max(config.num_env_runners, 1)
        slots = -(-config.meta_batch_size // runners) * episodes
        if config.batched_sampling and num_envs > slots:
            logger.warning(
                "`num_envs_per_env_runner` (%d) is larger than the %d (task, "
                "episode) slots a runner samples per adaptation step: the other "
                "envs step unused. Set `config.env_runners("
                "num_envs_per_env_runner=%d)`.",
                num_envs,
                slots,
                slots,
            )
        elif not config.batched_sampling and num_envs > episodes:
            logger.warning(
                "`num_envs_per_env_runner` (%d) is larger than `episodes_per_task` "
                "(%d): every task steps all %d envs and keeps only the first %d "
                "episodes to finish. Set `config.env_runners("
                "num_envs_per_env_runner=%d)` or fewer, or "
                "`config.training(batched_sampling=True)`.",
                num_envs,
                episodes,
                num_envs,
                episodes,
                episodes,
            )
        super().setup(config)

    @override(Algorithm)
    def training_step(self) -> None:
        from rllib_maml.sampling import sample_episodes_per_task

        config = self.config
        num_steps = config.inner_adaptation_steps

        # 1) Sample this iteration's tasks.
        tasks = sample_tasks_checked(self.task_env, config.meta_batch_size, config.env)

        # 2) Sample every task at each adaptation step with its current
        #    parameters; adapt after each step but the last.
        clock = PhaseClock()
        with (
            self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)),
            clock("weight_sync"),
        ):
            meta_weights = self._call_learner(
                lambda learner: learner.inference_weights()
            )
        weights_by_task = {i: meta_weights for i in range(len(tasks))}
        step_returns = []
        for step in range(num_steps + 1):
            with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
                with (
                    self.metrics.log_time((TIMERS, sampling_timer_key(step))),
                    clock(f"sampling_step_{step}"),
                ):
                    episodes_by_task, runner_metrics = sample_episodes_per_task(
                        self.env_runner_group,
                        tasks=tasks,
                        weights_by_task=weights_by_task,
                        num_episodes=config.episodes_per_task,
                        batched=config.batched_sampling,
                        fault_tolerant=(
                            config.restart_failed_env_runners
                            or config.ignore_env_runner_failures
                        ),
                    )
            self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)
            bad = find_non_finite(episodes_by_task)
            if bad is not None:
                task_index, what = bad
                raise ValueError(
                    f"Env {config.env!r} returned a non-finite {what} for task "
                    f"{tasks[task_index]!r} (task index {task_index}, adaptation "
                    f"step {step}). No update was made; fix the env or its task "
                    "range."
                )
            step_returns.append(self._log_episode_returns(step, episodes_by_task))
            with (
                self.metrics.log_time((TIMERS, INNER_ADAPTATION_TIMER)),
                clock("inner_adaptation"),
            ):
                weights_by_task = self._call_learner(
                    lambda learner, s=step, e=episodes_by_task: (
                        learner.add_adaptation_data(step=s, episodes_by_task=e)
                    )
                )
        self.metrics.log_value(
            ADAPTATION_DELTA, step_returns[-1] - step_returns[0], window=1
        )
        self.metrics.log_value(NUM_TASKS, len(tasks), window=1)

        # 3) Meta-update on the learner.
        with (
            self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)),
            clock("meta_update"),
        ):
            timesteps = {
                NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                    (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0
                )
            }
            learner_results = self._call_learner(
                lambda learner: learner.meta_update(timesteps=timesteps)
            )
            self.metrics.aggregate([learner_results], key=LEARNER_RESULTS)

        # 4) The env runners sample the next iteration's step 0 with the new
        #    meta-policy, sent with that call; keep their own state current too
        #    (evaluation, checkpoints, restored runners read it).
        with (
            self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)),
            clock("weight_sync"),
        ):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group, inference_only=True
            )
        for phase, seconds in clock.seconds.items():
            self.metrics.log_value(
                (TIMERS, ITERATION_SECONDS, phase), seconds, window=1
            )

    @override(Algorithm)
    def evaluate(self, parallel_train_future=None) -> dict:
        """Adapts the meta-policy to held-out tasks, as in training.

        Samples `evaluation_num_tasks` held-out tasks (seeded by `config.seed`,
        apart from training's draws) and reports, under the training result
        keys, the mean return after 0..N inner steps
        (`evaluation_adaptation_steps`). Uses the evaluation env runners if
        there are any, else the training ones. For baselines, tables and plots
        see `rllib_maml.evaluation.evaluate_with_baselines`.
        """
        from rllib_maml.evaluation import adaptation_returns, heldout_tasks

        config = self.config
        num_steps = config.evaluation_adaptation_steps
        if num_steps is None:
            num_steps = config.inner_adaptation_steps
        seed = config.seed if config.seed is not None else 0
        group = self.env_runner_group
        if self.eval_env_runner_group is not None and (
            self.eval_env_runner_group.num_healthy_remote_env_runners() > 0
        ):
            group = self.eval_env_runner_group
        tasks = heldout_tasks(self, config.evaluation_num_tasks, seed)
        returns = adaptation_returns(
            self,
            tasks=tasks,
            num_steps=num_steps,
            episodes_per_task=config.episodes_per_task,
            seed=seed,
            env_runner_group=group,
        ).mean(axis=0)
        runner_results = {EPISODE_RETURN_MEAN: float(returns[0])}
        for step in range(1, num_steps + 1):
            runner_results[episode_return_mean_adapt_key(step)] = float(returns[step])
        return {
            ENV_RUNNER_RESULTS: runner_results,
            ADAPTATION_DELTA: float(returns[-1] - returns[0]),
            NUM_TASKS: len(tasks),
        }

    @override(Algorithm)
    def restore_from_path(self, path, *args, **kwargs) -> None:
        try:
            super().restore_from_path(path, *args, **kwargs)
        except RuntimeError as e:
            if "size mismatch" not in str(e) and "Missing key" not in str(e):
                raise
            raise ValueError(
                f"The checkpoint at {path} holds RLModule weights that do not fit "
                "this config's network (model_config "
                f"{self.config.model_config}). Restore it with the "
                "`config.rl_module(model_config=...)` it was trained with, or use "
                "`MAML.from_checkpoint(path)`, which reads the config from the "
                f"checkpoint. Cause: {str(e).splitlines()[0]}"
            ) from e

    @override(Algorithm)
    def cleanup(self) -> None:
        super().cleanup()
        self.task_env.close()

    def _call_learner(self, func) -> Any:
        """Runs `func(learner)` on the (single) learner and returns its result."""
        results = list(self.learner_group.foreach_learner(func))
        if not results:
            raise RuntimeError("No healthy learner answered the MAML learner call.")
        for result in results:
            if not result.ok:
                raise result.get()
        return results[0].get()

    def _log_episode_returns(self, step: int, episodes_by_task: dict) -> float:
        returns = [ep.get_return() for eps in episodes_by_task.values() for ep in eps]
        mean_return = float(np.mean(returns))
        if step == 0:
            lengths = [len(ep) for eps in episodes_by_task.values() for ep in eps]
            for key, value in (
                (EPISODE_RETURN_MEAN, mean_return),
                (EPISODE_RETURN_MIN, float(np.min(returns))),
                (EPISODE_RETURN_MAX, float(np.max(returns))),
                (EPISODE_LEN_MEAN, float(np.mean(lengths))),
            ):
                self.metrics.log_value((ENV_RUNNER_RESULTS, key), value, window=1)
        else:
            self.metrics.log_value(
                (ENV_RUNNER_RESULTS, episode_return_mean_adapt_key(step)),
                mean_return,
                window=1,
            )
        return mean_return
