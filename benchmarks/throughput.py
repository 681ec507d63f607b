"""Sampling throughput of MAML next to RLlib PPO, same env and env-runner settings.

Both algorithms are timed the same way, in one process and one Ray instance:
the driver-side sampling call (MAML: `sample_step`, one call per
adaptation step; PPO: `synchronous_parallel_sample`) is wrapped, and env steps
returned / seconds spent in it gives env steps per second of sampling. MAML's
end-to-end rate (env steps / wall-clock of whole iterations, including
adaptation and meta-update) is reported too.

How to run:
    python benchmarks/throughput.py    # writes benchmarks/results/throughput.json
    python benchmarks/throughput.py --iterations 3  # shorter
"""

from __future__ import annotations

import argparse
import json
import time

import ray
import ray.rllib.algorithms.ppo.ppo as ppo_module
from _common import RESULTS, write_results
from ray.rllib.algorithms.ppo import PPOConfig

import rllib_maml  # noqa: F401  (registers the envs)
from rllib_maml import MAMLConfig
from rllib_maml import maml as maml_algorithm


class SamplingClock:
    """Wraps a sampling function; accumulates its seconds and returned env steps."""

    def __init__(self, module, name, episodes_of):
        self.module, self.name, self.episodes_of = module, name, episodes_of
        self.original = getattr(module, name)
        self.seconds = 0.0
        self.env_steps = 0

    def __enter__(self):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            out = self.original(*args, **kwargs)
            self.seconds += time.perf_counter() - start
            self.env_steps += sum(len(e) for e in self.episodes_of(out))
            return out

        setattr(self.module, self.name, timed)
        return self

    def __exit__(self, *exc):
        setattr(self.module, self.name, self.original)

    def reset(self):
        self.seconds, self.env_steps = 0.0, 0

    @property
    def rate(self) -> float:
        return self.env_steps / self.seconds


def run_maml(env, runners, envs_per_runner, meta_batch, episodes, warmup, iterations):
    config = (
        MAMLConfig()
        .environment(env)
        .env_runners(
            num_env_runners=runners,
            num_envs_per_env_runner=envs_per_runner,
            num_cpus_per_env_runner=0.5,
        )
        .training(meta_batch_size=meta_batch, episodes_per_task=episodes)
    )
    algo = config.build_algo()
    clock = SamplingClock(
        maml_algorithm,
        "sample_step",
        lambda out: [e for eps in out[0].values() for e in eps],
    )
    with clock:
        for _ in range(warmup):
            algo.train()
        clock.reset()
        start = time.perf_counter()
        for _ in range(iterations):
            algo.train()
        wall = time.perf_counter() - start
    algo.stop()
    return {
        "sampling_env_steps_per_s": clock.rate,
        "end_to_end_env_steps_per_s": clock.env_steps / wall,
        "seconds_per_iteration": wall / iterations,
        "env_steps_per_iteration": clock.env_steps / iterations,
    }


def run_ppo(env, runners, envs_per_runner, train_batch, warmup, iterations):
    config = (
        PPOConfig()
        .environment(env)
        .env_runners(
            num_env_runners=runners,
            num_envs_per_env_runner=envs_per_runner,
            num_cpus_per_env_runner=0.5,
        )
        .training(train_batch_size=train_batch, num_epochs=1, minibatch_size=None)
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
    )
    algo = config.build_algo()
    clock = SamplingClock(ppo_module, "synchronous_parallel_sample", lambda out: out[0])
    with clock:
        for _ in range(warmup):
            algo.train()
        clock.reset()
        for _ in range(iterations):
            algo.train()
    algo.stop()
    return {"sampling_env_steps_per_s": clock.rate}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--num-env-runners", type=int, default=2)
    parser.add_argument("--envs-per-runner", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--meta-batch-size", type=int, default=10)
    parser.add_argument("--episodes-per-task", type=int, default=10)
    parser.add_argument(
        "--envs",
        nargs="+",
        default=["rllib_maml/Navigation2D-v0", "rllib_maml/CartPoleMass-v0"],
    )
    parser.add_argument("--output", default=str(RESULTS / "throughput.json"))
    args = parser.parse_args()

    ray.init(include_dashboard=False, log_to_driver=False)
    rows = []
    for env in args.envs:
        for envs_per_runner in args.envs_per_runner:
            maml = run_maml(
                env,
                args.num_env_runners,
                envs_per_runner,
                args.meta_batch_size,
                args.episodes_per_task,
                args.warmup,
                args.iterations,
            )
            ppo = run_ppo(
                env,
                args.num_env_runners,
                envs_per_runner,
                int(maml["env_steps_per_iteration"]),
                args.warmup,
                args.iterations,
            )
            row = {
                "env": env,
                "num_env_runners": args.num_env_runners,
                "num_envs_per_env_runner": envs_per_runner,
                "maml": maml,
                "ppo": ppo,
                "sampling_ratio_maml_over_ppo": (
                    maml["sampling_env_steps_per_s"] / ppo["sampling_env_steps_per_s"]
                ),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    write_results(
        args.output, "sampling throughput, MAML vs RLlib PPO", args, results=rows
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
