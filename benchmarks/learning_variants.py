"""Learning per second of each MAML variant on Navigation2D-v0 (one seed each).

Trains every (outer_optimizer, meta_gradient) pair with the learning test's
settings (2 env runners x 5 envs, 10 tasks x 10 episodes, one inner step) for a
fixed number of iterations and reports the post-adaptation return and
adaptation_delta over the last 5 iterations, next to the wall-clock.

How to run:
    python benchmarks/learning_variants.py   # -> benchmarks/results/*.json
    python benchmarks/learning_variants.py --iterations 10 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import ray
from _common import RESULTS, write_results

import rllib_maml  # noqa: F401  (registers the envs)
from rllib_maml import MAMLConfig
from rllib_maml.progress import post_adaptation_return

VARIANTS = [
    ("ppo", "second_order"),
    ("ppo", "first_order"),
    ("trpo", "second_order"),
    ("trpo", "first_order"),
]


def train(
    outer_optimizer: str, meta_gradient: str, seed: int, iterations: int, last: int
):
    config = (
        MAMLConfig()
        .environment("rllib_maml/Navigation2D-v0")
        .env_runners(
            num_env_runners=2, num_envs_per_env_runner=5, num_cpus_per_env_runner=0.5
        )
        .training(
            meta_batch_size=10,
            episodes_per_task=10,
            outer_optimizer=outer_optimizer,
            meta_gradient=meta_gradient,
        )
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    start = time.perf_counter()
    results = [algo.train() for _ in range(iterations)]
    wall = time.perf_counter() - start
    algo.stop()
    tail = results[-last:]
    return {
        "outer_optimizer": outer_optimizer,
        "meta_gradient": meta_gradient,
        "seed": seed,
        "iterations": iterations,
        "env_steps": int(results[-1]["env_runners"]["num_env_steps_sampled_lifetime"]),
        "wall_clock_s": wall,
        "pre_adaptation_return_last": float(
            np.mean([r["env_runners"]["episode_return_mean"] for r in tail])
        ),
        "post_adaptation_return_last": float(
            np.mean([post_adaptation_return(r) for r in tail])
        ),
        "adaptation_delta_last": float(np.mean([r["adaptation_delta"] for r in tail])),
        "post_adaptation_return_curve": [post_adaptation_return(r) for r in results],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--last", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--output", default=str(RESULTS / "learning_variants.json"))
    args = parser.parse_args()
    ray.init(include_dashboard=False, log_to_driver=False)
    rows = []
    for seed in args.seeds:
        for outer_optimizer, meta_gradient in VARIANTS:
            row = train(
                outer_optimizer, meta_gradient, seed, args.iterations, args.last
            )
            rows.append(row)
            print(
                json.dumps({k: v for k, v in row.items() if "curve" not in k}),
                flush=True,
            )
    write_results(
        args.output, "learning per variant, Navigation2D-v0", args, results=rows
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
