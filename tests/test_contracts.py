"""MAML inside RLlib's contracts: each test here failed before the env runner and
learner redesign (inner-KL coefficients, evaluation touching the runner's
module, seeds, resumption, custom RLModules, the Learner's `update`)."""

import sys

import numpy as np
import pytest
import ray
import torch
from helpers import local_config, local_runner_and_learner, sample
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
    DefaultPPOTorchRLModule,
)
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ACTOR, CRITIC, ENCODER_OUT
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from test_meta_variants import module_with

from rllib_maml import MAML, MAMLConfig
from rllib_maml import functional as F

# Remote env runners cannot import this test module: ship its classes by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

NAV_TASKS = [{"goal": np.array([0.3, 0.3])}, {"goal": np.array([-0.4, 0.1])}]


def independent_inner_kl(learner, steps, theta):
    """ProMP's inner KL of step 0, recomputed by hand: the mean over tasks of
    KL(pi_behavior || pi_theta) on the pre-adaptation data, with RLlib's own
    forward pass and distribution class at the meta-parameters `theta` (step 0
    is sampled with the meta-policy, so no inner step precedes it)."""
    module = module_with(learner._maml_module(), theta)
    dist_cls = module.get_train_action_dist_cls()
    kls = []
    for task in sorted(steps[0]):
        pre = steps[0][task]
        with torch.no_grad():
            new = module.forward_train({"obs": pre["obs"]})["action_dist_inputs"]
        behavior = dist_cls.from_logits(pre["behavior_inputs"])
        kls.append(behavior.kl(dist_cls.from_logits(new)).mean().item())
    return float(np.mean(kls))


def test_inner_kl_coefficients_adapt_on_the_kl_after_the_update():
    """With one optimizer step the KL *inside* the meta-loss is 0 (the replay
    equals the behaviour policy), so adapting on it halved every coefficient
    every iteration. The coefficient must follow the updated policy's KL."""
    config = local_config(maml_optimizer_steps=1, inner_lr=0.5, lr=0.01)
    config.training(kl_coeff=0.01, kl_target=1e-5)  # any real KL is above target
    runner, learner = local_runner_and_learner(config)
    params = None
    for step in range(2):
        episodes = sample(runner, learner, NAV_TASKS, 3, params_by_task=params)
        params = learner.adapt(step=step, episodes_by_task=episodes)
    steps = learner.iteration_data.steps
    reduced = learner.meta_update(timesteps={})["default_policy"]
    results = {k: v.peek() if hasattr(v, "peek") else v for k, v in reduced.items()}

    theta = {n: p.detach() for n, p in learner.meta_policy_params().items()}
    expected = independent_inner_kl(learner, steps, theta)
    assert expected > 1e-5
    assert results["inner_kl_0"] == pytest.approx(expected, rel=1e-3)
    assert results["inner_kl_coeff_0"] == pytest.approx(0.02)  # doubled
    assert learner.inner_kl_coeffs == [pytest.approx(0.02)]


def test_learner_update_is_a_clear_error():
    _, learner = local_runner_and_learner(local_config())
    with pytest.raises(NotImplementedError, match=r"meta_update\(timesteps=\.\.\.\)"):
        learner.update(batch={})
    with pytest.raises(NotImplementedError, match="MAML.train"):
        learner.compute_loss_for_module(
            module_id="default_policy", config=learner.config, batch={}
        )


def runner_params(algo):
    runner = algo.env_runner_group.local_env_runner
    return {n: p.detach().clone() for n, p in runner.module.named_parameters()}


@pytest.mark.integration
def test_evaluation_leaves_the_local_runners_module_the_meta_policy(
    ray_session, tmp_path
):
    config = local_config(episodes_per_task=2).evaluation(
        evaluation_num_tasks=2, evaluation_adaptation_steps=2
    )
    algo = config.build_algo()
    try:
        algo.train()
        before = runner_params(algo)
        meta = algo._call_learner(lambda learner: learner.policy_params_numpy())
        algo.evaluate()
        after = runner_params(algo)
        for name in meta:
            np.testing.assert_array_equal(after[name].numpy(), before[name].numpy())
            np.testing.assert_array_equal(after[name].numpy(), meta[name])
        state = algo.get_module().get_state()
        for name in meta:
            np.testing.assert_array_equal(np.asarray(state[name]), meta[name])
    finally:
        algo.stop()


def seeded_config(env, **env_config):
    return (
        MAMLConfig()
        .environment(env, env_config=env_config)
        .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5)
        .training(meta_batch_size=3, episodes_per_task=2)
        .debugging(seed=11)
    )


RETURN_KEYS = ("episode_return_mean", "episode_return_mean_adapt_1")


def returns_of(result):
    return [result["env_runners"][key] for key in RETURN_KEYS]


@pytest.mark.integration
@pytest.mark.parametrize(
    "env, env_config",
    [
        ("rllib_maml/CartPoleMass-v0", {}),
        ("rllib_maml/HalfCheetahRandDirec-v0", {"horizon": 30}),
    ],
)
def test_same_seed_same_first_iteration_with_random_resets(
    ray_session, env, env_config
):
    """Both envs reset randomly (Navigation2D does not): resets and action
    noise must come from `config.seed`."""

    def first_returns(seed):
        algo = seeded_config(env, **env_config).debugging(seed=seed).build_algo()
        try:
            return returns_of(algo.train())
        finally:
            algo.stop()

    a, b, other = first_returns(11), first_returns(11), first_returns(12)
    assert a == b
    assert a != other


