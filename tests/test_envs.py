"""The shipped meta envs: gymnasium API, pickling, task semantics, registration."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rllib_maml
from rllib_maml.envs import (
    ENV_SPECS,
    METAWORLD_ENVS,
    MUJOCO_ENVS,
    check_meta_env,
    make_env,
)

ENV_IDS = rllib_maml.registered_env_names()

# Two different tasks per env, and whether they differ in the dynamics (next
# state) or only in the reward.
TASK_PAIRS = {
    "Navigation2D-v0": ({"goal": [0.3, 0.3]}, {"goal": [-0.3, 0.1]}, "reward"),
    "CartPoleMass-v0": (
        {"masscart": 0.5, "masspole": 0.05},
        {"masscart": 2.0, "masspole": 0.2},
        "dynamics",
    ),
    "PendulumMass-v0": ({"mass": 0.5}, {"mass": 2.0}, "dynamics"),
    "MountainCarContinuousMeta-v0": (
        {"goal_position": 0.45, "gravity": 0.0025},
        {"goal_position": 0.55, "gravity": 0.006},
        "dynamics",
    ),
    "ParameterizedCartPole-v0": ({"length": 0.3}, {"length": 0.8}, "dynamics"),
    "HalfCheetahRandDirec-v0": ({"direction": 1.0}, {"direction": -1.0}, "reward"),
    "HalfCheetahRandVel-v0": ({"velocity": 0.5}, {"velocity": 1.5}, "reward"),
    "AntRandGoal-v0": ({"goal": [2.0, 0.0]}, {"goal": [-1.0, 2.0]}, "reward"),
    "AntRandDirec-v0": ({"direction": 1.0}, {"direction": -1.0}, "reward"),
    "AntRandVel-v0": ({"velocity": 0.5}, {"velocity": 1.5}, "reward"),
}


def get_physics(env):
    if hasattr(env, "data"):  # MuJoCo
        return env.data.qpos.copy(), env.data.qvel.copy()
    if hasattr(env, "_pos"):  # Navigation2D
        return env._pos.copy()
    return np.array(env.state, dtype=np.float64).copy()


def set_physics(env, state):
    if hasattr(env, "data"):
        env.set_state(*state)
    elif hasattr(env, "_pos"):
        env._pos = state.copy()
    else:
        env.state = state.copy()


def step_with_task(env, task, state, action):
    env.set_task(task)
    set_physics(env, state)
    obs, reward, terminated, truncated, info = env.step(action)
    return np.asarray(obs, dtype=np.float64), reward, info


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_env_passes_check_env_and_pickles(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    check_meta_env(env, env_id)
    (task,) = env.unwrapped.sample_tasks(1)
    env.unwrapped.set_task(task)
    clone = pickle.loads(pickle.dumps(env.unwrapped))
    assert clone.get_task().keys() == env.unwrapped.get_task().keys()
    assert clone.observation_space == env.unwrapped.observation_space
    clone.reset(seed=0)
    clone.step(clone.action_space.sample())


# Tasks of numbers (Meta-World's are named benchmark entries and its oracle
# shows the goal in the observation's own slot: tests/test_metaworld.py).
NUMERIC_TASK_ENVS = [n for n in ENV_SPECS if n not in METAWORLD_ENVS]


@pytest.mark.parametrize("name", NUMERIC_TASK_ENVS)
def test_sample_tasks_count_and_seed(name):
    env = make_env(name, oracle=False)

    def draw(seed):
        env.reset(seed=seed)
        tasks = env.sample_tasks(9)
        assert len(tasks) == 9
        return np.concatenate(
            [np.ravel(np.asarray(list(t.values()), dtype=float)) for t in tasks]
        )

    np.testing.assert_array_equal(draw(3), draw(3))
    if name != "HalfCheetahBackward-v0":  # a single fixed task
        assert not np.array_equal(draw(3), draw(4))


def sampled(name, n=400, **config):
    env = make_env(name, oracle=False, config=config)
    env.reset(seed=0)
    return env.sample_tasks(n)


def values(tasks, key):
    return np.array([t[key] for t in tasks], dtype=float)


def test_task_ranges():
    goals = values(sampled("Navigation2D-v0"), "goal")
    assert goals.min() >= -0.5 and goals.max() <= 0.5
    cart = sampled("CartPoleMass-v0")
    assert 0.5 <= values(cart, "masscart").min() <= values(cart, "masscart").max() <= 2
    assert (
        0.05 <= values(cart, "masspole").min() and values(cart, "masspole").max() <= 0.2
    )
    assert set(values(sampled("PendulumMass-v0", mass_range=(1, 1.5)), "mass")) <= set(
        np.clip(values(sampled("PendulumMass-v0", mass_range=(1, 1.5)), "mass"), 1, 1.5)
    )
    car = sampled("MountainCarContinuousMeta-v0")
    assert np.all(
        (values(car, "goal_position") >= 0.45) & (values(car, "goal_position") <= 0.55)
    )
    assert np.all(
        (values(car, "gravity") >= 0.0025) & (values(car, "gravity") <= 0.006)
    )
    pole = sampled("ParameterizedCartPole-v0", family="pole_length")
    assert np.all((values(pole, "length") >= 0.3) & (values(pole, "length") <= 0.8))
    assert set(values(pole, "gravity")) == {9.8}  # outside the family: defaults
    mixed = sampled("ParameterizedCartPole-v0", family="mixed")
    for key, (low, high) in {
        "length": (0.3, 0.8),
        "masspole": (0.05, 0.2),
        "masscart": (0.8, 1.5),
        "gravity": (8, 12),
        "reward_scale": (0.8, 1.2),
    }.items():
        v = values(mixed, key)
        assert low <= v.min() and v.max() <= high and v.std() > 0, key
    assert set(values(sampled("HalfCheetahRandDirec-v0"), "direction")) == {-1.0, 1.0}
    assert set(values(sampled("HalfCheetahBackward-v0"), "direction")) == {-1.0}
    vel = values(sampled("HalfCheetahRandVel-v0"), "velocity")
    assert vel.min() >= 0 and vel.max() <= 2
    vel = values(sampled("HalfCheetahRandVel-v0", velocity_range=(0, 3)), "velocity")
    assert vel.max() > 2 and vel.max() <= 3
    goal = values(sampled("AntRandGoal-v0"), "goal")
    radius = np.linalg.norm(goal, axis=1)
    assert radius.max() <= 3.0
    # r = 3 sqrt(U) is uniform over the disc: P(r < 1.5) = 1/4.
    assert abs(np.mean(radius < 1.5) - 0.25) < 0.06
    assert set(values(sampled("AntRandDirec-v0"), "direction")) == {-1.0, 1.0}


@pytest.mark.parametrize("name", list(TASK_PAIRS))
def test_task_changes_what_it_should(name):
    task_a, task_b, kind = TASK_PAIRS[name]
    env = make_env(name, oracle=False)
    env.reset(seed=0)
    for _ in range(3):  # move away from the initial state
        env.step(env.action_space.sample())
    state = get_physics(env)
    action = env.action_space.sample()
    obs_a, r_a, _ = step_with_task(env, task_a, state, action)
    obs_b, r_b, _ = step_with_task(env, task_b, state, action)
    obs_a2, r_a2, _ = step_with_task(env, task_a, state, action)
    # Same task, same result (MuJoCo's solver warm start differs by ~1e-16).
    np.testing.assert_allclose(obs_a, obs_a2, rtol=1e-9, atol=1e-12)
    assert r_a == pytest.approx(r_a2, rel=1e-9, abs=1e-12)
    if kind == "dynamics":
        assert not np.allclose(obs_a, obs_b)
    else:
        np.testing.assert_allclose(obs_a, obs_b)
        assert r_a != pytest.approx(r_b)


def test_cartpole_mass_changes_dynamics_as_the_equations_say():
    env = rllib_maml.CartPoleMassEnv()
    env.reset(seed=0)
    state = np.array([0.0, 0.1, 0.05, -0.1])
    obs, _, _ = step_with_task(env, {"masscart": 2.0, "masspole": 0.2}, state, 1)
    assert env.total_mass == pytest.approx(2.2)
    assert env.polemass_length == pytest.approx(0.2 * env.length)
    x, x_dot, theta, theta_dot = state
    temp = (env.force_mag + 0.2 * env.length * theta_dot**2 * np.sin(theta)) / 2.2
    thetaacc = (env.gravity * np.sin(theta) - np.cos(theta) * temp) / (
        env.length * (4.0 / 3.0 - 0.2 * np.cos(theta) ** 2 / 2.2)
    )
    xacc = temp - 0.2 * env.length * thetaacc * np.cos(theta) / 2.2
    assert obs[1] == pytest.approx(x_dot + env.tau * xacc, rel=1e-5)


def test_mountain_car_gravity_enters_the_velocity_update():
    env = rllib_maml.MountainCarContinuousMetaEnv()
    env.reset(seed=0)
    state = np.array([-0.5, 0.01])
    task = {"goal_position": 0.5, "gravity": 0.005}
    obs, reward, _ = step_with_task(env, task, state, np.array([0.7], np.float32))
    velocity = 0.01 + 0.7 * 0.0015 - 0.005 * np.cos(3 * -0.5)
    assert obs[1] == pytest.approx(velocity, rel=1e-5)
    assert obs[0] == pytest.approx(-0.5 + velocity, rel=1e-5)
    assert reward == pytest.approx(-0.1 * 0.7**2, rel=1e-5)
    # Reaching the task's goal position ends the episode with +100.
    _, reward, _ = step_with_task(env, task, np.array([0.49, 0.05]), np.zeros(1))
    assert reward == pytest.approx(100.0)


def test_parameterized_cartpole_force_direction_flips_the_push():
    env = rllib_maml.ParameterizedCartPoleEnv({"family": "force_direction"})
    env.reset(seed=0)
    signs = [task["force_sign"] for task in env.sample_tasks(40)]
    assert set(signs) == {-1.0, 1.0}
    assert {k: v for k, v in env.sample_tasks(1)[0].items() if k != "force_sign"} == (
        rllib_maml.ParameterizedCartPoleEnv.DEFAULTS
    )

    def balance(sign: float, flip: bool) -> int:
        """Steps the textbook controller (push toward the pole's lean) lasts."""
        env.set_task({"force_sign": sign})
        obs, _ = env.reset(seed=1)
        for t in range(200):
            action = int(obs[2] + obs[3] > 0) ^ int(flip)
            obs, _, terminated, _, _ = env.step(action)
            if terminated:
                return t + 1
        return 200

    # Action 1 pushes right under +1 and left under -1. From rest, upright,
    # CartPole's equations give the cart's acceleration F / M + m l a / M with
    # the pole's a = -(F / M) / (l (4/3 - m / M)) (M = 1.1, m = 0.1, l = 0.5).
    push = 10.0 / 1.1
    pole = -push / (0.5 * (4 / 3 - 0.1 / 1.1))
    for sign in (1.0, -1.0):
        env.set_task({"force_sign": sign})
        env.reset(seed=0)
        env.state = np.zeros(4)
        obs, *_ = env.step(1)
        expected = sign * (push - 0.1 * 0.5 * pole / 1.1) * 0.02
        assert obs[1] == pytest.approx(expected, rel=1e-5)
    # A policy that ignores the task balances one direction only.
    assert balance(1.0, flip=False) == 200 and balance(-1.0, flip=False) < 50
    assert balance(-1.0, flip=True) == 200 and balance(1.0, flip=True) < 50
    oracle = rllib_maml.ParameterizedCartPoleEnv(
        {"family": "force_direction", "oracle": True}
    )
    oracle.set_task({"force_sign": -1.0})
    assert oracle.reset(seed=0)[0].shape == (10,) and oracle.reset()[0][-1] == -1.0


def test_parameterized_cartpole_reward_scale():
    env = rllib_maml.ParameterizedCartPoleEnv({"family": "mixed"})
    env.reset(seed=0)
    env.set_task({"reward_scale": 0.8})
    assert env.step(0)[1] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="`family` must be one of"):
        rllib_maml.ParameterizedCartPoleEnv({"family": "wind"})


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "HalfCheetahRandDirec-v0",
            lambda i, t: t["direction"] * i["x_velocity"] + i["reward_ctrl"],
        ),
        (
            "HalfCheetahRandVel-v0",
            lambda i, t: -abs(i["x_velocity"] - t["velocity"]) + i["reward_ctrl"],
        ),
        (
            "AntRandGoal-v0",
            lambda i, t: (
                -np.abs(np.array([i["x_position"], i["y_position"]]) - t["goal"]).sum()
                + i["reward_ctrl"]
                + i["reward_contact"]
            ),
        ),
        (
            "AntRandDirec-v0",
            lambda i, t: (
                t["direction"] * i["x_velocity"]
                + i["reward_survive"]
                + i["reward_ctrl"]
                + i["reward_contact"]
            ),
        ),
    ],
)
def test_locomotion_rewards(name, expected):
    env = make_env(name, oracle=False, config={"horizon": 5})
    env.reset(seed=1)
    (task,) = env.sample_tasks(1)
    env.set_task(task)
    for t in range(5):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward == pytest.approx(expected(info, env.get_task()))
        assert truncated == (t == 4)
    if name == "AntRandGoal-v0":
        assert not env._terminate_when_unhealthy


