"""PEARL: the posterior and its KL against closed forms, which losses reach the
encoder, the learner's gradients against RLlib's, the task buffers, sampling
with z, training, evaluation, checkpoints and bad input."""

from __future__ import annotations

import copy
import math
import sys

import gymnasium as gym
import numpy as np
import pytest
import ray
import torch
from helpers import CrashOnceNavigation
from ray.rllib.algorithms.sac.sac_learner import QF_LOSS_KEY
from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.learner.learner import POLICY_LOSS_KEY
from ray.tune.registry import register_env

import rllib_maml  # noqa: F401 - registers the shipped envs
from rllib_maml.pearl import PEARL, PEARLConfig
from rllib_maml.pearl.buffers import TaskBuffer, context_rows
from rllib_maml.pearl.gaussians import kl_to_standard_normal, product_of_gaussians
from rllib_maml.pearl.learner import ENCODER_LOSS_KEY

ENV = "rllib_maml/Navigation2D-v0"

# Remote env runners cannot import this test module: ship its classes by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


# ------------------------------------------------------------- the posterior
def test_product_of_two_gaussians_by_hand():
    # N(1, 1) x N(3, 1) ∝ N(2, 1/2); N(0, 1) x N(4, 3) ∝ N(1, 3/4).
    mu = torch.tensor([[[1.0, 0.0], [3.0, 4.0]]])
    var = torch.tensor([[[1.0, 1.0], [1.0, 3.0]]])
    product_mu, product_var = product_of_gaussians(mu, var)
    torch.testing.assert_close(product_mu, torch.tensor([[2.0, 1.0]]))
    torch.testing.assert_close(product_var, torch.tensor([[0.5, 0.75]]))


def test_product_of_gaussians_is_the_normalized_product_of_densities():
    # The product of N densities, evaluated on a grid and normalized, has the
    # returned mean and variance (one dimension, numerically).
    rng = np.random.default_rng(0)
    mu, var = rng.normal(size=4), rng.uniform(0.2, 2.0, size=4)
    grid = np.linspace(-10, 10, 200_001)
    log_density = sum(-((grid - m) ** 2) / (2 * v) for m, v in zip(mu, var))
    density = np.exp(log_density - log_density.max())
    density /= density.sum()
    mean = (grid * density).sum()
    variance = ((grid - mean) ** 2 * density).sum()
    got_mu, got_var = product_of_gaussians(
        torch.tensor(mu)[None, :, None], torch.tensor(var)[None, :, None]
    )
    assert got_mu.item() == pytest.approx(mean, abs=1e-6)
    assert got_var.item() == pytest.approx(variance, rel=1e-5)


def test_kl_to_standard_normal_matches_torch_distributions():
    mu = torch.tensor([[0.3, -1.2, 2.0], [0.0, 0.0, 0.0]])
    var = torch.tensor([[0.5, 2.0, 0.1], [1.0, 1.0, 1.0]])
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, var.sqrt()),
        torch.distributions.Normal(torch.zeros(3), torch.ones(3)),
    ).sum(-1)
    torch.testing.assert_close(kl_to_standard_normal(mu, var), expected)
    assert kl_to_standard_normal(mu, var)[1].item() == 0.0


# ---------------------------------------------------------------- learner
def small_config(**training) -> PEARLConfig:
    settings = dict(
        num_train_tasks=6,
        meta_batch_size=3,
        num_tasks_sample=2,
        num_initial_steps=100,
        num_steps_prior=100,
        num_extra_rl_steps_posterior=100,
        num_train_steps_per_iteration=4,
        embedding_batch_size=8,
        train_batch_size_per_learner=16,
        latent_dim=3,
        context_hiddens=[16],
    )
    settings.update(training)
    return (
        PEARLConfig()
        .environment(ENV)
        .training(**settings)
        .rl_module(
            model_config={
                "fcnet_hiddens": [16],
                "fusionnet_hiddens": [16],
                "head_fcnet_hiddens": [16],
                "fcnet_activation": "relu",
            }
        )
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .debugging(seed=0)
    )


