"""Meta-World meta envs: the benchmark's train/test split as tasks, success
in the infos and in MAML's results, and bad input."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from rllib_maml import MAMLConfig
from rllib_maml.envs import make_env
from rllib_maml.envs.metaworld import (
    MetaWorldML1Env,
    MetaWorldML10Env,
    MetaWorldML45Env,
)
from rllib_maml.evaluation import heldout_tasks
from rllib_maml.maml import episode_succeeded, episode_success_rate_key

metaworld = pytest.importorskip(
    "metaworld", reason="the `metaworld` extra is not installed"
)


@pytest.fixture(scope="module")
def reach():
    return MetaWorldML1Env({"env_name": "reach-v3", "horizon": 20})


def goal_of(env, task) -> np.ndarray:
    """The task's goal as the benchmark stores it (independent of the env)."""
    mw_task = env.tasks[task["split"]][task["env_name"]][task["index"]]
    return np.asarray(pickle.loads(mw_task.data)["rand_vec"])


def test_ml1_draws_train_tasks_seeded_and_test_tasks_apart(reach):
    reach.reset(seed=3)
    first = reach.sample_tasks(10)
    reach.reset(seed=3)
    assert reach.sample_tasks(10) == first
    assert len({t["index"] for t in first}) == 10  # distinct while 50 allow
    test = reach.sample_test_tasks(50)
    assert {t["split"] for t in first} == {"train"}
    assert {t["split"] for t in test} == {"test"}
    train_goals = {tuple(goal_of(reach, t)) for t in reach.sample_tasks(50)}
    test_goals = {tuple(goal_of(reach, t)) for t in test}
    assert len(train_goals) == len(test_goals) == 50
    assert not train_goals & test_goals


def test_ml1_episode_horizon_success_info_and_hidden_goal(reach):
    (task,) = reach.sample_tasks(1)
    reach.set_task(task)
    assert reach.get_task() == task
    obs, _ = reach.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (39,)
    np.testing.assert_array_equal(obs[-3:], 0.0)  # the benchmark hides the goal
    for t in range(1, 21):
        obs, reward, terminated, truncated, info = reach.step(
            reach.action_space.sample()
        )
        assert np.isfinite(reward) and not terminated
        assert truncated == (t == 20)
        assert info["success"] in (0.0, 1.0)


def test_oracle_sees_each_tasks_goal():
    env = make_env("MetaWorldML1-v0", oracle=True, config={"env_name": "reach-v3"})
    env.reset(seed=0)
    for task in env.sample_tasks(2):
        env.set_task(task)
        obs, _ = env.reset(seed=1)
        # reach-v3's goal is the last three entries of its task vector.
        np.testing.assert_allclose(obs[-3:], goal_of(env, task)[-3:], rtol=1e-6)


@pytest.mark.parametrize(
    "cls, num_train_envs", [(MetaWorldML10Env, 10), (MetaWorldML45Env, 45)]
)
def test_ml10_ml45_split_envs_and_oracle_names_the_env(cls, num_train_envs):
    env = cls({"horizon": 10, "oracle": True})
    # The benchmark's own split, as the metaworld package lists it.
    split = getattr(metaworld.env_dict, f"{cls.kind}_V3")
    train = {t["env_name"] for t in env.sample_tasks(2000)}
    test = {t["env_name"] for t in env.sample_test_tasks(2000)}
    assert train == set(split["train"]) and len(train) == num_train_envs
    assert test == set(split["test"]) and len(test) == 5
    assert not train & test
    assert env.observation_space.shape == (39 + num_train_envs + 5,)
    task = env.sample_test_tasks(1)[0]
    env.set_task(task)
    obs, _ = env.reset(seed=0)
    one_hot = obs[39:]
    assert one_hot.sum() == 1.0
    assert env.all_env_names[int(one_hot.argmax())] == task["env_name"]


@pytest.mark.parametrize(
    "config, match",
    [
        ({"horizon": 501}, r"horizon.*at most 500"),
        ({"env_name": "reach-v2"}, r"'reach-v2' is not a Meta-World v3 env"),
    ],
)
def test_bad_settings_raise_clear_errors(config, match):
    with pytest.raises(ValueError, match=match):
        MetaWorldML1Env(config)


