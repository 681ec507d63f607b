"""Readable progress lines from MAML result dicts."""

from __future__ import annotations

from typing import Any

from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)

from rllib_maml.maml import ADAPTATION_DELTA, episode_return_mean_adapt_key

HEADER = (
    f"{'iter':>5} {'pre-adapt':>11} {'post-adapt':>11} {'delta':>9} "
    f"{'env steps':>11} {'seconds':>8}"
)


def post_adaptation_return(result: dict[str, Any]) -> float:
    """Mean return after the last inner step (the highest `_adapt_<k>` key)."""
    runners = result[ENV_RUNNER_RESULTS]
    step = 1
    while episode_return_mean_adapt_key(step + 1) in runners:
        step += 1
    return runners[episode_return_mean_adapt_key(step)]


def progress_line(result: dict[str, Any]) -> str:
    """One line: iteration, pre/post-adaptation return, delta, env steps, seconds."""
    return (
        f"{result['training_iteration']:>5d} "
        f"{result[ENV_RUNNER_RESULTS][EPISODE_RETURN_MEAN]:>11.2f} "
        f"{post_adaptation_return(result):>11.2f} "
        f"{result[ADAPTATION_DELTA]:>+9.2f} "
        f"{int(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME]):>11d} "
        f"{result['time_total_s']:>8.1f}"
    )
