"""Soak: many MAML iterations; per-iteration time and memory must not drift upward.

Trains a meta env (default Navigation2D-v0) with 2 env runners x 10 envs, 10
tasks x 10 episodes, and records, per iteration, the wall-clock and the
resident memory (RSS) of the driver and of each env runner. Drift is the
change of the mean over the last 20 iterations against the mean of iterations
11-30 (after warm-up).

How to run:
    python benchmarks/soak.py   # 200 iterations -> benchmarks/results/soak.json
    python benchmarks/soak.py --iterations 50 --env rllib_maml/HalfCheetahRandDirec-v0 \
        --output benchmarks/results/soak_halfcheetah.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import numpy as np
import ray
from _common import RESULTS, write_results

import rllib_maml  # noqa: F401  (registers the envs)
from rllib_maml import MAMLConfig


def rss_mb(pid: int | None = None) -> float:
    """Current resident memory of a process in MB (Linux /proc)."""
    with open(f"/proc/{pid or os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def drift(values: list[float]) -> dict[str, float]:
    early, late = np.mean(values[10:30]), np.mean(values[-20:])
    return {"early_mean": early, "late_mean": late, "relative_change": late / early - 1}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--env", default="rllib_maml/Navigation2D-v0")
    parser.add_argument("--meta-batch-size", type=int, default=10)
    parser.add_argument("--episodes-per-task", type=int, default=10)
    parser.add_argument("--output", default=str(RESULTS / "soak.json"))
    args = parser.parse_args()
    ray.init(include_dashboard=False, log_to_driver=False)
    config = (
        MAMLConfig()
        .environment(args.env)
        .env_runners(
            num_env_runners=2, num_envs_per_env_runner=10, num_cpus_per_env_runner=0.5
        )
        .training(
            meta_batch_size=args.meta_batch_size,
            episodes_per_task=args.episodes_per_task,
        )
        .debugging(seed=0)
    )
    algo = config.build_algo()
    runner_pids = algo.env_runner_group.foreach_env_runner(
        lambda runner: os.getpid(), local_env_runner=False
    )
    seconds, driver_mb, runner_mb, post = [], [], [], []
    for i in range(args.iterations):
        start = time.perf_counter()
        result = algo.train()
        seconds.append(time.perf_counter() - start)
        driver_mb.append(rss_mb())
        runner_mb.append([rss_mb(pid) for pid in runner_pids])
        post.append(result["env_runners"]["episode_return_mean_adapt_1"])
        if (i + 1) % 20 == 0:
            print(
                f"iter {i + 1}: {seconds[-1]:.2f} s, driver {driver_mb[-1]:.0f} MB, "
                f"runners {[round(m) for m in runner_mb[-1]]} MB, post {post[-1]:.1f}",
                flush=True,
            )
    algo.stop()
    summary = {
        "seconds_per_iteration": drift(seconds),
        "driver_rss_mb": {**drift(driver_mb), "peak": max(driver_mb)},
        "env_runner_rss_mb": {
            **drift([max(m) for m in runner_mb]),
            "peak": max(max(m) for m in runner_mb),
        },
    }
    print(json.dumps(summary, indent=2))
    write_results(
        args.output,
        "soak: per-iteration time and memory over many iterations",
        args,
        **summary,
        per_iteration={
            "seconds": seconds,
            "driver_rss_mb": driver_mb,
            "env_runner_rss_mb": runner_mb,
            "post_adaptation_return": post,
        },
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
