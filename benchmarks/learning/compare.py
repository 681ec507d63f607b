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

PEARL (horizon 200, returns halved: per 100 steps) next to MAML and RL²
(horizon 100) on HalfCheetahRandVel:
    python benchmarks/learning/compare.py \
        --run pearl=benchmarks/results/learning_pearl_halfcheetah_rand_vel.json \
        --run maml=benchmarks/results/learning_halfcheetah_rand_vel_2m.json \
        --run rl2=benchmarks/results/learning_rl2_halfcheetah_rand_vel_2m.json \
        --scale pearl=0.5 --title "HalfCheetahRandVel-v0, return per 100 steps" \
        --log-steps \
        --output benchmarks/results/learning_halfcheetah_rand_vel_pearl_maml_rl2.png
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
    parser.add_argument(
        "--scale",
        action="append",
        default=[],
        help="NAME=FACTOR: that run's returns times FACTOR (e.g. pearl=0.5 puts "
        "horizon-200 returns per 100 steps next to horizon-100 runs)",
    )
    parser.add_argument("--output", required=True, help="PNG path")
    args = parser.parse_args()
    named = {}
    for item in args.run:
        name, sep, path = item.partition("=")
        if not sep:
            parser.error(f"--run {item!r}: give NAME=path, e.g. rl2=results/x.json")
        named[name] = json.loads(Path(path).read_text())["runs"]
    for item in args.scale:
        name, sep, factor = item.partition("=")
        try:
            factor = float(factor) if sep else None
        except ValueError:
            factor = None
        if name not in named or factor is None:
            parser.error(
                f"--scale {item!r}: give NAME=FACTOR with NAME one of the --run "
                f"names {sorted(named)}, e.g. {next(iter(named))}=0.5"
            )
        named = {
            (f"{key} x{factor:g}" if key == name else key): (
                [_scaled(r, factor) for r in runs] if key == name else runs
            )
            for key, runs in named.items()
        }
    plot_runs(named, args.output, args.title, log_steps=args.log_steps)
    print(f"Wrote {args.output}")


def _scaled(run: dict, factor: float) -> dict:
    """`run` with its pre and post curves times `factor`."""
    curve = dict(run["curve"])
    for key in ("pre", "post"):
        curve[key] = [v * factor for v in curve[key]]
    return {**run, "curve": curve}


if __name__ == "__main__":
    main()
