"""The results table: one row per shipped env (and Meta-World env), from the
committed results.

Each row reads a `benchmarks/learning/run.py` result (training curve, held-out
evaluation per seed, baselines on the first seed's tasks) or an
`rllib-maml evaluate` report, and shows: the env-step budget, seeds, the
held-out return before adaptation and after 1, 2, 3 inner steps (mean over
seeds), the random and pretrained baselines on the same tasks (before -> after
one step), the success rate where the env reports one, the wall-clock per
seed, and the command that produced it. Envs without a run say why.

    python benchmarks/results_table.py   # prints it, writes results/results_table.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS  # noqa: E402

ANT_WHY = (
    "no adaptation at this budget: one inner step moves the held-out return by "
    "less than 1.5 standard errors, as it does the pretrained policy's; the "
    "meta-policy is well above the random init; the tuned example's budget is "
    "20M env steps (125 iterations)"
)
RUN = "python benchmarks/learning/run.py --config examples/tuned/{config}.yaml"
EVALUATE = "rllib-maml evaluate --checkpoint {checkpoint} {flags}"

# (env, result file under results/ or None, command, note). A row with an
# evaluation report gives its budget in the note's "budget" key.
ROWS: list[dict] = [
    {
        "env": "Navigation2D-v0 (TRPO)",
        "result": "learning_navigation2d_fast_trpo.json",
        "command": RUN.format(config="navigation2d")
        + " --stop-iters 40 --baselines ''",
        "why": "seeds 0, 1 reach -13.3, -12.6 after one step in training; seed 2 "
        "settles in the corner regime (-37)",
    },
    {
        "env": "CartPoleMass-v0",
        "result": "table_cartpole_mass.json",
        "command": RUN.format(config="cartpole_mass")
        + " --stop-iters 40 --seeds 0 --baselines random,pretrained",
        "why": "nothing to adapt: the meta-policy is at the 200-step cap before "
        "any step, and the task-blind pretrained policy at 193",
    },
    {
        "env": "ParameterizedCartPole-v0 (pole_length)",
        "result": "table_parameterized_cartpole.json",
        "command": RUN.format(config="parameterized_cartpole")
        + " --stop-iters 40 --seeds 0 --baselines random,pretrained",
        "why": "nothing to adapt, as CartPoleMass: one policy balances every pole "
        "length",
    },
    {
        "env": "ParameterizedCartPole-v0 (force_direction)",
        "result": "learning_cartpole_force_direction.json",
        "command": RUN.format(config="parameterized_cartpole_force_direction")
        + " --stop-iters 70 --baselines random,pretrained",
        "why": "adapts; RL²: task-blind at 0.96M env steps (97.3 → 100.6)",
    },
    {
        "env": "ParameterizedCartPole-v0 (force_direction, 3M)",
        "result": "learning_cartpole_force_direction_3m.json",
        "command": RUN.format(config="parameterized_cartpole_force_direction")
        + " --stop-iters 150 --baselines ''",
        "why": "adapts; RL² at 3.0M, episode 1 → 2: 190.3 → 194.8 (it reads the "
        "push direction within episode 1)",
    },
    {
        "env": "PendulumMass-v0",
        "result": "table_pendulum_mass.json",
        "command": RUN.format(config="pendulum_mass")
        + " --stop-iters 40 --seeds 0 --baselines random,pretrained",
        "why": "adapts a little: +48 ± 19 after one step (2.5 standard errors); "
        "the swing-up itself is not learned at this budget",
    },
    {
        "env": "MountainCarContinuousMeta-v0",
        "result": "learning_mountain_car_meta.json",
        "command": RUN.format(config="mountain_car_meta")
        + " --stop-iters 30 --seeds 0 --baselines random",
        "why": "no adaptation: a few episodes of the near-random first 2 "
        "iterations reached the goal, none after (all ran the 999 steps); with "
        "only the force penalty left the policy learned to stand still (return "
        "-50 → -1.5), and the inner step adds force (-1.4 → -11.9). The sparse "
        "goal needs exploration this setting lacks",
    },
    {
        "env": "HalfCheetahRandDirec-v0 (ProMP)",
        "result": "learning_halfcheetah_rand_direc.json",
        "command": RUN.format(config="halfcheetah_rand_direc") + " --baselines random",
    },
    {
        "env": "HalfCheetahRandDirec-v0 (ProMP, 40 iterations)",
        "result": "table_halfcheetah_rand_direc.json",
        "command": RUN.format(config="halfcheetah_rand_direc")
        + " --stop-iters 40 --seeds 0 --baselines random,pretrained",
    },
    {
        "env": "HalfCheetahBackward-v0 (held out; the 40-iteration RandDirec policy)",
        "result": "evaluation_halfcheetah_backward/evaluation.json",
        "budget_from": "table_halfcheetah_rand_direc.json",
        "why": "budget and wall-clock: the RandDirec training; filmed "
        "(`evaluation_halfcheetah_backward/videos/`)",
        "command": EVALUATE.format(
            checkpoint="benchmarks/results/table_halfcheetah_rand_direc_state/seed0/"
            "checkpoint",
            flags="--env rllib_maml/HalfCheetahBackward-v0 --baselines "
            "random,pretrained --tasks 20 --steps 3 --seed 0 --output "
            "benchmarks/results/evaluation_halfcheetah_backward --video "
            "benchmarks/results/evaluation_halfcheetah_backward/videos",
        ),
    },
    {
        "env": "HalfCheetahRandVel-v0",
        "result": "learning_halfcheetah_rand_vel_2m.json",
        "command": RUN.format(config="halfcheetah_rand_vel")
        + " --stop-iters 13 --seeds 0 --baselines ''",
        "why": "no adaptation at 2M env steps; the tuned example's budget is 20M. "
        "PEARL adapts at 240k env steps (horizon 200, 3 seeds): -167.4 → -104.3 "
        "after one episode of context → -70.1 after three (the PEARL section)",
    },
    *[
        {
            "env": f"{name}-v0 (ProMP, 20 iterations)",
            "result": f"table_{config}.json",
            "command": RUN.format(config=config)
            + " --stop-iters 20 --seeds 0 --baselines random,pretrained",
            "why": ANT_WHY,
        }
        for name, config in (
            ("AntRandDirec", "ant_rand_direc"),
            ("AntRandVel", "ant_rand_vel"),
        )
    ],
    {
        "env": "AntRandGoal-v0 (ProMP, 5 iterations)",
        "result": "table_ant_rand_goal.json",
        "command": RUN.format(config="ant_rand_goal")
        + " --stop-iters 5 --seeds 0 --baselines random,pretrained",
        "why": "no adaptation at this budget (+14 ± 27 after one step), barely "
        "above the random init; 384,000 env steps and 2.2 minutes per iteration "
        "here, the tuned budget is 20M env steps",
    },
    {
        "env": "MetaWorldML1-v0 reach-v3 (TRPO)",
        "result": "evaluation_metaworld_ml1_reach_20it/evaluation.json",
        "budget_from_curve": "learning_metaworld_ml1_reach_state/seed0/curve.json",
        "why": "the benchmark's test goals; success of the pretrained policy "
        "0.33 → 0.68, of the random init 0.05 → 0.15; published MAML about 0.48 "
        "(v1 envs, read off a 2019 chart, budget not given)",
        "command": EVALUATE.format(
            checkpoint="benchmarks/results/learning_metaworld_ml1_reach_state/seed0/"
            "checkpoint",
            flags="--baselines random,pretrained --tasks 20 --steps 1 --seed 0",
        ),
    },
    {
        "env": "MetaWorldML1-v0 push-v3 (TRPO)",
        "result": "learning_metaworld_ml1_push.json",
        "command": RUN.format(config="metaworld_ml1_push")
        + " --stop-iters 20 --seeds 0 --baselines random,pretrained --save-every 5",
        "why": "the benchmark's test goals, the reach run's budget; success of "
        "the pretrained policy 0.08 → 0.06, of the random init 0.00 → 0.01; "
        "published MAML about 0.74 (v1 envs, read off a 2019 chart, budget not "
        "given)",
    },
    *[
        {
            "env": f"MetaWorld{kind}-v0{name}",
            "result": None,
            "command": RUN.format(config=config) + " --seeds 0 --save-every 5",
            "why": f"not run yet: {why}",
        }
        for kind, name, config, why in (
            (
                "ML1",
                " pick-place-v3",
                "metaworld_ml1_pick_place",
                "it steps as slowly as push (`env_speed.json`), whose 20 "
                "iterations took 76 minutes here",
            ),
            (
                "ML10",
                "",
                "metaworld_ml10",
                "push's 20 iterations took 76 minutes here, and ML10's budget "
                "is 300 iterations",
            ),
            (
                "ML45",
                "",
                "metaworld_ml45",
                "the tuned example's 900,000 env steps per iteration (45 tasks "
                "x 20 episodes x 500 steps, twice) are 4.5 times push's, over "
                "2,000 iterations: a cluster's budget",
            ),
        )
    ],
]


def _with_output(row: dict) -> dict:
    """run.py commands name their output: the row's result file."""
    if row["command"].startswith("python benchmarks/learning/run.py"):
        config = row["command"].split("examples/tuned/")[1].split(".yaml")[0]
        name = (row["result"] or f"learning_{config}").removesuffix(".json")
        row["command"] += f" --output benchmarks/results/{name}"
    return row


