"""Env steps per second of the MuJoCo meta envs, one core, random actions.

Meta-World's envs (ML1 reach, push, pick-place) next to HalfCheetahRandDirec,
stepped through this package's meta envs (task set, reset at the horizon) in
one process, alternating rounds so that a busy machine slows each alike. The
median over rounds is reported; ratios to HalfCheetah are the comparable
figure.

How to run:
    python benchmarks/env_speed.py   # writes benchmarks/results/env_speed.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import RESULTS, write_results

from rllib_maml.envs import make_env

ENVS = {
    "HalfCheetahRandDirec-v0": {"horizon": 200},
    "MetaWorldML1-v0 reach-v3": {"env_name": "reach-v3", "horizon": 500},
    "MetaWorldML1-v0 push-v3": {"env_name": "push-v3", "horizon": 500},
    "MetaWorldML1-v0 pick-place-v3": {"env_name": "pick-place-v3", "horizon": 500},
}


def steps_per_second(env, steps: int, rng: np.random.Generator) -> float:
    actions = rng.uniform(-1.0, 1.0, (steps, *env.action_space.shape))
    env.reset(seed=int(rng.integers(1 << 30)))
    start = time.perf_counter()
    for action in actions.astype(np.float32):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", default=str(RESULTS / "env_speed.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    envs = {}
    for label, config in ENVS.items():
        env = make_env(label.split()[0], oracle=False, config=config)
        env.reset(seed=0)
        env.set_task(env.sample_tasks(1)[0])
        envs[label] = env
    rates: dict[str, list[float]] = {label: [] for label in envs}
    for r in range(args.rounds):
        for label, env in envs.items():
            rates[label].append(steps_per_second(env, args.steps, rng))
        print(
            f"round {r + 1}: "
            + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items())
        )
    median = {label: float(np.median(v)) for label, v in rates.items()}
    cheetah = median["HalfCheetahRandDirec-v0"]
    for label, value in median.items():
        ratio = value / cheetah
        print(f"{label:32s} {value:9,.0f} env steps/s  ({ratio:.2f}x HalfCheetah)")
    write_results(
        args.output,
        "env_speed",
        args,
        steps_per_second=rates,
        median=median,
        ratio_to_halfcheetah={k: v / cheetah for k, v in median.items()},
    )


if __name__ == "__main__":
    main()
