"""RL²'s sampling throughput against RLlib's PPO with an LSTM, same runner.

Both sample Navigation2D (horizon 100) on one local env runner with the same
number of envs, the same recurrent module settings and RLlib's
`PrevActionsPrevRewards` + `FlattenObservations` connectors; RL² adds its trial
wrapper (`TrialEnv`, 2 episodes per trial) and the per-episode metrics. The two
alternate `--repeats` times in one process (ratios in one run: the machine is
shared and noisy); the result is the median env steps per second of each and
their ratio.

How to run (about a minute on 2 cores):
    python benchmarks/rl2_throughput.py
Writes benchmarks/results/rl2_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

import rllib_maml  # noqa: F401 - registers the shipped envs
from rllib_maml.rl2 import RL2Config, RL2EnvRunner, rl2_env_to_module

ENV = "rllib_maml/Navigation2D-v0"
RESULTS = os.path.join(os.path.dirname(__file__), "results", "rl2_throughput.json")


def make_runner(kind: str, num_envs: int):
    """A local env runner of RL² or of RLlib's PPO with the same module."""
    rl2 = RL2Config()
    config = (
        (rl2 if kind == "rl2" else PPOConfig())
        .environment(ENV, env_config={"horizon": 100})
        .env_runners(
            num_env_runners=0,
            num_envs_per_env_runner=num_envs,
            env_to_module_connector=rl2_env_to_module,
        )
        .rl_module(model_config=rl2.model_config)
        .debugging(seed=0)
    )
    if kind == "rl2":
        return RL2EnvRunner(config=config.training(episodes_per_trial=2))
    return SingleAgentEnvRunner(config=config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args()

    runners = {kind: make_runner(kind, args.num_envs) for kind in ("ppo_lstm", "rl2")}
    rates: dict[str, list[float]] = {kind: [] for kind in runners}
    for runner in runners.values():  # warm-up: first resets, module builds
        runner.sample(num_timesteps=1000, explore=True)
    for _ in range(args.repeats):
        for kind, runner in runners.items():
            start = time.perf_counter()
            episodes = runner.sample(num_timesteps=args.steps, explore=True)
            seconds = time.perf_counter() - start
            rates[kind].append(sum(len(e) for e in episodes) / seconds)
    for runner in runners.values():
        runner.stop()
    median = {kind: statistics.median(r) for kind, r in rates.items()}
    result = {
        "env": ENV,
        "num_envs_per_env_runner": args.num_envs,
        "steps_per_sample": args.steps,
        "repeats": args.repeats,
        "env_steps_per_second": rates,
        "median_env_steps_per_second": median,
        "ratio_rl2_over_ppo_lstm": median["rl2"] / median["ppo_lstm"],
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: result[k] for k in list(result)[5:7]}, indent=2))


if __name__ == "__main__":
    main()
