"""MAML env steps per second over 1..R remote env runners, with a time breakdown.

Each setting builds MAML, runs warm-up iterations, then times `--iterations`
iterations: env steps sampled per second of wall-clock (end to end) and of
sampling alone, and the per-iteration breakdown the result's timers give
(sampling per adaptation step, inner adaptation, meta-update, weight sync).
Every runner gets `--cpus-per-runner` CPUs.

How to run:
    python benchmarks/scaling.py                         # 1 and 2 runners (2 cores)
    python benchmarks/scaling.py --runners 1 4 8 15      # a 16-core machine

`--vectorize-mode vector_entry_point` steps Navigation2D as arrays;
`--per-task-sampling` samples each task with `EnvRunner.sample()` instead of
several tasks per batched pass. `paper_iteration.py` compares these at the
MAML paper's setting.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import ray
from _common import RESULTS, write_results

import rllib_maml  # noqa: F401  (registers the envs)
from rllib_maml import MAMLConfig

PHASES = (
    "sampling_step_0",
    "sampling_step_1",
    "inner_adaptation",
    "meta_update",
    "weight_sync",
)


def run(args, runners: int) -> dict:
    config = (
        MAMLConfig()
        .environment(args.env)
        .env_runners(
            num_env_runners=runners,
            num_envs_per_env_runner=args.envs_per_runner,
            num_cpus_per_env_runner=args.cpus_per_runner,
            gym_env_vectorize_mode=args.vectorize_mode,
        )
        .training(
            meta_batch_size=args.meta_batch_size,
            episodes_per_task=args.episodes_per_task,
            outer_optimizer=args.outer_optimizer,
            batched_sampling=not args.per_task_sampling,
            batched_meta_loss=args.meta_loss == "batched",
        )
        .debugging(seed=0)
    )
    algo = config.build_algo()
    for _ in range(args.warmup):
        algo.train()
    breakdown = {name: [] for name in PHASES}
    steps, sampling = [], []
    start = time.perf_counter()
    for _ in range(args.iterations):
        before = time.perf_counter()
        result = algo.train()
        wall = time.perf_counter() - before
        seconds = result["timers"]["iteration_seconds"]  # this iteration's
        for name in PHASES:
            breakdown[name].append(seconds[name])
        steps.append(result["env_runners"]["num_env_steps_sampled"])
        sampling.append(seconds["sampling_step_0"] + seconds["sampling_step_1"])
        breakdown.setdefault("total", []).append(wall)
    wall = time.perf_counter() - start
    algo.stop()
    return {
        "num_env_runners": runners,
        "env_steps_per_iteration": float(np.mean(steps)),
        "end_to_end_env_steps_per_s": float(np.sum(steps) / wall),
        "sampling_env_steps_per_s": float(np.sum(steps) / np.sum(sampling)),
        "seconds_per_iteration": {k: float(np.mean(v)) for k, v in breakdown.items()},
        "median_seconds_per_iteration": float(np.median(breakdown["total"])),
        "iteration_seconds": [float(x) for x in breakdown["total"]],
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def add_setting_arguments(parser: argparse.ArgumentParser) -> None:
    """The MAML and env-runner settings every timing benchmark takes."""
    parser.add_argument("--env", default="rllib_maml/Navigation2D-v0")
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpus-per-runner", type=float, default=1.0)
    parser.add_argument("--envs-per-runner", type=int, default=10)
    parser.add_argument("--meta-batch-size", type=int, default=10)
    parser.add_argument("--episodes-per-task", type=int, default=10)
    parser.add_argument(
        "--vectorize-mode",
        default="sync",
        choices=["sync", "async", "vector_entry_point"],
    )
    parser.add_argument("--outer-optimizer", default="ppo", choices=["ppo", "trpo"])
    parser.add_argument("--per-task-sampling", action="store_true")
    parser.add_argument(
        "--meta-loss",
        default="batched",
        choices=["batched", "loop"],
        help="batched_meta_loss True (one vmap pass) or False (a loop over tasks)",
    )
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=4)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_setting_arguments(parser)
    parser.add_argument("--output", default=str(RESULTS / "scaling.json"))
    args = parser.parse_args()
    ray.init(include_dashboard=False, log_to_driver=False)
    rows = []
    for runners in args.runners:
        rows.append(run(args, runners))
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["end_to_end_env_steps_per_s"]
    for row in rows:
        row["speedup_over_first"] = row["end_to_end_env_steps_per_s"] / base
    write_results(args.output, "MAML scaling over env runners", args, results=rows)
    ray.shutdown()


if __name__ == "__main__":
    main()
