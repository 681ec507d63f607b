"""Meta-gradient variants of the learner: batched vs loop, first vs second order,
and TRPO's trust region, on real sampled data."""

import copy

import numpy as np
import pytest
import torch
from helpers import local_config, local_runner_and_learner, sample

NAV_TASKS = [
    {"goal": np.array([0.3, 0.3])},
    {"goal": np.array([-0.4, 0.1])},
    {"goal": np.array([0.0, -0.45])},
]
CART_TASKS = [{"masscart": 0.6, "masspole": 0.06}, {"masscart": 1.9, "masspole": 0.18}]


def prepared_learner(env, tasks, inner_adaptation_steps=1, **training):
    config = local_config(
        env=env, inner_adaptation_steps=inner_adaptation_steps, **training
    )
    runner, learner = local_runner_and_learner(config)
    weights = None
    for step in range(inner_adaptation_steps + 1):
        episodes = sample(runner, learner, tasks, 2, params_by_task=weights)
        weights = learner.adapt(step=step, episodes_by_task=episodes)
    return learner


def loss_and_grads(learner, config):
    theta = learner.meta_policy_params()
    loss = learner.meta_loss(learner.iteration_data.steps, config)
    return loss, torch.autograd.grad(loss, list(theta.values()))


@pytest.mark.parametrize(
    "env, tasks",
    [
        ("rllib_maml/Navigation2D-v0", NAV_TASKS),
        ("rllib_maml/CartPoleMass-v0", CART_TASKS),
    ],
)
@pytest.mark.parametrize("meta_gradient", ["second_order", "first_order"])
@pytest.mark.parametrize("inner_loss", ["lvc", "vpg"])
def test_batched_equals_loop(env, tasks, meta_gradient, inner_loss):
    learner = prepared_learner(
        env,
        tasks,
        inner_adaptation_steps=2,
        meta_gradient=meta_gradient,
        inner_loss=inner_loss,
        kl_coeff=0.3,
    )
    batched = learner.config.copy(copy_frozen=False)
    batched.batched_meta_loss = True
    loop = learner.config.copy(copy_frozen=False)
    loop.batched_meta_loss = False
    lb, gb = loss_and_grads(learner, batched)
    ll, gl = loss_and_grads(learner, loop)
    torch.testing.assert_close(lb, ll, rtol=1e-5, atol=1e-6)
    for a, b in zip(gb, gl):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def module_with(module, params):
    """A copy of `module` with `params` (name -> tensor) loaded."""
    module = copy.deepcopy(module)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in params:
                p.copy_(params[name])
    return module


def rllib_logp(module, data):
    """log pi(a|s) with RLlib's own forward pass and distribution class."""
    inputs = module.forward_train({"obs": data["obs"]})["action_dist_inputs"]
    return module.get_train_action_dist_cls().from_logits(inputs).logp(data["actions"])


def test_first_order_is_plain_gradient_at_adapted_params_and_differs_from_exact():
    learner = prepared_learner(
        "rllib_maml/Navigation2D-v0",
        NAV_TASKS,
        meta_gradient="first_order",
        kl_coeff=0.0,
        inner_lr=0.5,
    )
    config = learner.config
    theta = learner.meta_policy_params()
    names = list(theta)
    terms = learner.meta_terms(theta, learner.iteration_data.steps, config)
    fo = torch.autograd.grad(terms["ppo_surrogate"].mean(), list(theta.values()))

    # Independently, per task: theta' = theta - lr * grad of the LVC inner loss,
    # then the plain gradient of the clipped surrogate at theta'.
    expected = [torch.zeros_like(p) for p in theta.values()]
    for task in sorted(learner.iteration_data.steps[0]):
        steps = learner.iteration_data.steps
        pre, post = steps[0][task], steps[1][task]
        m0 = module_with(learner._maml_module(), {})
        ratio0 = torch.exp(rllib_logp(m0, pre) - pre["behavior_logp"])
        inner = -(ratio0 * pre["advantages"]).mean()
        p0 = dict(m0.named_parameters())
        grads = torch.autograd.grad(inner, [p0[n] for n in names])
        adapted = {
            n: (p0[n] - config.inner_lr * g).detach() for n, g in zip(names, grads)
        }
        m1 = module_with(learner._maml_module(), adapted)
        ratio = torch.exp(rllib_logp(m1, post) - post["behavior_logp"])
        adv, clip = post["advantages"], config.clip_param
        surrogate = -torch.min(
            ratio * adv, torch.clamp(ratio, 1 - clip, 1 + clip) * adv
        ).mean()
        p1 = dict(m1.named_parameters())
        for e, g in zip(
            expected, torch.autograd.grad(surrogate, [p1[n] for n in names])
        ):
            e += g / len(NAV_TASKS)
    for a, b in zip(fo, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)

    so_config = config.copy(copy_frozen=False)
    so_config.meta_gradient = "second_order"
    so_terms = learner.meta_terms(theta, learner.iteration_data.steps, so_config)
    so = torch.autograd.grad(so_terms["ppo_surrogate"].mean(), list(theta.values()))
    assert max((a - b).abs().max().item() for a, b in zip(fo, so)) > 1e-4


