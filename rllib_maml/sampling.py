"""Driver side of sampling: one adaptation step of a meta-batch on the env runners.

`sample_step` spreads the tasks round-robin over the healthy env runners and
calls `MAMLEnvRunner.sample_tasks` on each, once: one round trip per
adaptation step. A runner whose call raises is marked unhealthy by RLlib (and
restored by it before the next iteration with `restart_failed_env_runners`);
with fault tolerance its tasks are sampled again on the other runners.

`call_learners` is the learners' side: a learner's error is raised, a lost
learner named.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import ray
from ray.rllib.env.env_runner_group import EnvRunnerGroup

from rllib_maml.env_runner import MAMLEnvRunner, TaskJob

logger = logging.getLogger(__name__)


def derive_seed(*keys: int) -> int:
    """A 32-bit seed from integer keys (e.g. the config seed, the iteration and
    the adaptation step); different keys give independent streams."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def assign_tasks(
    task_indices: list[int], runner_ids: list[int]
) -> dict[int, list[int]]:
    """Round-robin: task i goes to `runner_ids[i % len(runner_ids)]`."""
    assignment: dict[int, list[int]] = {rid: [] for rid in runner_ids}
    for position, task_index in enumerate(task_indices):
        assignment[runner_ids[position % len(runner_ids)]].append(task_index)
    return {rid: tasks for rid, tasks in assignment.items() if tasks}


def sample_on_runner(
    env_runner: MAMLEnvRunner,
    jobs: list[TaskJob],
    num_episodes: int,
    entropy,
    meta_policy_state=None,
):
    """Runs on an env runner: its `sample_tasks` (raises a clear error for a
    runner class that lacks it)."""
    if not isinstance(env_runner, MAMLEnvRunner):
        raise TypeError(
            f"`env_runner_cls` is {type(env_runner).__name__}, which is not a "
            "`rllib_maml.env_runner.MAMLEnvRunner`: MAML samples several tasks per "
            "call with its `sample_tasks`. Subclass `MAMLEnvRunner` or remove "
            "`env_runner_cls` from `config.env_runners(...)`."
        )
    return env_runner.sample_tasks(
        jobs,
        num_episodes=num_episodes,
        entropy=entropy,
        meta_policy_state=meta_policy_state,
    )


def sample_step(
    env_runner_group: EnvRunnerGroup,
    *,
    tasks: list[Any],
    params_by_task: dict[int, dict | None],
    num_episodes: int,
    entropy: int | None,
    meta_policy_state: dict | None = None,
    max_attempts: int = 3,
) -> tuple[dict[int, list], list[dict]]:
    """Samples `num_episodes` episodes of every task with its parameters.

    Args:
        tasks: the meta-batch (task i has index i).
        params_by_task: task index -> policy params (None: the runners' own
            meta-policy).
        meta_policy_state: the meta-policy's env-runner state, which each
            runner loads first unless it has it (see `MAMLEnvRunner.sample_tasks`).
        entropy: seeds the step's resets and action noise (see
            `rllib_maml.env_runner`); None: unseeded.

    A failed remote runner: with `restart_failed_env_runners` (or
    `ignore_env_runner_failures`) its tasks are sampled again on the other
    healthy runners, a warning each time; otherwise raises, naming the runner,
    the tasks and the cause.

    Returns:
        (task index -> episodes, the runners' metrics dicts). Never fewer tasks.
    """
    jobs = [TaskJob(i, task, params_by_task.get(i)) for i, task in enumerate(tasks)]
    run = functools.partial(
        sample_on_runner,
        num_episodes=num_episodes,
        entropy=entropy,
        meta_policy_state=meta_policy_state,
    )
    return sample_jobs(env_runner_group, jobs, run, max_attempts=max_attempts)


