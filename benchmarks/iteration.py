"""Seconds per iteration of a tuned example, with the per-phase breakdown.

Builds MAML from a tuned example's YAML (as `rllib-maml train --config` does,
`--set` overrides included), runs `--warmup` iterations, then times
`--iterations` more: median wall-clock seconds per iteration and the median
of each phase the algorithm reports (`timers/iteration_seconds`: weight sync,
sampling per adaptation step, inner adaptation, meta-update). The script uses
only the command line's config loader and `algo.train()`, so the same file
times an older checkout (put it first on `PYTHONPATH`, run from its root).

How to run:
    python benchmarks/iteration.py --config examples/tuned/halfcheetah_rand_direc.yaml \
        --output benchmarks/results/iteration_halfcheetah_rand_direc.json
    python benchmarks/iteration.py --config examples/tuned/navigation2d.yaml \
        --set training.outer_optimizer=ppo --output /tmp/navigation2d_ppo.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import write_results

import rllib_maml
from rllib_maml.cli import build_config, make_parser


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    cli_args = make_parser().parse_args(
        ["train", "--config", args.config, *(f"--set={s}" for s in args.set)]
    )
    config, _, _ = build_config(cli_args)
    config.debugging(seed=0)
    algo = config.build_algo()
    try:
        for _ in range(args.warmup):
            algo.train()
        walls, phases = [], {}
        for i in range(args.iterations):
            start = time.perf_counter()
            result = algo.train()
            walls.append(time.perf_counter() - start)
            for name, seconds in result["timers"]["iteration_seconds"].items():
                phases.setdefault(name, []).append(seconds)
            print(f"iteration {i + 1}: {walls[-1]:.2f} s", flush=True)
        env_steps = result["env_runners"]["num_env_steps_sampled"]
    finally:
        algo.stop()
    median = float(np.median(walls))
    phase_medians = {name: float(np.median(v)) for name, v in phases.items()}
    print(f"median {median:.2f} s per iteration; phases {phase_medians}")
    write_results(
        args.output,
        "seconds per iteration of a tuned example, per phase",
        args,
        package=rllib_maml.__file__,
        outer_optimizer=config.outer_optimizer,
        env_steps_per_iteration=float(env_steps),
        median_seconds_per_iteration=median,
        iteration_seconds=walls,
        median_phase_seconds=phase_medians,
    )


if __name__ == "__main__":
    main()