@pytest.fixture(
    scope="module",
    params=[
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(
                not torch.cuda.is_available(), reason="torch sees no CUDA GPU"
            ),
        ),
    ],
)
def learner(request):
    """A PEARL learner on the CPU, and on the GPU where there is one."""
    config = small_config()
    if request.param == "cuda":
        config.learners(num_learners=0, num_gpus_per_learner=1)
    learner = config.build_learner(env=gym.make(ENV))
    assert str(learner._device).startswith(request.param)
    return learner


def random_step(learner, tasks=3, rows=16, context=8, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    size = learner.module[DEFAULT_MODULE_ID].context_size  # (s, a, r, s'): 7
    return {
        "obs": rng.normal(size=(tasks, rows, 2)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(tasks, rows, 2)).astype(np.float32),
        "rewards": rng.normal(size=(tasks, rows)).astype(np.float32),
        "next_obs": rng.normal(size=(tasks, rows, 2)).astype(np.float32),
        "terminateds": np.zeros((tasks, rows), np.float32),
        "context": rng.normal(size=(tasks, context, size)).astype(np.float32),
    }


def losses(learner, arrays, seed=0) -> dict:
    """The learner's SAC and encoder losses on one step's data (in-graph)."""
    torch.manual_seed(seed)
    batch = learner.pearl_batch(arrays)
    module = learner.module[DEFAULT_MODULE_ID]
    fwd_out = module.forward_train(batch)
    config = learner.config.get_config_for_module(DEFAULT_MODULE_ID)
    learner.compute_loss_for_module(
        module_id=DEFAULT_MODULE_ID, config=config, batch=batch, fwd_out=fwd_out
    )
    return dict(learner._temp_losses)


def encoder_grads(learner, loss) -> list:
    module = learner.module[DEFAULT_MODULE_ID]
    params = list(module.context_encoder.parameters())
    return torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)


def test_encoder_gets_gradients_from_the_critic_loss_not_the_actor_loss(learner):
    found = losses(learner, random_step(learner))
    learner._temp_losses.clear()
    from_actor = encoder_grads(learner, found[(DEFAULT_MODULE_ID, POLICY_LOSS_KEY)])
    from_critic = encoder_grads(learner, found[(DEFAULT_MODULE_ID, QF_LOSS_KEY)])
    assert all(g is None or not g.any() for g in from_actor)
    assert all(g is not None for g in from_critic)
    assert sum(g.abs().sum().item() for g in from_critic) > 0


def test_encoder_loss_is_critic_loss_plus_kl_term(learner):
    arrays = random_step(learner)
    found = losses(learner, arrays)
    learner._temp_losses.clear()
    module = learner.module[DEFAULT_MODULE_ID]
    with torch.no_grad():
        context = torch.as_tensor(arrays["context"], device=learner._device)
        factors = module.context_encoder(context)
        mu, raw = factors.split(module.latent_dim, dim=-1)
        var = torch.nn.functional.softplus(raw)
        # The posterior's precision and KL, written out independently.
        post_var = 1 / (1 / var).sum(1)
        post_mu = post_var * (mu / var).sum(1)
        kl = 0.5 * (post_var + post_mu**2 - 1 - post_var.log()).sum()
    critic = (
        found[(DEFAULT_MODULE_ID, QF_LOSS_KEY)]
        + found[(DEFAULT_MODULE_ID, "qf_twin_loss")]
    )
    expected = critic + learner.config.kl_lambda * kl
    torch.testing.assert_close(
        found[(DEFAULT_MODULE_ID, ENCODER_LOSS_KEY)], expected, rtol=1e-5, atol=1e-6
    )


