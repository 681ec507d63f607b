"""Learning curves of several `run.py` results on one axis (e.g. RL² next to
MAML at the same env-step budget).

How to run (the HalfCheetahRandVel comparison in benchmarks/README.md):
    python benchmarks/learning/compare.py \
        --run rl2=benchmarks/results/learning_rl2_halfcheetah_rand_vel_2m.json \
        --run maml=benchmarks/results/learning_halfcheetah_rand_vel_2m.json \
        --title HalfCheetahRandVel-v0 \
        --output benchmarks/results/learning_halfcheetah_rand_vel_2m_rl2_maml.png

PEARL next to MAML and RL² on Navigation2D (budgets 30x apart: --log-steps):
    python benchmarks/learning/compare.py \
        --run pearl=benchmarks/results/learning_pearl_navigation2d.json \
        --run maml=benchmarks/results/learning_navigation2d_fast_trpo.json \
        --run rl2=benchmarks/results/learning_rl2_navigation2d_free_std.json \
        --title Navigation2D-v0 --log-steps \
        --output benchmarks/results/learning_navigation2d_pearl_maml_rl2.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from run import plot_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run", action="append", required=True, help="NAME=path to a run.py JSON"
    )
    parser.add_argument("--title", default="")
    parser.add_argument(
        "--log-steps", action="store_true", help="env steps on a log axis"
    )
    parser.add_argument("--output", required=True, help="PNG path")
    args = parser.parse_args()
    named = {}
    for item in args.run:
        name, sep, path = item.partition("=")
        if not sep:
            parser.error(f"--run {item!r}: give NAME=path, e.g. rl2=results/x.json")
        named[name] = json.loads(Path(path).read_text())["runs"]
    plot_runs(named, args.output, args.title, log_steps=args.log_steps)
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
