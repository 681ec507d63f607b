"""PEARL's posterior over the task variable z, in pure torch (no Ray).

The inference network maps each context transition to a Gaussian factor
N(mu_n, var_n); the posterior is their product (Rakelly et al. 2019, Eq. 4 and
Sec. 4.1), and the information bottleneck is KL(q(z|c) || N(0, I)).
"""

from __future__ import annotations

import torch

# The reference code's floor on a factor's variance, so that a factor's
# precision stays finite.
MIN_VARIANCE = 1e-7


def product_of_gaussians(
    mu: torch.Tensor, var: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Product of the Gaussian factors along dim -2: `mu`, `var` are
    `[..., N, L]`; returns the product's (mean, variance), `[..., L]`.

    var = 1 / sum_n (1 / var_n), mean = var * sum_n (mu_n / var_n).
    """
    precision = 1.0 / var.clamp(min=MIN_VARIANCE)
    product_var = 1.0 / precision.sum(dim=-2)
    product_mu = product_var * (mu * precision).sum(dim=-2)
    return product_mu, product_var


def kl_to_standard_normal(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(var)) || N(0, I)), summed over the last dim:
    0.5 * sum(var + mu^2 - 1 - log var)."""
    return 0.5 * (var + mu.pow(2) - 1.0 - var.log()).sum(dim=-1)


def sample_z(
    mu: torch.Tensor, var: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A reparameterized sample of N(mu, diag(var)) (gradients reach both)."""
    noise = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=generator)
    return mu + var.sqrt() * noise
