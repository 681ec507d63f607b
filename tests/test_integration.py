"""End to end with a local Ray: remote env runners, metrics, counters, checkpoints."""

import math

import numpy as np
import pytest

from rllib_maml import MAML, MAMLConfig, maml, registered_env_names, sampling

pytestmark = pytest.mark.integration


def small_config(num_env_runners=2, **training):
    training.setdefault("meta_batch_size", 4)
    training.setdefault("episodes_per_task", 2)
    return (
        MAMLConfig()
        .environment("rllib_maml/Navigation2D-v0")
        .env_runners(num_env_runners=num_env_runners, num_cpus_per_env_runner=0.5)
        .training(**training)
        .debugging(seed=1)
    )


@pytest.fixture
def count_sampled_steps(monkeypatch):
    """Sums the length of every episode the algorithm receives from its runners."""
    counted = {"env_steps": 0, "episodes": 0}
    original = maml.sample_step

    def counting(*args, **kwargs):
        episodes_by_task, metrics = original(*args, **kwargs)
        for eps in episodes_by_task.values():
            counted["env_steps"] += sum(len(e) for e in eps)
            counted["episodes"] += len(eps)
        return episodes_by_task, metrics

    monkeypatch.setattr(maml, "sample_step", counting)
    return counted


def assert_finite_metrics(result, num_steps, outer_optimizer="ppo"):
    runners = result["env_runners"]
    keys = ["episode_return_mean"] + [
        f"episode_return_mean_adapt_{k}" for k in range(1, num_steps + 1)
    ]
    for key in keys:
        assert math.isfinite(runners[key]), key
    delta = runners[keys[-1]] - runners[keys[0]]
    assert result["adaptation_delta"] == pytest.approx(delta)
    learner = result["learners"]["default_policy"]
    keys = ["meta_loss", "policy_loss"]
    keys += [f"inner_kl_{k}" for k in range(num_steps)]
    if outer_optimizer == "ppo":
        keys += [f"inner_kl_coeff_{k}" for k in range(num_steps)]
    else:
        keys += ["trpo_kl", "trpo_step_accepted"]
    for key in keys:
        assert math.isfinite(learner[key]), key
    assert result["num_tasks"] == learner["num_tasks"]


def test_two_remote_runners_more_tasks_than_runners(ray_session, count_sampled_steps):
    algo = small_config(meta_batch_size=5, episodes_per_task=2).build_algo()
    try:
        for iteration in (1, 2):
            result = algo.train()
            assert_finite_metrics(result, num_steps=1)
            assert result["num_tasks"] == 5
            # 5 tasks x 2 episodes x (pre + post) per iteration.
            assert count_sampled_steps["episodes"] == iteration * 5 * 2 * 2
            runners = result["env_runners"]
            assert (
                runners["num_env_steps_sampled_lifetime"]
                == count_sampled_steps["env_steps"]
            )
            assert runners["num_episodes_lifetime"] == count_sampled_steps["episodes"]
            assert (
                result["num_env_steps_sampled_lifetime"]
                == count_sampled_steps["env_steps"]
            )
        for timer in (
            "env_runner_sampling_timer_step_0",
            "env_runner_sampling_timer_step_1",
            "inner_adaptation",
            "learner_update_timer",
        ):
            assert result["timers"][timer] > 0
    finally:
        algo.stop()


def test_local_runner_two_inner_steps(ray_session, count_sampled_steps):
    config = small_config(
        num_env_runners=0, meta_batch_size=3, inner_adaptation_steps=2
    )
    algo = config.build_algo()
    try:
        result = algo.train()
        assert_finite_metrics(result, num_steps=2)
        assert count_sampled_steps["episodes"] == 3 * 2 * 3
        assert (
            result["env_runners"]["num_env_steps_sampled_lifetime"]
            == (count_sampled_steps["env_steps"])
        )
    finally:
        algo.stop()


def learner_state(algo):
    learner = algo.learner_group._learner
    weights = {
        k: v.detach().cpu().numpy().copy()
        for k, v in learner.module["default_policy"].state_dict().items()
    }
    return weights, list(learner.inner_kl_coeffs), learner


def test_checkpoint_round_trip(ray_session, tmp_path):
    algo = small_config(num_env_runners=1, kl_coeff=0.01).build_algo()
    try:
        algo.train()
        algo.train()
        weights, coeffs, learner = learner_state(algo)
        optim = learner.get_optimizer().state_dict()
        iteration = algo.iteration
        # Coefficients moved away from their initial value (so the test can fail).
        assert coeffs != [0.01]
        path = algo.save_to_path(tmp_path / "ckpt")
    finally:
        algo.stop()

    restored = MAML.from_checkpoint(path)
    try:
        r_weights, r_coeffs, r_learner = learner_state(restored)
        assert r_coeffs == coeffs
        assert restored.iteration == iteration
        assert weights.keys() == r_weights.keys()
        for key in weights:
            np.testing.assert_array_equal(weights[key], r_weights[key])
        r_optim = r_learner.get_optimizer().state_dict()
        for pid, state in optim["state"].items():
            np.testing.assert_array_equal(
                state["exp_avg"].numpy(), r_optim["state"][pid]["exp_avg"].numpy()
            )
        result = restored.train()
        assert result["training_iteration"] == iteration + 1
        assert math.isfinite(result["adaptation_delta"])
    finally:
        restored.stop()


