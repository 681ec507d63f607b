"""Readable progress lines from MAML, RL² and PEARL result dicts."""

from __future__ import annotations

from typing import Any

from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)

from rllib_maml.maml import ADAPTATION_DELTA, episode_return_mean_adapt_key
from rllib_maml.pearl.pearl import EPISODE_RETURN_MEAN_POSTERIOR
from rllib_maml.rl2 import episode_return_key

HEADER = (
    f"{'iter':>5} {'pre-adapt':>11} {'post-adapt':>11} {'delta':>9} "
    f"{'env steps':>11} {'seconds':>8}"
)


def pre_adaptation_return(result: dict[str, Any]) -> float:
    """MAML: the meta-policy's mean return. RL²: a trial's first episode."""
    runners = result[ENV_RUNNER_RESULTS]
    if episode_return_key(1) in runners:
        return runners[episode_return_key(1)]
    return runners.get(EPISODE_RETURN_MEAN, float("nan"))


def post_adaptation_return(result: dict[str, Any]) -> float:
    """MAML: mean return after the last inner step (the highest `_adapt_<k>`
    key). RL²: a trial's last episode (the highest `_episode_<n>` key). PEARL:
    the episodes with z from the posterior."""
    runners = result[ENV_RUNNER_RESULTS]
    if EPISODE_RETURN_MEAN_POSTERIOR in runners:
        return runners[EPISODE_RETURN_MEAN_POSTERIOR]
    for key in (episode_return_mean_adapt_key, episode_return_key):
        if key(1) in runners:
            n = 1
            while key(n + 1) in runners:
                n += 1
            return runners[key(n)]
    return float("nan")


def progress_line(result: dict[str, Any]) -> str:
    """One line: iteration, pre/post-adaptation return, delta, env steps, seconds."""
    return (
        f"{result['training_iteration']:>5d} "
        f"{pre_adaptation_return(result):>11.2f} "
        f"{post_adaptation_return(result):>11.2f} "
        f"{result.get(ADAPTATION_DELTA, float('nan')):>+9.2f} "
        f"{int(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME]):>11d} "
        f"{result['time_total_s']:>8.1f}"
    )
