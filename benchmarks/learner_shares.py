"""One learner's work on its share of the meta-batch, and the Amdahl table.

With `num_learners = L` each learner adapts and meta-updates 20 / L of the MAML
paper's 20 Navigation2D tasks. This script samples one iteration's data once
(`meta_update.py`'s setting: 20 tasks x 20 episodes x horizon 100, pre- and
post-adaptation) and times, with `--threads` torch threads (1: a learner per
core), one learner's inner adaptation (`adapt(step=0)`) and meta-update on the
first 20, 10, 5 and 2 tasks (L = 1, 2, 4, 10): median of `--repeats`, the
learner's state restored before each.

With `--iteration` (a `paper_iteration.py` JSON with a `--learners 0` row per
outer optimizer) it adds the Amdahl table: the iteration's phases at 2, 16 and
64 env runners, before (one learner: that row's inner adaptation and
meta-update) and after (L learners: the share's times here, plus that row's
other phases), with sampling scaled from 2 runners as 2 / R (a lower bound:
ideal runners) and the rest of the iteration (driver, weight sync) kept.
A model, not a measurement at 16 and 64 runners.

How to run:
    python benchmarks/learner_shares.py \\
        --iteration benchmarks/results/paper_iteration_learners.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
from _common import RESULTS, write_results
from meta_update import ENV, paper_config, sample_iteration

import rllib_maml
from rllib_maml.env_runner import MAMLEnvRunner
from rllib_maml.learner import AdaptationData

TASKS = 20
SHARES = (20, 10, 5, 2)  # tasks per learner: L = 1, 2, 4, 10
# Runners and the learners "after" gives them (every learner 1 core).
SETTINGS = ((2, 2), (16, 4), (64, 10))


def time_share(outer_optimizer, data, num_tasks, repeats) -> dict:
    config = paper_config(outer_optimizer)
    config.validate()
    runner = MAMLEnvRunner(config=config)
    learner = config.build_learner(env=runner.env)
    learner.set_module_state(data["module"])
    state = copy.deepcopy(learner.get_state())
    share = [{t: step[t] for t in range(num_tasks)} for step in data["steps"]]
    adapt_s, update_s = [], []
    for _ in range(repeats + 1):  # the first is a warm-up
        learner.set_state(copy.deepcopy(state))
        learner.iteration_data = AdaptationData()
        start = time.perf_counter()
        learner.adapt(step=0, episodes_by_task=share[0])
        adapt_s.append(time.perf_counter() - start)
        learner.adapt(step=1, episodes_by_task=share[1])
        start = time.perf_counter()
        learner.meta_update(timesteps={})
        update_s.append(time.perf_counter() - start)
    return {
        "outer_optimizer": outer_optimizer,
        "tasks_per_learner": num_tasks,
        "learners": TASKS // num_tasks,
        "inner_adaptation_seconds": statistics.median(adapt_s[1:]),
        "meta_update_seconds": statistics.median(update_s[1:]),
    }


def amdahl(rows: list[dict], iteration: dict) -> list[dict]:
    """The model's phases per setting (see the module doc)."""
    table = []
    for optimizer in ("ppo", "trpo"):
        base = next(
            r
            for r in iteration["results"]
            if r["outer_optimizer"] == optimizer and r["num_learners"] == 0
        )
        phases = base["seconds_per_iteration"]
        sampling = phases["sampling_step_0"] + phases["sampling_step_1"]
        learner_before = phases["inner_adaptation"] + phases["meta_update"]
        other = phases["total"] - sampling - learner_before
        for runners, learners in SETTINGS:
            share = next(
                r
                for r in rows
                if r["outer_optimizer"] == optimizer and r["learners"] == learners
            )
            learner_after = (
                share["inner_adaptation_seconds"] + share["meta_update_seconds"]
            )
            sampled = sampling * 2 / runners
            row = {
                "outer_optimizer": optimizer,
                "env_runners": runners,
                "learners_after": learners,
                "sampling": sampled,
                "other": other,
                "learner_before": learner_before,
                "learner_after": learner_after,
                "iteration_before": sampled + learner_before + other,
                "iteration_after": sampled + learner_after + other,
            }
            for when in ("before", "after"):
                parts = {
                    "sampling": sampled,
                    "learner": row[f"learner_{when}"],
                    "driver and sync": other,
                }
                row[f"bound_{when}"] = max(parts, key=parts.get)
            table.append(row)
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outer-optimizers", nargs="+", default=["ppo", "trpo"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iteration", help="paper_iteration.py JSON (learners 0)")
    parser.add_argument("--output", default=str(RESULTS / "learner_shares.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = paper_config("ppo")
    config.validate()
    runner = MAMLEnvRunner(config=config)
    learner = config.build_learner(env=runner.env)
    task_env = rllib_maml.envs.make_env(ENV, oracle=False)
    task_env.reset(seed=0)
    tasks = task_env.sample_tasks(TASKS)
    data = {
        "module": learner.module_state(),
        "steps": sample_iteration(runner, learner, tasks, 20),
    }
    rows = []
    for optimizer in args.outer_optimizers:
        for num_tasks in SHARES:
            rows.append(time_share(optimizer, data, num_tasks, args.repeats))
            print(json.dumps(rows[-1]), flush=True)
    content = {"results": rows}
    if args.iteration:
        with open(args.iteration) as f:
            content["amdahl"] = amdahl(rows, json.load(f))
        for row in content["amdahl"]:
            print(json.dumps(row), flush=True)
    write_results(
        args.output, "learner work per share of the meta-batch", args, **content
    )


if __name__ == "__main__":
    main()
