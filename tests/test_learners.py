"""The meta-update on several learners equals the one-learner update.

Two remote learners (RLlib's LearnerGroup with `num_learners=2`, a gloo process
group) each take half of a meta-batch's tasks. Fed the same episodes as one
learner in this process, they must adapt every task to the same params and
end the meta-update at the same meta-parameters, both learners bitwise alike.
Tolerance: the learners sum their shares of the objective in another order
than one learner's mean over all tasks (float32): the two updates may differ
by 1e-4 of the update's norm.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from helpers import local_config, local_runner_and_learner, sample

from rllib_maml.evaluation import adaptation_returns
from rllib_maml.maml import task_shares

pytestmark = pytest.mark.integration

ENV = "rllib_maml/Navigation2D-v0"
# An odd count: the learners' shares differ in size.
TASKS = [
    {"goal": np.array(goal)}
    for goal in ([0.3, 0.3], [-0.4, 0.1], [0.0, -0.45], [0.2, -0.1], [-0.3, -0.3])
]
META_BATCH = len(TASKS)


def _config(outer_optimizer, meta_gradient, advantage_baseline):
    return local_config(
        ENV,
        meta_batch_size=META_BATCH,
        episodes_per_task=2,
        outer_optimizer=outer_optimizer,
        meta_gradient=meta_gradient,
        advantage_baseline=advantage_baseline,
        maml_optimizer_steps=2,
    )


def _two_learner_config(config):
    return config.copy(copy_frozen=False).learners(
        num_learners=2, num_cpus_per_learner=1
    )


@pytest.fixture(scope="module")
def two_learners():
    """One MAML with 2 remote learners for the tests below (built once: a
    test gives the learners its settings and a fresh learner state)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    algo = _two_learner_config(
        _config("ppo", "second_order", "value_function")
    ).build_algo()
    yield algo
    algo.stop()


def _assert_params_close(actual, expected, before):
    """The updates agree: |d_actual - d_expected| <= 1e-4 |d_expected| (norms
    over all parameters)."""
    assert sorted(actual) == sorted(expected)
    names = sorted(expected)
    got = np.concatenate([np.ravel(actual[n] - before[n]) for n in names])
    want = np.concatenate([np.ravel(expected[n] - before[n]) for n in names])
    assert np.linalg.norm(want) > 0
    assert np.linalg.norm(got - want) <= 1e-4 * np.linalg.norm(want), np.linalg.norm(
        got - want
    ) / np.linalg.norm(want)


def test_task_shares_split_every_task_to_one_learner():
    assert task_shares([0, 1, 2, 3, 4], 2) == [[0, 2, 4], [1, 3]]
    assert task_shares([0, 1], 3) == [[0], [1], []]


@pytest.mark.parametrize(
    "outer_optimizer, meta_gradient, advantage_baseline",
    [
        ("ppo", "second_order", "value_function"),
        ("ppo", "first_order", "linear"),
        ("trpo", "second_order", "value_function"),
        ("trpo", "first_order", "linear"),
    ],
)
def test_two_learners_make_the_one_learner_meta_update(
    two_learners, outer_optimizer, meta_gradient, advantage_baseline
):
    config = _config(outer_optimizer, meta_gradient, advantage_baseline)
    runner, learner = local_runner_and_learner(config)
    tasks = TASKS
    # One learner in this process: sample, adapt, sample the adapted
    # policies, meta-update.
    start_state = learner.module_state()
    learner_state = learner.get_state()
    before = {n: v.copy() for n, v in learner.policy_params_numpy().items()}
    # (Copies: RLlib's learner connector appends a timestep to the episodes
    # it is given.)
    steps = [sample(runner, learner, tasks, 2, entropy=1)]
    adapted = learner.adapt(step=0, episodes_by_task=copy.deepcopy(steps[0]))
    steps.append(sample(runner, learner, tasks, 2, params_by_task=adapted, entropy=2))
    learner.adapt(step=1, episodes_by_task=copy.deepcopy(steps[1]))
    expected_results = learner.meta_update(timesteps={})
    expected = learner.policy_params_numpy()
    expected_vf = learner.module_state()

    algo = two_learners
    assert len(algo.learner_group) == 2
    # The learners start where the one learner started: its settings, its
    # module and its (fresh) optimizer state.
    variant, start = _two_learner_config(config), learner_state
    algo._call_learners(lambda lrn: setattr(lrn, "config", variant))
    algo._call_learners(lambda lrn: lrn.set_state(start))
    kwargs = dict(evaluation=False, num_steps=1)
    adapted_by_two = algo._adapt_on_learners(
        step=0, episodes_by_task=steps[0], **kwargs
    )
    assert sorted(adapted_by_two) == list(range(META_BATCH))
    for task in range(META_BATCH):  # inner steps where the data is
        for name, value in adapted[task].items():
            np.testing.assert_allclose(
                adapted_by_two[task][name], value, rtol=1e-5, atol=1e-6
            )
    algo._adapt_on_learners(step=1, episodes_by_task=steps[1], **kwargs)
    results = algo._call_learners(lambda lrn: lrn.meta_update(timesteps={}))
    params = algo._call_learners(lambda lrn: lrn.policy_params_numpy())
    states = algo._call_learners(lambda lrn: lrn.module_state())
    coeffs = algo._call_learners(lambda lrn: list(lrn.inner_kl_coeffs))

    # The learners stay alike: each took the same summed gradient.
    for name in params[0]:
        np.testing.assert_array_equal(params[0][name], params[1][name], err_msg=name)
    for name in states[0]:
        np.testing.assert_array_equal(states[0][name], states[1][name], err_msg=name)
    assert coeffs[0] == coeffs[1]
    # ... and equal the one learner's update on the same data.
    _assert_params_close(params[0], expected, before)
    _assert_params_close(states[0], expected_vf, start_state)
    np.testing.assert_allclose(coeffs[0], learner.inner_kl_coeffs, rtol=1e-4)
    # Every loss, KL and TRPO figure the learner logs, of the whole meta-batch.
    got, want = (_values(r["default_policy"]) for r in (results[0], expected_results))
    keys = [k for k in want if k.startswith(MAML_KEYS)]
    assert {"meta_loss", "inner_loss_0", "inner_kl_0"} <= set(keys)
    for key in keys:
        np.testing.assert_allclose(
            got[key], want[key], rtol=1e-4, atol=1e-6, err_msg=key
        )
    assert got["num_tasks"] == want["num_tasks"] == META_BATCH


