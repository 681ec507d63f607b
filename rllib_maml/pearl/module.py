"""PEARL's RLModule: RLlib's default SAC module on [observation, z], plus the
context encoder (the inference network q(z|c)).

RLlib's parts: the actor, the two critics and their target copies
(`DefaultSACTorchRLModule`, built by RLlib's `SACCatalog` for an observation
`latent_dim` entries longer than the env's). PEARL's parts: the context
encoder and which losses z carries gradients to (Rakelly et al. 2019,
Sec. 4.2 and the reference code): the critics see z with its gradient, so
the critic loss trains the encoder; the actor, its Q-value and the targets
see z detached.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
from ray.rllib.algorithms.sac.sac_learner import (
    ACTION_DIST_INPUTS_NEXT,
    QF_PREDS,
    QF_TWIN_PREDS,
)
from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import (
    DefaultSACTorchRLModule,
)
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override
from torch import nn

from rllib_maml.pearl.gaussians import product_of_gaussians

# The batch column holding each row's z (the learner's, or the runner's).
PEARL_Z = "pearl_z"


def observation_size(space: gym.Space) -> int:
    return int(np.prod(space.shape))


class PEARLCatalog(SACCatalog):
    """RLlib's SAC catalog for observations with z appended."""

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config_dict: dict,
        view_requirements: dict | None = None,
    ):
        size = observation_size(observation_space) + int(
            model_config_dict["latent_dim"]
        )
        super().__init__(
            observation_space=gym.spaces.Box(-np.inf, np.inf, (size,), np.float32),
            action_space=action_space,
            model_config_dict=model_config_dict,
            view_requirements=view_requirements,
        )


class PEARLTorchRLModule(DefaultSACTorchRLModule):
    """SAC on [observation, z] and the context encoder (see the module doc).

    `model_config` keys besides RLlib's: `latent_dim` (size of z) and
    `context_hiddens` (the encoder's hidden layer sizes).
    """

    def __init__(self, *args, **kwargs):
        if kwargs.get("catalog_class") is None:
            kwargs["catalog_class"] = PEARLCatalog
        super().__init__(*args, **kwargs)

    @override(DefaultSACTorchRLModule)
    def setup(self) -> None:
        super().setup()
        if not isinstance(self.action_space, gym.spaces.Box):
            raise TypeError(
                f"PEARL needs a continuous (Box) action space, got "
                f"{self.action_space}: RLlib's SAC on z has no discrete variant here."
            )
        sizes = [
            self.context_size,
            *self.model_config.get("context_hiddens", [200, 200, 200]),
        ]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        # Each transition's factor: mean and pre-softplus variance of z.
        layers.append(nn.Linear(sizes[-1], 2 * self.latent_dim))
        self.context_encoder = nn.Sequential(*layers)

    @property
    def latent_dim(self) -> int:
        return int(self.model_config["latent_dim"])

    @property
    def context_size(self) -> int:
        """Size of a context transition (s, a, r, s')."""
        obs = observation_size(self.observation_space)
        return 2 * obs + int(np.prod(self.action_space.shape)) + 1

    def posterior(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | c) for each task: `context` `[tasks, n, context_size]` ->
        (mean, variance), each `[tasks, latent_dim]`; no transitions (n = 0):
        the prior N(0, I)."""
        tasks, n = context.shape[0], context.shape[1]
        if n == 0:
            shape = (tasks, self.latent_dim)
            zeros = torch.zeros(shape, dtype=torch.float32, device=context.device)
            return zeros, torch.ones_like(zeros)
        factors = self.context_encoder(context)
        mu, raw_var = factors.split(self.latent_dim, dim=-1)
        return product_of_gaussians(mu, nn.functional.softplus(raw_var))

    def policy_inputs(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Action-distribution inputs of the actor on [obs, z]."""
        obs_z = torch.cat([obs.reshape(obs.shape[0], -1), z], dim=-1)
        return self.pi(self.pi_encoder({Columns.OBS: obs_z})[ENCODER_OUT])

    @override(RLModule)
    def _forward_inference(self, batch: dict) -> dict[str, Any]:
        if PEARL_Z not in batch:
            raise KeyError(
                f"PEARL's module acts on [observation, z]: the batch needs a "
                f"{PEARL_Z!r} column (`PEARLEnvRunner` adds it)."
            )
        return {
            Columns.ACTION_DIST_INPUTS: self.policy_inputs(
                batch[Columns.OBS], batch[PEARL_Z]
            )
        }

    @override(RLModule)
    def _forward_exploration(self, batch: dict, **kwargs) -> dict[str, Any]:
        return self._forward_inference(batch)

    @override(RLModule)
    def _forward_train(self, batch: dict) -> dict[str, Any]:
        """RLlib's continuous SAC forward (`DefaultSACTorchRLModule`) with z
        appended: `batch[PEARL_Z]` reaches the critics with its gradient and
        everything else detached."""
        if self.inference_only:
            raise RuntimeError("PEARL's inference-only module cannot train.")
        z = batch[PEARL_Z]
        z_detached = z.detach()

        def with_z(obs, z_part):
            return torch.cat([obs.reshape(obs.shape[0], -1), z_part], dim=-1)

        obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
        out: dict[str, Any] = {}
        critic_in = {
            Columns.OBS: with_z(obs, z),
            Columns.ACTIONS: batch[Columns.ACTIONS],
        }
        out[QF_PREDS] = self._qf_forward_train_helper(
            critic_in, self.qf_encoder, self.qf
        )
        if self.twin_q:
            out[QF_TWIN_PREDS] = self._qf_forward_train_helper(
                critic_in, self.qf_twin_encoder, self.qf_twin
            )
        obs_z = with_z(obs, z_detached)
        next_obs_z = with_z(next_obs, z_detached)
        logits = self.pi(self.pi_encoder({Columns.OBS: obs_z})[ENCODER_OUT])
        out[Columns.ACTION_DIST_INPUTS] = logits
        dist_cls = self.get_train_action_dist_cls()
        actions, out["logp_resampled"] = dist_cls.from_logits(logits).rsample_and_logp()
        # The critics' target: no gradient flows there (RLlib's forward detaches
        # it afterwards; computing it without a graph saves its backward's memory).
        with torch.no_grad():
            logits_next = self.pi(
                self.pi_encoder({Columns.OBS: next_obs_z})[ENCODER_OUT]
            )
            out[ACTION_DIST_INPUTS_NEXT] = logits_next
            next_actions, out["logp_next_resampled"] = dist_cls.from_logits(
                logits_next
            ).sample_and_logp()
            out["q_target_next"] = self.forward_target(
                {Columns.OBS: next_obs_z, Columns.ACTIONS: next_actions}
            )
        # The actor's Q-value: gradients to the actor through the action only
        # (RLlib's straight-through pass: the critics' parameters frozen).
        critic_params = [
            p
            for net in (self.qf_encoder, self.qf)
            + ((self.qf_twin_encoder, self.qf_twin) if self.twin_q else ())
            for p in net.parameters()
        ]
        for p in critic_params:
            p.requires_grad = False
        try:
            out["q_curr"] = self.compute_q_values(
                {Columns.OBS: obs_z, Columns.ACTIONS: actions}
            )
        finally:
            for p in critic_params:
                p.requires_grad = True
        return out
