"""The default RLModule of MAML and RL²: RLlib's PPO module with a settable
initial action std, and a free log std that works with recurrent encoders."""

from __future__ import annotations

import math

import torch
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
    DefaultPPOTorchRLModule,
)
from ray.rllib.core.distribution.torch.torch_distribution import TorchDiagGaussian
from ray.rllib.core.models.torch.heads import TorchFreeLogStdMLPHead
from ray.rllib.utils.annotations import override

#: `model_config` key: the policy's action std at initialization (all states, all
#: action dimensions). None keeps RLlib's initialization (std about 1).
INITIAL_ACTION_STD_KEY = "initial_action_std"


class MAMLTorchRLModule(DefaultPPOTorchRLModule):
    """RLlib's default PPO torch module (same layers, same state dict).

    With `model_config["initial_action_std"] = s` the policy head starts with
    log std `log(s)` in every state: the log-std rows of its output layer get
    zero weights and bias `log(s)` (a free log std, `free_log_std=True`, gets
    the value directly). The policy-gradient steps of MAML's inner loop scale
    with 1 / std, so a policy that starts at std 1 first spends meta-iterations
    shrinking it (ProMP and pytorch-maml-rl expose the same `init_std`).
    """

    @override(DefaultPPOTorchRLModule)
    def setup(self):
        super().setup()
        if type(self.pi) is TorchFreeLogStdMLPHead:
            self.pi.__class__ = FreeLogStdHead
        std = self.model_config.get(INITIAL_ACTION_STD_KEY)
        if std is None:
            return
        if not issubclass(self.get_train_action_dist_cls(), TorchDiagGaussian):
            raise ValueError(
                f"`model_config['{INITIAL_ACTION_STD_KEY}']` ({std}) sets the std of "
                f"a Gaussian policy, but action space {self.action_space} has no "
                f"std. Remove the key from `config.rl_module(model_config=...)`."
            )
        set_initial_log_std(self.pi, math.log(std))


class FreeLogStdHead(TorchFreeLogStdMLPHead):
    """RLlib's free-log-std policy head (`free_log_std=True`), also for inputs
    with a time axis (`[B, T, D]`, a recurrent encoder's output), where
    RLlib's head fails to concatenate a `[B, D]` log std."""

    @override(TorchFreeLogStdMLPHead)
    def _forward(self, inputs: torch.Tensor, **kwargs) -> torch.Tensor:
        mean = self.net(inputs)
        log_std = self.log_std
        if self.clip_log_std:
            clip = self.log_std_clip_param_const
            log_std = torch.clamp(log_std, -clip, clip)
        return torch.cat([mean, log_std.expand(mean.shape)], dim=-1)


def set_initial_log_std(pi_head: torch.nn.Module, log_std: float) -> None:
    """Makes a Gaussian policy head output `log_std` in every state."""
    with torch.no_grad():
        if isinstance(pi_head, TorchFreeLogStdMLPHead):
            pi_head.log_std.fill_(log_std)
            return
        out = pi_head.net.mlp[-1]
        half = out.out_features // 2
        out.weight[half:].zero_()
        out.bias[half:].fill_(log_std)
