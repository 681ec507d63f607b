"""PEARL (Rakelly et al. 2019, "Efficient Off-Policy Meta-Reinforcement
Learning via Probabilistic Context Variables") on RLlib's SAC.

Which parts are RLlib's and which PEARL's:
- RLlib's: the algorithm loop (`SAC`/`Algorithm`: env runners, learner group,
  weight sync, metrics, checkpoints, Tune), the actor and critics and their
  losses (`DefaultSACTorchRLModule`, `SACTorchLearner`), the optimizers and
  target updates, the env runners' env stepping.
- PEARL's: the fixed training tasks and a replay and encoder buffer per task
  (`rllib_maml.pearl.buffers`), the context encoder and its loss
  (`rllib_maml.pearl.module`, `.learner`), sampling with z
  (`rllib_maml.pearl.env_runner`), and the iteration below.

One training iteration (`PEARL.training_step`, the reference code's
`train`):
1) Once, before the first: `num_initial_steps` env steps of every training
   task with z from the prior.
2) `num_tasks_sample` tasks: their encoder buffers are emptied, then
   `num_steps_prior` steps with z from the prior (replay and encoder buffers),
   `num_steps_posterior` steps with z inferred from the encoder buffer and
   after each episode (both buffers), `num_extra_rl_steps_posterior` likewise
   into the replay buffer only.
3) `num_train_steps_per_iteration` gradient steps, each on `meta_batch_size`
   tasks: a batch from each task's replay buffer, a context from its encoder
   buffer.
4) The new policy and encoder go to the env runners.

Results: `env_runners/episode_return_mean` is the mean return of step 2's
prior episodes (before adaptation), `..._posterior` of its posterior ones
(z inferred from the task's context), and `adaptation_delta` their
difference.
"""

from __future__ import annotations

import logging

import numpy as np
from gymnasium.spaces import Box
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.sac import SAC
from ray.rllib.env.env_context import EnvContext
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_LEN_MEAN,
    EPISODE_RETURN_MEAN,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from rllib_maml.envs.base import check_meta_env, sample_tasks_checked
from rllib_maml.maml import success_rate
from rllib_maml.pearl.buffers import TaskBuffer, context_rows, episode_transitions
from rllib_maml.pearl.config import PEARLConfig
from rllib_maml.pearl.env_runner import PEARLEnvRunner, PEARLJob
from rllib_maml.sampling import call_learners, derive_seed, sample_jobs

logger = logging.getLogger(__name__)

ADAPTATION_DELTA = "adaptation_delta"
EPISODE_RETURN_MEAN_POSTERIOR = "episode_return_mean_posterior"
EPISODE_SUCCESS_RATE = "episode_success_rate"
EPISODE_SUCCESS_RATE_POSTERIOR = "episode_success_rate_posterior"
PEARL_STATE = "pearl"
# Gradient steps per call of the learner (the batches of a call travel
# together to a remote learner).
STEPS_PER_LEARNER_CALL = 25
# Seed streams (with the config seed and the iteration).
_TRAIN_TASKS, _TASK_CHOICE, _SAMPLING, _BATCHES = 0, 1, 2, 3
_PHASES = {"initial": 0, "prior": 1, "posterior": 2, "extra": 3}


