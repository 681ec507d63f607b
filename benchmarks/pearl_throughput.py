"""PEARL's throughput: gradient steps per second of the learner, env steps per
second of sampling with z, and the replay sampling PEARL does per gradient step
with RLlib's `EpisodeReplayBuffer` against `rllib_maml.pearl.buffers.TaskBuffer`.

The learner is timed on `update_pearl` with meta-batches drawn from real buffers
(after the initial collection), at PEARLConfig's defaults (16 tasks x 256
transitions, context 100) unless `--set` says otherwise; `--device cuda` puts
the (local) learner on the GPU.

How to run (2 CPU cores: about 3 minutes):
    python benchmarks/pearl_throughput.py \
        --output benchmarks/results/pearl_throughput.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import ray

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

import rllib_maml  # noqa: E402,F401
from rllib_maml.pearl import PEARLConfig  # noqa: E402
from rllib_maml.pearl.buffers import TaskBuffer  # noqa: E402


def replay_sampling(obs_dim: int, act_dim: int, repeats: int = 20) -> dict:
    """Seconds to draw 256 transitions: RLlib's EpisodeReplayBuffer (20
    episodes of 200 steps) against a TaskBuffer holding the same steps."""
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode
    from ray.rllib.utils.replay_buffers.episode_replay_buffer import (
        EpisodeReplayBuffer,
    )

    rng = np.random.default_rng(0)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    act_space = gym.spaces.Box(-1, 1, (act_dim,), np.float32)
    rllib, ours = EpisodeReplayBuffer(capacity=1_000_000), TaskBuffer(1_000_000)
    for _ in range(20):
        obs = rng.normal(size=(201, obs_dim)).astype(np.float32)
        actions = rng.uniform(-1, 1, size=(200, act_dim)).astype(np.float32)
        rewards = rng.normal(size=200).astype(np.float32)
        episode = SingleAgentEpisode(
            observations=list(obs),
            actions=list(actions),
            rewards=list(rewards),
            truncated=True,
            observation_space=obs_space,
            action_space=act_space,
            len_lookback_buffer=0,
        )
        rllib.add([episode.to_numpy()])
        ours.add(
            {
                "obs": obs[:-1],
                "actions": actions,
                "rewards": rewards,
                "next_obs": obs[1:],
                "terminateds": np.zeros(200, np.float32),
            }
        )
    timings = {}
    for name, draw in (
        ("rllib_episode_replay_buffer_s", lambda: rllib.sample(num_items=256)),
        ("task_buffer_s", lambda: ours.sample(256, rng)),
    ):
        draw()
        start = time.perf_counter()
        for _ in range(repeats):
            draw()
        timings[name] = (time.perf_counter() - start) / repeats
    timings["ratio"] = (
        timings["rllib_episode_replay_buffer_s"] / timings["task_buffer_s"]
    )
    return timings


def measure(env: str, args) -> dict:
    config = (
        PEARLConfig()
        .environment(env)
        .training(
            num_train_tasks=20,
            num_initial_steps=args.initial_steps,
            num_train_steps_per_iteration=1,
        )
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
        .debugging(seed=0)
    )
    if args.device == "cuda":
        config.learners(num_learners=0, num_gpus_per_learner=1)
    for text in args.set or []:
        key, value = text.split("=", 1)
        config.training(**{key: type(getattr(config, key))(value)})
    algo = config.build_algo()
    try:
        start = time.perf_counter()
        algo.train()  # the initial collection and one gradient step
        first = time.perf_counter() - start
        steps = algo.metrics.peek(("env_runners", "num_env_steps_sampled_lifetime"))
        learner = algo.learner_group._learner
        rng = np.random.default_rng(0)
        batches = [algo._meta_batch(rng) for _ in range(args.steps)]
        learner.update_pearl(batches[:2])  # warm-up
        if args.device == "cuda":
            import torch

            torch.cuda.synchronize()
        start = time.perf_counter()
        learner.update_pearl(batches)
        if args.device == "cuda":
            torch.cuda.synchronize()
        update_s = (time.perf_counter() - start) / args.steps
        start = time.perf_counter()
        algo._collect(list(range(8)), 200, None, "prior")
        sample_s = time.perf_counter() - start
        return {
            "env": env,
            "device": str(learner._device),
            "rows_per_step": config.meta_batch_size
            * config.train_batch_size_per_learner,
            "gradient_steps_per_s": 1.0 / update_s,
            "seconds_per_gradient_step": update_s,
            "sampling_env_steps_per_s": 8 * 200 / sample_s,
            "first_iteration_s": first,
            "first_iteration_env_steps": int(steps),
        }
    finally:
        algo.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--envs",
        nargs="+",
        default=["rllib_maml/Navigation2D-v0", "rllib_maml/HalfCheetahRandVel-v0"],
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed gradient steps")
    parser.add_argument("--initial-steps", type=int, default=400)
    parser.add_argument("--set", action="append", help="training setting=value")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    ray.init(include_dashboard=False, log_to_driver=False)
    rows = []
    for env in args.envs:
        rows.append(measure(env, args))
        print(rows[-1], flush=True)
    buffers = replay_sampling(obs_dim=20, act_dim=6)
    print(buffers, flush=True)
    write_results(args.output, "pearl throughput", args, rows=rows, replay=buffers)
    ray.shutdown()


if __name__ == "__main__":
    main()