@pytest.mark.parametrize(
    "meta_gradient, advantage_baseline",
    [("second_order", "value_function"), ("first_order", "linear")],
)
def test_trpo_update_stays_in_trust_region_and_improves(
    meta_gradient, advantage_baseline
):
    learner = prepared_learner(
        "rllib_maml/Navigation2D-v0",
        NAV_TASKS,
        outer_optimizer="trpo",
        meta_gradient=meta_gradient,
        max_kl=0.01,
        advantage_baseline=advantage_baseline,
    )
    config = learner.config
    steps = learner.iteration_data.steps
    theta = learner.meta_policy_params()
    before = learner.meta_terms(theta, steps, config)
    old_post = before["post_inputs"].detach()
    vf_before = [
        p.detach().clone()
        for n, p in learner._maml_module().named_parameters()
        if n.startswith("vf")
    ]
    results = learner.meta_update(timesteps={})
    after = learner.meta_terms(learner.meta_policy_params(), steps, config)
    stats = results["default_policy"]
    assert stats["trpo_step_accepted"].peek() == 1.0
    assert after["ratio_surrogate"].mean() < before["ratio_surrogate"].mean()
    # KL between the adapted policies before and after, recomputed here.
    kls = []
    for i, task in enumerate(sorted(steps[-1])):
        n = steps[-1][task]["mask"].shape[0]
        kls.append(learner._kl(old_post[i][:n], after["post_inputs"][i][:n]).mean())
    assert torch.stack(kls).mean().item() <= config.max_kl
    # The value function takes Adam steps on the value loss when it is the
    # advantages' baseline, and is left alone with the linear baseline.
    vf_after = [
        p.detach()
        for n, p in learner._maml_module().named_parameters()
        if n.startswith("vf")
    ]
    moved = any(not torch.equal(a, b) for a, b in zip(vf_before, vf_after))
    assert moved == (advantage_baseline == "value_function")
    assert ("vf_loss" in stats) == (advantage_baseline == "value_function")


@pytest.mark.parametrize("advantage_baseline", ["value_function", "linear"])
def test_ppo_meta_update_trains_the_value_function_only_as_baseline(
    advantage_baseline,
):
    learner = prepared_learner(
        "rllib_maml/Navigation2D-v0",
        NAV_TASKS,
        advantage_baseline=advantage_baseline,
        maml_optimizer_steps=2,
    )
    params = dict(learner._maml_module().named_parameters())
    before = {n: p.detach().clone() for n, p in params.items()}
    stats = learner.meta_update(timesteps={})["default_policy"]
    moved = {n for n, p in params.items() if not torch.equal(p.detach(), before[n])}
    assert set(learner.policy_param_names) <= moved
    vf_moved = any(n.startswith("vf") for n in moved)
    assert vf_moved == (advantage_baseline == "value_function")
    assert ("vf_loss" in stats) == (advantage_baseline == "value_function")


@pytest.mark.parametrize("vf_share_layers", [False, True])
@pytest.mark.parametrize(
    "env", ["rllib_maml/Navigation2D-v0", "rllib_maml/CartPoleMass-v0"]
)
def test_policy_inputs_equal_the_modules_own_forward(env, vf_share_layers):
    config = local_config(env=env).rl_module(
        model_config={"fcnet_hiddens": [32, 32], "vf_share_layers": vf_share_layers}
    )
    runner, learner = local_runner_and_learner(config)
    module = learner._maml_module()
    obs = torch.randn(7, *runner.env.single_observation_space.shape)
    expected = module.forward_train({"obs": obs})["action_dist_inputs"]
    theta = learner.meta_policy_params()
    torch.testing.assert_close(learner.policy_inputs(theta, obs), expected)
    # Swapped-in parameters are used (not the module's own).
    shifted = {n: p + 0.1 for n, p in theta.items()}
    assert not torch.allclose(learner.policy_inputs(shifted, obs), expected)