def test_each_optimizer_gets_the_gradient_of_its_own_loss(learner):
    # Expected: d(loss of optimizer o) / d(parameters of o), one autograd call
    # per optimizer. RLlib's per-optimizer loop (`SACTorchLearner`) returns
    # twice the critics' gradients here: the encoder loss's backward pass adds
    # into the critics' gradient tensors it already returned.
    arrays = random_step(learner, seed=1)
    module_id = DEFAULT_MODULE_ID
    found = losses(learner, arrays)
    expected = {}
    for name, optimizer in learner.get_optimizers_for_module(module_id):
        params = learner.filter_param_dict_for_optimizer(learner._params, optimizer)
        grads = torch.autograd.grad(
            found[(module_id, name + "_loss")],
            list(params.values()),
            retain_graph=True,
            allow_unused=True,
        )
        expected.update(dict(zip(params, grads, strict=True)))
    ours = learner.compute_gradients({module_id: None})
    assert set(ours) == set(expected)
    for key, grad in expected.items():
        if grad is None:
            assert ours[key] is None or not ours[key].any()
        else:
            torch.testing.assert_close(ours[key], grad, rtol=1e-5, atol=1e-7)
    critic = {id(p) for p in learner.module[module_id].qf.parameters()}
    learner._temp_losses = losses(learner, arrays)  # the same draws (seeded)
    rllib = SACTorchLearner.compute_gradients(learner, {module_id: None})
    doubled = [
        key for key, p in learner._params.items() if id(p) in critic and key in rllib
    ]
    assert doubled
    for key in doubled:
        torch.testing.assert_close(rllib[key], 2 * expected[key])


# ---------------------------------------------------------------- buffers
def test_task_buffer_keeps_the_newest_and_restores():
    buffer = TaskBuffer(capacity=5)

    def rows(start, n):
        r = np.arange(start, start + n, dtype=np.float32)
        return {
            "obs": r[:, None],
            "actions": r[:, None],
            "rewards": r,
            "next_obs": r[:, None] + 1,
            "terminateds": np.zeros(n, np.float32),
        }

    buffer.add(rows(0, 3))
    buffer.add(rows(3, 4))  # 7 added: 2..6 kept
    assert len(buffer) == 5
    drawn = buffer.sample(1000, np.random.default_rng(0))
    assert set(drawn["rewards"].tolist()) == {2.0, 3.0, 4.0, 5.0, 6.0}
    np.testing.assert_array_equal(drawn["next_obs"][:, 0], drawn["rewards"] + 1)
    restored = TaskBuffer(capacity=1)
    restored.set_state(copy.deepcopy(buffer.get_state()))
    assert restored.get_state()["arrays"]["rewards"].tolist() == [2, 3, 4, 5, 6]
    restored.add(rows(7, 1))
    assert sorted(restored.get_state()["arrays"]["rewards"].tolist()) == [3, 4, 5, 6, 7]
    assert context_rows(rows(0, 2)).tolist() == [[0, 0, 0, 1], [1, 1, 1, 2]]


# ------------------------------------------------------------ sampling with z
def test_runner_infers_z_from_the_episodes_so_far(monkeypatch):
    # The first episode of an online job has z from the prior (an empty
    # context), each later one from all earlier episodes' transitions.
    from rllib_maml.pearl.env_runner import PEARLEnvRunner, PEARLJob

    config = small_config().env_runners(num_envs_per_env_runner=2)
    config.environment(env_config={"horizon": 5})
    runner = PEARLEnvRunner(config=config)
    seen = []
    posterior = runner.module.posterior

    def recording(context):
        seen.append(context.shape[1])
        return posterior(context)

    monkeypatch.setattr(runner.module, "posterior", recording)
    tasks = [{"goal": np.array([0.4, 0.4])}, {"goal": np.array([-0.4, 0.1])}]
    jobs = [
        PEARLJob(0, tasks[0], num_episodes=3, update_posterior=True),
        PEARLJob(1, tasks[1], num_episodes=2, context=np.zeros((7, 7), np.float32)),
    ]
    samples = runner.sample_pearl(jobs, explore=False, entropy=3)
    assert [len(samples.episodes_by_task[i]) for i in (0, 1)] == [3, 2]
    assert all(len(e) == 5 for e in samples.episodes_by_task[0])
    # Job 0: 0 (prior), then 5 and 10 transitions (and 15 after its last);
    # job 1 keeps its given context of 7.
    assert sorted(seen) == sorted([0, 7, 5, 7, 10, 7, 15])
    goal_0 = samples.episodes_by_task[0][0].get_observations()
    assert goal_0.shape == (6, 2)
    again = runner.sample_pearl(jobs, explore=False, entropy=3)
    np.testing.assert_array_equal(
        again.episodes_by_task[1][1].get_actions(),
        samples.episodes_by_task[1][1].get_actions(),
    )
    runner.stop()


