"""Your own meta env in a few lines: register it with Tune and train MAML on it.

How to run:
    python examples/custom_meta_env.py
Results to expect: adaptation_delta > 0 from the first iterations on.
"""

import gymnasium as gym
import numpy as np
import ray
from ray.tune.registry import register_env

from rllib_maml import MAMLConfig, MetaEnv


class GoalOnALine(MetaEnv):
    """Move along a line towards a goal in [-1, 1] that the agent cannot see."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, config=None):
        self.goal, self.x, self.t = 0.0, 0.0, 0

    def sample_tasks(self, n):
        return [{"goal": float(g)} for g in self.np_random.uniform(-1, 1, size=n)]

    def set_task(self, task):
        self.goal = task["goal"]

    def get_task(self):
        return {"goal": self.goal}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = 0.0, 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x += 0.1 * float(np.clip(action[0], -1.0, 1.0))
        self.t += 1
        obs = np.array([self.x], np.float32)
        return obs, -abs(self.x - self.goal), False, self.t >= 20, {}


def main(iterations=10):
    register_env("GoalOnALine-v0", lambda env_config: GoalOnALine(env_config))
    config = MAMLConfig().environment("GoalOnALine-v0").env_runners(num_env_runners=1)
    algo = config.training(meta_batch_size=10, episodes_per_task=10).build_algo()
    results = [algo.train() for _ in range(iterations)]
    for r in results:
        print(f"iter {r['training_iteration']}: delta {r['adaptation_delta']:+.2f}")
    algo.stop()
    return results


if __name__ == "__main__":
    ray.init(include_dashboard=False)
    main()