@pytest.mark.parametrize(
    "name, weight",
    [
        # HalfCheetah: -0.5 * 0.1 * |a|^2, as in ProMP's and RLlib's former envs.
        ("HalfCheetahRandDirec-v0", 0.05),
        ("HalfCheetahRandVel-v0", 0.05),
        # Ant: Ant-v5's own 0.5 * |a|^2.
        ("AntRandGoal-v0", 0.5),
        ("AntRandDirec-v0", 0.5),
        ("AntRandVel-v0", 0.5),
    ],
)
def test_control_cost_weights(name, weight):
    env = make_env(name, oracle=False, config={"horizon": 5})
    env.reset(seed=2)
    action = env.action_space.sample()
    info = env.step(action)[-1]
    assert info["reward_ctrl"] == pytest.approx(-weight * np.square(action).sum())


def test_navigation_reward_and_termination():
    env = rllib_maml.Navigation2DEnv()
    env.set_task({"goal": np.array([0.3, 0.3])})
    env.reset(seed=0)
    _, r, _, _, _ = env.step(np.array([0.1, 0.05]))
    assert r == pytest.approx(-np.hypot(0.2, 0.25))
    env.set_task({"goal": np.array([0.1, 0.1])})
    env.reset()
    obs, r, terminated, _, _ = env.step(np.array([5.0, 5.0]))  # clipped to 0.1
    np.testing.assert_allclose(obs, [0.1, 0.1])
    assert terminated and r == pytest.approx(0.0)


