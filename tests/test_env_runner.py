"""`MAMLEnvRunner.sample_tasks` (several tasks per pass, each with its own
parameters) and the array-stepped Navigation2D vector env, against independent
computations."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import local_config, local_runner_and_learner
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.connectors.env_to_module import FlattenObservations
from ray.rllib.core.columns import Columns
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED
from ray.tune.registry import register_env

from rllib_maml import Navigation2DEnv
from rllib_maml.env_runner import TaskJob
from rllib_maml.envs import Navigation2DVectorEnv, make_env, register_envs

register_envs()
GOALS = [(0.3, -0.2), (-0.4, 0.1), (0.05, 0.45)]
CART_TASKS = [{"masscart": 0.5, "masspole": 0.1}, {"masscart": 2.0, "masspole": 0.1}]


def batched_runner(num_envs, vectorize_mode, episodes_per_task=2, **env_runners):
    config = local_config(episodes_per_task=episodes_per_task).env_runners(
        num_envs_per_env_runner=num_envs,
        gym_env_vectorize_mode=vectorize_mode,
        **env_runners,
    )
    config.environment(env_config={"horizon": 20})
    return local_runner_and_learner(config)


def per_task_params(learner, num_tasks):
    """Params that differ per task: task j's policy-head bias is shifted by j/2."""
    theta = learner.meta_policy_params()
    bias = next(n for n in theta if n.startswith("pi.") and n.endswith("bias"))
    return [
        learner.policy_params_numpy({**theta, bias: theta[bias].detach() + j / 2})
        for j in range(num_tasks)
    ]


def module_with(module, params):
    """A copy of `module` with `params` (name -> array) loaded."""
    module = copy.deepcopy(module)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in params:
                p.copy_(torch.as_tensor(params[name]))
    return module


def own_params(runner):
    return {n: p.detach().clone() for n, p in runner.module.named_parameters()}


@pytest.mark.parametrize("vectorize_mode", ["sync", "vector_entry_point"])
@pytest.mark.parametrize("num_envs", [3, 4])
def test_batched_episodes_follow_each_tasks_params_and_env(vectorize_mode, num_envs):
    # 6 (task, episode) slots: with 4 envs tasks 0 and 1 share the first pass;
    # with 3, task 1's episodes are split over two passes.
    runner, learner = batched_runner(num_envs, vectorize_mode)
    assert runner.batching_unavailable() is None
    params = per_task_params(learner, len(GOALS))
    jobs = [TaskJob(j, {"goal": np.array(g)}, params[j]) for j, g in enumerate(GOALS)]
    before = own_params(runner)
    samples = runner.sample_tasks(jobs, num_episodes=2, entropy=0)
    episodes = samples.episodes_by_task

    assert sorted(episodes) == [0, 1, 2]
    total = 0
    for j, goal in enumerate(GOALS):
        assert len(episodes[j]) == 2
        module = module_with(runner.module, params[j])  # RLlib's own forward
        for ep in episodes[j]:
            assert ep.is_done and 1 <= len(ep) <= 20
            total += len(ep)
            obs = ep.get_observations()
            np.testing.assert_array_equal(obs[0], 0.0)  # starts from a reset
            actions = ep.get_actions()
            inputs = ep.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS)
            with torch.no_grad():
                expected = module.forward_inference(
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
            assert len(ep.get_infos()) == len(obs)
    assert samples.metrics[NUM_ENV_STEPS_SAMPLED] == total
    # The runner's own module (the meta-policy) is untouched.
    for name, value in own_params(runner).items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


def test_refilled_sub_envs_give_whole_episodes_of_discrete_actions():
    # CartPole episodes end at different steps: a sub-env whose episode ended
    # takes the next (task, episode) slot while the others run on.
    config = local_config("rllib_maml/CartPoleMass-v0", episodes_per_task=5)
    runner, learner = local_runner_and_learner(
        config.env_runners(num_envs_per_env_runner=3)
    )
    params = per_task_params(learner, 2)
    jobs = [TaskJob(j, task, params[j]) for j, task in enumerate(CART_TASKS)]
    episodes = runner.sample_tasks(jobs, num_episodes=5).episodes_by_task
    lengths = [len(ep) for j in range(2) for ep in episodes[j]]
    assert len(lengths) == 10 and len(set(lengths)) > 1
    for j in range(2):
        module = module_with(runner.module, params[j])
        for ep in episodes[j]:
            assert ep.is_terminated or ep.is_truncated
            obs = ep.get_observations()
            assert np.all(np.abs(obs[0]) <= 0.05)  # CartPole's reset range
            with torch.no_grad():
                logits = module.forward_inference(
                    {Columns.OBS: torch.as_tensor(obs[:-1])}
                )[Columns.ACTION_DIST_INPUTS]
            inputs = ep.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS)
            np.testing.assert_allclose(inputs, logits.numpy(), rtol=1e-5, atol=1e-6)
            logp = torch.log_softmax(logits, -1).numpy()
            picked = logp[np.arange(len(ep)), ep.get_actions()]
            np.testing.assert_allclose(
                ep.get_extra_model_outputs(Columns.ACTION_LOGP), picked, atol=1e-5
            )


