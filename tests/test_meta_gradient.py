"""The learner's meta-objective gradient against central finite differences.

Runs the real `MAMLTorchLearner.meta_loss` (inner-step replay,
clipped surrogate, inner-KL penalty, value loss) on fixed sampled data in
float64 and compares autograd's gradient with finite differences of the loss.
"""

import numpy as np
import pytest
import torch
from helpers import local_config, local_runner_and_learner, sample

TASKS = [{"goal": np.array([0.3, 0.3])}, {"goal": np.array([-0.4, 0.1])}]


def learner_with_one_adaptation(config, num_episodes: int):
    """A local learner holding real pre- and post-adaptation data of TASKS."""
    runner, learner = local_runner_and_learner(config)
    episodes = sample(runner, learner, TASKS, num_episodes=num_episodes)
    adapted = learner.adapt(step=0, episodes_by_task=episodes)
    post = sample(
        runner, learner, TASKS, num_episodes=num_episodes, params_by_task=adapted
    )
    learner.adapt(step=1, episodes_by_task=post)
    return learner


def double_learner(learner):
    """`learner` with its module and its adaptation data in float64."""
    learner.module["default_policy"].double()
    learner.iteration_data.steps = [
        {
            t: {k: v.double() if v.is_floating_point() else v for k, v in tb.items()}
            for t, tb in step.items()
        }
        for step in learner.iteration_data.steps
    ]
    return learner


def meta_loss_and_grad(learner, batch, names):
    loss = learner.meta_loss(batch)
    params = dict(learner.module["default_policy"].named_parameters())
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    return loss.item(), grads


@pytest.mark.parametrize("meta_gradient", ["second_order", "first_order"])
def test_meta_gradient_matches_finite_differences(meta_gradient):
    config = local_config(
        inner_adaptation_steps=1,
        inner_lr=0.5,
        meta_gradient=meta_gradient,
        kl_coeff=0.1,
        # The value loss is part of the meta-loss with this baseline only.
        advantage_baseline="value_function",
    )
    learner = double_learner(learner_with_one_adaptation(config, num_episodes=2))
    batch = learner.iteration_data.steps
    # One policy weight matrix (moves through the inner step) and the value head.
    names = [learner.policy_param_names[0], "vf.net.mlp.0.weight"]
    _, grads = meta_loss_and_grad(learner, batch, names)
    params = dict(learner.module["default_policy"].named_parameters())
    rng = np.random.default_rng(0)
    eps = 1e-5
    for name, grad in zip(names, grads):
        p = params[name]
        for flat in rng.choice(p.numel(), size=4, replace=False):
            idx = np.unravel_index(flat, p.shape)
            with torch.no_grad():
                p[idx] += eps
            up, _ = meta_loss_and_grad(learner, batch, names)
            with torch.no_grad():
                p[idx] -= 2 * eps
            down, _ = meta_loss_and_grad(learner, batch, names)
            with torch.no_grad():
                p[idx] += eps
            fd = (up - down) / (2 * eps)
            if meta_gradient == "second_order" or name.startswith("vf"):
                assert grad[idx].item() == pytest.approx(fd, rel=1e-5, abs=1e-8)


def kl_of_params(problem, theta):
    """`p -> KL(adapted policies at theta || at p)` from the problem's pieces."""
    with torch.no_grad():
        old = problem.outputs(theta)
    return lambda params: problem.kl(old, problem.outputs(params))


def kl_hessian_by_double_backward(kl_fn, theta, v):
    """The KL's Hessian times v, differentiating the KL's gradient graph (the
    product TRPO used before the Gauss-Newton form)."""
    from rllib_maml import trpo

    names = list(theta)
    grads = torch.autograd.grad(
        kl_fn(theta), [theta[n] for n in names], create_graph=True
    )
    return trpo.flat(
        torch.autograd.grad(trpo.flat(grads) @ v, [theta[n] for n in names])
    )


