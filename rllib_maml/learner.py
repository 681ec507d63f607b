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

import functools
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
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import ALL_MODULES

from rllib_maml import functional as F
from rllib_maml import trpo
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
from rllib_maml.policy import FunctionalPolicy
from rllib_maml.task_data import VALUE_TARGETS, TaskData, episodes_to_task_data

logger = logging.getLogger(__name__)

# Learner state key under which the inner-KL coefficients are checkpointed.
INNER_KL_COEFFS_STATE_KEY = "maml_inner_kl_coeffs"


class MAMLTorchLearner(TorchLearner):
    """Torch learner for MAML: inner steps, ProMP or TRPO meta-update."""

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
        self.policy = FunctionalPolicy(self._maml_module())
        self.policy_param_names = self.policy.param_names
        self._logp, self._kl = self.policy.logp, self.policy.kl
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
        # steps[k][task_index] -> TaskData sampled at adaptation step k.
        self._steps: list[dict[int, TaskData]] = []
        # task_index -> detached adapted policy params (after the latest step).
        self._adapted: dict[int, F.Params] = {}

    # ------------------------------------------------------------------ data
    def _episodes_to_task_batches(
        self, episodes_by_task: dict[int, list]
    ) -> dict[int, TaskData]:
        return episodes_to_task_data(
            self._learner_connector,
            self.module,
            self.metrics,
            episodes_by_task,
            advantage_baseline=self.config.advantage_baseline,
            gamma=self.config.gamma,
            lambda_=self.config.lambda_,
        )

    # ---------------------------------------------------------- policy math
    def policy_inputs(self, params: F.Params, obs: torch.Tensor) -> torch.Tensor:
        """Action-distribution inputs of the policy with `params` swapped in."""
        return self.policy(params, obs)

    def meta_policy_params(self) -> F.Params:
        """The meta-parameters the inner loop adapts (the policy's), by name."""
        return self.policy.params()

    def inference_weights(
        self, params: F.Params | None = None, base: dict | None = None
    ) -> dict:
        """An inference-only module state, with `params` swapped in if given.

        `base`: a state from `inference_weights()` to start from (saves
        reading the module again when building many).
        """
        state = dict(base or self._maml_module().get_state(inference_only=True))
        for name, value in (params or {}).items():
            state[name] = value.detach().cpu().numpy()
        return state

    def _task_terms_fn(self, config: MAMLConfig):
        return functools.partial(
            F.task_meta_terms,
            policy=self.policy_inputs,
            logp=self._logp,
            kl=self._kl,
            inner_lr=config.inner_lr,
            inner_loss=config.inner_loss,
            first_order=config.meta_gradient == "first_order",
            clip_param=config.clip_param,
        )

    def meta_terms(
        self, theta: F.Params, steps: list[dict[int, TaskData]], config: MAMLConfig
    ) -> dict[str, Any]:
        """`task_meta_terms` for every task: one vmap call, or a loop.

        Returns the per-task terms stacked over tasks (`post_inputs` stays a
        padded tensor when batched, a list per task otherwise).
        """
        task_ids = sorted(steps[0])
        fn = self._task_terms_fn(config)
        if config.batched_meta_loss:
            padded = [F.pad_tasks([step[t] for t in task_ids]) for step in steps]
            return torch.func.vmap(fn, in_dims=(None, 0))(theta, padded)
        per_task = [fn(theta, [step[t] for step in steps]) for t in task_ids]
        return {
            key: (
                [terms[key] for terms in per_task]
                if key == "post_inputs"
                else torch.stack([terms[key] for terms in per_task])
            )
            for key in per_task[0]
        }

    def value_loss(self, steps: list[dict[int, TaskData]]) -> torch.Tensor:
        """Regression of the value function to the GAE targets of all steps."""
        data = [d for step in steps for d in step.values()]
        obs = torch.cat([d[F.OBS] for d in data])
        targets = torch.cat([d[VALUE_TARGETS] for d in data])
        values = self._maml_module().compute_values({Columns.OBS: obs})
        return torch.mean((values - targets) ** 2)

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

        weights, inner_losses = self._adapt_tasks(task_batches, self._adapted)
        self.metrics.log_value(
            (DEFAULT_MODULE_ID, f"{LEARNER_RESULTS_INNER_LOSS_KEY}_{step}"),
            float(np.mean(inner_losses)),
            window=1,
        )
        return weights

    def _adapt_tasks(
        self, task_batches: dict[int, TaskData], adapted: dict[int, F.Params]
    ) -> tuple[dict[int, dict], list[float]]:
        """One inner step per task from `adapted[task]` (default: the
        meta-parameters); updates `adapted` in place.

        Returns:
            (task index -> inference-only weights with the adapted parameters,
            the inner losses).
        """
        weights, inner_losses = {}, []
        theta = self.meta_policy_params()
        base = self.inference_weights()
        for task, data in task_batches.items():
            start = {n: p.detach() for n, p in adapted.get(task, theta).items()}

            def loss_and_value(params, data=data):
                loss = F.inner_objective(
                    params,
                    data,
                    policy=self.policy_inputs,
                    logp=self._logp,
                    inner_loss=self.config.inner_loss,
                )
                return loss, loss.detach()

            new_params, loss = F.inner_step_with_aux(
                start, loss_and_value, self.config.inner_lr, first_order=True
            )
            adapted[task] = {n: p.detach() for n, p in new_params.items()}
            weights[task] = self.inference_weights(adapted[task], base=base)
            inner_losses.append(loss.item())
        return weights, inner_losses

    # ----------------------------------------------------------- evaluation
    def evaluation_adapt(
        self, *, first: bool, episodes_by_task: dict[int, list]
    ) -> dict[int, dict]:
        """One more inner step per task on evaluation data, as in training.

        Nothing is stored for the meta-update. `first=True` starts every task
        from the current meta-parameters.

        Returns:
            task index -> inference-only weights for the next evaluation step.
        """
        if first:
            self._evaluation_adapted: dict[int, F.Params] = {}
        task_batches = self._episodes_to_task_batches(episodes_by_task)
        return self._adapt_tasks(task_batches, self._evaluation_adapted)[0]

    def module_state(self) -> dict:
        """The full state (policy and value function) of the meta-policy."""
        return self._maml_module().get_state()

    def set_module_state(self, state: dict) -> None:
        """Loads a full module state (e.g. a baseline's) into the meta-policy.

        Raises:
            ValueError: if `state` is of another network than this learner's.
        """
        current = self.module_state()
        shape = lambda v: tuple(np.shape(v))  # noqa: E731
        mismatched = sorted(
            name
            for name in set(current) | set(state)
            if name not in current
            or name not in state
            or shape(current[name]) != shape(state[name])
        )
        if mismatched:
            raise ValueError(
                "The module state does not fit this algorithm's network "
                f"(model_config {self.config.model_config}): missing or differently "
                f"shaped {mismatched[:4]}. Train it with the same "
                "`config.rl_module(model_config=...)`."
            )
        self._maml_module().set_state(state)

    def fresh_module_state(self, seed: int) -> dict:
        """The state of a newly initialized module (the random-init baseline);
        torch's global RNG state is left as it was."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self._module_spec.build()[DEFAULT_MODULE_ID]
        return module.unwrapped().get_state()

    @override(TorchLearner)
    def compute_loss_for_module(
        self,
        *,
        module_id: str,
        config: MAMLConfig,
        batch: list[dict[int, TaskData]],
        fwd_out: Any = None,
    ) -> torch.Tensor:
        """ProMP's meta-objective (Rothfuss et al. 2019, Eq. 10) plus value loss.

        `batch[k][task]` holds the data sampled at adaptation step k. For each
        task the K inner steps are replayed from the current meta-parameters
        (differentiably unless `meta_gradient="first_order"`); the clipped
        surrogate is taken on the step-K (post-adaptation) data, and each inner
        step k adds `inner_kl_coeffs[k] * KL(pi_behavior_k || pi_k)` on step-k data.
        """
        terms = self.meta_terms(self.meta_policy_params(), batch, config)
        policy_loss = terms["ppo_surrogate"].mean()
        kls = terms["inner_kls"].mean(0)
        coeffs = torch.tensor(self.inner_kl_coeffs, dtype=kls.dtype, device=kls.device)
        total = policy_loss + (coeffs * kls).sum()
        logged = {}
        if self._trains_value_function():
            vf_loss = self.value_loss(batch)
            total = total + config.vf_loss_coeff * vf_loss
            logged[LEARNER_RESULTS_VF_LOSS_KEY] = vf_loss.item()
        self._last_inner_kls = kls.tolist()
        self.metrics.log_dict(
            {
                **logged,
                LEARNER_RESULTS_META_LOSS_KEY: total.item(),
                LEARNER_RESULTS_POLICY_LOSS_KEY: policy_loss.item(),
                LEARNER_RESULTS_NUM_TASKS_KEY: len(batch[0]),
            },
            key=module_id,
            window=1,
        )
        return total

    @override(TorchLearner)
    def compute_gradients(self, loss_per_module, **kwargs):
        grads = super().compute_gradients(loss_per_module, **kwargs)
        # Parameters outside the loss (the policy in TRPO's value step) get no step.
        return {pid: g for pid, g in grads.items() if g is not None}

    def _optimizer_step(self, loss: torch.Tensor) -> None:
        """The Learner's update path: gradients, grad_clip, optimizer step."""
        gradients = self.compute_gradients({DEFAULT_MODULE_ID: loss})
        gradients = self.postprocess_gradients(gradients)
        self.apply_gradients(gradients)

    def meta_update(self, *, timesteps: dict[str, Any]) -> dict:
        """The meta-update on this iteration's data; returns the learner metrics.

        "ppo": `maml_optimizer_steps` optimizer steps on the ProMP objective,
        then each inner step's KL coefficient moves towards `kl_target`.
        "trpo": one trust-region step of the policy, then
        `maml_optimizer_steps` optimizer steps on the value loss.
        """
        K = self.config.inner_adaptation_steps
        if len(self._steps) != K + 1:
            raise RuntimeError(
                f"meta_update needs data for {K + 1} adaptation steps, got "
                f"{len(self._steps)}."
            )
        self.before_gradient_based_update(timesteps=timesteps)
        self._weights_seq_no += 1
        if self.config.outer_optimizer == "trpo":
            loss = self._trpo_update()
            if self._trains_value_function():
                for _ in range(self.config.maml_optimizer_steps):
                    loss = self.value_loss(self._steps)
                    self._optimizer_step(loss)
                self.metrics.log_value(
                    (DEFAULT_MODULE_ID, LEARNER_RESULTS_VF_LOSS_KEY),
                    loss.item(),
                    window=1,
                )
        else:
            for _ in range(self.config.maml_optimizer_steps):
                loss = self.compute_loss_for_module(
                    module_id=DEFAULT_MODULE_ID, config=self.config, batch=self._steps
                )
                self._optimizer_step(loss)
            for k, kl in enumerate(self._last_inner_kls):
                self.inner_kl_coeffs[k] = F.update_kl_coeff(
                    self.inner_kl_coeffs[k], kl, self.config.kl_target
                )
                self.metrics.log_dict(
                    {
                        f"{LEARNER_RESULTS_INNER_KL_KEY}_{k}": kl,
                        f"{LEARNER_RESULTS_INNER_KL_COEFF_KEY}_{k}": (
                            self.inner_kl_coeffs[k]
                        ),
                    },
                    key=DEFAULT_MODULE_ID,
                    window=1,
                )
        num_steps = sum(
            d[F.OBS].shape[0] for step in self._steps for d in step.values()
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

    def _trains_value_function(self) -> bool:
        # With the linear baseline the value function is used nowhere.
        return self.config.advantage_baseline == "value_function"

    def trpo_problem(self) -> tuple[F.Params, Any]:
        """TRPO's pieces on this iteration's data, at the current meta-parameters.

        Returns:
            `(theta, loss_and_kl_fn)`: `params -> (surrogate, KL)`, the
            post-adaptation surrogate and the KL between the adapted policies
            before (now) and after an update, as functions of the
            meta-parameters through the inner steps (replayed once for both).
        """
        config = self.config
        theta = self.meta_policy_params()
        steps = [dict(step) for step in self._steps]
        with torch.no_grad():
            old = self.meta_terms(theta, steps, config)["post_inputs"]
        task_ids = sorted(steps[-1])
        for i, task in enumerate(task_ids):
            length = steps[-1][task][F.MASK].shape[0]
            steps[-1][task] = {
                **steps[-1][task],
                F.OLD_POST_INPUTS: old[i][:length].detach(),
            }

        def loss_and_kl_fn(params):
            terms = self.meta_terms(params, steps, config)
            return terms["ratio_surrogate"].mean(), terms["post_kl"].mean()

        return theta, loss_and_kl_fn

    def _trpo_update(self) -> torch.Tensor:
        """TRPO on the post-adaptation surrogate (Finn et al. 2017, Sec. 5.3).

        The trust region is the KL between the adapted policies before and after
        the update, both functions of the meta-parameters through the inner steps.

        Returns:
            The surrogate loss after the step.
        """
        config = self.config
        theta, loss_and_kl_fn = self.trpo_problem()
        new_params, info = trpo.trpo_step(
            theta,
            loss_and_kl_fn,
            max_kl=config.max_kl,
            cg_iters=config.cg_iters,
            cg_damping=config.cg_damping,
            line_search_steps=config.line_search_steps,
            backtrack_ratio=config.backtrack_ratio,
        )
        with torch.no_grad():
            for name, param in theta.items():
                param.copy_(new_params[name])
        self.metrics.log_dict(
            {
                LEARNER_RESULTS_META_LOSS_KEY: info.loss_after,
                LEARNER_RESULTS_POLICY_LOSS_KEY: info.loss_after,
                "trpo_surrogate_before": info.loss_before,
                "trpo_kl": info.kl,
                "trpo_step_accepted": float(info.accepted),
                "trpo_step_fraction": info.step_fraction,
                "trpo_line_search_steps": info.line_search_steps,
                LEARNER_RESULTS_NUM_TASKS_KEY: len(self._steps[-1]),
            },
            key=DEFAULT_MODULE_ID,
            window=1,
        )
        # Inner KLs of the updated meta-policy (at the old one they are 0).
        with torch.no_grad():
            inner_kls = self.meta_terms(theta, self._steps, config)["inner_kls"]
        for k, kl in enumerate(inner_kls.mean(0).tolist()):
            self.metrics.log_value(
                (DEFAULT_MODULE_ID, f"{LEARNER_RESULTS_INNER_KL_KEY}_{k}"), kl, window=1
            )
        return torch.tensor(info.loss_after)

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
