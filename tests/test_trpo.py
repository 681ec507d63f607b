"""TRPO pieces against known answers (float64)."""

import pytest
import torch

from rllib_maml import trpo

pytestmark = pytest.mark.usefixtures("float64")


def spd_system(seed: int):
    """A random symmetric positive-definite `A` (6 x 6) and a right-hand side."""
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(6, 6, generator=g)
    return m @ m.T + 0.5 * torch.eye(6), torch.randn(6, generator=g)


def test_conjugate_gradient_solves_spd_system():
    A, b = spd_system(0)
    x, _ = trpo.conjugate_gradient(lambda v: A @ v, b, iterations=6)
    torch.testing.assert_close(x, torch.linalg.solve(A, b), rtol=1e-8, atol=1e-8)


def test_conjugate_gradient_residual_is_b_minus_a_x_after_an_early_stop():
    A, b = spd_system(2)
    x, r = trpo.conjugate_gradient(lambda v: A @ v, b, iterations=3)
    assert r.norm() > 1e-3 * b.norm()  # really not converged
    torch.testing.assert_close(A @ x, b - r, rtol=1e-8, atol=1e-10)


def quadratic_problem():
    """Loss linear in w; KL(w0 || w) = 0.5 (w - w0)^T F (w - w0) (a Gaussian's KL)."""
    g = torch.Generator().manual_seed(1)
    m = torch.randn(4, 4, generator=g)
    fisher = m @ m.T + torch.eye(4)
    c = torch.randn(4, generator=g)
    w0 = torch.randn(4, generator=g)

    def loss_fn(p):
        return c @ p["w"]

    def kl_fn(p):
        d = p["w"] - w0
        return 0.5 * d @ fisher @ d

    return fisher, c, w0, loss_fn, kl_fn


def as_problem(loss_fn, kl_fn, grad_enabled: list | None = None):
    """A `TRPOProblem` whose outputs are the parameters `w` themselves (so the
    Fisher is the KL's Hessian in `w`); appends to `grad_enabled` whether
    autograd was on at each evaluation."""

    def outputs(p):
        if grad_enabled is not None:
            grad_enabled.append(torch.is_grad_enabled())
        return p["w"]

    return trpo.TRPOProblem(
        outputs=outputs,
        loss=lambda w: loss_fn({"w": w}),
        kl=lambda old, w: kl_fn({"w": w}),
    )


def test_accepted_step_is_the_natural_gradient_on_the_kl_boundary():
    fisher, c, w0, loss_fn, kl_fn = quadratic_problem()
    params = {"w": w0.clone().requires_grad_(True)}
    grad_enabled = []
    # A tiny damping keeps the full step just inside the boundary (the check
    # is strict: KL <= max_kl).
    new, info = trpo.trpo_step(
        params,
        as_problem(loss_fn, kl_fn, grad_enabled),
        max_kl=0.01,
        cg_iters=10,
        cg_damping=1e-9,
    )
    assert info.accepted and info.step_fraction == 1.0
    # One call with a graph (the gradient and the Fisher), then one per
    # line-search try without.
    assert grad_enabled == [True] + [False] * info.line_search_steps
    # Closed form: w0 - sqrt(2 max_kl / (c^T F^-1 c)) F^-1 c.
    nat = torch.linalg.solve(fisher, c)
    expected = w0 - torch.sqrt(2 * 0.01 / (c @ nat)) * nat
    torch.testing.assert_close(new["w"], expected, rtol=1e-6, atol=1e-8)
    assert kl_fn(new).item() <= 0.01 + 1e-9
    assert loss_fn(new).item() < loss_fn({"w": w0}).item()


def test_line_search_backs_off_when_the_full_step_violates_the_constraint():
    fisher, c, w0, loss_fn, _ = quadratic_problem()
    alpha = 300.0

    def kl_fn(p):  # quadratic model plus a quartic term the model does not see
        d = p["w"] - w0
        q = 0.5 * d @ fisher @ d
        return q + alpha * q**2

    params = {"w": w0.clone().requires_grad_(True)}
    new, info = trpo.trpo_step(
        params,
        as_problem(loss_fn, kl_fn),
        max_kl=0.01,
        cg_damping=0.0,
        backtrack_ratio=0.8,
    )
    # The full step has q = max_kl; fraction f scales q by f^2. Expect the first
    # f = 0.8^k with q + alpha q^2 <= max_kl.
    k = 0
    while (q := 0.01 * 0.8 ** (2 * k)) + alpha * q**2 > 0.01:
        k += 1
    assert k >= 1  # the full step really violates the constraint
    assert info.accepted
    assert info.step_fraction == pytest.approx(0.8**k)
    assert info.line_search_steps == k + 1
    assert kl_fn(new).item() <= 0.01
    assert loss_fn(new).item() < loss_fn({"w": w0}).item()


def test_no_step_when_nothing_improves():
    fisher, c, w0, _, kl_fn = quadratic_problem()

    def loss_fn(p):  # descent direction at w0, but any step of this size loses
        d = p["w"] - w0
        return c @ d + 1e6 * (d @ d)

    params = {"w": w0.clone().requires_grad_(True)}
    new, info = trpo.trpo_step(
        params, as_problem(loss_fn, kl_fn), max_kl=0.01, line_search_steps=5
    )
    assert not info.accepted and info.line_search_steps == 5
    torch.testing.assert_close(new["w"], w0)