def sample_jobs(
    env_runner_group: EnvRunnerGroup,
    jobs: list,
    run,
    *,
    what: str = "MAML tasks",
    max_attempts: int = 3,
) -> tuple[dict[int, list], list[dict]]:
    """Runs `run(env_runner, jobs=share)` on the env runners, the jobs (each
    with a distinct `task_index`) spread round-robin; `run` returns a
    `TaskSamples`. Failed runners are handled as `sample_step` says; `what`
    names the jobs in messages."""
    episodes_by_task: dict[int, list] = {}
    all_metrics: list[dict] = []
    by_index = {job.task_index: job for job in jobs}
    pending = list(by_index)
    for attempt in range(max_attempts):
        if env_runner_group.num_remote_env_runners() == 0:
            local = env_runner_group.local_env_runner
            if local is None or local.env is None:
                raise RuntimeError(f"No env runner with an env to sample {what}.")
            try:
                results = [run(local, jobs=[by_index[i] for i in pending])]
            except Exception as e:
                raise RuntimeError(
                    f"The local env runner failed while sampling {what} "
                    f"{pending}: {type(e).__name__}: {e}"
                ) from e
        elif not env_runner_group.healthy_env_runner_ids() and attempt > 0:
            raise RuntimeError(
                f"Every env runner failed while sampling {what} {pending} in "
                "this iteration (see the errors above for the causes)."
            )
        else:
            results = _sample_remote(
                env_runner_group, run, [by_index[i] for i in pending], what
            )
        for samples in results:
            episodes_by_task.update(samples.episodes_by_task)
            all_metrics.append(samples.metrics)
        pending = [i for i in by_index if i not in episodes_by_task]
        if not pending:
            return episodes_by_task, all_metrics
        logger.warning(
            "%s %s have no data after attempt %d/%d (their env runner "
            "failed; see the error above); sampling them again on the healthy "
            "runners.",
            what[0].upper() + what[1:],
            pending,
            attempt + 1,
            max_attempts,
        )
    raise RuntimeError(
        f"{what[0].upper() + what[1:]} {pending} could not be sampled in "
        f"{max_attempts} attempts: their env runners failed each time. See the "
        "errors above for the causes."
    )


def _sample_remote(group: EnvRunnerGroup, run, jobs: list, what: str):
    runner_ids = group.healthy_env_runner_ids()
    if not runner_ids:
        raise RuntimeError(
            f"No healthy env runner is left to sample {what} on. Enable "
            "`config.fault_tolerance(restart_failed_env_runners=True)` to "
            "restart failed runners."
        )
    assignment = assign_tasks([job.task_index for job in jobs], runner_ids)
    by_index = {job.task_index: job for job in jobs}
    try:
        return group.foreach_env_runner(
            [
                functools.partial(run, jobs=[by_index[i] for i in task_indices])
                for task_indices in assignment.values()
            ],
            remote_worker_ids=list(assignment),
            local_env_runner=False,
        )
    except ray.exceptions.RayError as e:
        failed = sorted(set(runner_ids) - set(group.healthy_env_runner_ids()))
        failed_tasks = [i for rid in failed for i in assignment.get(rid, [])]
        cause = getattr(e, "cause", None) or e
        if isinstance(cause, ray.exceptions.ActorDiedError):
            # RLlib logs a runner's exception in the runner, then exits it.
            why = (
                "the runner raised and exited; its log has the exception "
                "(RLlib's 'Worker exception caught during `apply()`')"
            )
        else:
            why = f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1]}"
        tasks = failed_tasks or sorted(by_index)
        raise RuntimeError(
            f"Env runner(s) {failed} failed while sampling {what} {tasks} "
            f"({[by_index[i].task for i in tasks][:3]!r}): {why}. Set "
            "`config.fault_tolerance(restart_failed_env_runners=True)` to sample "
            "such tasks again on the other runners (RLlib restarts the failed one)."
        ) from e


def call_learners(learner_group, func, *, algo: str, why: str = "") -> list:
    """Runs `func(learner)` on every learner of `learner_group`; returns their
    results. A learner's exception is raised (RLlib returns it as a value); a
    learner that died or did not answer raises an error naming how many of
    how many were lost (`algo` names the algorithm, `why` says why training
    cannot go on without it) and how to restore."""
    results = list(learner_group.foreach_learner(func))
    expected = len(learner_group) or 1
    errors = [result.get() for result in results if not result.ok]
    # A dead learner first: the others' errors may only be its consequence
    # (a collective that lost its peer).
    lost = (
        expected
        - len(results)
        + sum(isinstance(e, ray.exceptions.RayActorError) for e in errors)
    )
    if errors and not lost:
        raise errors[0]
    if lost:
        raise RuntimeError(
            f"{lost} of {expected} {algo} learners died or did not answer{why}. "
            f"Restore the last checkpoint (`{algo}.from_checkpoint(path)` or "
            "`algo.restore_from_path(path)`)."
        )
    return [result.get() for result in results]
