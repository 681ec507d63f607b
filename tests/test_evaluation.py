"""Few-shot evaluation: the same inner step as training, baselines, reports."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from helpers import local_config, local_runner_and_learner, sample
from test_inner_step import INNER_LR, TASKS, reference_adapted_weights

from rllib_maml.evaluation import (
    HELDOUT_SEED_OFFSET,
    check_report,
    evaluate_with_baselines,
    heldout_tasks,
    markdown_table,
    write_report,
)


@pytest.mark.parametrize("advantage_baseline", ["linear", "value_function"])
def test_evaluation_inner_step_equals_theta_minus_lr_grad(advantage_baseline):
    """Evaluation adapts with exactly the training inner step, from any policy."""
    runner, learner = local_runner_and_learner(
        local_config(inner_lr=INNER_LR, advantage_baseline=advantage_baseline)
    )
    for state in (None, learner.fresh_module_state(seed=3)):
        if state is not None:
            learner.set_module_state(state)
        # Sampled with the policy being evaluated, as evaluation does.
        episodes = sample(runner, learner, TASKS, num_episodes=3)
        module = learner.module["default_policy"]
        theta = {n: p.detach().clone() for n, p in module.named_parameters()}
        # Before adapting: the learner connector extends the episodes in place.
        expected_by_task = {
            task: reference_adapted_weights(module, eps, INNER_LR, advantage_baseline)
            for task, eps in episodes.items()
        }
        adapted = learner.adapt(step=0, episodes_by_task=episodes, evaluation=True)
        for task, weights in adapted.items():
            expected = expected_by_task[task]
            for name in learner.policy_param_names:
                np.testing.assert_allclose(
                    weights[name], expected[name], rtol=1e-4, atol=1e-6
                )
        # Nothing changes the meta-policy or the meta-update's data.
        for n, p in module.named_parameters():
            torch.testing.assert_close(p.detach(), theta[n], rtol=0, atol=0)
        assert learner.iteration_data.steps == []


def test_fresh_module_state_is_a_new_initialization():
    _, learner = local_runner_and_learner(local_config())
    current = learner.module_state()
    first, again = learner.fresh_module_state(seed=1), learner.fresh_module_state(1)
    other = learner.fresh_module_state(seed=2)
    assert set(first) == set(current)
    name = learner.policy_param_names[0]
    np.testing.assert_array_equal(np.asarray(first[name]), np.asarray(again[name]))
    assert not np.allclose(np.asarray(first[name]), np.asarray(other[name]))


def test_a_state_of_another_network_is_refused():
    _, learner = local_runner_and_learner(local_config())
    state = learner.module_state()
    name = learner.policy_param_names[0]
    state[name] = np.zeros((3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="does not fit this algorithm's network"):
        learner.set_module_state(state)


def test_heldout_tasks_are_disjoint_from_training_draws(ray_session):
    algo = local_config().build_algo()
    try:
        heldout = heldout_tasks(algo, num_tasks=20, seed=0)
        # Training draws: the driver's task env, seeded with config.seed (0).
        training = algo.task_env.unwrapped.sample_tasks(500)
        goals = {tuple(t["goal"]) for t in training}
        assert not any(tuple(t["goal"]) in goals for t in heldout)
        again = heldout_tasks(algo, num_tasks=20, seed=0)
        np.testing.assert_array_equal(
            [t["goal"] for t in heldout], [t["goal"] for t in again]
        )
        assert HELDOUT_SEED_OFFSET != 0
    finally:
        algo.stop()


def _small_report():
    return {
        "schema_version": 1,
        "env": "e",
        "checkpoint": None,
        "num_tasks": 2,
        "adaptation_steps": 1,
        "episodes_per_task": 3,
        "inner_lr": 0.1,
        "inner_loss": "lvc",
        "seed": 0,
        "tasks": [1, 2],
        "methods": {
            "maml": {
                "env": "e",
                "return_mean": [-2.0, -1.0],
                "return_std": [0.5, 0.5],
                "return_sem": [0.35, 0.35],
                "task_returns": [[-2.5, -1.5], [-1.5, -0.5]],
                "source": "algorithm",
            }
        },
    }


@pytest.mark.parametrize(
    "break_it, match",
    [
        (lambda r: r.pop("env"), "missing key 'env'"),
        (lambda r: r["methods"]["maml"]["return_mean"].pop(), "needs 2 values"),
        (lambda r: r["methods"]["maml"]["task_returns"].pop(), r"\[2\]\[2\]"),
        (lambda r: r["methods"].update(ppo=r["methods"]["maml"]), "unknown method"),
        (lambda r: r.update(num_tasks="2"), "'num_tasks' is str"),
        (lambda r: r.update(advantage_baseline=1), "'advantage_baseline' is int"),
        (
            lambda r: r["methods"].update(rl2=dict(r["methods"]["maml"])),
            "missing key 'experience_episodes'",
        ),
        (
            lambda r: r["methods"]["maml"].update(experience_episodes=[0]),
            "needs 2 values",
        ),
    ],
)
def test_report_schema_is_checked(break_it, match):
    report = _small_report()
    check_report(report)
    break_it(report)
    with pytest.raises(ValueError, match=match):
        check_report(report)


def test_markdown_table_lists_each_method_and_step():
    table = markdown_table(_small_report())
    assert "| method | 0 steps | 1 steps |" in table
    assert "inner lr 0.1, seed 0." in table  # a report from before the baseline key
    table = markdown_table({**_small_report(), "advantage_baseline": "linear"})
    assert "inner lr 0.1, linear baseline, seed 0." in table
    assert "| maml | -2.00 ± 0.35 | -1.00 ± 0.35 |" in table


def test_a_report_of_rl2_alone_needs_no_adaptation_settings():
    report = _small_report()
    for key in ("adaptation_steps", "episodes_per_task", "inner_lr", "inner_loss"):
        report.pop(key)
    report["methods"] = {
        "rl2": {**report.pop("methods")["maml"], "experience_episodes": [0, 1]}
    }
    check_report(report)
    assert "| rl2 | -2.00 ± 0.35 | -1.00 ± 0.35 |" in markdown_table(report)
    report["methods"]["maml"] = report["methods"]["rl2"]
    with pytest.raises(ValueError, match="missing key 'adaptation_steps'"):
        check_report(report)


def test_rl2_joins_the_report_on_the_experience_axis():
    report = _small_report()
    report["methods"]["rl2"] = {
        **report["methods"]["maml"],
        "return_mean": [-3.0, -1.5, -0.5],
        "return_std": [0.1] * 3,
        "return_sem": [0.07] * 3,
        "task_returns": [[-3.0, -1.5, -0.5]] * 2,
        "experience_episodes": [0, 1, 2],
    }
    check_report(report)
    table = markdown_table(report)
    # MAML's returns after k steps sit at k x episodes_per_task (3) episodes.
    assert "| method | 0 | 1 | 2 | 3 |" in table
    assert "| maml | -2.00 ± 0.35 |  |  | -1.00 ± 0.35 |" in table
    assert "| rl2 | -3.00 ± 0.07 | -1.50 ± 0.07 | -0.50 ± 0.07 |  |" in table


@pytest.mark.integration
def test_evaluation_is_repeatable_and_leaves_the_meta_policy(ray_session, tmp_path):
    config = (
        local_config(meta_batch_size=2, episodes_per_task=2)
        .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5)
        .evaluation(
            evaluation_interval=1,
            evaluation_num_tasks=3,
            evaluation_adaptation_steps=2,
        )
    )
    algo = config.build_algo()
    try:
        result = algo.train()
        evaluation = result["evaluation"]
        assert evaluation["num_tasks"] == 3
        runners = evaluation["env_runners"]
        assert {"episode_return_mean_adapt_1", "episode_return_mean_adapt_2"} <= set(
            runners
        )
        before = algo._call_learner(lambda learner: learner.module_state())
        report = evaluate_with_baselines(
            algo, num_tasks=3, num_steps=2, episodes_per_task=2, baselines=("random",)
        )
        after = algo._call_learner(lambda learner: learner.module_state())
        assert report["advantage_baseline"] == config.advantage_baseline == "linear"
        for name, value in before.items():
            np.testing.assert_array_equal(np.asarray(value), np.asarray(after[name]))
        # Same module, tasks and seed: the same returns, on any runner.
        assert report["methods"]["maml"]["return_mean"] == [
            runners["episode_return_mean"],
            runners["episode_return_mean_adapt_1"],
            runners["episode_return_mean_adapt_2"],
        ]
        assert (
            report["methods"]["random"]["return_mean"]
            != (report["methods"]["maml"]["return_mean"])
        )
        paths = write_report(report, str(tmp_path))
        with open(paths["json"], encoding="utf-8") as f:
            check_report(json.load(f))
    finally:
        algo.stop()


RESTORE_AND_EVALUATE = textwrap.dedent(
    """
    import json, sys
    import ray
    from rllib_maml import MAML
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    algo = MAML.from_checkpoint(sys.argv[1])
    print("RESULT " + json.dumps(algo.evaluate()))
    algo.stop()
    """
)


@pytest.mark.integration
def test_checkpoint_in_a_fresh_process_evaluates_identically(ray_session, tmp_path):
    config = (
        local_config(meta_batch_size=2, episodes_per_task=2)
        .env_runners(num_env_runners=1, num_cpus_per_env_runner=0.5)
        .evaluation(evaluation_num_tasks=3)
    )
    algo = config.build_algo()
    try:
        algo.train()
        path = algo.save_to_path(str(tmp_path / "checkpoint"))
        here = algo.evaluate()
    finally:
        algo.stop()
    ray_session.shutdown()
    out = subprocess.run(
        [sys.executable, "-c", RESTORE_AND_EVALUATE, path],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    assert json.loads(line[len("RESULT ") :]) == json.loads(json.dumps(here))


@pytest.mark.integration
def test_evaluate_on_env_moves_the_meta_policy_to_a_held_out_family(ray_session):
    """A HalfCheetahRandDirec policy evaluated on HalfCheetahBackward: the same
    parameters, the held-out env's tasks; an env of other spaces is refused."""
    from rllib_maml.evaluation import evaluate_on_env

    config = local_config("rllib_maml/HalfCheetahRandDirec-v0").environment(
        env_config={"horizon": 5}
    )
    algo = config.build_algo()
    moved = None
    try:
        moved = evaluate_on_env(algo, "rllib_maml/HalfCheetahBackward-v0")
        assert moved.config.env == "rllib_maml/HalfCheetahBackward-v0"
        assert moved.config.env_config == {"horizon": 5}
        theta = algo._call_learner(lambda learner: learner.policy_params_numpy())
        moved_theta = moved._call_learner(lambda learner: learner.policy_params_numpy())
        for name, value in theta.items():
            np.testing.assert_array_equal(moved_theta[name], value)
        tasks = heldout_tasks(moved, 6, seed=0)
        assert {task["direction"] for task in tasks} == {-1.0}
        with pytest.raises(ValueError, match="Evaluate on an env with the same spaces"):
            evaluate_on_env(algo, "rllib_maml/Navigation2D-v0")
    finally:
        algo.stop()
        if moved is not None:
            moved.stop()
