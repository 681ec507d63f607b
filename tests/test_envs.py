"""The shipped meta envs: gymnasium API, pickling, task semantics, registration."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rllib_maml
from rllib_maml.envs import ENV_CLASSES, check_meta_env

ENV_IDS = rllib_maml.registered_env_names()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_env_passes_check_env_and_pickles(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    clone = pickle.loads(pickle.dumps(env.unwrapped))
    assert clone.get_task().keys() == env.unwrapped.get_task().keys()
    check_meta_env(env, env_id)


@pytest.mark.parametrize("cls", ENV_CLASSES.values(), ids=list(ENV_CLASSES))
def test_sample_tasks_count_and_seed(cls):
    env = cls()
    env.reset(seed=3)
    a = env.sample_tasks(7)
    env.reset(seed=3)
    b = env.sample_tasks(7)
    env.reset(seed=4)
    c = env.sample_tasks(7)
    assert len(a) == 7
    flat = lambda tasks: np.concatenate(  # noqa: E731
        [np.ravel(np.asarray(list(t.values()), dtype=float)) for t in tasks]
    )
    np.testing.assert_array_equal(flat(a), flat(b))
    assert not np.array_equal(flat(a), flat(c))


def test_task_ranges():
    nav = rllib_maml.Navigation2DEnv()
    nav.reset(seed=0)
    goals = np.array([t["goal"] for t in nav.sample_tasks(500)])
    assert goals.min() >= -0.5 and goals.max() <= 0.5
    cart = rllib_maml.CartPoleMassEnv()
    cart.reset(seed=0)
    tasks = cart.sample_tasks(500)
    assert all(
        0.5 <= t["masscart"] <= 2.0 and 0.05 <= t["masspole"] <= 0.2 for t in tasks
    )
    pend = rllib_maml.PendulumMassEnv({"mass_range": (1.0, 1.5)})
    pend.reset(seed=0)
    assert all(1.0 <= t["mass"] <= 1.5 for t in pend.sample_tasks(500))


def step_from(env, task, state, action):
    env.set_task(task)
    env.reset(seed=0)
    env.state = np.array(state, dtype=np.float64)
    return env.step(action)


def test_cartpole_mass_changes_dynamics():
    env = rllib_maml.CartPoleMassEnv()
    state = [0.0, 0.1, 0.05, -0.1]
    light = {"masscart": 0.5, "masspole": 0.05}
    heavy = {"masscart": 2.0, "masspole": 0.2}
    obs_light = step_from(env, light, state, 1)[0]
    obs_heavy = step_from(env, heavy, state, 1)[0]
    again = step_from(env, light, state, 1)[0]
    assert not np.allclose(obs_light, obs_heavy)
    np.testing.assert_array_equal(obs_light, again)
    # The dynamics use the recomputed totals, not just the attributes.
    env.set_task(heavy)
    assert env.total_mass == pytest.approx(2.2)
    assert env.polemass_length == pytest.approx(0.2 * env.length)
    # Independent check of the cart acceleration: x_dot(t+1) - x_dot(t) = tau * xacc.
    x, x_dot, theta, theta_dot = state
    force = env.force_mag
    temp = (force + 0.2 * env.length * theta_dot**2 * np.sin(theta)) / 2.2
    thetaacc = (env.gravity * np.sin(theta) - np.cos(theta) * temp) / (
        env.length * (4.0 / 3.0 - 0.2 * np.cos(theta) ** 2 / 2.2)
    )
    xacc = temp - 0.2 * env.length * thetaacc * np.cos(theta) / 2.2
    assert obs_heavy[1] == pytest.approx(x_dot + env.tau * xacc, rel=1e-5)


def test_pendulum_mass_changes_dynamics():
    env = rllib_maml.PendulumMassEnv()
    state = [0.5, 0.2]
    outs = [step_from(env, {"mass": m}, state, np.array([1.5]))[0] for m in (0.5, 2.0)]
    assert not np.allclose(outs[0], outs[1])
    again = step_from(env, {"mass": 0.5}, state, np.array([1.5]))[0]
    np.testing.assert_array_equal(outs[0], again)


def test_navigation_reward_depends_on_goal():
    env = rllib_maml.Navigation2DEnv()
    rewards = []
    for goal in ([0.3, 0.3], [-0.3, 0.1], [0.3, 0.3]):
        env.set_task({"goal": np.array(goal)})
        env.reset(seed=0)
        _, r, terminated, truncated, _ = env.step(np.array([0.1, 0.05]))
        rewards.append(r)
    assert rewards[0] == pytest.approx(-np.hypot(0.2, 0.25))
    assert rewards[1] == pytest.approx(-np.hypot(0.4, 0.05))
    assert rewards[0] == rewards[2]
    # Actions are clipped to [-0.1, 0.1]; the episode ends at the goal.
    env.set_task({"goal": np.array([0.1, 0.1])})
    env.reset()
    obs, r, terminated, _, _ = env.step(np.array([5.0, 5.0]))
    np.testing.assert_allclose(obs, [0.1, 0.1])
    assert terminated and r == pytest.approx(0.0)


def test_navigation_horizon_truncates():
    env = rllib_maml.Navigation2DEnv({"horizon": 5})
    env.set_task({"goal": np.array([0.5, 0.5])})
    env.reset()
    for t in range(5):
        _, _, terminated, truncated, _ = env.step(np.zeros(2))
        assert not terminated
        assert truncated == (t == 4)


@pytest.mark.parametrize(
    "env_id, slots",
    [
        ("rllib_maml/Navigation2DOracle-v0", lambda task: task["goal"]),
        (
            "rllib_maml/CartPoleMassOracle-v0",
            lambda task: [task["masscart"], task["masspole"]],
        ),
        ("rllib_maml/PendulumMassOracle-v0", lambda task: [task["mass"]]),
    ],
)
def test_oracle_observation_ends_with_task(env_id, slots):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    (task,) = env.sample_tasks(1)
    env.set_task(task)
    obs, _ = env.reset(seed=1)
    expected = np.asarray(slots(task), dtype=np.float32)
    np.testing.assert_allclose(obs[-len(expected) :], expected, rtol=1e-6)
    obs, *_ = env.step(env.action_space.sample())
    np.testing.assert_allclose(obs[-len(expected) :], expected, rtol=1e-6)
