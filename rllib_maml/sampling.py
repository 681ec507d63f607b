"""Sampling episodes per task on RLlib env runners.

One adaptation step is one round trip: each env runner gets the list of its
tasks (with the weights to sample each one with), samples them (all at once,
see `rllib_maml.batched_sampling`, or one after the other) and returns the
episodes keyed by task index.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import torch
from ray.rllib.env.env_runner_group import EnvRunnerGroup
from ray.rllib.utils import metrics

from rllib_maml.batched_sampling import batching_unavailable, sample_tasks_batched

logger = logging.getLogger(__name__)

# Episode statistics the env runner computes over everything it sampled: they
# would mix adaptation steps, so MAML reports its own per step instead.
_MIXED_EPISODE_METRICS = (
    metrics.EPISODE_DURATION_SEC_MEAN,
    metrics.EPISODE_LEN_MAX,
    metrics.EPISODE_LEN_MEAN,
    metrics.EPISODE_LEN_MIN,
    metrics.EPISODE_RETURN_MAX,
    metrics.EPISODE_RETURN_MEAN,
    metrics.EPISODE_RETURN_MIN,
    "agent_episode_return_mean",
    "module_episode_return_mean",
)

# A job: (task index, task, inference-only weights to sample it with, seed or
# None). A seed makes the job repeatable: it seeds the env reset and torch's
# action sampling on the runner.
Job = tuple[int, Any, dict, int | None]


def sample_jobs_on_env_runner(
    env_runner, jobs: list[Job], num_episodes: int, batched: bool = False
) -> tuple[dict[int, list], dict, dict | None]:
    """Runs on one env runner: samples every job's task with its weights.

    With `batched`, all tasks run at once (`rllib_maml.batched_sampling`; with
    seeds, repeatable for the same jobs on a runner); otherwise, or where that
    cannot run on this runner, each task in turn with `EnvRunner.sample()`
    (with seeds, each task's episodes repeat whichever runner samples them).

    An exception while sampling stops this runner's jobs and is returned (not
    raised), so the driver learns the task and the cause.

    Returns:
        (task index -> episodes, the runner's reduced metrics without the
        per-episode statistics, None or `{"task_indices", "error"}`: the
        task that failed, or all of a batched runner's tasks).
    """
    if batched:
        reason = batching_unavailable(env_runner)
        if reason is None:
            return _sample_batched(env_runner, jobs, num_episodes)
        if not getattr(env_runner, "_rllib_maml_warned", False):
            env_runner._rllib_maml_warned = True
            logger.warning(
                "Sampling MAML tasks one after the other on this env runner: %s.",
                reason,
            )
    episodes_by_task, failure = {}, None
    for task_index, task, weights, seed in jobs:
        try:
            env_runner.module.set_state(weights)
            env_runner.env.unwrapped.call("set_task", task)
            if seed is None:
                episodes = env_runner.sample(num_episodes=num_episodes, explore=True)
            else:
                episodes = _seeded_sample(env_runner, num_episodes, seed)
            episodes_by_task[task_index] = episodes
        except Exception as e:  # noqa: BLE001 - reported to the driver
            failure = _failure([task_index], e)
            break
    return episodes_by_task, _runner_metrics(env_runner), failure


def _sample_batched(env_runner, jobs: list[Job], num_episodes: int):
    seeds = [seed for *_, seed in jobs]
    seed = None
    if None not in seeds:  # one seed for the whole loop, from all the jobs'
        seed = int(np.random.SeedSequence(seeds).generate_state(1)[0])
    try:
        episodes = sample_tasks_batched(
            env_runner,
            tasks=[task for _, task, _, _ in jobs],
            weights=[weights for _, _, weights, _ in jobs],
            num_episodes=num_episodes,
            seed=seed,
        )
    except Exception as e:  # noqa: BLE001 - reported to the driver
        return {}, _runner_metrics(env_runner), _failure([job[0] for job in jobs], e)
    episodes_by_task = {job[0]: eps for job, eps in zip(jobs, episodes, strict=True)}
    return episodes_by_task, _runner_metrics(env_runner), None


def _failure(task_indices: list[int], error: Exception) -> dict:
    cause = error.__cause__ or error
    return {"task_indices": task_indices, "error": f"{type(cause).__name__}: {cause}"}


def _runner_metrics(env_runner) -> dict:
    runner_metrics = env_runner.get_metrics()
    for key in _MIXED_EPISODE_METRICS:
        runner_metrics.pop(key, None)
    return runner_metrics


def _seeded_sample(env_runner, num_episodes: int, seed: int) -> list:
    """`sample` with env resets and torch's action sampling seeded by `seed`;
    the runner's own seed and torch's RNG state are restored afterwards."""
    # The runner resets its envs with `_seed` at the start of every
    # `sample(num_episodes=...)` call.
    own_seed, env_runner._seed = env_runner._seed, seed
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return env_runner.sample(num_episodes=num_episodes, explore=True)
    finally:
        env_runner._seed = own_seed


def assign_tasks(
    task_indices: list[int], runner_ids: list[int]
) -> dict[int, list[int]]:
    """Round-robin: task i goes to `runner_ids[i % len(runner_ids)]`."""
    assignment: dict[int, list[int]] = {rid: [] for rid in runner_ids}
    for position, task_index in enumerate(task_indices):
        assignment[runner_ids[position % len(runner_ids)]].append(task_index)
    return {rid: tasks for rid, tasks in assignment.items() if tasks}


def sample_episodes_per_task(
    env_runner_group: EnvRunnerGroup,
    *,
    tasks: list[Any],
    weights_by_task: dict[int, dict],
    num_episodes: int,
    fault_tolerant: bool = True,
    max_attempts: int = 3,
    seeds_by_task: dict[int, int] | None = None,
    batched: bool = False,
) -> tuple[dict[int, list], list[dict]]:
    """Samples `num_episodes` episodes for every task, spread over the runners.

    `seeds_by_task` (optional) makes each task's episodes repeatable whichever
    runner samples them (evaluation uses it). `batched`: several tasks per
    vectorized pass where the runner allows (see `sample_jobs_on_env_runner`).

    If a runner fails (its env raises, or its actor dies): with
    `fault_tolerant`, its unsampled tasks are sampled again on the other healthy
    runners (up to `max_attempts` rounds, a warning each time); without, raises
    naming the runner, the task and the cause. Never returns fewer tasks.

    Returns:
        (task index -> episodes, list of the runners' metrics dicts).
    """
    episodes_by_task: dict[int, list] = {}
    all_metrics: list[dict] = []
    pending = list(range(len(tasks)))
    failed_runners: set[int] = set()
    for attempt in range(max_attempts):
        jobs = lambda ids: [  # noqa: E731
            (i, tasks[i], weights_by_task[i], (seeds_by_task or {}).get(i)) for i in ids
        ]
        runner_ids = [
            rid
            for rid in env_runner_group.healthy_env_runner_ids()
            if rid not in failed_runners
        ]
        if runner_ids:
            assignment = assign_tasks(pending, runner_ids)
            results = env_runner_group.foreach_env_runner(
                [
                    functools.partial(
                        sample_jobs_on_env_runner,
                        jobs=jobs(task_ids),
                        num_episodes=num_episodes,
                        batched=batched,
                    )
                    for task_ids in assignment.values()
                ],
                remote_worker_ids=list(assignment),
                local_env_runner=False,
            )
        elif env_runner_group.num_remote_env_runners() == 0 and (
            env_runner_group.local_env_runner is not None
        ):
            local = env_runner_group.local_env_runner
            results = [
                sample_jobs_on_env_runner(local, jobs(pending), num_episodes, batched)
            ]
        elif failed_runners:
            raise RuntimeError(
                f"Every env runner failed while sampling MAML tasks {pending} in this "
                "iteration (see the warnings above for the causes)."
            )
        else:
            raise RuntimeError(
                "No healthy env runner is left to sample MAML tasks on. Enable "
                "`config.fault_tolerance(restart_failed_env_runners=True)` to "
                "restart failed runners."
            )
        failures = []
        for runner_episodes, runner_metrics, failure in results:
            episodes_by_task.update(runner_episodes)
            all_metrics.append(runner_metrics)
            if failure is not None:
                failures.append(failure)
        for failure in failures:
            indices = failure["task_indices"]
            rid = _runner_of(indices[0], assignment if runner_ids else {})
            failed_runners.add(rid)
            what = (
                f"task {tasks[indices[0]]!r} (task index {indices[0]})"
                if len(indices) == 1
                else f"tasks {[tasks[i] for i in indices]!r} (task indices {indices}, "
                "sampled in batched passes)"
            )
            message = (
                f"Env runner {rid} failed while sampling {what}: {failure['error']}"
            )
            if not fault_tolerant:
                raise RuntimeError(
                    message + ". Set `config.fault_tolerance("
                    "restart_failed_env_runners=True)` to sample such tasks again "
                    "on the other runners."
                )
            logger.warning(message)
        pending = [i for i in range(len(tasks)) if i not in episodes_by_task]
        if not pending:
            return episodes_by_task, all_metrics
        if not fault_tolerant:
            raise RuntimeError(
                f"Env runner(s) died while sampling MAML tasks {pending} (see their "
                "logs above for the cause). Set `config.fault_tolerance("
                "restart_failed_env_runners=True)` to sample such tasks again on the "
                "other runners."
            )
        logger.warning(
            "Tasks %s have no data after attempt %d/%d; re-sampling them on the "
            "healthy runners.",
            pending,
            attempt + 1,
            max_attempts,
        )
    raise RuntimeError(
        f"Tasks {pending} could not be sampled after {max_attempts} attempts: their "
        "env runners failed. See the warnings above for the causes."
    )


def _runner_of(task_index: int, assignment: dict[int, list[int]]) -> int:
    """The runner id a task was assigned to (0: the local env runner)."""
    for rid, task_ids in assignment.items():
        if task_index in task_ids:
            return rid
    return 0
