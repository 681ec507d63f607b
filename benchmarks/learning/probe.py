"""Short single-seed probes of settings around a tuned example.

Trains the tuned example and each variant (one `--set` change) with
`benchmarks/learning/run.py` on the same seed for the same env-step budget, and
reports the mean post-adaptation return over the second half of the budget and
the held-out return after one adaptation step. A probe ranks settings early in
training; it does not predict the return at the full budget.

How to run (HalfCheetahRandDirec-v0, 3.2M env steps per variant, about 50
minutes on 2 cores):
    python benchmarks/learning/probe.py \
        --output benchmarks/results/probes_halfcheetah_rand_direc
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import write_results  # noqa: E402

RUN = Path(__file__).with_name("run.py")

# (name, --set overrides, env steps per iteration relative to the example)
VARIANTS = [
    ("tuned example", [], 1),
    ("lr 0.003", ["training.lr=0.003"], 1),
    ("inner_lr 0.2", ["training.inner_lr=0.2"], 1),
    ("10 episodes per task", ["training.episodes_per_task=10"], 0.5),
    (
        "initial_action_std 0.15",
        ['rl_module.model_config={"initial_action_std": 0.15}'],
        1,
    ),
    (
        "initial_action_std 0.5",
        ['rl_module.model_config={"initial_action_std": 0.5}'],
        1,
    ),
    (
        "hidden 128x128",
        [
            'rl_module.model_config={"initial_action_std": 0.3, '
            '"fcnet_hiddens": [128, 128]}'
        ],
        1,
    ),
    ("kl_target 0.02", ["training.kl_target=0.02"], 1),
    ("kl_target 0.04", ["training.kl_target=0.04"], 1),
]


def probe(args, index: int, name: str, sets: list[str], scale: float) -> dict:
    iterations = round(args.iterations / scale)
    # The name and length in the path: a finished run is reused only as itself.
    slug = re.sub(r"\W+", "_", name).strip("_")
    output = f"{args.output}_state/{slug}_{iterations}iters"
    command = [
        sys.executable,
        str(RUN),
        "--config",
        args.config,
        "--seeds",
        str(args.seed),
        "--baselines",
        "",
        "--stop-iters",
        str(iterations),
        "--output",
        output,
    ] + [x for s in sets for x in ("--set", s)]
    print(f"[{index + 1}/{len(VARIANTS)}] {name}: {' '.join(command)}", flush=True)
    subprocess.run(command, check=True)
    run = json.loads(Path(output + ".json").read_text())["runs"][0]
    curve = run["curve"]
    half = len(curve["post"]) // 2
    return {
        "variant": name,
        "set": sets,
        "iterations": len(curve["post"]),
        "env_steps": curve["env_steps"][-1],
        "post_mean_second_half": float(np.mean(curve["post"][half:])),
        "pre_mean_second_half": float(np.mean(curve["pre"][half:])),
        "heldout_after_steps": run["evaluation"]["methods"]["maml"]["return_mean"],
        "wall_clock_s": run["wall_clock_s"],
        "post_curve": curve["post"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--config", default="examples/tuned/halfcheetah_rand_direc.yaml"
    )
    parser.add_argument(
        "--iterations", type=int, default=20, help="of the tuned example's size"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, help="path without extension")
    args = parser.parse_args()
    results = []
    for i, (name, sets, scale) in enumerate(VARIANTS):
        results.append(probe(args, i, name, sets, scale))
        if results[-1]["env_steps"] != results[0]["env_steps"]:
            raise RuntimeError(
                f"Variant {name!r} ran {results[-1]['env_steps']:,.0f} env steps, "
                f"the tuned example {results[0]['env_steps']:,.0f}: its scale in "
                "VARIANTS (env steps per iteration relative to the example) is "
                "wrong. Fix the scale so every variant gets the same budget."
            )
        write_results(args.output + ".json", "probes", args, results=results)
    print(f"{'variant':<26} {'post (2nd half)':>16} {'held-out 1 step':>16}")
    for r in results:
        print(
            f"{r['variant']:<26} {r['post_mean_second_half']:>16.1f} "
            f"{r['heldout_after_steps'][1]:>16.1f}"
        )


if __name__ == "__main__":
    main()
