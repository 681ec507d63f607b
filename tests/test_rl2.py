"""RL²: trial semantics, recurrent state across inner episodes, results,
checkpoints and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
import tree
from gymnasium.spaces import Box, Discrete
from ray.rllib.core.columns import Columns
from ray.tune.registry import register_env

import rllib_maml  # noqa: F401 - registers the shipped envs
from rllib_maml.envs import make_env
from rllib_maml.envs.base import MetaEnv
from rllib_maml.rl2 import (
    ADAPTATION_DELTA,
    RL2,
    TRIAL_ID_INFO_KEY,
    TRIAL_RETURNS_INFO_KEY,
    RL2Config,
    RL2Policy,
    TrialEnv,
    episode_return_key,
)

HORIZON = 3


class TaskProbeEnv(MetaEnv):
    """A task is an integer; every step's reward is the task, so a trial's
    rewards show which task each step ran on. Episodes last `HORIZON` steps."""

    observation_space = Box(-1.0, 1.0, (2,), np.float32)
    action_space = Discrete(2)

    def __init__(self, config=None):
        self.task = 0
        self.t = 0

    def sample_tasks(self, n):
        return [int(x) for x in self.np_random.integers(1, 1_000_000, size=n)]

    def set_task(self, task):
        self.task = task

    def get_task(self):
        return self.task

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.full(2, 0.1 * self.t, np.float32)
        return obs, float(self.task), False, self.t >= HORIZON, {}


class LengthProbeEnv(TaskProbeEnv):
    """A task is an episode's length: 1 (short, 3 in 4 draws) or `horizon`
    (long)."""

    horizon = 10

    def sample_tasks(self, n):
        lengths = self.np_random.choice([1, self.horizon], size=n, p=[0.75, 0.25])
        return [int(x) for x in lengths]

    def step(self, action):
        self.t += 1
        return np.zeros(2, np.float32), 1.0, self.t >= self.task, False, {}


class NoTaskAPIEnv(gym.Env):
    observation_space = Box(-1.0, 1.0, (2,), np.float32)
    action_space = Discrete(2)


def run_trial(env: TrialEnv, seed=None):
    """Steps one trial; its observations, rewards, ends and last info."""
    obs, _ = env.reset(seed=seed)
    observations, rewards, ends = [obs], [], []
    while True:
        obs, reward, terminated, truncated, info = env.step(0)
        observations.append(obs)
        rewards.append(reward)
        ends.append(terminated or truncated)
        if terminated or truncated:
            return np.array(observations), np.array(rewards), ends, info


def test_trial_keeps_its_task_for_all_inner_episodes_and_draws_a_new_one():
    env = TrialEnv(TaskProbeEnv(), episodes_per_trial=3)
    obs, rewards, ends, info = run_trial(env, seed=0)
    # One task for all 3 x HORIZON steps; only the trial's last step ends it.
    assert len(rewards) == 3 * HORIZON
    assert len(set(rewards)) == 1
    assert ends == [False] * (3 * HORIZON - 1) + [True]
    # The flag (last entry) marks the first observation after an inner episode.
    flags = obs[:, -1]
    assert list(np.flatnonzero(flags)) == [HORIZON, 2 * HORIZON, 3 * HORIZON]
    # Each inner episode starts from the inner env's reset observation.
    np.testing.assert_array_equal(obs[HORIZON, :-1], np.zeros(2))
    assert info[TRIAL_RETURNS_INFO_KEY] == [HORIZON * rewards[0]] * 3
    _, next_rewards, _, _ = run_trial(env)
    assert next_rewards[0] != rewards[0]


def test_trial_tasks_are_seeded_or_given():
    first = [run_trial(TrialEnv(TaskProbeEnv(), 1), seed=7)[1][0] for _ in range(2)]
    assert first[0] == first[1]
    env = TrialEnv(TaskProbeEnv(), 2, tasks=[11, 22])
    assert [run_trial(env)[1][0] for _ in range(3)] == [11, 22, 11]


def test_trial_env_needs_the_task_api_and_a_flat_box():
    with pytest.raises(TypeError, match="sample_tasks"):
        TrialEnv(NoTaskAPIEnv(), 2)
    with pytest.raises(TypeError, match="1-D `Box`"):
        TrialEnv(_ImageProbe(), 2)


class _ImageProbe(TaskProbeEnv):
    observation_space = Box(0.0, 1.0, (2, 2), np.float32)


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"episodes_per_trial": 0}, "`episodes_per_trial` must be an integer >= 1"),
        ({"episodes_per_trial": 1.5}, "`episodes_per_trial` must be an integer >= 1"),
        # Navigation2D: 100-step episodes, a 201-step sequence.
        ({"minibatch_size": 200}, r"`minibatch_size` \(200\) is shorter than one"),
    ],
)
def test_bad_settings_raise_clear_errors(settings, match):
    config = RL2Config().environment("rllib_maml/Navigation2D-v0").training(**settings)
    with pytest.raises(ValueError, match=match):
        config.validate()


def test_array_stepped_vector_envs_raise_a_clear_error():
    config = (
        RL2Config()
        .environment("rllib_maml/Navigation2D-v0")
        .env_runners(gym_env_vectorize_mode="vector_entry_point")
    )
    with pytest.raises(ValueError, match="'vector_entry_point' is not supported"):
        config.validate()


def test_a_non_recurrent_model_raises_a_clear_error():
    config = (
        RL2Config()
        .environment("rllib_maml/Navigation2D-v0")
        .rl_module(model_config={"use_lstm": False})
    )
    with pytest.raises(ValueError, match="RL² needs a recurrent policy"):
        config.validate()


@pytest.mark.integration
def test_env_without_task_api_fails_before_runners_start(ray_session):
    register_env("rl2_test_no_task_api", lambda ctx: NoTaskAPIEnv())
    config = RL2Config().environment("rl2_test_no_task_api")
    with pytest.raises(TypeError, match="lacks the meta-env task API"):
        config.build_algo()


def small_config(env, *, env_config=None, num_envs=2, batch=40, seed=None):
    """A local-runner RL² config with one short PPO epoch per iteration."""
    return (
        RL2Config()
        .environment(env, env_config=env_config or {})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=num_envs)
        .training(
            episodes_per_trial=2,
            train_batch_size_per_learner=batch,
            minibatch_size=batch // 2,
            num_epochs=1,
        )
        .debugging(seed=seed)
    )


def _outputs_step_by_step(module, observations, state):
    """The module's action-distribution inputs at each step, from `state`."""
    outs = []
    with torch.no_grad():
        for obs in observations:
            batch = {
                Columns.OBS: torch.as_tensor(obs, dtype=torch.float32)[None, None],
                Columns.STATE_IN: state,
            }
            out = module.forward_exploration(batch)
            outs.append(out[Columns.ACTION_DIST_INPUTS][0, 0].numpy())
            state = out[Columns.STATE_OUT]
    return np.array(outs)