ROWS = [_with_output(row) for row in ROWS]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def row_numbers(row: dict) -> dict | None:
    """The numbers of one row, or None where the result is missing."""
    if row["result"] is None or not (RESULTS / row["result"]).exists():
        return None
    data = json.loads((RESULTS / row["result"]).read_text())
    if "summary" in data:  # a run.py result
        summary, runs = data["summary"], data["runs"]
        method = summary.get("heldout_method", "maml")
        rates = [
            r["evaluation"]["methods"][method].get("success_rate_mean") for r in runs
        ]
        return {
            "env_steps": summary["env_steps"],
            "seeds": summary["seeds"],
            "heldout": summary["heldout_after_steps_mean_over_seeds"],
            "baselines": summary["baselines_first_seed"],
            # Mean over seeds, as the returns.
            "success": [sum(v) / len(v) for v in zip(*rates)] if all(rates) else None,
            "wall_s": _mean(summary["wall_clock_s_per_seed"]),
        }
    methods = data["methods"]  # an evaluation report
    numbers = {
        "heldout": methods["maml"]["return_mean"],
        "baselines": {
            name: entry["return_mean"]
            for name, entry in methods.items()
            if name in ("random", "pretrained")
        },
        "success": methods["maml"].get("success_rate_mean"),
        "seeds": [0],
        "env_steps": None,
        "wall_s": None,
    }
    if "budget_from" in row and (RESULTS / row["budget_from"]).exists():
        source = json.loads((RESULTS / row["budget_from"]).read_text())["summary"]
        numbers["env_steps"] = source["env_steps"]
        numbers["seeds"] = source["seeds"][:1]
        numbers["wall_s"] = source["wall_clock_s_per_seed"][0]
    if "budget_from_curve" in row:
        curve = json.loads((RESULTS / row["budget_from_curve"]).read_text())
        numbers["env_steps"] = curve["env_steps"][-1]
        numbers["wall_s"] = curve["wall_s"][-1]
    return numbers


