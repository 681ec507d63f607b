"""`PEARLEnvRunner`: RLlib's single-agent env runner, sampling tasks with z.

`PEARLEnvRunner.sample_pearl` runs jobs: a task, how much to sample of it
(env steps or episodes), the context its first z is inferred from, and
whether z is inferred again after each episode from the context grown by that
episode (the reference code's `update_posterior_rate=1`). Every episode gets a
fresh z drawn from the task's current posterior (the prior N(0, I) while the
context is empty): the reference code's `resample_z_rate=1`.

A job runs one episode at a time (its next z may depend on its last episode);
the runner's sub-envs run different jobs side by side, one forward pass for all
of them per step, each sub-env with its job's z. Stepping, RLlib's
unsquash/clip of actions, seeds and the episodes (with infos) are those of
`rllib_maml.env_runner` (`_Recorder`), so PEARL samples inside RLlib's
EnvRunner as MAML does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.utils import metrics as M

from rllib_maml import compat
from rllib_maml.env_runner import (
    MIXED_EPISODE_METRICS,
    TaskSamples,
    _Recorder,
    _torch_rng,
    reset_slots,
)
from rllib_maml.pearl.buffers import context_rows
from rllib_maml.pearl.gaussians import sample_z


@dataclasses.dataclass(frozen=True)
class PEARLJob:
    """One task to sample.

    Attributes:
        task_index: keys the results and the reset seeds.
        task: as the env's `sample_tasks` returned it.
        num_steps: sample whole episodes until at least this many env steps.
        num_episodes: or this many episodes (exactly one of the two).
        context: `[n, context_size]` transitions the first z is inferred
            from; None: the prior.
        update_posterior: after each episode, add its transitions to the
            context and infer the posterior again.
    """

    task_index: int
    task: Any
    num_steps: int | None = None
    num_episodes: int | None = None
    context: np.ndarray | None = None
    update_posterior: bool = False

    def __post_init__(self):
        if (self.num_steps is None) == (self.num_episodes is None):
            raise ValueError(
                f"PEARLJob for task {self.task_index}: give exactly one of "
                f"`num_steps` ({self.num_steps}) and `num_episodes` "
                f"({self.num_episodes})."
            )

    def finished(self, steps: int, episodes: int) -> bool:
        if self.num_steps is not None:
            return steps >= self.num_steps
        return episodes >= self.num_episodes


class PEARLEnvRunner(SingleAgentEnvRunner):
    """`SingleAgentEnvRunner` plus `sample_pearl` (see the module doc)."""

    def sample_pearl(
        self,
        jobs: list[PEARLJob],
        *,
        explore: bool = True,
        entropy: int | None = None,
        runner_state: dict | None = None,
    ) -> TaskSamples:
        """Samples every job (see `PEARLJob`).

        Args:
            explore: sample actions (training); False: the policy's mode
                (the paper's evaluation).
            entropy: seeds resets, action noise and z; None: unseeded.
            runner_state: the learner's policy and encoder (RLlib's env-runner
                state), loaded before sampling (a no-op when the runner has it).

        Returns:
            The episodes per task index, and this runner's metrics.
        """
        if runner_state is not None:
            self.set_state(runner_state)
        mode = self.env.unwrapped.metadata.get(
            "autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP
        )
        if mode != gym.vector.AutoresetMode.NEXT_STEP:
            raise ValueError(
                f"PEARL samples with vector envs that reset sub-envs with NEXT_STEP, "
                f"got {mode}; use `gym_env_vectorize_mode='SYNC'` (RLlib's default)."
            )
        with _torch_rng(self, entropy, jobs), self.metrics.log_time(M.SAMPLE_TIMER):
            episodes = self._sample_jobs(jobs, explore, entropy)
        metrics = self.get_metrics()
        for key in MIXED_EPISODE_METRICS:
            metrics.pop(key, None)
        return TaskSamples(episodes, metrics)

    def _sample_jobs(
        self, jobs: list[PEARLJob], explore: bool, entropy: int | None
    ) -> dict[int, list]:
        vector_env = self.env.unwrapped
        num_envs = vector_env.num_envs
        module = self.module
        device = compat.device(self) or "cpu"
        contexts = [
            [] if job.context is None else [np.asarray(job.context, np.float32)]
            for job in jobs
        ]
        z = np.zeros((len(jobs), module.latent_dim), dtype=np.float32)
        steps = [0] * len(jobs)
        episodes = [0] * len(jobs)
        active = [False] * len(jobs)

        def infer(j: int) -> None:
            rows = (
                np.concatenate(contexts[j])
                if contexts[j]
                else np.zeros((0, module.context_size), np.float32)
            )
            with torch.no_grad():
                mu, var = module.posterior(torch.as_tensor(rows, device=device)[None])
                z[j] = sample_z(mu, var)[0].cpu().numpy()

        for j in range(len(jobs)):
            infer(j)
        recorder = _Recorder(self, explore=explore)
        env_slot: list[tuple[int, int] | None] = [None] * num_envs
        start = np.zeros(num_envs, dtype=int)

        def next_job() -> int | None:
            for j, job in enumerate(jobs):
                if not active[j] and not job.finished(steps[j], episodes[j]):
                    return j
            return None

        def begin(envs: list[int], obs, infos, first_reset=False):
            """Gives each sub-env in `envs` the next job's next episode."""
            for i in envs:
                j = next_job()
                env_slot[i] = None if j is None else (j, episodes[j])
                if j is not None:
                    active[j] = True
            return reset_slots(
                self,
                env_slot,
                jobs,
                envs,
                entropy,
                obs,
                infos,
                start,
                recorder,
                first_reset,
            )

        def forward(obs: torch.Tensor) -> torch.Tensor:
            rows = [slot[0] if slot is not None else 0 for slot in env_slot]
            return module.policy_inputs(obs, torch.as_tensor(z[rows], device=device))

        space = vector_env.single_observation_space
        obs = np.zeros((num_envs, *space.shape), dtype=space.dtype)
        obs, infos = begin(list(range(num_envs)), obs, [{}] * num_envs, True)
        spans = []  # (job, sub-env, first step, last step, final obs, final info)
        while any(slot is not None for slot in env_slot):
            recorder.observe(obs, infos)
            obs, term, trunc, infos = recorder.step(forward, obs)
            step = recorder.num_steps - 1
            finished = [
                i for i in np.flatnonzero(term | trunc) if env_slot[i] is not None
            ]
            if not finished:
                continue
            for i in finished:
                j = env_slot[i][0]
                spans.append((j, i, start[i], step, obs[i], infos[i]))
                active[j] = False
                steps[j] += step - start[i] + 1
                episodes[j] += 1
                if jobs[j].update_posterior:
                    contexts[j].append(
                        context_rows(_transitions(recorder, i, start[i], step, obs[i]))
                    )
                infer(j)
            obs, infos = np.array(obs), list(infos)
            obs, infos = begin(finished, obs, infos)
        by_task: dict[int, list] = {job.task_index: [] for job in jobs}
        for j, i, first, last, final_obs, final_info in sorted(
            spans, key=lambda span: (span[0], span[2])
        ):
            by_task[jobs[j].task_index].append(
                recorder.episode(i, first, last, final_obs, final_info)
            )
        compat.request_reset(self)
        compat.count_sampled(
            self, sum(last - first + 1 for _, _, first, last, _, _ in spans), len(spans)
        )
        return by_task


def _transitions(recorder, i: int, first: int, last: int, final_obs) -> dict:
    """Sub-env i's transitions at steps `first..last` from the recorder's
    columns (the episode is not cut yet)."""
    columns = recorder.columns
    obs = np.stack([columns["obs"][t][i] for t in range(first, last + 1)])
    next_obs = np.concatenate([obs[1:], np.asarray(final_obs)[None]])
    n = last - first + 1
    return {
        "obs": obs.reshape(n, -1).astype(np.float32),
        "actions": np.stack(
            [columns["actions"][t][i] for t in range(first, last + 1)]
        ).reshape(n, -1),
        "rewards": np.asarray(
            [columns["rewards"][t][i] for t in range(first, last + 1)], np.float32
        ),
        "next_obs": next_obs.reshape(n, -1).astype(np.float32),
    }
