"""MAML on RLlib's new API stack: `MAMLConfig` and the `MAML` algorithm.

One training iteration (`MAML.training_step`):

1) Sample `meta_batch_size` tasks from the env's task distribution.
2) For adaptation step k = 0..K: every task samples `episodes_per_task`
   episodes on the env runners with its current parameters (the meta-policy at
   k = 0, its adapted policy after that); the learner stores the data and, for
   k < K, takes one inner policy-gradient step per task.
3) Meta-update: ProMP (`maml_optimizer_steps` optimizer steps on the clipped
   surrogate on post-adaptation data through the replayed inner steps, plus
   the adaptive inner-KL penalty, plus the value loss) or TRPO.
4) Sync the new meta-policy to the env runners.

Sampling runs in `rllib_maml.env_runner.MAMLEnvRunner`, the inner steps and
the meta-update in `rllib_maml.learner.MAMLTorchLearner`; the settings live in
`rllib_maml.config`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import numpy as np
import ray
from ray.rllib.algorithms.algorithm import Algorithm
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

from rllib_maml import runner_settings
from rllib_maml.config import (  # noqa: F401  (re-exported)
    ADVANTAGE_BASELINES,
    INNER_LOSSES,
    META_GRADIENTS,
    OUTER_OPTIMIZERS,
    MAMLConfig,
    check_local_learner_device,
)
from rllib_maml.envs.base import (
    check_meta_env,
    check_meta_env_spaces,
    find_non_finite,
    sample_tasks_checked,
)
from rllib_maml.sampling import call_learners, derive_seed, sample_step

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


def episode_return_mean_adapt_key(step: int) -> str:
    """Result key (under `env_runners`) of the mean return after `step` inner steps."""
    return f"{EPISODE_RETURN_MEAN}_adapt_{step}"


# Result key (under `env_runners`) of the share of episodes that succeeded,
# for envs that report `info["success"]` (Meta-World); `_adapt_<k>` after k
# inner steps.
EPISODE_SUCCESS_RATE = "episode_success_rate"


def episode_success_rate_key(step: int) -> str:
    """Result key (under `env_runners`) of the success rate after `step` inner
    steps (`step` 0: before adaptation)."""
    return EPISODE_SUCCESS_RATE + (f"_adapt_{step}" if step else "")


def episode_succeeded(episode) -> bool | None:
    """Whether any step of `episode` reported `info["success"]`; None if its
    env reports no success."""
    infos = episode.get_infos()
    if not any("success" in info for info in infos):
        return None
    return any(bool(info.get("success")) for info in infos)


def success_rate(episodes) -> float:
    """The share of `episodes` that succeeded; NaN if their env reports no
    success."""
    succeeded = [episode_succeeded(ep) for ep in episodes]
    if not succeeded or succeeded[0] is None:
        return float("nan")
    return float(np.mean([bool(s) for s in succeeded]))


def sampling_timer_key(step: int) -> str:
    """Timer key (under `timers`) of sampling at adaptation step `step`."""
    return f"{ENV_RUNNER_SAMPLING_TIMER}_step_{step}"


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
        # Every seed of a run derives from this one and the iteration, so a run
        # resumed from a checkpoint repeats the uninterrupted one.
        self.seed_root = (
            int(config.seed)
            if config.seed is not None
            else int(np.random.SeedSequence().generate_state(1)[0])
        )
        runner_settings.warn_about_envs_per_runner(config)
        super().setup(config)

    @override(Algorithm)
    def training_step(self) -> None:
        config = self.config
        clock = PhaseClock()

        # 1) Sample this iteration's tasks (seeded by the iteration).
        self.task_env.reset(seed=derive_seed(self.seed_root, self.iteration, _TASKS))
        tasks = sample_tasks_checked(self.task_env, config.meta_batch_size, config.env)

        # 2) Sample every task at each adaptation step with its current
        #    parameters, starting from the meta-policy (its state goes with the
        #    call, as RLlib's weight sync to the runners is asynchronous); the
        #    learner adapts after each step but the last.
        with clock("weight_sync"):
            meta_state = self._call_learner(lambda learner: learner.meta_policy_state())
        step_returns = self.adapt_to_tasks(
            tasks,
            num_steps=config.inner_adaptation_steps,
            num_episodes=config.episodes_per_task,
            seed=derive_seed(self.seed_root, self.iteration, _SAMPLING),
            meta_policy_state=meta_state,
            clock=clock,
        ).mean(axis=0)
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

        # 4) Sync the new meta-policy to the env runners' own modules (what
        #    `get_module()`, checkpoints and restored runners read).
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

    def adapt_to_tasks(
        self,
        tasks: list,
        *,
        num_steps: int,
        num_episodes: int,
        seed: int,
        evaluation: bool = False,
        start_params: dict | None = None,
        meta_policy_state: dict | None = None,
        env_runner_group=None,
        clock: PhaseClock | None = None,
        success_out: np.ndarray | None = None,
        params_out: list | None = None,
    ) -> np.ndarray:
        """MAML's inner loop on `tasks`: sample step k, adapt, for k = 0..N.

        The one loop of training (`evaluation=False`: the learner keeps the
        data for the meta-update, the results are logged) and evaluation
        (`evaluation=True`: nothing is kept or logged).

        Args:
            num_steps: inner steps per task (N).
            num_episodes: episodes per task and step.
            seed: seeds every step's resets and action noise.
            start_params: the policy params to start from (numpy, by name);
                None: the env runners' own module, the meta-policy.
            meta_policy_state: the meta-policy's env-runner state, loaded by
                each runner before step 0 unless it has it already.
            env_runner_group: where to sample; default the training runners.
            clock: adds up the seconds per phase.
            success_out: if given ([len(tasks), N + 1]), filled with each
                task's success rate after 0..N steps (`episode_succeeded`;
                NaN where the env reports no success).
            params_out: if given (a list), gets the policy params each step
                sampled with, by task index (numpy, by name; None: the env
                runners' own module), for steps 0..N.

        Returns:
            The mean return per task after 0..N steps, [len(tasks), N + 1].
        """
        config, clock = self.config, clock or PhaseClock()
        group = env_runner_group or self.env_runner_group
        params_by_task = dict.fromkeys(range(len(tasks)), start_params)
        returns = np.zeros((len(tasks), num_steps + 1))
        for step in range(num_steps + 1):
            if params_out is not None:  # copies: the arrays may view live tensors
                params_out.append(
                    {
                        i: None if p is None else {n: v.copy() for n, v in p.items()}
                        for i, p in params_by_task.items()
                    }
                )
            with (
                self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)),
                self.metrics.log_time((TIMERS, sampling_timer_key(step))),
                clock(f"sampling_step_{step}"),
            ):
                episodes_by_task, runner_metrics = sample_step(
                    group,
                    tasks=tasks,
                    params_by_task=params_by_task,
                    num_episodes=num_episodes,
                    entropy=derive_seed(seed, step),
                    meta_policy_state=meta_policy_state if step == 0 else None,
                )
            check_finite(episodes_by_task, tasks, step, config.env)
            for i, episodes in episodes_by_task.items():
                returns[i, step] = np.mean([ep.get_return() for ep in episodes])
                if success_out is not None:
                    success_out[i, step] = success_rate(episodes)
            if not evaluation:
                self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)
                self._log_episode_returns(step, episodes_by_task)
            with (
                self.metrics.log_time((TIMERS, INNER_ADAPTATION_TIMER)),
                clock("inner_adaptation"),
            ):
                params_by_task = self._adapt_on_learners(
                    step=step,
                    episodes_by_task=episodes_by_task,
                    evaluation=evaluation,
                    num_steps=num_steps,
                )
        return returns

    def _adapt_on_learners(
        self, *, episodes_by_task: dict[int, list], **kwargs
    ) -> dict[int, dict]:
        """`MAMLTorchLearner.adapt` on every learner, each with its share of
        the tasks (`task_shares`); returns the adapted params of all tasks."""
        num_learners = len(self.learner_group) or 1
        if num_learners == 1:
            return self._call_learner(
                lambda learner: learner.adapt(
                    episodes_by_task=episodes_by_task, **kwargs
                )
            )
        shares = [
            ray.put({t: episodes_by_task[t] for t in share})
            for share in task_shares(sorted(episodes_by_task), num_learners)
        ]
        params_by_task = {}
        for params in self._call_learners(
            lambda learner: learner.adapt_share(shares=shares, **kwargs)
        ):
            params_by_task.update(params)
        return params_by_task

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
        """Runs `func(learner)` on every learner and returns the first one's
        result (the learners hold the same meta-policy)."""
        return self._call_learners(func)[0]

    def _call_learners(self, func) -> list:
        """Runs `func(learner)` on every learner; returns their results."""
        return call_learners(
            self.learner_group,
            func,
            algo="MAML",
            why=": a learner holds a share of every meta-batch, so training "
            "cannot go on without it",
        )

    def _log_episode_returns(self, step: int, episodes_by_task: dict) -> None:
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
        rate = success_rate([ep for eps in episodes_by_task.values() for ep in eps])
        if not np.isnan(rate):
            self.metrics.log_value(
                (ENV_RUNNER_RESULTS, episode_success_rate_key(step)), rate, window=1
            )


def task_shares(task_ids: list[int], num_learners: int) -> list[list[int]]:
    """The meta-batch's tasks split over the learners, learner `r` (its rank)
    taking every `num_learners`-th task from the `r`-th: each task's data of
    every adaptation step goes to one learner, and the shares differ in size
    by at most one task."""
    return [task_ids[rank::num_learners] for rank in range(num_learners)]


# Keys that separate the seed streams derived from the run's seed.
_TASKS, _SAMPLING = 1, 2


def check_finite(episodes_by_task: dict, tasks: list, step: int, env: Any) -> None:
    """Raises ValueError naming the task if an episode has a NaN/inf value."""
    bad = find_non_finite(episodes_by_task)
    if bad is not None:
        task_index, what = bad
        raise ValueError(
            f"Env {env!r} returned a non-finite {what} for task "
            f"{tasks[task_index]!r} (task index {task_index}, adaptation step "
            f"{step}). No update was made; fix the env or its task range."
        )