def test_unknown_task_raises_a_clear_error(reach):
    with pytest.raises(ValueError, match="is not a task of this benchmark"):
        reach.set_task({"env_name": "reach-v3", "split": "train", "index": 50})


def test_missing_package_names_the_extra(monkeypatch):
    from rllib_maml.envs import metaworld as mw

    monkeypatch.setitem(sys.modules, "metaworld", None)
    with pytest.raises(ImportError, match=r"rllib_maml\[metaworld\]"):
        mw.import_metaworld()


def _episode(infos):
    n = len(infos) - 1
    return SingleAgentEpisode(
        observations=[np.zeros(2, np.float32)] * (n + 1),
        infos=infos,
        actions=[np.zeros(2, np.float32)] * n,
        rewards=[0.0] * n,
        len_lookback_buffer=0,
    )


def test_an_episode_succeeds_if_any_step_reports_success():
    assert episode_succeeded(_episode([{}] + [{"success": 0.0}] * 3)) is False
    assert episode_succeeded(
        _episode([{}, {"success": 0.0}, {"success": 1.0}, {"success": 0.0}])
    )
    assert episode_succeeded(_episode([{}, {}, {}])) is None


def test_heldout_evaluation_uses_the_test_split():
    config = MAMLConfig().environment(
        "rllib_maml/MetaWorldML1-v0", env_config={"env_name": "reach-v3"}
    )

    class Holder:
        pass

    holder = Holder()
    holder.config = config
    tasks = heldout_tasks(holder, 5, seed=0)
    assert len(tasks) == 5 and {t["split"] for t in tasks} == {"test"}


def small_reach_config(horizon: int) -> MAMLConfig:
    """MAML on ML1 reach: one runner, 2 tasks x 2 episodes, a small network."""
    return (
        MAMLConfig()
        .environment(
            "rllib_maml/MetaWorldML1-v0",
            env_config={"env_name": "reach-v3", "horizon": horizon},
        )
        .env_runners(num_env_runners=1, num_cpus_per_env_runner=0.5)
        .training(meta_batch_size=2, episodes_per_task=2)
        .rl_module(model_config={"fcnet_hiddens": [16, 16]})
        .debugging(seed=0)
    )


@pytest.mark.integration
def test_maml_reports_success_rates_before_and_after_adaptation(ray_session):
    algo = small_reach_config(horizon=20).build_algo()
    try:
        runners = algo.train()["env_runners"]
    finally:
        algo.stop()
    for step in (0, 1):
        rate = runners[episode_success_rate_key(step)]
        assert 0.0 <= rate <= 1.0 and rate * 4 == int(rate * 4)  # 4 episodes


@pytest.mark.integration
def test_evaluation_reports_success_rates_on_test_tasks(ray_session, tmp_path):
    import matplotlib.image

    from rllib_maml.evaluation import evaluate_with_baselines, markdown_table
    from rllib_maml.plots import plot_adaptation

    algo = small_reach_config(horizon=10).build_algo()
    try:
        report = evaluate_with_baselines(
            algo, num_tasks=2, num_steps=1, seed=0, baselines=("random",)
        )
    finally:
        algo.stop()
    assert {t["split"] for t in report["tasks"]} == {"test"}
    for name in ("maml", "random"):
        entry = report["methods"][name]
        rates = np.asarray(entry["task_success_rates"])
        assert (
            rates.shape == (2, 2)
            and ((rates == 0) | (rates == 0.5) | (rates == 1)).all()
        )
        np.testing.assert_allclose(entry["success_rate_mean"], rates.mean(axis=0))
    assert "Success rate" in markdown_table(report)
    # The plot gets a second panel, the success rates (11 x 4 inches at 100 dpi).
    png = plot_adaptation(report, str(tmp_path / "adaptation.png"))
    assert matplotlib.image.imread(png).shape[:2] == (400, 1100)
