"""TRPO's natural-gradient step in pure torch (Schulman et al. 2015, App. C).

Used as MAML's outer optimizer as in the MAML paper: the surrogate and the KL
are functions of the meta-parameters through the inner adaptation steps, so
the Fisher-vector products differentiate through them too.

The Fisher-vector product is the Gauss-Newton form of the KL's Hessian,
`F v = J^T H_o J v` with `J` the Jacobian of the policy's distribution inputs
`o(theta)` (through the inner steps) and `H_o` the KL's Hessian in those
inputs at the old ones. At the old parameters, where the KL and its gradient in
`o` vanish, this *is* the KL's Hessian in `theta`: the other term of the chain
rule, `sum_i dKL/do_i * d^2 o_i / dtheta^2`, is zero. A product takes one
backward pass through the graph of `u -> J^T u` (for `J v`) and one through
`o(theta)`'s (for `J^T`), both built once per update, instead of a backward pass
through the KL's gradient graph, whose third-order terms through the inner step
are all multiplied by that zero.
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


@dataclass
class TRPOProblem:
    """What TRPO minimizes, as functions of the policy's distribution inputs.

    Attributes:
        outputs: `params -> o`, the distribution inputs the surrogate and the
            KL are taken on (for MAML: the adapted policies' on the
            post-adaptation data, through the inner steps).
        loss: `o -> surrogate loss` (scalar).
        kl: `(old o, o) -> mean KL` (scalar), zero with zero gradient in `o`
            at `o = old o`.
        kl_hessian: `(old o, d) -> H_o d`, the Hessian of `o -> kl(old o, o)`
            at `o = old o` times `d` in closed form; None: by automatic
            differentiation of `kl` (`kl_hessian_by_autodiff`).
        all_reduce: `t -> the sum of t over the processes` that hold a share
            of the problem (several learners, each with some tasks: its `loss`
            and `kl` are its share of the totals). It is applied to the
            gradient, every Fisher-vector product and every loss and KL value
            the step decides on, so every process takes the same step. None:
            one process holds the whole problem.
    """

    outputs: Callable[[Params], torch.Tensor]
    loss: Callable[[torch.Tensor], torch.Tensor]
    kl: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    kl_hessian: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """`value` summed over the processes (itself with one process)."""
        return value if self.all_reduce is None else self.all_reduce(value)


def kl_hessian_by_autodiff(
    kl: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """`(old, d) -> H_o d` for `TRPOProblem.kl_hessian`, by forward-mode
    differentiation of the KL's gradient."""

    def product(old: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        grad = torch.func.grad(lambda o: kl(old, o))
        return torch.func.jvp(grad, (old,), (d,))[1]

    return product


def fisher_vector_product(
    outputs: torch.Tensor,
    params: Params,
    kl_hessian: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    damping: float,
    total: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """`v -> J^T H_o J v + damping v` (see the module doc): the Hessian of
    `kl(o(params), o(p))` in `p` at `p = params`.

    Args:
        outputs: `o(params)`, with its graph.
        params: The leaf tensors `outputs` was computed from.
        kl_hessian: `(old o, d) -> H_o d` (`TRPOProblem.kl_hessian`).
        damping: Added to the product.
        total: sums `J^T H_o J v` over the processes (`TRPOProblem.total`).
    """
    leaves = list(params.values())
    old = outputs.detach()
    # J v by the double-vjp trick: u -> J^T u is linear in u, so the gradient
    # of (J^T u) . v with respect to u is J v (the graph is built once).
    u = torch.zeros_like(old, requires_grad=True)
    jt_u = torch.autograd.grad(outputs, leaves, u, create_graph=True)

    def product(v: torch.Tensor) -> torch.Tensor:
        jv = torch.autograd.grad(
            jt_u, u, list(unflat(v, params).values()), retain_graph=True
        )[0]
        h_jv = kl_hessian(old, jv)
        jt_h_jv = torch.autograd.grad(outputs, leaves, h_jv, retain_graph=True)
        return total(flat(jt_h_jv).detach()) + damping * v

    return product


def trpo_step(
    params: Mapping[str, torch.Tensor],
    problem: TRPOProblem,
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
        problem: The surrogate and the KL (`TRPOProblem`).
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
    outputs = problem.outputs(params)
    old = outputs.detach()
    loss = problem.loss(outputs)
    grads = torch.autograd.grad(loss, [params[n] for n in names], retain_graph=True)
    g = problem.total(flat(grads).detach())
    loss_before = problem.total(loss.detach()).item()

    kl_hessian = problem.kl_hessian or kl_hessian_by_autodiff(problem.kl)
    product = fisher_vector_product(
        outputs, params, kl_hessian, cg_damping, problem.total
    )
    direction, residual = conjugate_gradient(product, -g, iterations=cg_iters)
    # d^T F d with F d = -g - residual (CG's invariant): no 11th product.
    shs = 0.5 * direction @ (-g - residual)
    if not torch.isfinite(shs) or shs <= 0:
        logger.warning("TRPO: non-positive curvature %s; skipping the step.", shs)
        return {n: p.detach() for n, p in params.items()}, TRPOStepInfo(
            False, 0.0, loss_before, loss_before, 0.0, 0
        )
    full_step = direction * torch.sqrt(max_kl / shs)
    start = flat([params[n] for n in names]).detach()
    # Free the graphs (second-order through the inner steps) before the search.
    del outputs, loss, grads, product
    fraction = 1.0
    for i in range(line_search_steps):
        candidate = unflat(start + fraction * full_step, params)
        # Values only: no graph (torch.func.grad in the inner steps still runs).
        with torch.no_grad():
            new_outputs = problem.outputs(candidate)
            both = torch.stack(
                [problem.loss(new_outputs), problem.kl(old, new_outputs)]
            )
            new_loss, new_kl = problem.total(both).tolist()
        if new_kl <= max_kl and new_loss < loss_before:
            return candidate, TRPOStepInfo(
                True, fraction, loss_before, new_loss, new_kl, i + 1
            )
        fraction *= backtrack_ratio
    logger.info("TRPO line search found no improving step within max_kl.")
    return {n: p.detach() for n, p in params.items()}, TRPOStepInfo(
        False, 0.0, loss_before, loss_before, 0.0, line_search_steps
    )