@pytest.mark.parametrize(
    "env_id",
    [
        n
        for n in ENV_IDS
        if "Oracle" in n
        and n.split("/")[-1].replace("Oracle-", "-") in NUMERIC_TASK_ENVS
    ],
)
def test_oracle_observation_ends_with_task(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    (task,) = env.sample_tasks(1)
    env.set_task(task)
    expected = np.concatenate(
        [np.ravel(np.asarray(v, dtype=float)) for v in env.get_task().values()]
    )
    plain = make_env(env_id, oracle=False)
    assert env.observation_space.shape[0] == plain.observation_space.shape[0] + len(
        expected
    )
    obs, _ = env.reset(seed=1)
    np.testing.assert_allclose(obs[-len(expected) :], expected, rtol=1e-6)
    obs, *_ = env.step(env.action_space.sample())
    np.testing.assert_allclose(obs[-len(expected) :], expected, rtol=1e-6)


def test_mujoco_envs_are_registered():
    assert set(MUJOCO_ENVS) == {
        "HalfCheetahRandDirec-v0",
        "HalfCheetahRandVel-v0",
        "HalfCheetahBackward-v0",
        "AntRandGoal-v0",
        "AntRandDirec-v0",
        "AntRandVel-v0",
    }


def test_gym_make_takes_env_config_as_keywords():
    """RLlib builds a gymnasium-registered env as `gym.make(id, **env_config)`."""
    env = gym.make("rllib_maml/Navigation2D-v0", horizon=7).unwrapped
    assert env.horizon == 7 and not env.oracle
    oracle = gym.make("rllib_maml/Navigation2DOracle-v0", config={"horizon": 9})
    assert oracle.unwrapped.horizon == 9 and oracle.unwrapped.oracle
    assert oracle.observation_space.shape == (4,)
