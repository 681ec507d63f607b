"""One RL² training run on Navigation2D with overridden settings, a CSV line
per iteration: episode 1 and 2 returns, `adaptation_delta`, and RLlib's value
and entropy statistics.

RLlib's `vf_explained_var` of a recurrent module is that of the first time
step of the sequences only (`torch.var` over the batch axis, then `[0]`):
with every trial starting at the same state it is 0 whatever the value
function does, so the CSV keeps `vf_loss_unclipped` as the value measure.

How to run (the settings of `benchmarks/results/rl2_probes/`, 2 cores):
    python benchmarks/rl2_probe.py --name whole_trials_lr1e-3_reward_x0.1 \
        --iterations 100 --reward-scale 0.1 \
        --set '{"training": {"lambda_": 0.95, "lr": 0.001}}'
`--set` takes JSON with `env_runners`, `training`, `model_config` and
`env_config` keys (`{"env_config": {"oracle": true}}`: the goal visible, a
check of the outer learner without meta-learning).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import ray
from _common import RESULTS
from ray.tune.registry import register_env

from rllib_maml import RL2Config
from rllib_maml.envs import make_env

COLUMNS = "it,steps,ep1,ep2,delta,vf_ev,vf_loss_unclipped,entropy,time"


class ScaledReward(gym.Wrapper):
    """Navigation2D with its rewards times `scale` (the task API passed on)."""

    def __init__(self, env, scale: float):
        super().__init__(env)
        self.scale = scale

    def sample_tasks(self, n):
        return self.env.unwrapped.sample_tasks(n)

    def set_task(self, task):
        self.env.unwrapped.set_task(task)

    def get_task(self):
        return self.env.unwrapped.get_task()

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward * self.scale, terminated, truncated, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--reward-scale", type=float, default=1.0)
    parser.add_argument("--set", default="{}", help="JSON overrides")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    over = json.loads(args.set)
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    env = "rllib_maml/Navigation2D-v0"
    if args.reward_scale != 1.0:
        scale = args.reward_scale
        env = "rl2_probe_scaled_navigation2d"
        register_env(
            env,
            lambda ctx: ScaledReward(make_env("Navigation2D-v0", False, ctx), scale),
        )
    config = (
        RL2Config()
        .environment(env, env_config={"horizon": 100, **over.get("env_config", {})})
        .env_runners(num_env_runners=2, **over.get("env_runners", {}))
        .training(episodes_per_trial=2, **over.get("training", {}))
        .debugging(seed=args.seed)
    )
    if over.get("model_config"):
        config.rl_module(model_config=over["model_config"])
    algo = config.build_algo()
    out = RESULTS / "rl2_probes" / f"{args.name}.csv"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with open(out, "w", encoding="utf-8") as f:
        f.write(COLUMNS + "\n")
        for it in range(1, args.iterations + 1):
            result = algo.train()
            runners = result["env_runners"]
            learner = result["learners"]["default_policy"]
            row = [
                it,
                runners.get("num_env_steps_sampled_lifetime"),
                runners.get("episode_return_mean_episode_1", float("nan")),
                runners.get("episode_return_mean_episode_2", float("nan")),
                result.get("adaptation_delta", float("nan")),
                learner.get("vf_explained_var"),
                learner.get("vf_loss_unclipped"),
                learner.get("entropy"),
                round(time.time() - start, 1),
            ]
            f.write(
                ",".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in row)
                + "\n"
            )
            f.flush()
    algo.stop()


if __name__ == "__main__":
    main()
