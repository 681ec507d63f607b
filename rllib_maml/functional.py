"""Pure torch pieces of MAML: a params dict in, adapted params out.

Nothing here imports Ray, so the learner, the evaluation and the tests share
one implementation of the math.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

Params = dict[str, torch.Tensor]


def inner_step(
    params: Mapping[str, torch.Tensor],
    loss: torch.Tensor,
    lr: float,
    *,
    first_order: bool = False,
) -> Params:
    """One inner policy-gradient step: `theta' = theta - lr * d loss / d theta`.

    Args:
        params: The parameters `loss` was computed with (names to tensors).
        loss: A scalar computed from `params`.
        lr: The inner learning rate.
        first_order: If True, the gradient is treated as a constant (FOMAML):
            `theta'` depends on `theta` only through the identity. If False, the
            graph of the gradient is kept (`create_graph=True`), so a loss at
            `theta'` differentiates through this step (exact MAML).

    Returns:
        The adapted parameters. A parameter `loss` does not depend on is
        returned unchanged.
    """
    names = list(params)
    grads = torch.autograd.grad(
        loss,
        [params[n] for n in names],
        create_graph=not first_order,
        # Other terms (e.g. a KL penalty) may share this forward pass.
        retain_graph=True,
        allow_unused=True,
    )
    adapted = {}
    for name, grad in zip(names, grads):
        if grad is None:
            adapted[name] = params[name]
        else:
            if first_order:
                grad = grad.detach()
            adapted[name] = params[name] - lr * grad
    return adapted


def adapt(
    params: Mapping[str, torch.Tensor],
    inner_losses: list[Callable[[Params], torch.Tensor]],
    lr: float,
    *,
    first_order: bool = False,
) -> list[Params]:
    """Chains inner steps: step k uses `inner_losses[k]` at the step-k params.

    Returns the parameters before every step and after the last one, so
    `result[0]` is `params` and `result[-1]` the fully adapted parameters.
    """
    chain = [dict(params)]
    for loss_fn in inner_losses:
        current = chain[-1]
        chain.append(inner_step(current, loss_fn(current), lr, first_order=first_order))
    return chain


def vpg_loss(logp: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """Likelihood-ratio (REINFORCE with baseline) loss: `-mean(log pi(a|s) * A)`."""
    return -(logp * advantages).mean()


def lvc_loss(
    logp: torch.Tensor, behavior_logp: torch.Tensor, advantages: torch.Tensor
) -> torch.Tensor:
    """ProMP's low-variance curvature loss (Rothfuss et al. 2019, Eq. 8).

    `-mean(pi(a|s) / pi_behavior(a|s) * A)` with the behavior log-likelihoods
    as constants: same gradient as `vpg_loss` at the sampling parameters, but
    the Hessian estimate ProMP argues for.
    """
    return -(torch.exp(logp - behavior_logp.detach()) * advantages).mean()


def ppo_clip_loss(
    logp: torch.Tensor,
    behavior_logp: torch.Tensor,
    advantages: torch.Tensor,
    clip_param: float,
) -> torch.Tensor:
    """PPO's clipped surrogate as a loss (Schulman et al. 2017, Eq. 7)."""
    ratio = torch.exp(logp - behavior_logp.detach())
    clipped = torch.clamp(ratio, 1.0 - clip_param, 1.0 + clip_param)
    return -torch.min(ratio * advantages, clipped * advantages).mean()


def update_kl_coeff(coeff: float, kl: float, kl_target: float) -> float:
    """Adaptive KL coefficient (ProMP / rllib-contrib MAML).

    Halves the coefficient when `kl < kl_target / 1.5`, doubles it when
    `kl > 1.5 * kl_target`, and keeps it otherwise.
    """
    if kl < kl_target / 1.5:
        return coeff * 0.5
    if kl > kl_target * 1.5:
        return coeff * 2.0
    return coeff