# ------------------------------------------------------------- integration
@pytest.mark.integration
def test_train_evaluate_and_checkpoint(ray_session, tmp_path):
    from rllib_maml.evaluation import evaluate_pearl, write_report

    config = small_config().env_runners(num_env_runners=1)
    config.environment(env_config={"horizon": 20})
    algo = config.build_algo()
    try:
        results = [algo.train() for _ in range(2)]
        runners = results[-1]["env_runners"]
        # 6 tasks x 100 initial steps, then 2 tasks x (100 prior + 100 extra)
        # per iteration, in whole episodes (at most 20 steps; one may overshoot
        # per job: 6 + 2 x 2 x 2 jobs).
        steps = runners["num_env_steps_sampled_lifetime"]
        assert 600 + 2 * 2 * 200 <= steps < 600 + 2 * 2 * 200 + 14 * 20
        for key in ("episode_return_mean", "episode_return_mean_posterior"):
            assert np.isfinite(runners[key])
        assert results[-1]["adaptation_delta"] == pytest.approx(
            runners["episode_return_mean_posterior"] - runners["episode_return_mean"]
        )
        learner = results[-1]["learners"][DEFAULT_MODULE_ID]
        for key in ("encoder_loss", "kl_divergence", "qf_loss", "policy_loss"):
            assert np.isfinite(learner[key])
        assert learner["alpha_value"] != 1.0  # log-alpha trained
        tasks = algo.train_tasks[:2]
        returns = algo.context_returns(tasks, num_episodes=3, seed=5)
        assert returns.shape == (2, 3)
        report = evaluate_pearl(algo, num_tasks=3, num_episodes=2, seed=0)
        assert report["methods"]["pearl"]["experience_episodes"] == [0, 1]
        paths = write_report(report, str(tmp_path / "eval"))
        assert "pearl" in open(paths["markdown"]).read()

        path = algo.save_to_path(str(tmp_path / "checkpoint"))
        log_alpha = algo.learner_group._learner.curr_log_alpha[DEFAULT_MODULE_ID]
        log_alpha = log_alpha.item()
        replay = algo.replay_buffers[0].get_state()["arrays"]
    finally:
        algo.stop()
    restored = PEARL.from_checkpoint(path)
    try:
        other = restored.learner_group._learner.curr_log_alpha[DEFAULT_MODULE_ID]
        # RLlib's SAC learner state lacks log-alpha; PEARL's carries it.
        assert other.item() == pytest.approx(log_alpha)
        assert restored.initial_data_collected
        for key, value in replay.items():
            np.testing.assert_array_equal(
                restored.replay_buffers[0].get_state()["arrays"][key], value
            )
        np.testing.assert_array_equal(
            restored.context_returns(tasks, num_episodes=3, seed=5), returns
        )
        restored.train()
    finally:
        restored.stop()


@pytest.mark.integration
def test_tune_grid_search_and_its_checkpoint(ray_session, tmp_path):
    from ray import tune

    config = small_config(kl_lambda=tune.grid_search([0.1, 1.0]))
    config.environment(env_config={"horizon": 20})
    tuner = tune.Tuner(
        PEARL,
        param_space=config,
        run_config=tune.RunConfig(
            stop={"training_iteration": 1},
            storage_path=str(tmp_path),
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
            verbose=0,
        ),
    )
    results = tuner.fit()
    assert not results.errors
    assert sorted(r.config["kl_lambda"] for r in results) == [0.1, 1.0]
    for r in results:
        assert r.metrics["training_iteration"] == 1
        assert math.isfinite(r.metrics["adaptation_delta"])
        assert r.checkpoint is not None
    # The Tune checkpoint restores into a working algorithm, buffers included.
    algo = PEARL.from_checkpoint(results[0].checkpoint.path)
    try:
        assert algo.initial_data_collected
        assert all(len(b) >= 100 for b in algo.replay_buffers)
        assert math.isfinite(algo.train()["adaptation_delta"])
    finally:
        algo.stop()


