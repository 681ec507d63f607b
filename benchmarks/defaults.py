"""The README's plain config against the tuned example, side by side in one run.

At the MAML paper's Navigation2D setting (20 tasks x 20 episodes x horizon 100,
one inner step, 2 env runners), for each outer optimizer:

- `readme_default`: `MAMLConfig().environment(...).env_runners(
  num_env_runners=2).training(meta_batch_size=20, episodes_per_task=20)`,
  nothing else set (what the README's "Use" section shows);
- `tuned_example`: the sampling settings of `examples/tuned/navigation2d.yaml`
  (200 envs per runner, `gym_env_vectorize_mode="vector_entry_point"`).

Each variant builds MAML, runs a warm-up iteration, then times `--iterations`
iterations (median seconds per iteration, per-phase breakdown). The script
runs on any version of the package, so the same command measures a previous
checkout (put it first on `PYTHONPATH`).

How to run:
    python benchmarks/defaults.py    # writes benchmarks/results/defaults.json
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

VARIANTS = ("readme_default", "tuned_example")


def make_config(variant: str, outer_optimizer: str) -> MAMLConfig:
    config = (
        MAMLConfig()
        .environment("rllib_maml/Navigation2D-v0")
        .env_runners(num_env_runners=2)
        .training(
            meta_batch_size=20,
            episodes_per_task=20,
            outer_optimizer=outer_optimizer,
        )
        .debugging(seed=0)
    )
    if variant == "tuned_example":
        config.env_runners(
            num_envs_per_env_runner=200, gym_env_vectorize_mode="vector_entry_point"
        )
    return config


def run(variant: str, outer_optimizer: str, warmup: int, iterations: int) -> dict:
    config = make_config(variant, outer_optimizer)
    algo = config.build_algo()
    try:
        for _ in range(warmup):
            algo.train()
        walls, phases = [], {}
        for _ in range(iterations):
            start = time.perf_counter()
            result = algo.train()
            walls.append(time.perf_counter() - start)
            for name, seconds in result["timers"]["iteration_seconds"].items():
                phases.setdefault(name, []).append(seconds)
        used = algo.config
        return {
            "variant": variant,
            "outer_optimizer": outer_optimizer,
            "num_envs_per_env_runner": used.num_envs_per_env_runner,
            "gym_env_vectorize_mode": str(used.gym_env_vectorize_mode),
            "median_seconds_per_iteration": float(np.median(walls)),
            "iteration_seconds": walls,
            "median_phase_seconds": {
                name: float(np.median(v)) for name, v in phases.items()
            },
            "post_adaptation_return": result["env_runners"].get(
                "episode_return_mean_adapt_1"
            ),
        }
    finally:
        algo.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outer-optimizers", nargs="+", default=["ppo", "trpo"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--output", default=str(RESULTS / "defaults.json"))
    args = parser.parse_args()
    ray.init(include_dashboard=False, log_to_driver=False)
    rows = []
    for optimizer in args.outer_optimizers:
        for variant in args.variants:
            rows.append(run(variant, optimizer, args.warmup, args.iterations))
            print(json.dumps(rows[-1]), flush=True)
        by_variant = {
            r["variant"]: r for r in rows if r["outer_optimizer"] == optimizer
        }
        if set(VARIANTS) <= set(by_variant):
            ratio = (
                by_variant["readme_default"]["median_seconds_per_iteration"]
                / by_variant["tuned_example"]["median_seconds_per_iteration"]
            )
            by_variant["readme_default"]["ratio_to_tuned_example"] = ratio
            print(f"{optimizer}: readme_default / tuned_example = {ratio:.2f}")
    write_results(
        args.output,
        "README config vs tuned example at the MAML paper's Navigation2D setting",
        args,
        results=rows,
        package=rllib_maml.__file__,
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