@pytest.mark.parametrize(
    "batched_meta_loss,meta_gradient",
    [(True, "second_order"), (False, "second_order"), (True, "first_order")],
)
def test_trpo_fisher_vector_product_is_the_kl_hessian(batched_meta_loss, meta_gradient):
    """TRPO's Fisher-vector product (Gauss-Newton form J^T H_o J v through the
    inner step) equals the KL's Hessian by double backward (the previous
    product) on the same data and, second order, central finite differences of
    the KL's gradient along v. (First order, the autograd gradient holds the
    inner gradient constant while finite differences move it.)"""
    from rllib_maml import trpo

    config = local_config(
        outer_optimizer="trpo",
        inner_lr=0.5,
        batched_meta_loss=batched_meta_loss,
        meta_gradient=meta_gradient,
    )
    learner = double_learner(learner_with_one_adaptation(config, num_episodes=2))
    theta, problem = learner.trpo_problem()
    kl_fn = kl_of_params(problem, theta)

    size = sum(p.numel() for p in theta.values())
    v = torch.randn(
        size, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    outputs = problem.outputs(theta)
    product = trpo.fisher_vector_product(
        outputs, theta, problem.kl_hessian, damping=0.0
    )(v)
    assert product.norm() > 1e-2 * v.norm()  # a real curvature, not zero

    def kl_grad(shift):
        moved = trpo.unflat(trpo.flat(theta.values()).detach() + shift * v, theta)
        moved = {n: p.clone().requires_grad_(True) for n, p in moved.items()}
        return trpo.flat(torch.autograd.grad(kl_fn(moved), list(moved.values())))

    torch.testing.assert_close(
        product, kl_hessian_by_double_backward(kl_fn, theta, v), rtol=1e-9, atol=1e-12
    )
    if meta_gradient == "second_order":
        eps = 1e-5
        finite_differences = (kl_grad(eps) - kl_grad(-eps)) / (2 * eps)
        torch.testing.assert_close(product, finite_differences, rtol=1e-4, atol=1e-7)


def test_trpo_fisher_vector_product_float32_matches_double_backward():
    """On float32 paper-sized data the fast product agrees with the double
    backward one within float32 rounding."""
    from rllib_maml import trpo

    config = local_config(outer_optimizer="trpo", meta_batch_size=4)
    learner = learner_with_one_adaptation(config, num_episodes=10)
    theta, problem = learner.trpo_problem()
    v = torch.randn(
        sum(p.numel() for p in theta.values()),
        generator=torch.Generator().manual_seed(1),
    )
    product = trpo.fisher_vector_product(
        problem.outputs(theta), theta, problem.kl_hessian, damping=0.0
    )(v)
    expected = kl_hessian_by_double_backward(kl_of_params(problem, theta), theta, v)
    torch.testing.assert_close(product, expected, rtol=1e-4, atol=1e-6)


def test_trpo_step_curvature_from_the_cg_residual_matches_a_product():
    """`trpo_step` takes d^T F d from CG's residual (F d = -g - r) instead of
    an 11th Fisher-vector product; in float32 on real data the two agree."""
    from rllib_maml import trpo

    config = local_config(outer_optimizer="trpo")
    learner = learner_with_one_adaptation(config, num_episodes=4)
    theta, problem = learner.trpo_problem()
    outputs = problem.outputs(theta)
    g = trpo.flat(
        torch.autograd.grad(
            problem.loss(outputs), list(theta.values()), retain_graph=True
        )
    )
    fvp = trpo.fisher_vector_product(
        outputs, theta, problem.kl_hessian, config.cg_damping
    )
    d, residual = trpo.conjugate_gradient(fvp, -g, iterations=config.cg_iters)
    assert residual.norm() > 1e-6 * g.norm()  # CG stopped before converging
    torch.testing.assert_close(d @ (-g - residual), d @ fvp(d), rtol=1e-4, atol=0)


def test_trpo_line_search_values_without_a_graph_are_the_values_with_one():
    """The line search evaluates the surrogate and the KL under no_grad; the
    inner steps inside them still take their gradients (torch.func.grad), so
    the values equal those computed with autograd on."""
    from rllib_maml import trpo

    config = local_config(outer_optimizer="trpo", inner_lr=0.5)
    learner = learner_with_one_adaptation(config, num_episodes=2)
    theta, problem = learner.trpo_problem()
    with torch.no_grad():
        old = problem.outputs(theta)
    shift = torch.randn(
        sum(p.numel() for p in theta.values()),
        generator=torch.Generator().manual_seed(0),
    )
    candidate = trpo.unflat(trpo.flat(theta.values()).detach() + 0.05 * shift, theta)
    with torch.no_grad():
        outputs = problem.outputs(candidate)
        loss, kl = problem.loss(outputs), problem.kl(old, outputs)
    with_graph = {n: p.clone().requires_grad_(True) for n, p in candidate.items()}
    assert kl.item() > 1e-6  # a real move, not the old policy
    outputs_with_graph = problem.outputs(with_graph)
    loss_with_graph = problem.loss(outputs_with_graph)
    assert loss_with_graph.requires_grad  # autograd really was on here
    torch.testing.assert_close(loss, loss_with_graph)
    torch.testing.assert_close(kl, problem.kl(old, outputs_with_graph))