@pytest.mark.integration
def test_failed_env_runner_tasks_are_sampled_again(ray_session, tmp_path, caplog):
    marker = tmp_path / "crash-marker"
    marker.write_text("")
    register_env("tests/PEARLCrashNav-v0", lambda c: CrashOnceNavigation(c))
    config = (
        small_config(num_initial_steps=40, num_steps_prior=40)
        .environment(
            "tests/PEARLCrashNav-v0", env_config={"horizon": 20, "marker": str(marker)}
        )
        .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5)
        .fault_tolerance(
            restart_failed_env_runners=True, delay_between_env_runner_restarts_s=0.0
        )
    )
    algo = config.build_algo()
    try:
        with caplog.at_level("WARNING", logger="rllib_maml.sampling"):
            result = algo.train()
        assert not marker.exists()  # the failure really happened
        assert any("again" in r.getMessage() for r in caplog.records)
        # Nothing was lost: the crashed task's initial data was sampled again.
        assert algo.train_tasks[0]["crash"]
        assert len(algo.replay_buffers[0]) >= 40
        assert all(len(b) >= 40 for b in algo.replay_buffers)
        steps = result["env_runners"]["num_env_steps_sampled_lifetime"]
        assert 6 * 40 + 2 * (40 + 100) <= steps
        assert math.isfinite(result["adaptation_delta"])
    finally:
        algo.stop()


class _FakeLearnerGroup:
    """`foreach_learner` as RLlib's remote learner group answers: errors come
    back as values."""

    def __init__(self, results, size):
        self.results, self.size = results, size

    def foreach_learner(self, func):
        return self.results

    def __len__(self):
        return self.size


def test_a_learners_error_is_raised_and_a_lost_learner_named():
    from ray.rllib.utils.actor_manager import ResultOrError

    from rllib_maml.sampling import call_learners

    ok = ResultOrError(result=1)
    failed = ResultOrError(error=ZeroDivisionError("in the learner"))
    group = _FakeLearnerGroup([failed], size=1)
    with pytest.raises(ZeroDivisionError, match="in the learner"):
        call_learners(group, None, algo="PEARL")
    # PEARL's learner calls (a remote learner with `num_learners=1`) go through it.
    algo = object.__new__(PEARL)
    algo.learner_group = group
    with pytest.raises(ZeroDivisionError, match="in the learner"):
        algo._call_learner(lambda learner: learner.runner_state())
    group = _FakeLearnerGroup([], size=1)
    with pytest.raises(RuntimeError, match=r"1 of 1 PEARL learners died.*from_chec"):
        call_learners(group, None, algo="PEARL")
    assert call_learners(_FakeLearnerGroup([ok, ok], size=2), None, algo="x") == [1, 1]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "training, message",
    [
        ({"meta_batch_size": 7}, "`meta_batch_size` (7) is larger than"),
        ({"num_initial_steps": 0}, "`num_initial_steps` must be an integer >= 1"),
        ({"num_steps_prior": 0, "num_steps_posterior": 0}, "would stay empty"),
        ({"kl_lambda": -1.0}, "`kl_lambda` must be a number >= 0"),
        ({"reward_scale": 0}, "`reward_scale` must be a number > 0"),
    ],
)
def test_bad_settings_are_named(training, message):
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        small_config(**training).validate()


def test_one_train_call_is_one_iteration():
    # RLlib's SAC repeats its training step within `train()` until 1 s and 100
    # env steps have passed: PEARL's iterations would depend on the machine.
    config = PEARLConfig()
    assert not config.min_time_s_per_iteration
    assert not config.min_sample_timesteps_per_iteration


def test_more_than_one_learner_rejected():
    config = small_config().learners(num_learners=2)
    with pytest.raises(ValueError, match="PEARL updates on one learner"):
        config.validate()


def test_discrete_actions_rejected(ray_session):
    config = small_config().environment("rllib_maml/CartPoleMass-v0")
    with pytest.raises(TypeError, match="continuous"):
        config.build_algo()