def first_observations(episodes):
    return {
        task: [np.asarray(ep.get_observations()[0]) for ep in eps]
        for task, eps in episodes.items()
    }


def test_resets_are_seeded_per_task_and_episode_wherever_they_run():
    """Random resets (CartPole) repeat for the same entropy, whichever sub-env
    runs a (task, episode) slot and whatever other tasks share the call; torch's
    RNG is left alone; other entropy, other resets."""
    runners = [
        local_runner_and_learner(
            local_config("rllib_maml/CartPoleMass-v0").env_runners(
                num_envs_per_env_runner=num_envs
            )
        )
        for num_envs in (1, 4)
    ]
    jobs = [TaskJob(j, task) for j, task in enumerate(CART_TASKS)]
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    few = first_observations(
        runners[0][0].sample_tasks(jobs, num_episodes=3, entropy=5).episodes_by_task
    )
    torch.testing.assert_close(torch.rand(3), expected_next)
    many = first_observations(
        runners[1][0].sample_tasks(jobs, num_episodes=3, entropy=5).episodes_by_task
    )
    alone = first_observations(
        runners[1][0].sample_tasks(jobs[1:], num_episodes=3, entropy=5).episodes_by_task
    )
    other = first_observations(
        runners[1][0].sample_tasks(jobs, num_episodes=3, entropy=6).episodes_by_task
    )
    for task in (0, 1):
        np.testing.assert_array_equal(few[task], many[task])
        assert not np.allclose(few[task], other[task])
    np.testing.assert_array_equal(alone[1], many[1])
    # The episodes of one call differ from each other.
    assert len({tuple(o) for o in many[0]}) == 3


def test_same_entropy_repeats_the_episodes():
    runner, learner = batched_runner(4, "vector_entry_point")
    params = per_task_params(learner, len(GOALS))
    jobs = [TaskJob(j, {"goal": np.array(g)}, params[j]) for j, g in enumerate(GOALS)]
    first = runner.sample_tasks(jobs, num_episodes=2, entropy=7).episodes_by_task
    again = runner.sample_tasks(jobs, num_episodes=2, entropy=7).episodes_by_task
    for j in range(len(GOALS)):
        for a, b in zip(first[j], again[j], strict=True):
            np.testing.assert_array_equal(a.get_actions(), b.get_actions())


class InfoNavigation(Navigation2DEnv):
    """Navigation2D whose infos say the step number and whether it is near."""

    def step(self, action):
        obs, reward, terminated, truncated, _ = super().step(action)
        return obs, reward, terminated, truncated, {"t": self._t, "near": reward > -0.2}


