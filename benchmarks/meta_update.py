"""Time per meta-update for each MAML mode: Python loop over tasks vs one vmap pass.

Samples real episodes once (meta-batch of 40 tasks, 20 episodes per task, pre-
and post-adaptation) with a local env runner, then times
`MAMLTorchLearner.meta_update` on the same data for every combination of
outer optimizer (ppo, trpo), meta-gradient (second_order, first_order) and
meta-batch size (20, 40), with `batched_meta_loss` False (loop) and True (vmap).
The learner's weights and optimizer state are restored before every timed call.

How to run:
    python benchmarks/meta_update.py        # writes benchmarks/results/meta_update.json
    python benchmarks/meta_update.py --repeats 1 --meta-batch-sizes 20
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

from _common import RESULTS, write_results
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

import rllib_maml  # noqa: F401  (registers the envs)
from rllib_maml import MAMLConfig
from rllib_maml.sampling import sample_jobs_on_env_runner

MODES = [
    ("ppo", "second_order"),
    ("ppo", "first_order"),
    ("trpo", "second_order"),
    ("trpo", "first_order"),
]


def sampled_learner(env: str, num_tasks: int, episodes: int, envs_per_runner: int):
    config = (
        MAMLConfig()
        .environment(env)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=envs_per_runner)
        .training(meta_batch_size=num_tasks, episodes_per_task=episodes)
        .debugging(seed=0)
    )
    config.validate()
    runner = SingleAgentEnvRunner(config=config)
    learner = config.build_learner(env=runner.env)
    task_env = rllib_maml.envs.make_env(env, oracle=False)
    task_env.reset(seed=0)
    tasks = task_env.sample_tasks(num_tasks)
    meta = learner.inference_weights()
    weights = {i: meta for i in range(num_tasks)}
    for step in range(2):
        jobs = [(i, task, weights[i], None) for i, task in enumerate(tasks)]
        episodes_by_task, _, failure = sample_jobs_on_env_runner(runner, jobs, episodes)
        assert failure is None, failure
        weights = learner.add_adaptation_data(
            step=step, episodes_by_task=episodes_by_task
        )
    return learner


def time_meta_update(learner, steps, state, repeats: int) -> float:
    seconds = []
    for _ in range(repeats + 1):  # the first call warms up
        learner.set_state(copy.deepcopy(state))
        learner._steps = [dict(step) for step in steps]
        start = time.perf_counter()
        learner.meta_update(timesteps={})
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--envs",
        nargs="+",
        default=["rllib_maml/Navigation2D-v0", "rllib_maml/CartPoleMass-v0"],
    )
    parser.add_argument("--meta-batch-sizes", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--episodes-per-task", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(RESULTS / "meta_update.json"))
    args = parser.parse_args()

    rows = []
    for env in args.envs:
        largest = max(args.meta_batch_sizes)
        learner = sampled_learner(env, largest, args.episodes_per_task, 10)
        all_steps = learner._steps
        state = copy.deepcopy(learner.get_state())
        env_steps = sum(d["obs"].shape[0] for step in all_steps for d in step.values())
        print(f"{env}: sampled {env_steps} env steps for {largest} tasks", flush=True)
        for num_tasks in args.meta_batch_sizes:
            steps = [{t: step[t] for t in range(num_tasks)} for step in all_steps]
            for outer_optimizer, meta_gradient in MODES:
                row = {
                    "env": env,
                    "meta_batch_size": num_tasks,
                    "episodes_per_task": args.episodes_per_task,
                    "outer_optimizer": outer_optimizer,
                    "meta_gradient": meta_gradient,
                }
                learner.config.outer_optimizer = outer_optimizer
                learner.config.meta_gradient = meta_gradient
                for batched in (False, True):
                    learner.config.batched_meta_loss = batched
                    key = "batched_s" if batched else "loop_s"
                    row[key] = time_meta_update(learner, steps, state, args.repeats)
                row["speedup"] = row["loop_s"] / row["batched_s"]
                rows.append(row)
                print(json.dumps(row), flush=True)
    write_results(
        args.output,
        "seconds per meta-update, loop over tasks vs vmap",
        args,
        results=rows,
    )


if __name__ == "__main__":
    main()
