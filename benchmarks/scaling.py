"""MAML env steps per second over env runners and learners, with a time breakdown.

Each setting (every `--learners` count with every `--runners` count) builds
MAML, runs warm-up iterations, then times `--iterations` iterations: env steps
sampled per second of wall-clock (end to end) and of sampling alone, and the
per-iteration breakdown the result's timers give (sampling per adaptation
step, inner adaptation, meta-update, weight sync). Every runner gets
`--cpus-per-runner` CPUs, every remote learner `--cpus-per-learner` (and
`--gpus-per-learner` GPUs). Each row also records where the learners and env
runners ran (Ray node ids) and whether the learners ended with bitwise equal
meta-parameters.

How to run:
    python benchmarks/scaling.py                         # 1 and 2 runners (2 cores)
    python benchmarks/scaling.py --runners 4 8 15 --learners 0 2 4   # 16 cores
    python benchmarks/scaling.py --cluster-nodes 3 --learners 2 --runners 2 \
        --cpus-per-runner 0.5 --cpus-per-learner 0.5     # a 3-node Ray cluster here

`--learners 0` is the learner in the driver process (the default); N >= 1 are
N remote learner actors, each meta-updating on its share of the tasks.
`--cluster-nodes N` starts a `ray.cluster_utils.Cluster` of N nodes on this
machine (`--cpus-per-node` each) instead of a plain local Ray: placement and
correctness across raylets, not speed (the nodes share the machine's cores).

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


def run(args, runners: int, learners: int = 0) -> dict:
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
    if learners:
        config.learners(
            num_learners=learners,
            num_cpus_per_learner=args.cpus_per_learner,
            num_gpus_per_learner=args.gpus_per_learner,
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
    placement, alike = _placement_and_agreement(algo)
    algo.stop()
    return {
        "num_env_runners": runners,
        "num_learners": learners,
        "placement": placement,
        "learners_bitwise_equal": alike,
        "env_steps_per_iteration": float(np.mean(steps)),
        "end_to_end_env_steps_per_s": float(np.sum(steps) / wall),
        "sampling_env_steps_per_s": float(np.sum(steps) / np.sum(sampling)),
        "seconds_per_iteration": {k: float(np.mean(v)) for k, v in breakdown.items()},
        "median_seconds_per_iteration": float(np.median(breakdown["total"])),
        "iteration_seconds": [float(x) for x in breakdown["total"]],
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _placement_and_agreement(algo) -> tuple[dict, bool]:
    """The Ray node of every learner and env runner; whether the learners hold
    bitwise equal meta-parameters."""

    def node(_=None):
        return ray.get_runtime_context().get_node_id()

    placement = {
        "driver": node(),
        "learners": algo._call_learners(lambda learner: node()),
        "env_runners": algo.env_runner_group.foreach_env_runner(
            lambda runner: node(), local_env_runner=False
        ),
    }
    params = algo._call_learners(lambda learner: learner.policy_params_numpy())
    alike = all(
        np.array_equal(params[0][name], other[name])
        for other in params[1:]
        for name in params[0]
    )
    return placement, alike


def add_setting_arguments(parser: argparse.ArgumentParser) -> None:
    """The MAML, env-runner and learner settings every timing benchmark takes."""
    parser.add_argument("--env", default="rllib_maml/Navigation2D-v0")
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--learners",
        type=int,
        nargs="+",
        default=[0],
        help="num_learners settings (0: the learner in the driver)",
    )
    parser.add_argument("--cpus-per-learner", type=float, default=1.0)
    parser.add_argument("--gpus-per-learner", type=float, default=0.0)
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
    parser.add_argument("--cluster-nodes", type=int, default=0)
    parser.add_argument("--cpus-per-node", type=float, default=2.0)
    parser.add_argument("--output", default=str(RESULTS / "scaling.json"))
    args = parser.parse_args()
    cluster = None
    if args.cluster_nodes:
        from ray.cluster_utils import Cluster

        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": args.cpus_per_node},
        )
        for _ in range(args.cluster_nodes - 1):
            cluster.add_node(num_cpus=args.cpus_per_node)
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
    else:
        ray.init(include_dashboard=False, log_to_driver=False)
    rows = []
    for learners in args.learners:
        for runners in args.runners:
            rows.append(run(args, runners, learners))
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["end_to_end_env_steps_per_s"]
    for row in rows:
        row["speedup_over_first"] = row["end_to_end_env_steps_per_s"] / base
    write_results(
        args.output,
        "MAML scaling over env runners and learners",
        args,
        results=rows,
        nodes=len(ray.nodes()),
    )
    ray.shutdown()
    if cluster is not None:
        cluster.shutdown()


if __name__ == "__main__":
    main()
