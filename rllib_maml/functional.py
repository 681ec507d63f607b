"""Pure torch pieces of MAML: a params dict in, adapted params out.

Nothing here imports Ray, so the learner, the evaluation and the tests share
one implementation of the math.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

Params = dict[str, torch.Tensor]


def inner_step(
    params: Mapping[str, torch.Tensor],
    loss_fn: Callable[[Params], torch.Tensor],
    lr: float,
    *,
    first_order: bool = False,
) -> Params:
    """One inner policy-gradient step: `theta' = theta - lr * d loss_fn / d theta`.

    Uses `torch.func.grad`, so it works inside `torch.func.vmap` (one inner
    step per task in a single batched call) and composes with ordinary
    autograd around it.

    Args:
        params: The parameters to adapt (names to tensors).
        loss_fn: Scalar loss as a function of a params dict.
        lr: The inner learning rate.
        first_order: If True, the gradient is treated as a constant (FOMAML):
            `theta'` depends on `theta` only through the identity. If False, a
            loss at `theta'` differentiates through this step (exact MAML).

    Returns:
        The adapted parameters.
    """
    grads = torch.func.grad(loss_fn)(dict(params))
    return _descend(params, grads, lr, first_order)


def _descend(params, grads, lr: float, first_order: bool) -> Params:
    return {
        name: p - lr * (grads[name].detach() if first_order else grads[name])
        for name, p in params.items()
    }


def inner_step_with_aux(
    params: Mapping[str, torch.Tensor],
    loss_and_aux_fn: Callable[[Params], tuple[torch.Tensor, object]],
    lr: float,
    *,
    first_order: bool = False,
) -> tuple[Params, object]:
    """`inner_step` for a loss function that also returns an auxiliary output.

    The auxiliary output (e.g. the policy's distribution inputs) stays
    differentiable with respect to `params`, so it can be reused instead of a
    second forward pass.
    """
    grads, aux = torch.func.grad(loss_and_aux_fn, has_aux=True)(dict(params))
    return _descend(params, grads, lr, first_order), aux


def adapt(
    params: Mapping[str, torch.Tensor],
    inner_losses: list[Callable[[Params], torch.Tensor]],
    lr: float,
    *,
    first_order: bool = False,
    has_aux: bool = False,
) -> list[Params] | tuple[list[Params], list[object]]:
    """Chains inner steps: step k uses `inner_losses[k]` at the step-k params.

    Returns the parameters before every step and after the last one, so
    `result[0]` is `params` and `result[-1]` the fully adapted parameters.
    With `has_aux`, each loss returns `(loss, aux)` and the auxiliary outputs
    (differentiable with respect to that step's params) come back too.
    """
    chain, auxes = [dict(params)], []
    for loss_fn in inner_losses:
        if has_aux:
            new, aux = inner_step_with_aux(
                chain[-1], loss_fn, lr, first_order=first_order
            )
            auxes.append(aux)
        else:
            new = inner_step(chain[-1], loss_fn, lr, first_order=first_order)
        chain.append(new)
    return (chain, auxes) if has_aux else chain


def adapt_on_steps(
    params: Mapping[str, torch.Tensor],
    steps: list[Mapping[str, torch.Tensor]],
    *,
    policy: Callable[[Params, torch.Tensor], torch.Tensor],
    logp: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    kl: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inner_lr: float,
    inner_loss: str,
    first_order: bool,
) -> tuple[list[Params], torch.Tensor, torch.Tensor]:
    """MAML's inner loop: one inner step on each step's data, in order.

    The one adaptation function of the package: sampling-time adaptation (one
    step at a time, as each step's data arrives), the meta-objective's replay
    (all K steps, differentiably) and evaluation all call it.

    Returns:
        (the params chain as `adapt` returns it, the inner KLs [K]
        `KL(pi_behavior_k || pi_k)` on step-k data, the inner losses [K]).
    """

    def loss_fn(step):
        def loss_and_aux(p):
            inputs = policy(p, step[OBS])
            loss = _inner_loss(logp(inputs, step[ACTIONS]), step, inner_loss)
            return loss, (inputs, loss.detach())

        return loss_and_aux

    chain, auxes = adapt(
        params,
        [loss_fn(step) for step in steps],
        inner_lr,
        first_order=first_order,
        has_aux=True,
    )
    # One forward pass per step serves the inner loss and the KL penalty.
    kls = [
        masked_mean(kl(step[BEHAVIOR_INPUTS], inputs), step[MASK])
        for step, (inputs, _) in zip(steps, auxes, strict=True)
    ]
    losses = [loss for _, loss in auxes]
    empty = next(iter(params.values())).new_zeros(0)
    return (
        chain,
        torch.stack(kls) if kls else empty,
        torch.stack(losses) if losses else empty,
    )


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `x` over the entries where `mask` is 1 (padding excluded)."""
    return (x * mask).sum() / mask.sum()


# Closed-form action distributions (vmap-safe; torch.distributions' categorical
# KL uses boolean indexing, which vmap cannot batch).
def diag_gaussian_logp(inputs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Log-density of a diagonal Gaussian with `inputs = [mean, log_std]`."""
    mean, log_std = inputs.chunk(2, dim=-1)
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def diag_gaussian_kl(p_inputs: torch.Tensor, q_inputs: torch.Tensor) -> torch.Tensor:
    """KL(p || q) of two diagonal Gaussians given as `[mean, log_std]`."""
    p_mean, p_log_std = p_inputs.chunk(2, dim=-1)
    q_mean, q_log_std = q_inputs.chunk(2, dim=-1)
    var_ratio = torch.exp(2 * (p_log_std - q_log_std))
    mean_term = ((p_mean - q_mean) * torch.exp(-q_log_std)) ** 2
    return 0.5 * (var_ratio + mean_term - 1.0 - 2 * (p_log_std - q_log_std)).sum(-1)


def diag_gaussian_kl_hessian_product(
    p_inputs: torch.Tensor, d: torch.Tensor
) -> torch.Tensor:
    """The Hessian of `q -> KL(p || q)` at `q = p` (the Fisher of
    `[mean, log_std]`) times `d`: `d_mean / std^2` and `2 d_log_std`."""
    _, log_std = p_inputs.chunk(2, dim=-1)
    d_mean, d_log_std = d.chunk(2, dim=-1)
    return torch.cat([d_mean * torch.exp(-2 * log_std), 2 * d_log_std], dim=-1)


def categorical_logp(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Log-probability of integer `actions` under categorical `logits`."""
    log_probs = torch.log_softmax(logits, dim=-1)
    return torch.gather(log_probs, -1, actions.long().unsqueeze(-1)).squeeze(-1)


def categorical_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) of two categoricals given by logits."""
    p_log = torch.log_softmax(p_logits, dim=-1)
    q_log = torch.log_softmax(q_logits, dim=-1)
    return (p_log.exp() * (p_log - q_log)).sum(-1)


def categorical_kl_hessian_product(
    p_logits: torch.Tensor, d: torch.Tensor
) -> torch.Tensor:
    """The Hessian of `q -> KL(p || q)` in q's logits at `q = p` times `d`:
    `(diag(p) - p p^T) d`."""
    p = torch.softmax(p_logits, dim=-1)
    return p * d - p * (p * d).sum(-1, keepdim=True)


def vpg_loss(
    logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Likelihood-ratio (REINFORCE with baseline) loss: `-mean(log pi(a|s) * A)`."""
    return -_mean(logp * advantages, mask)


def lvc_loss(
    logp: torch.Tensor,
    behavior_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """ProMP's low-variance curvature loss (Rothfuss et al. 2019, Eq. 8).

    `-mean(pi(a|s) / pi_behavior(a|s) * A)` with the behavior log-likelihoods
    as constants: same gradient as `vpg_loss` at the sampling parameters, but
    the Hessian estimate ProMP argues for.
    """
    return -_mean(torch.exp(logp - behavior_logp.detach()) * advantages, mask)


def ppo_clip_loss(
    logp: torch.Tensor,
    behavior_logp: torch.Tensor,
    advantages: torch.Tensor,
    clip_param: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """PPO's clipped surrogate as a loss (Schulman et al. 2017, Eq. 7)."""
    ratio = torch.exp(logp - behavior_logp.detach())
    clipped = torch.clamp(ratio, 1.0 - clip_param, 1.0 + clip_param)
    return -_mean(torch.min(ratio * advantages, clipped * advantages), mask)


def ratio_loss(
    logp: torch.Tensor,
    behavior_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """TRPO's importance-sampled surrogate as a loss: `-mean(ratio * A)`."""
    return -_mean(torch.exp(logp - behavior_logp.detach()) * advantages, mask)


def _mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x.mean() if mask is None else masked_mean(x, mask)


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


# Keys of one adaptation step's data for `task_meta_terms` (tensors [N, ...]).
OBS, ACTIONS, BEHAVIOR_LOGP, BEHAVIOR_INPUTS, ADVANTAGES, MASK = (
    "obs",
    "actions",
    "behavior_logp",
    "behavior_inputs",
    "advantages",
    "mask",
)


def task_meta_terms(
    theta: Mapping[str, torch.Tensor],
    steps: list[Mapping[str, torch.Tensor]],
    *,
    policy: Callable[[Params, torch.Tensor], torch.Tensor],
    logp: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    kl: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inner_lr: float,
    inner_loss: str,
    first_order: bool,
    clip_param: float,
) -> dict[str, torch.Tensor]:
    """The meta-objective's terms for one task; vmap-able over tasks.

    `steps[k]` holds the data sampled at adaptation step k (keys above). The K
    inner steps are replayed from `theta` on steps 0..K-1; the surrogates are
    taken on step K's (post-adaptation) data.

    Returns:
        `ppo_surrogate` (ProMP, Rothfuss et al. 2019, Eq. 10, without the KL
        term), `ratio_surrogate` (TRPO / MAML paper), `inner_kls` [K]
        (KL(pi_behavior_k || pi_k) on step-k data, ProMP's penalty), and
        `post_inputs` (the adapted policy's distribution inputs on step K).
    """

    chain, inner_kls, _ = adapt_on_steps(
        theta,
        steps[:-1],
        policy=policy,
        logp=logp,
        kl=kl,
        inner_lr=inner_lr,
        inner_loss=inner_loss,
        first_order=first_order,
    )
    params = chain[-1]
    post = steps[-1]
    post_inputs = policy(params, post[OBS])
    post_logp = logp(post_inputs, post[ACTIONS])
    args = (post_logp, post[BEHAVIOR_LOGP], post[ADVANTAGES])
    terms = {
        "ppo_surrogate": ppo_clip_loss(*args, clip_param, post[MASK]),
        "ratio_surrogate": ratio_loss(*args, post[MASK]),
        "inner_kls": inner_kls,
        "post_inputs": post_inputs,
    }
    return terms


def _inner_loss(lp: torch.Tensor, step: Mapping[str, torch.Tensor], inner_loss: str):
    if inner_loss == "vpg":
        return vpg_loss(lp, step[ADVANTAGES], step[MASK])
    return lvc_loss(lp, step[BEHAVIOR_LOGP], step[ADVANTAGES], step[MASK])


def pad_tasks(per_task: list[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stacks per-task data of different lengths into [tasks, max_len, ...].

    Padded rows are zero, and zero in `mask`, so masked means ignore them.
    """
    max_len = max(d[MASK].shape[0] for d in per_task)
    out = {}
    for key, first in per_task[0].items():
        buf = first.new_zeros((len(per_task), max_len) + tuple(first.shape[1:]))
        for i, d in enumerate(per_task):
            buf[i, : d[key].shape[0]] = d[key]
        out[key] = buf
    return out
