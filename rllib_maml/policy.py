"""The adapted policy as a function of its parameters, for RLlib torch RLModules."""

from __future__ import annotations

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import (
    TorchCategorical,
    TorchDiagGaussian,
)
from ray.rllib.core.models.base import ENCODER_OUT, ActorCriticEncoder
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI

from rllib_maml import functional as F


class FunctionalPolicy:
    """`policy(params, obs) -> action-distribution inputs` for an RLModule.

    - `param_names`: the parameters the inner loop adapts: everything the
      module's inference-only (env runner) copy has, i.e. not the value function.
    - `logp` / `kl`: closed-form log-likelihood and KL of the module's action
      distribution (diagonal Gaussian for Box, categorical for Discrete);
      `kl_hessian_product(p, d)`: the Hessian of `q -> KL(p || q)` at `q = p`
      times `d` (TRPO's Fisher in the distribution inputs).
    - For RLlib's default (PPO) module only the actor encoder and the policy
      head run; other modules run their whole `forward_train` (on the learner)
      or `forward_exploration` (`exploration=True`: on an env runner, whose
      module is inference-only and may have no `forward_train` path).
    """

    def __init__(self, module, *, exploration: bool = False):
        self.module = module
        self._forward = _ExplorationForward(module) if exploration else module
        self._prefix = "module." if exploration else ""
        non_inference = (
            module.get_non_inference_attributes()
            if isinstance(module, InferenceOnlyAPI)
            else []
        )
        self.param_names = [
            name
            for name, _ in module.named_parameters()
            if not any(
                name == attr or name.startswith(attr + ".") for attr in non_inference
            )
        ]
        dist_cls = module.get_train_action_dist_cls()
        if issubclass(dist_cls, TorchDiagGaussian):
            self.logp, self.kl = F.diag_gaussian_logp, F.diag_gaussian_kl
            self.kl_hessian_product = F.diag_gaussian_kl_hessian_product
        elif issubclass(dist_cls, TorchCategorical):
            self.logp, self.kl = F.categorical_logp, F.categorical_kl
            self.kl_hessian_product = F.categorical_kl_hessian_product
        else:
            raise TypeError(
                f"MAML supports Box (diagonal Gaussian) and Discrete (categorical) "
                f"action spaces, got action distribution {dist_cls.__name__} for "
                f"action space {module.action_space}."
            )
        self._actor_path = _actor_only_path(module)

    def params(self) -> F.Params:
        """The module's current values of `param_names` (the meta-parameters)."""
        named = dict(self.module.named_parameters())
        return {n: named[n] for n in self.param_names}

    def own(self, obs: torch.Tensor) -> torch.Tensor:
        """Action-distribution inputs with the module's own parameters."""
        if self._actor_path is None:
            out = self.module.forward_exploration({Columns.OBS: obs})
            return out[Columns.ACTION_DIST_INPUTS]
        encoder, _, head = self._actor_path
        return head(encoder({Columns.OBS: obs})[ENCODER_OUT])

    def __call__(self, params: F.Params, obs: torch.Tensor) -> torch.Tensor:
        if self._actor_path is None:
            if self._prefix:
                params = {self._prefix + name: p for name, p in params.items()}
            out = torch.func.functional_call(
                self._forward, params, ({Columns.OBS: obs},)
            )
            return out[Columns.ACTION_DIST_INPUTS]
        encoder, prefix, head = self._actor_path
        n = len(prefix)
        encoder_params = {k[n:]: v for k, v in params.items() if k.startswith(prefix)}
        head_params = {k[3:]: v for k, v in params.items() if k.startswith("pi.")}
        hidden = torch.func.functional_call(
            encoder, encoder_params, ({Columns.OBS: obs},)
        )[ENCODER_OUT]
        return torch.func.functional_call(head, head_params, (hidden,))


class _ExplorationForward(torch.nn.Module):
    """`forward(batch)` is the module's `forward_exploration(batch)`, so that
    `torch.func.functional_call` can run it with other parameters."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, batch):
        return self.module.forward_exploration(batch)


def _actor_only_path(module):
    """(actor encoder, its parameter prefix, policy head) of RLlib's default PPO
    module, or None for modules of other shapes."""
    encoder = getattr(module, "encoder", None)
    head = getattr(module, "pi", None)
    if not isinstance(encoder, ActorCriticEncoder) or head is None:
        return None
    if module.is_stateful():
        return None
    if encoder.config.shared:
        return encoder.encoder, "encoder.encoder.", head
    return encoder.actor_encoder, "encoder.actor_encoder.", head
