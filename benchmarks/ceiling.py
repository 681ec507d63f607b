"""The ceiling: raw env steps per second on one core, vectorized env + batched policy.

No Ray, no RLlib: a gymnasium `SyncVectorEnv` of N copies of the meta env (one
task each) stepped with actions from one batched forward pass of the (64, 64)
tanh policy MLP per step. This is what an env runner could reach at best with
N envs; compare with `throughput.json`. Envs that have an array-stepped vector
env of their own (`VECTOR_ENV_SPECS`) get rows for that one too
(`"array_stepped": true`), with `--array-num-envs` sub-envs.

How to run:
    python benchmarks/ceiling.py            # writes benchmarks/results/ceiling.json
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch
from _common import RESULTS, write_results

from rllib_maml.envs import VECTOR_ENV_SPECS, make_env


def vector_env(env_name: str, num_envs: int, array_stepped: bool):
    """`num_envs` sub-envs, one task each."""
    tasks = make_env(env_name, oracle=False).sample_tasks(num_envs)
    if array_stepped:
        envs = make_env(env_name, oracle=False, config={"num_envs": num_envs})
        envs.set_tasks(tasks)
        return envs
    envs = gym.vector.SyncVectorEnv(
        [lambda: make_env(env_name, oracle=False) for _ in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    for env, task in zip(envs.envs, tasks, strict=True):
        env.set_task(task)
    return envs


def ceiling(env_name: str, num_envs: int, steps: int, array_stepped=False) -> dict:
    torch.set_num_threads(1)
    envs = vector_env(env_name, num_envs, array_stepped)
    obs_dim = envs.single_observation_space.shape[0]
    space = envs.single_action_space
    out_dim = space.n if isinstance(space, gym.spaces.Discrete) else 2 * space.shape[0]
    policy = torch.nn.Sequential(
        torch.nn.Linear(obs_dim, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, out_dim),
    )
    obs, _ = envs.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps // num_envs):
        with torch.no_grad():
            out = policy(torch.as_tensor(obs, dtype=torch.float32))
        if isinstance(space, gym.spaces.Discrete):
            actions = torch.distributions.Categorical(logits=out).sample().numpy()
        else:
            mean, log_std = out.chunk(2, dim=-1)
            actions = (mean + log_std.exp() * torch.randn_like(mean)).numpy()
            actions = np.clip(actions, space.low, space.high)
        obs, *_ = envs.step(actions)
    seconds = time.perf_counter() - start
    envs.close()
    return {
        "env": env_name,
        "array_stepped": array_stepped,
        "num_envs": num_envs,
        "env_steps_per_s": (steps // num_envs) * num_envs / seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--envs",
        nargs="+",
        default=["rllib_maml/Navigation2D-v0", "rllib_maml/HalfCheetahRandDirec-v0"],
    )
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 10, 20])
    parser.add_argument("--array-num-envs", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--steps", type=int, default=40_000)
    parser.add_argument("--output", default=str(RESULTS / "ceiling.json"))
    args = parser.parse_args()
    rows = []
    for env in args.envs:
        for n in args.num_envs:
            rows.append(ceiling(env, n, args.steps))
            print(json.dumps(rows[-1]), flush=True)
        if env.split("/")[-1] in VECTOR_ENV_SPECS:
            for n in args.array_num_envs:
                rows.append(ceiling(env, n, args.steps, array_stepped=True))
                print(json.dumps(rows[-1]), flush=True)
    write_results(args.output, "raw env steps/s, one core", args, results=rows)


if __name__ == "__main__":
    main()