@pytest.mark.integration
def test_resumed_run_repeats_the_uninterrupted_one(ray_session, tmp_path):
    config = seeded_config("rllib_maml/CartPoleMass-v0")
    algo = config.build_algo()
    try:
        uninterrupted = [returns_of(algo.train()) for _ in range(2)]
        path = algo.save_to_path(tmp_path / "ckpt")
        uninterrupted += [returns_of(algo.train()) for _ in range(2)]
    finally:
        algo.stop()
    restored = MAML.from_checkpoint(path)
    try:
        resumed = [returns_of(restored.train()) for _ in range(2)]
    finally:
        restored.stop()
    assert resumed == uninterrupted[2:]
    assert uninterrupted[2] != uninterrupted[3]


class SineFeatures(torch.nn.Module):
    """An encoder unlike RLlib's MLP: features [x, sin(3x), cos(3x)] -> tanh layer."""

    def __init__(self, obs_dim: int, out_dim: int):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3 * obs_dim, out_dim), torch.nn.Tanh()
        )

    def forward(self, obs):
        return self.net(torch.cat([obs, torch.sin(3 * obs), torch.cos(3 * obs)], -1))


class SineActorCritic(torch.nn.Module):
    """Actor and critic towers; an inference-only (env runner) copy has no critic
    (None, as RLlib's own inference-only encoders)."""

    def __init__(self, obs_dim: int, out_dim: int, inference_only: bool):
        super().__init__()
        self.actor_encoder = SineFeatures(obs_dim, out_dim)
        self.critic_encoder = (
            None if inference_only else _CriticEncoder(obs_dim, out_dim)
        )

    def forward(self, batch):
        out = {ACTOR: self.actor_encoder(batch[Columns.OBS])}
        if self.critic_encoder is not None:
            out[CRITIC] = self.critic_encoder(batch)[ENCODER_OUT]
        return {ENCODER_OUT: out}


class _CriticEncoder(torch.nn.Module):
    def __init__(self, obs_dim: int, out_dim: int):
        super().__init__()
        self.features = SineFeatures(obs_dim, out_dim)

    def forward(self, batch):
        return {ENCODER_OUT: self.features(batch[Columns.OBS])}


class SinePPOModule(DefaultPPOTorchRLModule):
    """RLlib's PPO torch module with the sine-feature encoder."""

    def setup(self):
        super().setup()
        hidden = self.model_config["fcnet_hiddens"][-1]
        self.encoder = SineActorCritic(
            self.observation_space.shape[0], hidden, self.inference_only
        )


@pytest.mark.integration
@pytest.mark.parametrize("num_env_runners", [0, 1])
def test_a_custom_rl_module_trains_with_batched_sampling(ray_session, num_env_runners):
    config = (
        local_config(inner_adaptation_steps=2, episodes_per_task=2)
        .env_runners(num_env_runners=num_env_runners, num_cpus_per_env_runner=0.5)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=SinePPOModule))
    )
    algo = config.build_algo()
    try:
        module = algo._call_learner(lambda learner: type(learner._maml_module()))
        assert module is SinePPOModule
        for _ in range(2):
            result = algo.train()
            assert np.isfinite(result["adaptation_delta"])
            assert np.isfinite(result["env_runners"]["episode_return_mean_adapt_2"])
    finally:
        algo.stop()


def test_adapt_on_steps_is_theta_minus_lr_grad_per_step():
    """The one adaptation function, against a closed form: a linear-Gaussian
    policy (mean = W obs, log std 0) and the VPG loss."""
    torch.manual_seed(0)
    obs, actions, adv = torch.randn(5, 3), torch.randn(5, 2), torch.randn(5)
    step = {
        F.OBS: obs,
        F.ACTIONS: actions,
        F.ADVANTAGES: adv,
        F.MASK: torch.ones(5),
        F.BEHAVIOR_LOGP: torch.zeros(5),
        F.BEHAVIOR_INPUTS: torch.zeros(5, 4),
    }
    W = torch.randn(2, 3)

    def policy(params, o):
        mean = o @ params["W"].T
        return torch.cat([mean, torch.zeros_like(mean)], -1)

    chain, kls, losses = F.adapt_on_steps(
        {"W": W},
        [step, step],
        policy=policy,
        logp=F.diag_gaussian_logp,
        kl=F.diag_gaussian_kl,
        inner_lr=0.1,
        inner_loss="vpg",
        first_order=True,
    )
    # d/dW of -mean(logN(a; W o, 1) * A) = -mean(A (a - W o) o^T).
    expected = W
    for k in range(2):
        grad = -(
            (adv[:, None, None])
            * (actions - obs @ expected.T)[:, :, None]
            * obs[:, None, :]
        ).mean(0)
        expected = expected - 0.1 * grad
        torch.testing.assert_close(chain[k + 1]["W"], expected)
    assert kls.shape == (2,) and losses.shape == (2,)
