"""Batched sampling (several tasks per pass, one forward with per-task weights)
and the array-stepped Navigation2D vector env, against independent computations."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import local_config, local_runner_and_learner
from ray.rllib.connectors.env_to_module import FlattenObservations
from ray.rllib.core.columns import Columns
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED

from rllib_maml.batched_sampling import batching_unavailable
from rllib_maml.envs import (
    Navigation2DVectorEnv,
    make_env,
    register_envs,
)
from rllib_maml.sampling import sample_jobs_on_env_runner

register_envs()
GOALS = [(0.3, -0.2), (-0.4, 0.1), (0.05, 0.45)]


def batched_runner(num_envs, vectorize_mode, episodes_per_task=2, **env_runners):
    config = local_config(episodes_per_task=episodes_per_task).env_runners(
        num_envs_per_env_runner=num_envs,
        gym_env_vectorize_mode=vectorize_mode,
        **env_runners,
    )
    config.environment(env_config={"horizon": 20})
    return local_runner_and_learner(config)


def per_task_weights(learner, num_tasks):
    """Weights that differ per task: task j's policy-head bias is shifted by j/2."""
    theta = learner.meta_policy_params()
    bias = next(n for n in theta if n.startswith("pi.") and n.endswith("bias"))
    return [
        learner.inference_weights({bias: theta[bias].detach() + j / 2})
        for j in range(num_tasks)
    ]


@pytest.mark.parametrize("vectorize_mode", ["sync", "vector_entry_point"])
@pytest.mark.parametrize("num_envs", [3, 4])
def test_batched_episodes_follow_each_tasks_weights_and_env(vectorize_mode, num_envs):
    # 6 (task, episode) slots: with 4 envs tasks 0 and 1 share the first pass;
    # with 3, task 1's episodes are split over two passes.
    runner, learner = batched_runner(num_envs, vectorize_mode)
    assert batching_unavailable(runner) is None
    weights = per_task_weights(learner, len(GOALS))
    jobs = [(j, {"goal": np.array(g)}, weights[j], None) for j, g in enumerate(GOALS)]
    episodes, metrics, failure = sample_jobs_on_env_runner(
        runner, jobs, 2, batched=True
    )

    assert failure is None
    assert sorted(episodes) == [0, 1, 2]
    total = 0
    for j, goal in enumerate(GOALS):
        assert len(episodes[j]) == 2
        runner.module.set_state(weights[j])  # RLlib's own forward, task j's weights
        for ep in episodes[j]:
            assert ep.is_done and 1 <= len(ep) <= 20
            total += len(ep)
            obs = ep.get_observations()
            np.testing.assert_array_equal(obs[0], 0.0)  # starts from a reset
            actions = ep.get_actions()
            inputs = ep.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS)
            with torch.no_grad():
                expected = runner.module.forward_inference(
                    {Columns.OBS: torch.as_tensor(obs[:-1])}
                )[Columns.ACTION_DIST_INPUTS]
            np.testing.assert_allclose(inputs, expected.numpy(), rtol=1e-5, atol=1e-6)
            mean, log_std = np.split(inputs, 2, axis=-1)
            logp = torch.distributions.Normal(
                torch.as_tensor(mean), torch.as_tensor(np.exp(log_std))
            ).log_prob(torch.as_tensor(actions))
            np.testing.assert_allclose(
                ep.get_extra_model_outputs(Columns.ACTION_LOGP),
                logp.sum(-1).numpy(),
                rtol=1e-5,
                atol=1e-5,
            )
            # The env got the action unsquashed from [-1, 1] to [-0.1, 0.1].
            step = np.clip(0.1 * actions, -0.1, 0.1)
            np.testing.assert_allclose(obs[1:], obs[:-1] + step, atol=1e-6)
            # ... and task j's goal.
            distance = np.linalg.norm(obs[1:] - np.array(goal), axis=-1)
            np.testing.assert_allclose(ep.get_rewards(), -distance, atol=1e-6)
    assert metrics[NUM_ENV_STEPS_SAMPLED] == total


def test_refilled_sub_envs_give_whole_episodes_of_discrete_actions():
    # CartPole episodes end at different steps: a sub-env whose episode ended
    # takes the next (task, episode) slot while the others run on.
    config = local_config("rllib_maml/CartPoleMass-v0", episodes_per_task=5)
    runner, learner = local_runner_and_learner(
        config.env_runners(num_envs_per_env_runner=3)
    )
    weights = per_task_weights(learner, 2)
    tasks = [{"masscart": 0.5, "masspole": 0.1}, {"masscart": 2.0, "masspole": 0.1}]
    jobs = [(j, task, weights[j], None) for j, task in enumerate(tasks)]
    episodes, _, failure = sample_jobs_on_env_runner(runner, jobs, 5, batched=True)
    assert failure is None
    lengths = [len(ep) for j in range(2) for ep in episodes[j]]
    assert len(lengths) == 10 and len(set(lengths)) > 1
    for j in range(2):
        runner.module.set_state(weights[j])
        for ep in episodes[j]:
            assert ep.is_terminated or ep.is_truncated
            obs = ep.get_observations()
            assert np.all(np.abs(obs[0]) <= 0.05)  # CartPole's reset range
            with torch.no_grad():
                logits = runner.module.forward_inference(
                    {Columns.OBS: torch.as_tensor(obs[:-1])}
                )[Columns.ACTION_DIST_INPUTS]
            inputs = ep.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS)
            np.testing.assert_allclose(inputs, logits.numpy(), rtol=1e-5, atol=1e-6)
            logp = torch.log_softmax(logits, -1).numpy()
            picked = logp[np.arange(len(ep)), ep.get_actions()]
            np.testing.assert_allclose(
                ep.get_extra_model_outputs(Columns.ACTION_LOGP), picked, atol=1e-5
            )