class PEARL(SAC):
    """PEARL on RLlib's SAC (see the module doc)."""

    @classmethod
    @override(SAC)
    def get_default_config(cls) -> PEARLConfig:
        return PEARLConfig()

    @override(SAC)
    def setup(self, config: PEARLConfig) -> None:
        task_env = self.env_creator(EnvContext(config.env_config, worker_index=0))
        try:
            check_meta_env(task_env, config.env)
            if not isinstance(task_env.action_space, Box):
                raise TypeError(
                    f"PEARL needs a continuous (Box) action space; {config.env!r} "
                    f"has {task_env.action_space}. Use MAML or RL² on it."
                )
            self.seed_root = (
                int(config.seed)
                if config.seed is not None
                else int(np.random.SeedSequence().generate_state(1)[0])
            )
            task_env.reset(seed=derive_seed(self.seed_root, _TRAIN_TASKS))
            self.train_tasks = sample_tasks_checked(
                task_env, config.num_train_tasks, config.env
            )
        finally:
            task_env.close()
        capacity = int(config.replay_buffer_config["capacity"])
        self.replay_buffers = [TaskBuffer(capacity) for _ in self.train_tasks]
        self.encoder_buffers = [TaskBuffer(capacity) for _ in self.train_tasks]
        self.initial_data_collected = False
        super().setup(config)

    @override(SAC)
    def training_step(self) -> None:
        config = self.config
        runner_state = self._call_learner(lambda learner: learner.runner_state())

        # 1) Once: every training task with z from the prior.
        if not self.initial_data_collected:
            everything = list(range(len(self.train_tasks)))
            self._collect(everything, config.num_initial_steps, runner_state, "initial")
            self.initial_data_collected = True

        # 2) This iteration's tasks: prior, posterior and extra posterior data.
        rng = np.random.default_rng(
            derive_seed(self.seed_root, self.iteration, _TASK_CHOICE)
        )
        chosen = sorted(
            rng.choice(len(self.train_tasks), config.num_tasks_sample, replace=False)
        )
        for t in chosen:
            self.encoder_buffers[t].clear()
        prior = self._collect(chosen, config.num_steps_prior, runner_state, "prior")
        posterior = self._collect(
            chosen, config.num_steps_posterior, runner_state, "posterior", rng=rng
        )
        posterior += self._collect(
            chosen,
            config.num_extra_rl_steps_posterior,
            runner_state,
            "extra",
            rng=rng,
        )
        self._log_returns(prior, posterior)

        # 3) Gradient steps on meta-batches of tasks.
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            batch_rng = np.random.default_rng(
                derive_seed(self.seed_root, self.iteration, _BATCHES)
            )
            remaining = config.num_train_steps_per_iteration
            while remaining > 0:
                n = min(remaining, STEPS_PER_LEARNER_CALL)
                steps = [self._meta_batch(batch_rng) for _ in range(n)]
                results = self._call_learner(
                    lambda learner, steps=steps: learner.update_pearl(steps)
                )
                self.metrics.aggregate([results], key=LEARNER_RESULTS)
                remaining -= n

        # 4) The new policy and encoder to the env runners.
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group, inference_only=True
            )

    def _call_learner(self, func):
        """`func(learner)` on the (one) learner."""
        return call_learners(self.learner_group, func, algo="PEARL")[0]

    def _collect(
        self,
        task_ids: list[int],
        num_steps: int,
        runner_state: dict,
        phase: str,
        rng: np.random.Generator | None = None,
    ) -> list:
        """Samples `num_steps` env steps of each training task in `task_ids`
        (phase: "initial", "prior", "posterior" or "extra"); adds them to the
        buffers and returns the episodes."""
        if num_steps == 0 or not task_ids:
            return []
        posterior = phase in ("posterior", "extra")
        jobs = [
            PEARLJob(
                task_index=int(t),
                task=self.train_tasks[t],
                num_steps=num_steps,
                context=self._context(int(t), rng) if posterior else None,
                update_posterior=posterior,
            )
            for t in task_ids
        ]
        seed = derive_seed(self.seed_root, self.iteration, _SAMPLING, _PHASES[phase])
        episodes_by_task, runner_metrics = sample_jobs(
            self.env_runner_group,
            jobs,
            _sampler(explore=True, entropy=seed, runner_state=runner_state),
            what="PEARL tasks",
        )
        self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)
        for t, episodes in episodes_by_task.items():
            for episode in episodes:
                transitions = episode_transitions(episode)
                self.replay_buffers[t].add(transitions)
                if phase != "extra":
                    self.encoder_buffers[t].add(transitions)
        return [e for episodes in episodes_by_task.values() for e in episodes]

    def _context(self, t: int, rng: np.random.Generator) -> np.ndarray | None:
        """`embedding_batch_size` transitions of task t's encoder buffer (None
        while it is empty: z from the prior)."""
        buffer = self.encoder_buffers[t]
        if len(buffer) == 0:
            return None
        return context_rows(buffer.sample(self.config.embedding_batch_size, rng))

    def _meta_batch(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One gradient step's data: `[tasks, n, ...]` transitions from the
        replay buffers and `context` `[tasks, c, context_size]`."""
        config = self.config
        tasks = rng.choice(len(self.train_tasks), config.meta_batch_size, replace=False)
        batches = [
            self.replay_buffers[t].sample(config.train_batch_size_per_learner, rng)
            for t in tasks
        ]
        arrays = {key: np.stack([b[key] for b in batches]) for key in batches[0]}
        arrays["context"] = np.stack([self._context(t, rng) for t in tasks])
        return arrays

    def _log_returns(self, prior: list, posterior: list) -> None:
        means = {}
        for key, rate_key, episodes in (
            (EPISODE_RETURN_MEAN, EPISODE_SUCCESS_RATE, prior),
            (EPISODE_RETURN_MEAN_POSTERIOR, EPISODE_SUCCESS_RATE_POSTERIOR, posterior),
        ):
            if not episodes:
                continue
            if key == EPISODE_RETURN_MEAN:
                length = float(np.mean([len(e) for e in episodes]))
                self.metrics.log_value(
                    (ENV_RUNNER_RESULTS, EPISODE_LEN_MEAN), length, window=1
                )
            means[key] = float(np.mean([e.get_return() for e in episodes]))
            self.metrics.log_value((ENV_RUNNER_RESULTS, key), means[key], window=1)
            rate = success_rate(episodes)
            if not np.isnan(rate):
                self.metrics.log_value((ENV_RUNNER_RESULTS, rate_key), rate, window=1)
        if len(means) == 2:
            delta = means[EPISODE_RETURN_MEAN_POSTERIOR] - means[EPISODE_RETURN_MEAN]
            self.metrics.log_value(ADAPTATION_DELTA, delta, window=1)

    # ------------------------------------------------------------ evaluation
    def context_returns(
        self,
        tasks: list,
        *,
        num_episodes: int,
        seed: int,
        success_out: np.ndarray | None = None,
    ) -> np.ndarray:
        """The paper's evaluation: per task, `num_episodes` episodes one after
        the other with the policy's mode; the first with z from the prior,
        each later one with z from the posterior of all earlier episodes'
        transitions. Returns `[len(tasks), num_episodes]`; `success_out`
        (same shape) gets each episode's success (NaN where none is
        reported). Seeded by `seed`."""
        runner_state = self._call_learner(lambda learner: learner.runner_state())
        jobs = [
            PEARLJob(i, task, num_episodes=num_episodes, update_posterior=True)
            for i, task in enumerate(tasks)
        ]
        episodes_by_task, _ = sample_jobs(
            self.env_runner_group,
            jobs,
            _sampler(explore=False, entropy=seed, runner_state=runner_state),
            what="PEARL evaluation tasks",
        )
        returns = np.array(
            [[e.get_return() for e in episodes_by_task[i]] for i in range(len(tasks))]
        )
        if success_out is not None:
            for i in range(len(tasks)):
                success_out[i] = [success_rate([e]) for e in episodes_by_task[i]]
        return returns

    # ------------------------------------------------------------ checkpoints
    @override(Algorithm)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        keep = self.config.store_buffer_in_checkpoints
        state[PEARL_STATE] = {
            "train_tasks": self.train_tasks,
            "initial_data_collected": self.initial_data_collected and keep,
            "replay_buffers": [b.get_state() for b in self.replay_buffers]
            if keep
            else None,
            "encoder_buffers": [b.get_state() for b in self.encoder_buffers]
            if keep
            else None,
        }
        return state

    @override(Algorithm)
    def set_state(self, state) -> None:
        super().set_state(state)
        pearl = state.get(PEARL_STATE)
        if pearl is None:
            return
        self.train_tasks = pearl["train_tasks"]
        self.initial_data_collected = pearl["initial_data_collected"]
        for key in ("replay_buffers", "encoder_buffers"):
            buffers = getattr(self, key)
            del buffers[len(self.train_tasks) :]
            for i, buffer_state in enumerate(pearl[key] or []):
                buffers[i].set_state(buffer_state)


def _sampler(**kwargs):
    def run(env_runner, jobs):
        if not isinstance(env_runner, PEARLEnvRunner):
            raise TypeError(
                f"`env_runner_cls` is {type(env_runner).__name__}, not a "
                "`rllib_maml.pearl.PEARLEnvRunner`, which samples with z."
            )
        return env_runner.sample_pearl(jobs, **kwargs)

    return run
