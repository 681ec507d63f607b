"""PEARL's learner: RLlib's SAC losses on [observation, z] plus the encoder's.

One gradient step (`PEARLTorchLearner.update_pearl`, after the reference
code's `_take_step`):
1) the posterior q(z | c_i) of each of the meta-batch's tasks from its context
   (`PEARLTorchRLModule.posterior`), and one reparameterized z_i per task;
2) RLlib's SAC forward and losses (`SACTorchLearner`) on every task's
   transitions with z_i appended to each observation;
3) the encoder loss: the critics' loss plus `kl_lambda` x the sum over tasks of
   KL(q(z | c_i) || N(0, I)) (Rakelly et al. 2019, Eq. 3); it reaches the
   encoder through z in the critics only;
4) RLlib's per-optimizer gradient step (critics, actor, alpha, encoder) and
   the soft update of the target critics (`tau`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.sac.sac_learner import QF_LOSS_KEY, QF_TWIN_LOSS_KEY
from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner
from ray.rllib.core import COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import ALL_MODULES, TD_ERROR_KEY, WEIGHTS_SEQ_NO

from rllib_maml.pearl.gaussians import kl_to_standard_normal, sample_z
from rllib_maml.pearl.module import PEARL_Z

PEARL_KL = "pearl_kl"
ENCODER_OPTIMIZER = "encoder"
ENCODER_LOSS_KEY = ENCODER_OPTIMIZER + "_loss"
KL_KEY = "kl_divergence"
LOG_ALPHA_STATE = "log_alpha"


class PEARLTorchLearner(SACTorchLearner):
    """RLlib's `SACTorchLearner` plus the context encoder's optimizer and loss
    (see the module doc)."""

    @override(SACTorchLearner)
    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        super().configure_optimizers_for_module(module_id, config)
        # Registered last: RLlib's `compute_gradients` zeroes each optimizer's
        # gradients before its loss's backward pass, so the encoder's
        # gradients are those of `encoder_loss` alone.
        params = self.get_parameters(self._module[module_id].context_encoder)
        self.register_optimizer(
            module_id=module_id,
            optimizer_name=ENCODER_OPTIMIZER,
            optimizer=torch.optim.Adam(params, eps=1e-7),
            params=params,
            lr_or_lr_schedule=config.encoder_lr,
        )

    @override(SACTorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        total = super().compute_loss_for_module(
            module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
        )
        critic_loss = self._temp_losses[(module_id, QF_LOSS_KEY)]
        if config.twin_q:
            critic_loss = critic_loss + self._temp_losses[(module_id, QF_TWIN_LOSS_KEY)]
        kl_term = config.kl_lambda * batch[PEARL_KL]
        encoder_loss = critic_loss + kl_term
        self._temp_losses[(module_id, ENCODER_LOSS_KEY)] = encoder_loss
        # One TD error per row would pile up over an iteration's steps.
        self.metrics.delete((module_id, TD_ERROR_KEY), key_error=False)
        self.metrics.log_dict(
            {ENCODER_LOSS_KEY: encoder_loss, KL_KEY: batch[PEARL_KL]},
            key=module_id,
            window=1,
        )
        return total + kl_term

    @override(SACTorchLearner)
    def compute_gradients(self, loss_per_module, **kwargs) -> dict:
        """RLlib's per-optimizer gradients (`SACTorchLearner.compute_gradients`:
        each optimizer's parameters get the gradient of its own loss) in three
        backward passes instead of five: the critics' and the encoder's come
        from one pass of the encoder loss, which is the critics' losses plus a
        KL term without critic parameters, so its gradient for each critic is
        that critic's own loss's. The actor's loss reaches neither critics nor
        encoder, and alpha's only log-alpha."""
        grads = {}
        for module_id in set(loss_per_module) - {ALL_MODULES}:
            optimizers = dict(self.get_optimizers_for_module(module_id))
            losses = {
                name: self._temp_losses.pop((module_id, name + "_loss"))
                for name in optimizers
            }
            passes = [
                (("qf", "qf_twin", "encoder"), losses[ENCODER_OPTIMIZER]),
                (("policy",), losses["policy"]),
                (("alpha",), losses["alpha"]),
            ]
            for names, loss in passes:
                group = [optimizers[name] for name in names if name in optimizers]
                for optimizer in group:
                    optimizer.zero_grad(set_to_none=True)
                loss.backward(retain_graph=True)
                for optimizer in group:
                    grads.update(
                        {
                            pid: p.grad
                            for pid, p in self.filter_param_dict_for_optimizer(
                                self._params, optimizer
                            ).items()
                        }
                    )
        assert not self._temp_losses
        return grads

    def pearl_batch(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """One gradient step's batch: `arrays` holds `[tasks, n, ...]`
        transitions and `context` `[tasks, c, context_size]`; returns RLlib's
        SAC batch of `tasks x n` rows with each row's z (`PEARL_Z`) and the
        summed KL (`PEARL_KL`)."""
        module = self._module[DEFAULT_MODULE_ID]
        config = self.config

        def tensor(value):
            return torch.as_tensor(value, dtype=torch.float32, device=self._device)

        context = tensor(arrays["context"])
        tasks, rows = arrays["rewards"].shape
        mu, var = module.posterior(context)
        z = sample_z(mu, var)
        kl = kl_to_standard_normal(
            mu, var
        ).sum()  # summed over tasks, as in the paper's code

        def flat(key):
            value = tensor(arrays[key])
            return value.reshape(tasks * rows, *value.shape[2:])

        return {
            Columns.OBS: flat("obs"),
            Columns.ACTIONS: flat("actions"),
            Columns.REWARDS: flat("rewards") * config.reward_scale,
            Columns.NEXT_OBS: flat("next_obs"),
            Columns.TERMINATEDS: flat("terminateds"),
            "weights": torch.ones(tasks * rows, device=self._device),
            "n_step": torch.ones(tasks * rows, device=self._device),
            PEARL_Z: z.repeat_interleave(rows, dim=0),
            PEARL_KL: kl,
        }

    def update_pearl(self, steps: list[dict[str, np.ndarray]]) -> dict:
        """One gradient step per entry of `steps` (see `pearl_batch`); returns
        the learner's reduced metrics."""
        module_id = DEFAULT_MODULE_ID
        module = self._module[module_id]
        config = self.config.get_config_for_module(module_id)
        for arrays in steps:
            batch = self.pearl_batch(arrays)
            fwd_out = module.forward_train(batch)
            loss = self.compute_loss_for_module(
                module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
            )
            gradients = self.compute_gradients({module_id: loss})
            self.apply_gradients(self.postprocess_gradients(gradients))
            for main_net, target_net in module.get_target_network_pairs():
                update_target_network(
                    main_net=main_net, target_net=target_net, tau=config.tau
                )
        self._weights_seq_no += 1
        return self.metrics.reduce()

    def runner_state(self) -> dict:
        """The policy and encoder as an env-runner state (RLlib's `rl_module`
        and `weights_seq_no` keys, for `EnvRunner.set_state`)."""
        return {
            COMPONENT_RL_MODULE: {
                DEFAULT_MODULE_ID: self._module[DEFAULT_MODULE_ID].get_state(
                    inference_only=True
                )
            },
            WEIGHTS_SEQ_NO: self._weights_seq_no,
        }

    # RLlib's SAC learner state holds the optimizers' moments but not log-alpha
    # itself; PEARL's carries it.
    @override(SACTorchLearner)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[LOG_ALPHA_STATE] = {
            mid: float(value.detach().cpu()[0])
            for mid, value in self.curr_log_alpha.items()
        }
        return state

    @override(SACTorchLearner)
    def set_state(self, state) -> None:
        super().set_state(state)
        with torch.no_grad():
            for mid, value in state.get(LOG_ALPHA_STATE, {}).items():
                self.curr_log_alpha[mid].fill_(value)
