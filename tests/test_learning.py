"""MAML learns to adapt on Navigation2D-v0 within a bounded budget (about 1 minute)."""

import numpy as np
import pytest

from rllib_maml import MAMLConfig
from rllib_maml.progress import HEADER, post_adaptation_return, progress_line

pytestmark = pytest.mark.learning

ITERATIONS = 15  # 10 tasks x 10 episodes x 100 steps x 2 = 20k env steps each
LAST = 5


def navigation_config(**training) -> MAMLConfig:
    """Navigation2D-v0, 2 runners x 5 envs, 10 tasks x 10 episodes, seed 0."""
    return (
        MAMLConfig()
        .environment("rllib_maml/Navigation2D-v0")
        .env_runners(
            num_env_runners=2, num_envs_per_env_runner=5, num_cpus_per_env_runner=0.5
        )
        .training(meta_batch_size=10, episodes_per_task=10, **training)
        .debugging(seed=0)
    )


@pytest.mark.parametrize("outer_optimizer", ["ppo", "trpo"])
def test_navigation2d_adaptation_delta_positive(ray_session, outer_optimizer):
    algo = navigation_config(outer_optimizer=outer_optimizer).build_algo()
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


def test_maml_beats_random_init_after_one_step_on_heldout_tasks(ray_session):
    """After a short meta-training run, one inner step from the meta-policy
    beats one inner step from a fresh policy on held-out tasks."""
    from rllib_maml.evaluation import evaluate_with_baselines, markdown_table

    algo = navigation_config().build_algo()
    try:
        for _ in range(8):
            algo.train()
        report = evaluate_with_baselines(
            algo, num_tasks=10, num_steps=1, seed=1, baselines=("random",)
        )
    finally:
        algo.stop()
    print(markdown_table(report))
    maml = report["methods"]["maml"]["return_mean"]
    random_init = report["methods"]["random"]["return_mean"]
    assert maml[1] > random_init[1] + 10.0