def wrapped_vector_env(config):
    """A vector env of InfoNavigation behind a user's vector wrapper that
    multiplies rewards by 10."""
    config = dict(config or {})
    num_envs = config.pop("num_envs", 1)
    vector_env = gym.vector.SyncVectorEnv(
        [lambda: InfoNavigation(config) for _ in range(num_envs)]
    )
    return gym.wrappers.vector.TransformReward(vector_env, lambda r: 10 * r)


class CountSampleEnd(RLlibCallback):
    calls: list = []

    def on_sample_end(self, *, env_runner, metrics_logger, samples, **kwargs):
        CountSampleEnd.calls.append(len(samples))


def test_infos_user_wrappers_and_sample_end_callbacks_are_kept():
    register_env("test_maml/WrappedInfoNavigation", wrapped_vector_env)
    config = (
        local_config(episodes_per_task=2)
        .environment("test_maml/WrappedInfoNavigation", env_config={"horizon": 5})
        .env_runners(
            num_envs_per_env_runner=3, gym_env_vectorize_mode="vector_entry_point"
        )
        .callbacks(CountSampleEnd)
    )
    runner, _ = local_runner_and_learner(config)
    assert runner.batching_unavailable() is None
    CountSampleEnd.calls.clear()
    jobs = [TaskJob(j, {"goal": np.array(g)}) for j, g in enumerate(GOALS)]
    episodes = runner.sample_tasks(jobs, num_episodes=2, entropy=0).episodes_by_task
    assert CountSampleEnd.calls == [6]
    for j, goal in enumerate(GOALS):
        for ep in episodes[j]:
            infos = ep.get_infos()
            assert [info.get("t") for info in infos[1:]] == list(range(1, len(ep) + 1))
            obs = np.asarray(ep.get_observations())
            distance = np.linalg.norm(obs[1:] - np.array(goal), axis=-1)
            # The user's wrapper is stepped: rewards x 10.
            np.testing.assert_allclose(ep.get_rewards(), -10 * distance, rtol=1e-5)
            np.testing.assert_array_equal(
                [info["near"] for info in infos[1:]], distance < 0.2
            )
            # As the env returned them (not as numpy scalars of the vector env).
            assert all(type(info["near"]) is bool for info in infos[1:])


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
    assert reason in runner.batching_unavailable()
    params = per_task_params(learner, len(GOALS))
    before = own_params(runner)
    jobs = [TaskJob(j, {"goal": np.array(g)}, params[j]) for j, g in enumerate(GOALS)]
    with caplog.at_level("WARNING", logger="rllib_maml.env_runner"):
        episodes = runner.sample_tasks(jobs, num_episodes=2, entropy=0).episodes_by_task
    assert [len(episodes[j]) for j in range(len(GOALS))] == [2, 2, 2]
    assert any(reason in r.getMessage() for r in caplog.records)
    # Each task's episodes were sampled with its parameters ...
    for j in range(len(GOALS)):
        module = module_with(runner.module, params[j])
        ep = episodes[j][0]
        with torch.no_grad():
            expected = module.forward_inference(
                {Columns.OBS: torch.as_tensor(np.asarray(ep.get_observations()[:-1]))}
            )[Columns.ACTION_DIST_INPUTS]
        np.testing.assert_allclose(
            ep.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS),
            expected.numpy(),
            rtol=1e-5,
            atol=1e-6,
        )
    # ... and the runner's own module holds the meta-policy again.
    for name, value in own_params(runner).items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    runner.stop()


def test_an_env_error_is_raised_not_returned():
    runner, _ = batched_runner(2, "sync")
    with pytest.raises(KeyError, match="goal"):
        runner.sample_tasks([TaskJob(0, {"no_goal": 1})], num_episodes=1)


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
        if t == horizon:  # a masked reset of some sub-envs, as sampling does
            mask = np.arange(n) % 2 == 0
            got = fast.reset(options={"reset_mask": mask})[0]
            want = reference.reset(options={"reset_mask": mask.copy()})[0]
            np.testing.assert_array_equal(got, want)
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
