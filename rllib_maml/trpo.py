"""TRPO's natural-gradient step in pure torch (Schulman et al. 2015, App. C).

Used as MAML's outer optimizer as in the MAML paper: the surrogate and the KL
are functions of the meta-parameters through the inner adaptation steps, so
the Fisher-vector products differentiate through them too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)

Params = dict[str, torch.Tensor]


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflat(vector: torch.Tensor, like: Mapping[str, torch.Tensor]) -> Params:
    out, start = {}, 0
    for name, t in like.items():
        out[name] = vector[start : start + t.numel()].view_as(t)
        start += t.numel()
    return out


def conjugate_gradient(
    matrix_vector_product: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    iterations: int = 10,
    residual_tol: float = 1e-10,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solves `A x = b` for symmetric positive-definite `A` given `v -> A v`.

    Returns:
        `x` and the residual `r = b - A x` (kept by the iteration, so `A x`
        comes without another product).
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iterations):
        if rr < residual_tol:
            break
        Ap = matrix_vector_product(p)
        alpha = rr / (p @ Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, r


@dataclass
class TRPOStepInfo:
    accepted: bool
    step_fraction: float  # backtrack_ratio ** i of the accepted step, 0 if none
    loss_before: float
    loss_after: float
    kl: float
    line_search_steps: int


def kl_hessian_vector_product(kl: torch.Tensor, params: Params, damping: float):
    """`v -> H v + damping v`, H the Hessian of `kl` (computed from `params`,
    with its graph) at `params`."""
    names = list(params)
    kl_grads = flat(
        torch.autograd.grad(kl, [params[n] for n in names], create_graph=True)
    )

    def product(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(
            kl_grads @ v, [params[n] for n in names], retain_graph=True
        )
        return flat(hv).detach() + damping * v

    return product


def trpo_step(
    params: Mapping[str, torch.Tensor],
    loss_and_kl_fn: Callable[[Params], tuple[torch.Tensor, torch.Tensor]],
    *,
    max_kl: float,
    cg_iters: int = 10,
    cg_damping: float = 0.1,
    line_search_steps: int = 15,
    backtrack_ratio: float = 0.8,
) -> tuple[Params, TRPOStepInfo]:
    """One TRPO update of `params`: minimize the loss subject to `KL <= max_kl`.

    Args:
        params: Current parameters (leaf tensors requiring grad).
        loss_and_kl_fn: `p -> (loss, kl)` from one evaluation (the two share
            work, e.g. the inner steps): the surrogate loss, and the KL between
            the policy at `params` (held fixed inside) and the policy at `p`,
            0 with zero gradient at `params`.
        max_kl: Trust-region size.
        cg_iters: Conjugate-gradient iterations.
        cg_damping: Added to the Fisher-vector product (`F v + damping * v`).
        line_search_steps: Tries of the backtracking line search.
        backtrack_ratio: Step shrink factor per try.

    Returns:
        The new parameters (detached; the old ones if no step was accepted)
        and what happened.
    """
    params = dict(params)
    names = list(params)
    loss, kl = loss_and_kl_fn(params)
    grads = torch.autograd.grad(loss, [params[n] for n in names], retain_graph=True)
    g = flat(grads).detach()

    fisher_vector_product = kl_hessian_vector_product(kl, params, cg_damping)
    direction, residual = conjugate_gradient(
        fisher_vector_product, -g, iterations=cg_iters
    )
    # d^T F d with F d = -g - residual (CG's invariant): no 11th product.
    shs = 0.5 * direction @ (-g - residual)
    if not torch.isfinite(shs) or shs <= 0:
        logger.warning("TRPO: non-positive curvature %s; skipping the step.", shs)
        return {n: p.detach() for n, p in params.items()}, TRPOStepInfo(
            False, 0.0, loss.item(), loss.item(), 0.0, 0
        )
    full_step = direction * torch.sqrt(max_kl / shs)
    old = flat([params[n] for n in names]).detach()
    loss_before = loss.item()
    # Free the graphs (second-order through the inner steps) before the search.
    del loss, kl, grads, fisher_vector_product
    fraction = 1.0
    for i in range(line_search_steps):
        candidate = unflat(old + fraction * full_step, params)
        # Values only: no graph (torch.func.grad in the inner steps still runs).
        with torch.no_grad():
            new_loss, new_kl = (x.item() for x in loss_and_kl_fn(candidate))
        if new_kl <= max_kl and new_loss < loss_before:
            return candidate, TRPOStepInfo(
                True, fraction, loss_before, new_loss, new_kl, i + 1
            )
        fraction *= backtrack_ratio
    logger.info("TRPO line search found no improving step within max_kl.")
    return {n: p.detach() for n, p in params.items()}, TRPOStepInfo(
        False, 0.0, loss_before, loss_before, 0.0, line_search_steps
    )