def test_tune_two_trials_grid_search(ray_session, tmp_path):
    from ray import tune

    config = small_config(num_env_runners=1).training(
        inner_lr=tune.grid_search([0.05, 0.1])
    )
    # A stop criterion on a nested MAML key is honoured (stops after iteration 1).
    tuner = tune.Tuner(
        MAML,
        param_space=config,
        run_config=tune.RunConfig(
            stop={"env_runners/episode_return_mean_adapt_1": -1e9},
            storage_path=str(tmp_path),
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
            verbose=0,
        ),
    )
    results = tuner.fit()
    assert not results.errors
    assert len(results) == 2
    assert sorted(r.config["inner_lr"] for r in results) == [0.05, 0.1]
    for r in results:
        assert r.metrics["training_iteration"] == 1
        assert math.isfinite(r.metrics["adaptation_delta"])
        assert math.isfinite(r.metrics["env_runners"]["episode_return_mean_adapt_1"])
        assert r.metrics["env_runners"]["num_env_steps_sampled_lifetime"] > 0
        assert r.checkpoint is not None
    # The Tune checkpoint restores into a working algorithm.
    algo = MAML.from_checkpoint(results[0].checkpoint.path)
    try:
        result = algo.train()
        assert result["training_iteration"] == 2
        assert math.isfinite(result["adaptation_delta"])
    finally:
        algo.stop()


@pytest.mark.parametrize("outer_optimizer", ["ppo", "trpo"])
@pytest.mark.parametrize("meta_gradient", ["second_order", "first_order"])
@pytest.mark.parametrize("inner_loss", ["lvc", "vpg"])
def test_every_variant_trains_with_two_inner_steps(
    ray_session, outer_optimizer, meta_gradient, inner_loss
):
    config = small_config(
        num_env_runners=1,
        meta_batch_size=3,
        inner_adaptation_steps=2,
        outer_optimizer=outer_optimizer,
        meta_gradient=meta_gradient,
        inner_loss=inner_loss,
    )
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
            assert_finite_metrics(result, num_steps=2, outer_optimizer=outer_optimizer)
    finally:
        algo.stop()


# Meta-World (0.05x HalfCheetah's steps per second; ML10 builds fifteen envs in
# every process): tests/test_metaworld.py trains MAML on ML1 and checks ML10.
@pytest.mark.parametrize("env_id", registered_env_names(include_metaworld=False))
def test_one_iteration_on_every_registered_env(ray_session, env_id):
    config = (
        small_config(num_env_runners=1, meta_batch_size=2, episodes_per_task=2)
        .environment(env_id, env_config={"horizon": 50})
        .rl_module(model_config={"fcnet_hiddens": [32, 32]})
    )
    algo = config.build_algo()
    try:
        result = algo.train()
        assert_finite_metrics(result, num_steps=1)
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] <= 2 * 2 * 2 * 50
    finally:
        algo.stop()


def test_custom_meta_env_example_trains(ray_session):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "examples" / "custom_meta_env.py"
    spec = importlib.util.spec_from_file_location("custom_meta_env", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results = example.main(iterations=6)
    assert np.mean([r["adaptation_delta"] for r in results[-3:]]) > 0


def test_one_round_trip_to_the_runners_per_adaptation_step(ray_session):
    """K inner steps need K + 1 sampling rounds, whatever the number of tasks."""
    config = (
        MAMLConfig()
        .environment("rllib_maml/Navigation2D-v0")
        .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5)
        .training(meta_batch_size=6, episodes_per_task=1, inner_adaptation_steps=2)
    )
    algo = config.build_algo()
    group = algo.env_runner_group
    calls = []
    original = group.foreach_env_runner

    def counting(func, *args, **kwargs):
        calls.append(func)
        return original(func, *args, **kwargs)

    group.foreach_env_runner = counting
    try:
        result = algo.train()
    finally:
        group.foreach_env_runner = original
        algo.stop()
    rounds = [
        funcs
        for funcs in calls
        if isinstance(funcs, list)
        and all(getattr(f, "func", None) is sampling.sample_on_runner for f in funcs)
    ]
    assert result["num_tasks"] == 6
    assert len(rounds) == 3
    # The iteration's wall-clock breakdown is in the result.
    seconds = result["timers"]["iteration_seconds"]
    phases = ["sampling_step_0", "sampling_step_1", "sampling_step_2"]
    phases += ["inner_adaptation", "meta_update", "weight_sync"]
    assert sorted(seconds) == sorted(phases)
    assert all(seconds[p] > 0 for p in phases)
    assert sum(seconds.values()) < result["time_this_iter_s"]
    assert all(len(funcs) == 2 for funcs in rounds)  # one call per runner
