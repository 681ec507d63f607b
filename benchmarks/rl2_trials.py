"""What an RL² policy does trial by trial: the returns of each trial's inner
episodes and the largest action log std the policy used in it.

A mean return hides a mixture: with RLlib's state-dependent action std, an
RL² policy on Navigation2D solved most trials (median episode returns -7.5
and -6.1) and gave up on about one in five, switching to log std 8-11 (its
clipped actions a random walk) for the rest of the trial (returns -50 to
-165). This script shows that split for any RL² checkpoint with a Gaussian
policy.

How to run (2 cores, about a minute per checkpoint; the 100-task file has the
seeds of the free-log-std runs):
    cd benchmarks/results
    python ../rl2_trials.py --tasks 40 --checkpoint \
        learning_rl2_navigation2d_state/seed0/checkpoint \
        learning_rl2_navigation2d_free_std_state/seed0/checkpoint \
        --output rl2_trials_navigation2d.json
    python ../rl2_trials.py --tasks 100 --checkpoint \
        learning_rl2_navigation2d_free_std_state/seed{0,1,2}/checkpoint \
        --output rl2_trials_navigation2d_free_std.json
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from _common import write_results
from ray.rllib.core.columns import Columns

from rllib_maml.envs.base import env_from_config, sample_tasks_checked
from rllib_maml.rl2 import TRIAL_RETURNS_INFO_KEY, RL2Policy

# A trial "gave up" where the policy's action log std went above this
# (RL2Config's policies start at 0 and train below it).
GAVE_UP_LOG_STD = 2.0


def trials(policy: RL2Policy, num_tasks: int, seed: int) -> dict:
    """One trial per task (the env's own task draws, seeded): returns of each
    inner episode and the largest log std, per trial."""
    env = env_from_config(policy.config)
    env.reset(seed=seed)
    tasks = sample_tasks_checked(env, num_tasks)
    env.close()
    done = policy.trials(tasks, seed=seed)
    returns = np.array([e.get_infos(-1)[TRIAL_RETURNS_INFO_KEY] for e in done])
    max_log_std = np.array(
        [
            np.asarray(e.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS))
            .reshape(len(e), 2, -1)[:, 1]
            .max()
            for e in done
        ]
    )
    gave_up = max_log_std > GAVE_UP_LOG_STD
    return {
        "returns": returns.tolist(),
        "max_log_std": max_log_std.tolist(),
        "mean": returns.mean(0).tolist(),
        "median": np.median(returns, 0).tolist(),
        "worst": returns.min(0).tolist(),
        "gave_up_fraction": float(gave_up.mean()),
        "median_where_not_gave_up": np.median(returns[~gave_up], 0).tolist()
        if (~gave_up).any()
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", nargs="+", required=True)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    results = {}
    for path in args.checkpoint:
        result = trials(RL2Policy.from_checkpoint(path), args.tasks, args.seed)
        results[path] = result
        print(
            f"{path}: mean {np.round(result['mean'], 1)}, median "
            f"{np.round(result['median'], 1)}, gave up in "
            f"{result['gave_up_fraction']:.0%} of trials, worst "
            f"{np.round(result['worst'], 1)}",
            flush=True,
        )
    write_results(args.output, "RL² trials", args, checkpoints=results)


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    main()