MAML_KEYS = ("meta_loss", "policy_loss", "vf_loss", "num_tasks", "inner_", "trpo_")


def _values(stats: dict) -> dict:
    return {k: v.peek() if hasattr(v, "peek") else v for k, v in stats.items()}


def test_two_learners_train_and_their_checkpoint_restores_into_one_and_back(
    two_learners, tmp_path
):
    config = _config("ppo", "second_order", "value_function")
    algo = two_learners
    own = algo.config.copy(copy_frozen=False)  # back to its own settings
    algo._call_learners(lambda lrn: setattr(lrn, "config", own))
    result = algo.train()
    learner_results = result["learners"]["default_policy"]
    assert learner_results["num_tasks"] == META_BATCH
    assert np.isfinite(learner_results["meta_loss"])
    assert np.isfinite(result["env_runners"]["episode_return_mean_adapt_1"])
    params = algo._call_learners(lambda lrn: lrn.policy_params_numpy())
    for name in params[0]:
        np.testing.assert_array_equal(params[0][name], params[1][name])
    coeffs = algo._call_learners(lambda lrn: list(lrn.inner_kl_coeffs))
    assert coeffs[0] == coeffs[1] != [config.kl_coeff]  # moved, alike
    # One held-out task for two learners: the second's share is empty.
    held_out = dict(tasks=TASKS[:1], num_steps=1, episodes_per_task=2, seed=0)
    returns_two = adaptation_returns(algo, **held_out)
    algo.save_to_path(tmp_path / "two")

    one = config.copy(copy_frozen=False).build_algo()  # a local learner
    try:
        one.restore_from_path(tmp_path / "two")
        restored = one._call_learner(lambda lrn: lrn.policy_params_numpy())
        for name in params[0]:
            np.testing.assert_array_equal(restored[name], params[0][name])
        assert one._call_learner(lambda lrn: list(lrn.inner_kl_coeffs)) == coeffs[0]
        np.testing.assert_allclose(
            adaptation_returns(one, **held_out), returns_two, rtol=1e-5
        )
        one.train()
        after = one._call_learner(lambda lrn: lrn.policy_params_numpy())
        one.save_to_path(tmp_path / "one")
    finally:
        one.stop()
    algo.restore_from_path(tmp_path / "one")
    back = algo._call_learners(lambda lrn: lrn.policy_params_numpy())
    for learner_params in back:
        for name in after:
            np.testing.assert_array_equal(learner_params[name], after[name])


def test_a_lost_learner_is_reported_not_skipped(two_learners):
    """A learner holds a share of every meta-batch: losing one stops training
    with a clear error (runs last: it kills one of the fixture's learners)."""
    import ray

    algo = two_learners
    ray.kill(algo.learner_group._workers[1])
    # The survivor may die too, on the collective its peer left (seen once in
    # CI: "2 of 2"); either way the error names the lost learners.
    for _ in range(2):  # the call that finds it dead, and the next
        with pytest.raises(RuntimeError, match="[12] of 2 MAML learners died"):
            algo.train()
