"""MAML learns to adapt on Navigation2D-v0 within a bounded budget (about 1 minute)."""

import numpy as np
import pytest

from rllib_maml import MAMLConfig
from rllib_maml.progress import HEADER, post_adaptation_return, progress_line

pytestmark = pytest.mark.learning

ITERATIONS = 15  # 10 tasks x 10 episodes x 100 steps x 2 = 20k env steps each
LAST = 5


@pytest.mark.parametrize("outer_optimizer", ["ppo", "trpo"])
def test_navigation2d_adaptation_delta_positive(ray_session, outer_optimizer):
    config = (
        MAMLConfig()
        .environment("rllib_maml/Navigation2D-v0")
        .env_runners(
            num_env_runners=2, num_envs_per_env_runner=5, num_cpus_per_env_runner=0.5
        )
        .training(
            meta_batch_size=10, episodes_per_task=10, outer_optimizer=outer_optimizer
        )
        .debugging(seed=0)
    )
    algo = config.build_algo()
    results = []
    try:
        print(HEADER)
        for _ in range(ITERATIONS):
            results.append(algo.train())
            print(progress_line(results[-1]))
    finally:
        algo.stop()
    deltas = [r["adaptation_delta"] for r in results[-LAST:]]
    post_first = post_adaptation_return(results[0])
    post_last = np.mean([post_adaptation_return(r) for r in results[-LAST:]])
    print(
        f"{outer_optimizer}: mean delta (last {LAST}): {np.mean(deltas):.2f}; "
        f"post-adaptation return iteration 1: {post_first:.2f}, "
        f"mean of last {LAST}: {post_last:.2f}"
    )
    assert np.mean(deltas) > 2.0
    assert post_last > post_first + 15.0
