"""`rllib_maml.functional` against closed forms and finite differences (float64)."""

import pytest
import torch

from rllib_maml import functional as F

pytestmark = pytest.mark.usefixtures("float64")


def quadratic_setup():
    """Inner loss 0.5 * theta^T A theta - b^T theta: gradient A theta - b, Hessian A."""
    g = torch.Generator().manual_seed(0)
    m = torch.randn(3, 3, generator=g)
    A = m @ m.T + torch.eye(3)
    b = torch.randn(3, generator=g)
    c = torch.randn(3, generator=g)
    theta = torch.randn(3, generator=g)
    return A, b, c, theta


def test_inner_step_matches_closed_form():
    A, b, _, theta = quadratic_setup()
    params = {"w": theta.clone()}
    adapted = F.inner_step(
        params, lambda p: 0.5 * p["w"] @ A @ p["w"] - b @ p["w"], lr=0.1
    )
    torch.testing.assert_close(adapted["w"], theta - 0.1 * (A @ theta - b))


def test_unused_parameter_is_unchanged():
    params = {"w": torch.ones(2), "u": torch.ones(2)}
    adapted = F.inner_step(params, lambda p: (p["w"] ** 2).sum(), lr=0.5)
    torch.testing.assert_close(adapted["u"], params["u"])
    torch.testing.assert_close(adapted["w"], torch.zeros(2))


def meta_objective(theta, A, b, c, lr, first_order):
    params = {"w": theta}
    chain = F.adapt(
        params,
        [lambda p: 0.5 * p["w"] @ A @ p["w"] - b @ p["w"]] * 2,
        lr,
        first_order=first_order,
    )
    return (c * chain[-1]["w"] ** 2).sum()


def test_second_order_meta_gradient_matches_finite_differences():
    A, b, c, theta = quadratic_setup()
    lr = 0.1
    t = theta.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(meta_objective(t, A, b, c, lr, False), t)
    eps = 1e-6
    fd = torch.zeros(3)
    for i in range(3):
        e = torch.zeros(3)
        e[i] = eps
        fd[i] = (
            meta_objective(theta + e, A, b, c, lr, False)
            - meta_objective(theta - e, A, b, c, lr, False)
        ) / (2 * eps)
    torch.testing.assert_close(grad, fd, rtol=1e-7, atol=1e-9)


def test_first_order_meta_gradient_is_outer_gradient_at_adapted_params():
    A, b, c, theta = quadratic_setup()
    lr = 0.1
    t = theta.clone().requires_grad_(True)
    (fo,) = torch.autograd.grad(meta_objective(t, A, b, c, lr, True), t)
    (so,) = torch.autograd.grad(meta_objective(t, A, b, c, lr, False), t)
    # Independent: adapted params by the closed form, then d/dw (c * w^2) = 2 c w.
    w = theta
    for _ in range(2):
        w = w - lr * (A @ w - b)
    torch.testing.assert_close(fo, 2 * c * w)
    # With a non-zero inner Hessian the exact meta-gradient differs:
    # (I - lr A)^2 applied to the outer gradient.
    eye = torch.eye(3)
    torch.testing.assert_close(so, (eye - lr * A) @ (eye - lr * A) @ (2 * c * w))
    assert not torch.allclose(fo, so)


def test_lvc_and_vpg_share_gradient_but_not_hessian_at_sampling_point():
    """ProMP (Rothfuss et al. 2019), Sec. 5: same first, different second derivative."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, 2, generator=g)
    adv = torch.randn(50, generator=g)
    theta = torch.randn(2, generator=g)

    def logp(w):  # a Bernoulli policy: log sigmoid(x @ w) for the taken action
        return torch.nn.functional.logsigmoid(x @ w)

    behavior = logp(theta).detach()

    def vpg(w):
        return F.vpg_loss(logp(w), adv)

    def lvc(w):
        return F.lvc_loss(logp(w), behavior, adv)

    gv = torch.autograd.functional.jacobian(vpg, theta)
    gl = torch.autograd.functional.jacobian(lvc, theta)
    torch.testing.assert_close(gv, gl)
    hv = torch.autograd.functional.hessian(vpg, theta)
    hl = torch.autograd.functional.hessian(lvc, theta)
    assert not torch.allclose(hv, hl, atol=1e-6)


def test_ppo_clip_loss_clips_the_ratio():
    logp = torch.log(torch.tensor([2.0, 0.5, 1.1]))
    behavior = torch.zeros(3)
    adv = torch.tensor([1.0, -1.0, 1.0])
    # ratios 2.0 (clipped to 1.3), 0.5 (clipped to 0.7 for A<0), 1.1 (inside)
    expected = -torch.tensor([1.3, -0.7, 1.1]).mean()
    torch.testing.assert_close(F.ppo_clip_loss(logp, behavior, adv, 0.3), expected)


@pytest.mark.parametrize(
    "kl, expected",
    [
        (0.01 / 1.5 - 1e-9, 0.5),  # just below target / 1.5: halve
        (0.01 / 1.5 + 1e-9, 1.0),  # just above: keep
        (0.01, 1.0),
        (0.015 - 1e-9, 1.0),  # just below 1.5 * target: keep
        (0.015 + 1e-9, 2.0),  # just above: double
    ],
)
def test_adaptive_kl_coefficient_thresholds(kl, expected):
    assert F.update_kl_coeff(1.0, kl, kl_target=0.01) == expected


@pytest.mark.parametrize(
    "kl,product,width",
    [
        (F.diag_gaussian_kl, F.diag_gaussian_kl_hessian_product, 6),
        (F.categorical_kl, F.categorical_kl_hessian_product, 5),
    ],
)
def test_kl_hessian_products_match_second_derivatives_of_the_kl(kl, product, width):
    """The closed-form Hessian of q -> KL(p || q) at q = p (TRPO's Fisher in the
    distribution inputs) against autograd's second derivative of the KL."""
    g = torch.Generator().manual_seed(0)
    p = torch.randn(7, width, dtype=torch.float64, generator=g)
    d = torch.randn(7, width, dtype=torch.float64, generator=g)

    def summed(q):
        return kl(p, q).sum()

    _, expected = torch.func.jvp(torch.func.grad(summed), (p,), (d,))
    assert expected.norm() > 1e-3
    torch.testing.assert_close(product(p, d), expected, rtol=1e-10, atol=1e-12)
