"""Profile of the learner at the MAML paper's Navigation2D setting: where the
meta-update's and the inner adaptation's time goes, and how close it runs to
the machine's arithmetic.

Samples one iteration's data once (20 tasks x 20 episodes x horizon 100, pre-
and post-adaptation, seeded) with a local `MAMLEnvRunner`, then on that same
data, for each outer optimizer:

- times `MAMLTorchLearner.meta_update` (median of `--repeats`, the learner's
  state restored before each) and the inner adaptation (`adapt(step=0)`:
  episodes -> tensors -> one inner step per task, with the tensors' share);
- counts its graph replays (`meta_terms` calls: inner steps replayed from the
  meta-parameters) and autograd passes (`torch.autograd.grad` calls);
- counts its floating-point work (`torch.utils.flop_counter`: matrix products
  only) and divides by the time, next to the machine's measured
  matrix-multiply rate at the policy's shapes;
- lists the aten operators by self time (`torch.profiler`).

The script uses only the learner's public methods, so the same file profiles
an older checkout: `PYTHONPATH=<checkout> python benchmarks/meta_update.py
--output ..._before.json`.

How to run:
    python benchmarks/meta_update.py          # benchmarks/results/meta_update.json
    python benchmarks/meta_update.py --outer-optimizers trpo --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from _common import RESULTS, write_results
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

import rllib_maml
from rllib_maml import MAMLConfig
from rllib_maml.env_runner import MAMLEnvRunner, TaskJob
from rllib_maml.learner import AdaptationData

ENV = "rllib_maml/Navigation2D-v0"


def paper_config(outer_optimizer: str, keep_freed_memory: bool = True) -> MAMLConfig:
    config = (
        MAMLConfig()
        .environment(ENV, env_config={"horizon": 100})
        .env_runners(num_env_runners=0)
        .training(
            meta_batch_size=20,
            episodes_per_task=20,
            inner_lr=0.1,
            outer_optimizer=outer_optimizer,
        )
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
        .debugging(seed=0)
    )
    if not keep_freed_memory:  # older versions do not have the setting
        config.training(keep_freed_memory=False)
    return config


def sample_iteration(runner, learner, tasks, episodes: int) -> list[dict]:
    """Episodes of adaptation steps 0 and 1 (step 1 with the adapted params)."""
    meta = learner.policy_params_numpy()
    jobs = [TaskJob(i, task, meta) for i, task in enumerate(tasks)]
    pre = runner.sample_tasks(jobs, num_episodes=episodes, entropy=0).episodes_by_task
    adapted = learner.adapt(step=0, episodes_by_task=pre)
    jobs = [TaskJob(i, task, adapted[i]) for i, task in enumerate(tasks)]
    post = runner.sample_tasks(jobs, num_episodes=episodes, entropy=1).episodes_by_task
    return [pre, post]


class Counting:
    """Counts calls of `learner.meta_terms` and `torch.autograd.grad`."""

    def __init__(self, learner):
        self.learner, self.replays, self.autograd_passes = learner, 0, 0

    def __enter__(self):
        meta_terms, grad = self.learner.meta_terms, torch.autograd.grad

        def counted_terms(*args, **kwargs):
            self.replays += 1
            return meta_terms(*args, **kwargs)

        def counted_grad(*args, **kwargs):
            self.autograd_passes += 1
            return grad(*args, **kwargs)

        self._restore = (meta_terms, grad)
        self.learner.meta_terms = counted_terms
        torch.autograd.grad = counted_grad
        return self

    def __exit__(self, *exc):
        del self.learner.meta_terms
        torch.autograd.grad = self._restore[1]


def matmul_rate(rows: int, width: int, repeats: int = 30) -> float:
    """GFLOP/s of `[rows, width] @ [width, width]` (the hidden layer's shape)."""
    a, w = torch.randn(rows, width), torch.randn(width, width)
    for _ in range(3):
        a @ w
    start = time.perf_counter()
    for _ in range(repeats):
        a @ w
    seconds = (time.perf_counter() - start) / repeats
    return 2 * rows * width * width / seconds / 1e9


def profile_optimizer(
    outer_optimizer: str, episodes: dict, repeats: int, keep_freed_memory: bool
) -> dict:
    config = paper_config(outer_optimizer, keep_freed_memory)
    config.validate()
    runner = MAMLEnvRunner(config=config)
    learner = config.build_learner(env=runner.env)
    learner.set_module_state(episodes["module"])
    state = copy.deepcopy(learner.get_state())

    def restore():
        learner.set_state(copy.deepcopy(state))

    # Inner adaptation: episodes -> tensors -> one inner step per task.
    adapt_s, batches_s = [], []
    for _ in range(repeats):
        restore()
        start = time.perf_counter()
        learner.task_batches(episodes["steps"][0])
        batches_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        learner.adapt(step=0, episodes_by_task=episodes["steps"][0])
        adapt_s.append(time.perf_counter() - start)
    learner.adapt(step=1, episodes_by_task=episodes["steps"][1])
    steps = learner.iteration_data.steps

    def meta_update():
        restore()
        learner.iteration_data = AdaptationData(steps=[dict(s) for s in steps])
        start = time.perf_counter()
        learner.meta_update(timesteps={})
        return time.perf_counter() - start

    meta_update()  # warm-up
    seconds = [meta_update() for _ in range(repeats)]
    with Counting(learner) as counts, FlopCounterMode(display=False) as flops:
        meta_update()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        meta_update()
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total_us = sum(e.self_cpu_time_total for e in ops)
    median = statistics.median(seconds)
    gflop = flops.get_total_flops() / 1e9
    return {
        "outer_optimizer": outer_optimizer,
        "env_steps": sum(d["obs"].shape[0] for step in steps for d in step.values()),
        "meta_update_seconds": median,
        "meta_update_all_seconds": seconds,
        "inner_adaptation_seconds": statistics.median(adapt_s),
        "episodes_to_tensors_seconds": statistics.median(batches_s),
        "graph_replays": counts.replays,
        "autograd_passes": counts.autograd_passes,
        "matmul_gflop": gflop,
        "achieved_matmul_gflop_per_s": gflop / median,
        "top_ops_share": {
            e.key: round(e.self_cpu_time_total / total_us, 4) for e in ops[:12]
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outer-optimizers", nargs="+", default=["trpo", "ppo"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--glibc-defaults",
        action="store_true",
        help="training(keep_freed_memory=False): glibc's allocator thresholds",
    )
    parser.add_argument("--output", default=str(RESULTS / "meta_update.json"))
    args = parser.parse_args()

    config = paper_config("ppo", not args.glibc_defaults)
    config.validate()
    runner = MAMLEnvRunner(config=config)
    learner = config.build_learner(env=runner.env)
    task_env = rllib_maml.envs.make_env(ENV, oracle=False)
    task_env.reset(seed=0)
    tasks = task_env.sample_tasks(config.meta_batch_size)
    episodes = {
        "steps": sample_iteration(runner, learner, tasks, config.episodes_per_task),
        "module": learner.module_state(),
    }
    rows = []
    for outer_optimizer in args.outer_optimizers:
        row = profile_optimizer(
            outer_optimizer, episodes, args.repeats, not args.glibc_defaults
        )
        rows.append(row)
        print(
            f"{outer_optimizer}: meta-update {row['meta_update_seconds']:.2f} s, "
            f"inner adaptation {row['inner_adaptation_seconds']:.2f} s, "
            f"{row['graph_replays']} replays, {row['autograd_passes']} autograd "
            f"passes, {row['achieved_matmul_gflop_per_s']:.1f} GFLOP/s",
            flush=True,
        )
    machine = {
        "matmul_gflop_per_s_40000x64x64": matmul_rate(40_000, 64),
        "matmul_gflop_per_s_2000x64x64": matmul_rate(2_000, 64, repeats=300),
        "torch_threads": torch.get_num_threads(),
    }
    print(f"machine: {machine}")
    write_results(
        args.output,
        "learner profile at the MAML paper's Navigation2D setting",
        args,
        machine_rates=machine,
        package=rllib_maml.__file__,
        results=rows,
    )


if __name__ == "__main__":
    main()