@pytest.fixture
def batched_seeds(monkeypatch):
    """The `seed` of every `sample_tasks_batched` call, in order."""
    import rllib_maml.sampling as sampling

    seeds = []
    batched = sampling.sample_tasks_batched
    monkeypatch.setattr(
        sampling,
        "sample_tasks_batched",
        lambda *a, **k: seeds.append(k["seed"]) or batched(*a, **k),
    )
    return seeds


def test_seeded_batched_jobs_repeat_and_leave_torch_rng_alone(batched_seeds):
    calls = batched_seeds
    runner, learner = batched_runner(4, "vector_entry_point")
    weights = per_task_weights(learner, len(GOALS))
    jobs = [(j, {"goal": np.array(g)}, weights[j], 7 + j) for j, g in enumerate(GOALS)]
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first, _, _ = sample_jobs_on_env_runner(runner, jobs, 2, batched=True)
    torch.testing.assert_close(torch.rand(3), expected_next)
    again, _, _ = sample_jobs_on_env_runner(runner, jobs, 2, batched=True)
    assert len(calls) == 2 and calls[0] is not None and calls[0] == calls[1]
    for j in range(len(GOALS)):
        for a, b in zip(first[j], again[j], strict=True):
            np.testing.assert_array_equal(a.get_actions(), b.get_actions())


@pytest.mark.parametrize(
    "num_envs, env_runners, reason",
    [
        (
            2,
            {
                "env_to_module_connector": lambda env, spaces, device: (
                    FlattenObservations()
                )
            },
            "custom env-to-module",
        ),
        (2, {"gym_env_vectorize_mode": "async"}, "AsyncVectorEnv"),
    ],
)
def test_unbatchable_runners_sample_task_by_task(num_envs, env_runners, reason, caplog):
    mode = env_runners.pop("gym_env_vectorize_mode", "sync")
    runner, learner = batched_runner(num_envs, mode, **env_runners)
    assert reason in batching_unavailable(runner)
    weights = learner.inference_weights()
    jobs = [(j, {"goal": np.array(g)}, weights, None) for j, g in enumerate(GOALS)]
    with caplog.at_level("WARNING", logger="rllib_maml.sampling"):
        episodes, _, failure = sample_jobs_on_env_runner(runner, jobs, 2, batched=True)
    assert failure is None
    assert [len(episodes[j]) for j in range(len(GOALS))] == [2, 2, 2]
    assert any(reason in r.getMessage() for r in caplog.records)
    runner.stop()


@pytest.mark.parametrize("oracle", [False, True])
def test_navigation_vector_env_steps_like_sync_vector_env(oracle):
    n, horizon = 6, 5
    fast = Navigation2DVectorEnv(n, {"horizon": horizon, "oracle": oracle})
    reference = gym.vector.SyncVectorEnv(
        [lambda: make_env("Navigation2D-v0", oracle, {"horizon": horizon})] * n
    )
    tasks = [{"goal": np.array([0.05 * (i % 3), 0.05])} for i in range(n)]
    fast.set_tasks(tasks)
    for env, task in zip(reference.envs, tasks, strict=True):
        env.set_task(task)
    np.testing.assert_array_equal(fast.reset(seed=0)[0], reference.reset(seed=0)[0])
    rng = np.random.default_rng(0)
    terminations = truncations = 0
    for t in range(3 * horizon):
        # Steps of exactly 0.05 reach some goals (termination); the rest are
        # random (truncation at the horizon); both autoreset on the next step.
        actions = np.where(
            (rng.random((n, 1)) < 0.5), 0.05, rng.uniform(-0.2, 0.2, (n, 2))
        ).astype(np.float32)
        got, want = fast.step(actions), reference.step(actions)
        for a, b in zip(got[:4], want[:4], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"step {t}")
        terminations += got[2].sum()
        truncations += got[3].sum()
    assert terminations > 0 and truncations > 0


def test_make_env_with_num_envs_gives_vector_envs():
    nav = gym.make_vec(
        "rllib_maml/Navigation2D-v0",
        num_envs=3,
        vectorization_mode="vector_entry_point",
        horizon=7,
    )
    assert isinstance(nav, Navigation2DVectorEnv) and nav.num_envs == 3
    assert nav.horizon == 7
    cartpole = make_env("CartPoleMass-v0", False, {"num_envs": 2})
    assert isinstance(cartpole, gym.vector.SyncVectorEnv) and cartpole.num_envs == 2


def test_evaluation_samples_batched_with_seeds(ray_session, batched_seeds):
    seeds = batched_seeds
    config = (
        local_config(episodes_per_task=2)
        .env_runners(num_envs_per_env_runner=4)
        .evaluation(evaluation_num_tasks=3, evaluation_adaptation_steps=1)
    )
    algo = config.build_algo()
    try:
        result = algo.evaluate()
    finally:
        algo.stop()
    assert result["num_tasks"] == 3
    assert len(seeds) == 2 and None not in seeds  # steps 0 and 1, both seeded