@pytest.mark.integration
def test_rl2_trains_carries_state_across_inner_episodes_and_restores(
    ray_session, tmp_path, monkeypatch
):
    horizon = 4
    config = small_config(
        "rllib_maml/Navigation2D-v0", env_config={"horizon": horizon}, batch=64, seed=3
    )
    trials = config.episodes_per_trial
    algo = config.build_algo()
    try:
        result = algo.train()
        runners = result["env_runners"]
        first, last = runners[episode_return_key(1)], runners[episode_return_key(2)]
        assert np.isfinite([first, last]).all()
        assert result[ADAPTATION_DELTA] == pytest.approx(last - first)

        # The runner's episodes are whole trials; replaying one step by step
        # from the initial state reproduces the sampled outputs only if the
        # state went on across the inner-episode boundary.
        module = algo.get_module()
        (episode,) = [
            e for e in algo.env_runner.sample(num_episodes=1, random_actions=False)
        ][:1]
        assert len(episode) == horizon * trials
        observations = episode.get_observations()[:-1]
        sampled = np.array(episode.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS))
        initial = tree.map_structure(
            lambda v: torch.as_tensor(v)[None], module.get_initial_state()
        )
        # One action std for all steps (RL2Config's default `free_log_std`).
        log_std = sampled[:, sampled.shape[1] // 2 :]
        assert np.ptp(log_std, axis=0).max() == 0.0
        replay = _outputs_step_by_step(module, observations, initial)
        np.testing.assert_allclose(replay, sampled, atol=1e-5)
        reset_at_boundary = _outputs_step_by_step(
            module, observations[horizon:], initial
        )
        assert np.abs(reset_at_boundary[0] - sampled[horizon]).max() > 1e-4

        path = algo.save_to_path(str(tmp_path / "checkpoint"))
        weights = {k: v.clone() for k, v in module.state_dict().items()}
        # The learner's module (the env runners' has the policy only updated).
        learner_weights = algo.learner_group.get_weights()["default_policy"]
    finally:
        algo.stop()
    # The policy alone (evaluation), from a path relative to the working
    # directory as a user types it.
    monkeypatch.chdir(tmp_path)
    policy = RL2Policy.from_checkpoint("checkpoint")
    assert policy.config.episodes_per_trial == trials
    for key, value in policy.module_state.items():
        torch.testing.assert_close(
            torch.as_tensor(value), torch.as_tensor(learner_weights[key])
        )
    goal = {"goal": np.array([0.2, -0.1])}
    assert policy.trial_returns([goal], seed=0).shape == (1, trials)
    restored = RL2.from_checkpoint(path)
    try:
        assert restored.config.episodes_per_trial == trials
        for key, value in restored.get_module().state_dict().items():
            torch.testing.assert_close(value, weights[key])
        assert episode_return_key(2) in restored.train()["env_runners"]
    finally:
        restored.stop()


@pytest.mark.integration
def test_training_batches_hold_whole_trials_as_single_sequences(ray_session):
    # A trial (60 steps) longer than RLlib's and RL²'s old `max_seq_len` (50),
    # and samples of the size of one round of trials.
    horizon, num_envs = 30, 4
    trial = 2 * horizon
    config = small_config(
        "rllib_maml/Navigation2D-v0",
        env_config={"horizon": horizon},
        num_envs=num_envs,
        batch=num_envs * trial,
        seed=5,
    )
    algo = config.build_algo()
    try:
        # The trial and the step PPO appends to bootstrap the value.
        assert algo.config.model_config["max_seq_len"] == trial + 1
        algo.train()
        episodes = algo.env_runner.sample()  # as training samples
        assert episodes and all(
            e.t_started == 0 and e.is_done and len(e) == trial for e in episodes
        )
        learner = algo.learner_group._learner
        batch = learner._learner_connector(
            rl_module=learner.module,
            batch={},
            episodes=episodes,
            shared_data={},
            metrics=learner.metrics,
        )["default_policy"]
        initial = algo.get_module().get_initial_state()
    finally:
        algo.stop()
    # One sequence per trial, from the module's initial state: gradients of
    # episode 2's steps reach episode 1's.
    mask = np.asarray(batch[Columns.LOSS_MASK])
    assert mask.shape == (len(episodes), trial + 1)
    assert mask[:, :trial].all() and not mask[:, trial].any()
    tree.map_structure(
        lambda state, init: np.testing.assert_array_equal(
            np.asarray(state), np.broadcast_to(np.asarray(init), state.shape)
        ),
        batch[Columns.STATE_IN],
        initial,
    )


@pytest.mark.integration
def test_a_training_sample_is_each_envs_first_trial_short_or_long(ray_session):
    # Short trials (2 steps) and long ones (20); stopping at the n-th finished
    # trial would return short trials only, several from the same env.
    register_env("rl2_test_length_probe", lambda ctx: LengthProbeEnv(ctx))
    num_envs = 8
    config = small_config(
        "rl2_test_length_probe", num_envs=num_envs, batch=40, seed=1
    ).training(minibatch_size=21)
    algo = config.build_algo()
    try:
        assert algo.config.trial_length == 20
        for _ in range(5):
            episodes = algo.env_runner.sample()
            ids = [e.get_infos(0)[TRIAL_ID_INFO_KEY] for e in episodes]
            assert len({uid for uid, _ in ids}) == len(episodes) == num_envs
            assert all(e.is_done and e.t_started == 0 for e in episodes)
            assert {len(e) for e in episodes} <= {2, 20}
    finally:
        algo.stop()


@pytest.mark.integration
def test_trial_returns_run_one_trial_per_given_task_in_order(ray_session):
    register_env("rl2_test_task_probe", lambda ctx: TaskProbeEnv(ctx))
    algo = small_config("rl2_test_task_probe", num_envs=1, batch=24).build_algo()
    try:
        algo.train()  # discrete actions: RLlib's one-hot previous actions
        returns = algo.trial_returns([5, 7, 11], seed=0)
    finally:
        algo.stop()
    np.testing.assert_array_equal(
        returns, HORIZON * np.array([[5, 5], [7, 7], [11, 11]])
    )


@pytest.mark.integration
def test_same_seed_same_first_iteration(ray_session):
    def first_result():
        config = small_config(
            "rllib_maml/Navigation2D-v0", env_config={"horizon": 5}, seed=11
        )
        algo = config.build_algo()
        try:
            runners = algo.train()["env_runners"]
            return [runners[episode_return_key(n)] for n in (1, 2)]
        finally:
            algo.stop()

    assert first_result() == first_result()


@pytest.mark.integration
def test_the_driver_creates_the_env_once_to_check_it(ray_session, tmp_path):
    # `RL2Config.validate` checks the env and reads its episode length;
    # `RL2.setup` must not create it again (Meta-World's ML10 takes ~15 s).
    log = tmp_path / "created"  # the registry keeps a copy of the creator

    def creator(ctx):
        with open(log, "a") as f:
            f.write(f"{ctx.worker_index}\n")
        return make_env("Navigation2D-v0", False, ctx)

    register_env("rl2_test_counted_navigation2d", creator)
    num_envs = 3
    config = small_config(
        "rl2_test_counted_navigation2d", env_config={"horizon": 5}, num_envs=num_envs
    )
    algo = config.build_algo()
    try:
        # One check on the driver, then the local env runner's sub-envs.
        assert len(log.read_text().split()) == 1 + num_envs
    finally:
        algo.stop()


def test_free_log_std_for_box_actions_and_not_for_older_checkpoints():
    def validated(config):
        config.validate()
        return config.model_config["free_log_std"]

    assert validated(RL2Config().environment("rllib_maml/Navigation2D-v0"))
    # RLlib has a free log std for `Box` actions only.
    assert not validated(
        RL2Config()
        .environment("rllib_maml/ParameterizedCartPole-v0")
        .training(minibatch_size=401)
    )
    # A config saved before the default (its state has `_trial_length`, not
    # `_env_facts`) keeps the state-dependent std of its checkpoint.
    state = RL2Config().environment("rllib_maml/Navigation2D-v0").get_state()
    del state["_env_facts"]
    state["_trial_length"] = None
    assert not validated(RL2Config.from_state(state))
