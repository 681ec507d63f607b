"""Does `MAMLEnvRunner`'s batched sampling give RLlib's own episodes?

Under one fixed policy (a seeded initialization) and the same Navigation2D goals,
samples `--repeats` x tasks x `--episodes` episodes with each of:

- `batched_array`: `MAMLEnvRunner.sample_tasks`, batched, the env's array-stepped
  vector env (`gym_env_vectorize_mode="vector_entry_point"`, one sub-env per slot);
- `batched_sync`: the same, on RLlib's sync vector env of single envs;
- `rllib_sample`: `batched_sampling=False`, i.e. RLlib's own `EnvRunner.sample()`
  per task;

and reports the share of episodes that end before the horizon, the mean episode
length and the mean return (with its standard error). The three should agree
within sampling noise.

How to run:
    python benchmarks/sampler_agreement.py   # benchmarks/results/sampler_agreement.json
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import RESULTS, write_results

import rllib_maml  # noqa: F401  (registers the envs)
from rllib_maml import MAMLConfig
from rllib_maml.env_runner import MAMLEnvRunner, TaskJob

GOALS = [
    (-0.4, -0.4),
    (-0.4, 0.4),
    (0.0, -0.4),
    (0.0, 0.4),
    (0.4, -0.4),
    (0.4, 0.4),
    (0.2, -0.1),
    (-0.3, 0.1),
    (0.45, 0.45),
    (-0.1, -0.45),
]
VARIANTS = {
    "batched_array": (True, "vector_entry_point", None),
    "batched_sync": (True, "sync", 20),
    "rllib_sample": (False, "sync", 20),
}


def measure(variant: str, seed: int, episodes: int, repeats: int) -> dict:
    batched, mode, num_envs = VARIANTS[variant]
    config = (
        MAMLConfig()
        .environment("rllib_maml/Navigation2D-v0", env_config={"horizon": 100})
        .env_runners(num_env_runners=0, gym_env_vectorize_mode=mode)
        .training(
            meta_batch_size=len(GOALS),
            episodes_per_task=episodes,
            batched_sampling=batched,
        )
        .debugging(seed=seed)
    )
    if num_envs is not None:
        config.env_runners(num_envs_per_env_runner=num_envs)
    config.validate()
    runner = MAMLEnvRunner(config=config)
    learner = config.build_learner(env=runner.env)
    params = learner.policy_params_numpy()
    tasks = [{"goal": np.array(goal)} for goal in GOALS]
    lengths, returns = [], []
    for repeat in range(repeats):
        jobs = [TaskJob(i, task, params) for i, task in enumerate(tasks)]
        sampled = runner.sample_tasks(jobs, num_episodes=episodes, entropy=repeat)
        for episodes_of_task in sampled.episodes_by_task.values():
            for episode in episodes_of_task:
                lengths.append(len(episode))
                returns.append(episode.get_return())
    lengths, returns = np.array(lengths), np.array(returns)
    return {
        "variant": variant,
        "episodes": int(len(lengths)),
        "ended_before_horizon": float((lengths < 100).mean()),
        "mean_length": float(lengths.mean()),
        "mean_return": float(returns.mean()),
        "return_standard_error": float(returns.std() / np.sqrt(len(returns))),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=str(RESULTS / "sampler_agreement.json"))
    args = parser.parse_args()
    rows = []
    for variant in VARIANTS:
        rows.append(measure(variant, args.seed, args.episodes, args.repeats))
        print(rows[-1], flush=True)
    write_results(
        args.output,
        "episodes of MAMLEnvRunner's batched sampling against RLlib's sample()",
        args,
        goals=GOALS,
        results=rows,
    )


if __name__ == "__main__":
    main()