def markdown() -> str:
    """The table, then each row's command."""
    lines = [
        "| env | budget (env steps) | seeds | before | after 1 step | 2 | 3 | "
        "random (0 → 1 step) | pretrained (0 → 1 step) | success (0 → 1 step) | "
        "wall-clock per seed | note |",
        "|---|---:|---|---:|---:|---:|---:|---|---|---|---:|---|",
    ]
    commands = []
    for row in ROWS:
        commands.append(f"- `{row['env']}`: `{row['command']}`")
        numbers = row_numbers(row)
        note = row.get("why", "")
        if numbers is None:
            note = note or "result missing"
            lines.append(f"| `{row['env']}` | | | | | | | | | | | {note} |")
            continue
        held = numbers["heldout"] + [None] * (4 - len(numbers["heldout"]))
        cells = [f"{v:.1f}" if v is not None else "" for v in held[:4]]

        def rate_pair(values):
            return (
                f"{values[0]:.2f} → {values[1]:.2f}"
                if values and len(values) > 1
                else ""
            )

        def pair(values):
            return (
                f"{values[0]:.1f} → {values[1]:.1f}"
                if values and len(values) > 1
                else ""
            )

        success, steps, wall = (
            numbers["success"],
            numbers["env_steps"],
            numbers["wall_s"],
        )
        lines.append(
            f"| `{row['env']}` | {f'{steps / 1e6:.1f}M' if steps else ''} | "
            f"{', '.join(map(str, numbers['seeds']))} | " + " | ".join(cells) + " | "
            f"{pair(numbers['baselines'].get('random'))} | "
            f"{pair(numbers['baselines'].get('pretrained'))} | "
            f"{rate_pair(success)} | "
            f"{f'{wall / 60:.0f} min' if wall else ''} | {note} |"
        )
    return "\n".join([*lines, "", "Commands:", "", *commands]) + "\n"


def main() -> None:
    table = markdown()
    print(table)
    (RESULTS / "results_table.md").write_text(table)
    print(f"Wrote {RESULTS / 'results_table.md'}")


if __name__ == "__main__":
    main()
