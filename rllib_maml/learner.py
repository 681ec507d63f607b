"""The MAML meta learner (torch): inner adaptation and the ProMP meta-update.

The algorithm drives one iteration in `K + 1` calls:

- `add_adaptation_data(step=k, episodes_by_task)` for k = 0..K turns the
  episodes sampled at adaptation step k into per-task tensors (advantages from
  RLlib's GAE connector) and, for k < K, takes one inner step per task and
  returns the adapted weights the env runners sample step k + 1 with.
- `meta_update(timesteps)` replays the inner steps differentiably from the
  meta-parameters and optimizes the ProMP objective through the Learner's own
  `compute_gradients` -> `postprocess_gradients` (grad_clip) ->
  `apply_gradients` -> `after_gradient_based_update` (lr schedule) path.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from ray.rllib.connectors.learner import (
    AddOneTsToEpisodesAndTruncate,
    GeneralAdvantageEstimation,
)
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, ValueFunctionAPI
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import ALL_MODULES

from rllib_maml import functional as F
from rllib_maml.maml import (
    LEARNER_RESULTS_INNER_KL_COEFF_KEY,
    LEARNER_RESULTS_INNER_KL_KEY,
    LEARNER_RESULTS_INNER_LOSS_KEY,
    LEARNER_RESULTS_META_LOSS_KEY,
    LEARNER_RESULTS_NUM_TASKS_KEY,
    LEARNER_RESULTS_POLICY_LOSS_KEY,
    LEARNER_RESULTS_VF_LOSS_KEY,
    MAMLConfig,
)

logger = logging.getLogger(__name__)

# Learner state key under which the inner-KL coefficients are checkpointed.
INNER_KL_COEFFS_STATE_KEY = "maml_inner_kl_coeffs"

# Columns of a per-task batch.
TASK_BATCH_COLUMNS = (
    Columns.OBS,
    Columns.ACTIONS,
    Columns.ACTION_LOGP,
    Columns.ACTION_DIST_INPUTS,
    Postprocessing.ADVANTAGES,
    Postprocessing.VALUE_TARGETS,
)

TaskBatch = dict[str, torch.Tensor]


class MAMLTorchLearner(TorchLearner):
    """Torch learner for MAML (second- or first-order, ProMP meta-objective)."""

    @override(TorchLearner)
    def build(self) -> None:
        super().build()
        # Same learner pipeline as PPO: one artificial timestep per episode for
        # the bootstrap value, then RLlib's GAE (advantages, value targets).
        if (
            self._learner_connector is not None
            and self.config.add_default_connectors_to_learner_pipeline
        ):
            self._learner_connector.prepend(AddOneTsToEpisodesAndTruncate())
            self._learner_connector.append(
                GeneralAdvantageEstimation(
                    gamma=self.config.gamma, lambda_=self.config.lambda_
                )
            )
        module = self._maml_module()
        non_inference = (
            module.get_non_inference_attributes()
            if isinstance(module, InferenceOnlyAPI)
            else []
        )
        # The inner loop adapts the policy only; the value function is a
        # (meta-learned) baseline.
        self.policy_param_names = [
            name
            for name, _ in module.named_parameters()
            if not any(
                name == attr or name.startswith(attr + ".") for attr in non_inference
            )
        ]
        self.inner_kl_coeffs = [
            float(self.config.kl_coeff)
        ] * self.config.inner_adaptation_steps
        self._reset_iteration_data()

    @classmethod
    @override(TorchLearner)
    def rl_module_required_apis(cls) -> list[type]:
        return [ValueFunctionAPI]

    def _maml_module(self):
        return self.module[DEFAULT_MODULE_ID].unwrapped()

    def _reset_iteration_data(self) -> None:
        # steps[k][task_index] -> TaskBatch sampled at adaptation step k.
        self._steps: list[dict[int, TaskBatch]] = []
        # task_index -> detached adapted policy params (after the latest step).
        self._adapted: dict[int, F.Params] = {}

    # ------------------------------------------------------------------ data
    def _episodes_to_task_batches(
        self, episodes_by_task: dict[int, list]
    ) -> dict[int, TaskBatch]:
        """Runs the learner connector once over all tasks' episodes, then splits.

        Advantages are standardized per task (as in the MAML/ProMP references),
        not over the whole meta-batch.
        """
        task_ids = sorted(episodes_by_task)
        episodes = [ep for t in task_ids for ep in episodes_by_task[t]]
        # Count before the connector appends one artificial timestep per episode.
        rows_per_task = [sum(len(ep) for ep in episodes_by_task[t]) for t in task_ids]
        batch = self._learner_connector(
            rl_module=self.module,
            batch={},
            episodes=episodes,
            shared_data={},
            metrics=self.metrics,
        )[DEFAULT_MODULE_ID]
        mask = batch[Columns.LOSS_MASK].bool()
        columns = {c: batch[c][mask] for c in TASK_BATCH_COLUMNS}
        if columns[Columns.OBS].shape[0] != sum(rows_per_task):
            raise RuntimeError(
                "Learner connector output has "
                f"{columns[Columns.OBS].shape[0]} rows for {sum(rows_per_task)} "
                "sampled timesteps; MAML needs one row per timestep."
            )
        splits = {c: torch.split(v, rows_per_task) for c, v in columns.items()}
        task_batches = {}
        for i, task in enumerate(task_ids):
            tb = {c: splits[c][i] for c in TASK_BATCH_COLUMNS}
            adv = tb[Postprocessing.ADVANTAGES]
            tb[Postprocessing.ADVANTAGES] = (adv - adv.mean()) / adv.std(
                unbiased=False
            ).clamp_min(1e-4)
            task_batches[task] = tb
        return task_batches

    # ---------------------------------------------------------- policy math
    def _action_dist_and_logp(self, params: F.Params, batch: TaskBatch):
        module = self._maml_module()
        out = torch.func.functional_call(
            module, params, ({Columns.OBS: batch[Columns.OBS]},)
        )
        dist = module.get_train_action_dist_cls().from_logits(
            out[Columns.ACTION_DIST_INPUTS]
        )
        return dist, dist.logp(batch[Columns.ACTIONS])

    def _behavior_dist(self, batch: TaskBatch):
        return (
            self._maml_module()
            .get_exploration_action_dist_cls()
            .from_logits(batch[Columns.ACTION_DIST_INPUTS])
        )

    def inner_loss(self, logp: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        """The inner policy-gradient loss (`inner_loss` setting) of one task."""
        advantages = batch[Postprocessing.ADVANTAGES]
        if self.config.inner_loss == "vpg":
            return F.vpg_loss(logp, advantages)
        return F.lvc_loss(logp, batch[Columns.ACTION_LOGP], advantages)

    def meta_policy_params(self) -> F.Params:
        """The meta-parameters the inner loop adapts (the policy's), by name."""
        params = dict(self._maml_module().named_parameters())
        return {n: params[n] for n in self.policy_param_names}

    def inference_weights(self, params: F.Params | None = None) -> dict:
        """An inference-only module state, with `params` swapped in if given."""
        state = self._maml_module().get_state(inference_only=True)
        for name, value in (params or {}).items():
            state[name] = value.detach().cpu().numpy()
        return state

    # ------------------------------------------------------------ the calls
    def add_adaptation_data(
        self, *, step: int, episodes_by_task: dict[int, list]
    ) -> dict[int, dict]:
        """Stores step-`step` data; for step < K adapts each task once more.

        Returns:
            task_index -> inference-only weights to sample step `step + 1` with
            (empty after the last adaptation step).
        """
        if step == 0:
            self._reset_iteration_data()
        if step != len(self._steps):
            raise RuntimeError(
                f"Adaptation data for step {step} arrived, expected step "
                f"{len(self._steps)}."
            )
        task_batches = self._episodes_to_task_batches(episodes_by_task)
        self._steps.append(task_batches)
        if step >= self.config.inner_adaptation_steps:
            return {}

        weights, inner_losses = {}, []
        theta = self.meta_policy_params()
        for task, batch in task_batches.items():
            start = self._adapted.get(task, theta)
            params = {n: p.detach().requires_grad_(True) for n, p in start.items()}
            _, logp = self._action_dist_and_logp(params, batch)
            loss = self.inner_loss(logp, batch)
            adapted = F.inner_step(params, loss, self.config.inner_lr, first_order=True)
            self._adapted[task] = {n: p.detach() for n, p in adapted.items()}
            weights[task] = self.inference_weights(self._adapted[task])
            inner_losses.append(loss.item())
        self.metrics.log_value(
            (DEFAULT_MODULE_ID, f"{LEARNER_RESULTS_INNER_LOSS_KEY}_{step}"),
            float(np.mean(inner_losses)),
            window=1,
        )
        return weights

    @override(TorchLearner)
    def compute_loss_for_module(
        self,
        *,
        module_id: str,
        config: MAMLConfig,
        batch: list[dict[int, TaskBatch]],
        fwd_out: Any = None,
    ) -> torch.Tensor:
        """The ProMP meta-objective (Rothfuss et al. 2019, Eq. 10) plus value loss.

        `batch[k][task]` holds the data sampled at adaptation step k. For each
        task the K inner steps are replayed from the current meta-parameters
        (differentiably unless `meta_gradient="first_order"`); the clipped
        surrogate is taken on the step-K (post-adaptation) data, and each inner
        step k adds `inner_kl_coeffs[k] * KL(pi_behavior_k || pi_k)` on step-k data.
        """
        K = config.inner_adaptation_steps
        first_order = config.meta_gradient == "first_order"
        task_ids = sorted(batch[0])
        theta = self.meta_policy_params()
        surrogate_losses, inner_kls = [], [[] for _ in range(K)]
        for task in task_ids:
            params = theta
            for k in range(K):
                step_batch = batch[k][task]
                dist, logp = self._action_dist_and_logp(params, step_batch)
                inner_kls[k].append(self._behavior_dist(step_batch).kl(dist).mean())
                params = F.inner_step(
                    params,
                    self.inner_loss(logp, step_batch),
                    config.inner_lr,
                    first_order=first_order,
                )
            post = batch[K][task]
            _, logp = self._action_dist_and_logp(params, post)
            surrogate_losses.append(
                F.ppo_clip_loss(
                    logp,
                    post[Columns.ACTION_LOGP],
                    post[Postprocessing.ADVANTAGES],
                    config.clip_param,
                )
            )
        policy_loss = torch.stack(surrogate_losses).mean()
        kls = [torch.stack(step_kls).mean() for step_kls in inner_kls]
        kl_penalty = sum(c * kl for c, kl in zip(self.inner_kl_coeffs, kls))

        # Value function: regression to the GAE value targets of all steps.
        module = self._maml_module()
        obs = torch.cat([tb[Columns.OBS] for step in batch for tb in step.values()])
        targets = torch.cat(
            [tb[Postprocessing.VALUE_TARGETS] for step in batch for tb in step.values()]
        )
        vf_loss = torch.mean((module.compute_values({Columns.OBS: obs}) - targets) ** 2)

        total = policy_loss + kl_penalty + config.vf_loss_coeff * vf_loss
        self._last_inner_kls = [kl.item() for kl in kls]
        self.metrics.log_dict(
            {
                LEARNER_RESULTS_META_LOSS_KEY: total.item(),
                LEARNER_RESULTS_POLICY_LOSS_KEY: policy_loss.item(),
                LEARNER_RESULTS_VF_LOSS_KEY: vf_loss.item(),
                LEARNER_RESULTS_NUM_TASKS_KEY: len(task_ids),
            },
            key=module_id,
            window=1,
        )
        return total

    @override(TorchLearner)
    def compute_gradients(self, loss_per_module, **kwargs):
        grads = super().compute_gradients(loss_per_module, **kwargs)
        # Parameters outside the loss (none in the default module) get no step.
        return {pid: g for pid, g in grads.items() if g is not None}

    def meta_update(self, *, timesteps: dict[str, Any]) -> dict:
        """`maml_optimizer_steps` optimizer steps on this iteration's data.

        Then adapts each inner step's KL coefficient to `kl_target` and returns
        the reduced learner metrics.
        """
        K = self.config.inner_adaptation_steps
        if len(self._steps) != K + 1:
            raise RuntimeError(
                f"meta_update needs data for {K + 1} adaptation steps, got "
                f"{len(self._steps)}."
            )
        self.before_gradient_based_update(timesteps=timesteps)
        self._weights_seq_no += 1
        for _ in range(self.config.maml_optimizer_steps):
            loss = self.compute_loss_for_module(
                module_id=DEFAULT_MODULE_ID,
                config=self.config,
                batch=self._steps,
            )
            gradients = self.compute_gradients({DEFAULT_MODULE_ID: loss})
            gradients = self.postprocess_gradients(gradients)
            self.apply_gradients(gradients)

        for k, kl in enumerate(self._last_inner_kls):
            self.inner_kl_coeffs[k] = F.update_kl_coeff(
                self.inner_kl_coeffs[k], kl, self.config.kl_target
            )
            self.metrics.log_dict(
                {
                    f"{LEARNER_RESULTS_INNER_KL_KEY}_{k}": kl,
                    f"{LEARNER_RESULTS_INNER_KL_COEFF_KEY}_{k}": self.inner_kl_coeffs[
                        k
                    ],
                },
                key=DEFAULT_MODULE_ID,
                window=1,
            )
        num_steps = sum(
            tb[Columns.OBS].shape[0] for step in self._steps for tb in step.values()
        )
        self.metrics.log_value(
            (ALL_MODULES, "num_env_steps_trained_lifetime"),
            num_steps,
            reduce="lifetime_sum",
        )
        self.metrics.log_value(
            (DEFAULT_MODULE_ID, self.TOTAL_LOSS_KEY), loss.item(), window=1
        )
        self.after_gradient_based_update(timesteps=timesteps)
        self._reset_iteration_data()
        return self.metrics.reduce()

    # ---------------------------------------------------------- checkpoints
    @override(TorchLearner)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[INNER_KL_COEFFS_STATE_KEY] = list(self.inner_kl_coeffs)
        return state

    @override(TorchLearner)
    def set_state(self, state) -> None:
        super().set_state(state)
        if INNER_KL_COEFFS_STATE_KEY in state:
            coeffs = [float(c) for c in state[INNER_KL_COEFFS_STATE_KEY]]
            if len(coeffs) != self.config.inner_adaptation_steps:
                raise ValueError(
                    f"Checkpoint has {len(coeffs)} inner-KL coefficients but "
                    f"`inner_adaptation_steps` is {self.config.inner_adaptation_steps}."
                    " Restore with the `inner_adaptation_steps` it was trained with."
                )
            self.inner_kl_coeffs = coeffs
