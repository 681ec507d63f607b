"""The MAML meta learner (torch): inner adaptation and the meta-update.

The algorithm drives one iteration in `K + 2` calls:

- `adapt(step=k, episodes_by_task)` for k = 0..K turns the episodes sampled at
  adaptation step k into per-task tensors (advantages from RLlib's GAE learner
  connector, or the linear baseline), stores them in `iteration_data` and, for
  k < K, takes one inner step per task; it returns the adapted policy
  parameters the env runners sample step k + 1 with. `adapt(...,
  evaluation=True)` does the same for held-out tasks into `evaluation_data`,
  which no meta-update reads.
- `meta_update(timesteps)`: ProMP's (`_promp_update`) or TRPO's
  (`_trpo_update`) update of the meta-parameters on `iteration_data`, through
  the Learner's own `compute_gradients` -> `postprocess_gradients`
  (grad_clip) -> `apply_gradients` -> `after_gradient_based_update` (lr
  schedule) path.

Every inner step, at sampling time, in the meta-objective's replay and in
evaluation, is `functional.adapt_on_steps`.

With `num_learners = N > 1` each learner holds a share of the meta-batch's
tasks (the driver's `maml.task_shares`, through `adapt_share`), adapts them,
and computes its share of the objective's sums over tasks and timesteps,
divided by the whole meta-batch's counts (`total_meta_batch`). `all_reduce`
sums over RLlib's torch process group: the gradients (`compute_gradients`,
before grad_clip and the optimizer), TRPO's gradient, Fisher-vector products
and line-search values (`trpo.TRPOProblem.all_reduce`), the inner KLs the
coefficients adapt on, and the logged losses. Every learner then takes the same
step as one learner would on all the data. RLlib's DDP wrapper cannot do that
sum here: it reduces only in a backward pass after its own forward, and this
loss calls the network through `torch.func` with swapped-in parameters.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any

import numpy as np
import ray
import torch
from ray.rllib.connectors.learner import (
    AddOneTsToEpisodesAndTruncate,
    GeneralAdvantageEstimation,
)
from ray.rllib.core import COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import ALL_MODULES, WEIGHTS_SEQ_NO

from rllib_maml import allocator, compat, trpo
from rllib_maml import functional as F
from rllib_maml.config import MAMLConfig
from rllib_maml.maml import (
    LEARNER_RESULTS_INNER_KL_COEFF_KEY,
    LEARNER_RESULTS_INNER_KL_KEY,
    LEARNER_RESULTS_INNER_LOSS_KEY,
    LEARNER_RESULTS_META_LOSS_KEY,
    LEARNER_RESULTS_NUM_TASKS_KEY,
    LEARNER_RESULTS_POLICY_LOSS_KEY,
    LEARNER_RESULTS_VF_LOSS_KEY,
)
from rllib_maml.policy import FunctionalPolicy
from rllib_maml.task_data import VALUE_TARGETS, TaskData, episodes_to_task_data

logger = logging.getLogger(__name__)

# Learner state key under which the inner-KL coefficients are checkpointed.
INNER_KL_COEFFS_STATE_KEY = "maml_inner_kl_coeffs"

NumpyParams = dict[str, np.ndarray]


@dataclasses.dataclass
class AdaptationData:
    """One run of the inner loop over a meta-batch of tasks.

    Attributes:
        steps: `steps[k][task_index]`: the task's data sampled at adaptation
            step k.
        adapted: task index -> its policy params after the latest inner step
            (detached; absent before the first step: the meta-parameters).
    """

    steps: list[dict[int, TaskData]] = dataclasses.field(default_factory=list)
    adapted: dict[int, F.Params] = dataclasses.field(default_factory=dict)

    @property
    def task_indices(self) -> list[int]:
        return sorted(self.steps[0]) if self.steps else []


@dataclasses.dataclass(frozen=True)
class MetaBatch:
    """One iteration's data as the meta-objective reads it, padded once.

    Attributes:
        steps: `steps[k][task_index]`, as in `AdaptationData`.
        task_ids: the task indices, sorted (the order of the padded rows).
        padded: `padded[k][key]`: step k's data of every task stacked into
            [tasks, max length, ...], zero (and zero in `mask`) past a task's
            length (`functional.pad_tasks`).
        num_tasks: the meta-batch's tasks on all learners (the objective's
            means over tasks divide by it); default `len(task_ids)`.
        num_rows: the meta-batch's timesteps on all learners, all steps (the
            value loss's mean divides by it); default this batch's.
    """

    steps: list[dict[int, TaskData]]
    task_ids: list[int]
    padded: list[dict[str, torch.Tensor]]
    num_tasks: int
    num_rows: int

    @classmethod
    def of(
        cls,
        steps: list[dict[int, TaskData]] | MetaBatch,
        totals: tuple[int, int] | None = None,
    ) -> MetaBatch:
        """`steps` padded; `totals`: `(num_tasks, num_rows)` over all learners
        (default: these steps' own)."""
        if isinstance(steps, MetaBatch):
            return steps
        task_ids = sorted(steps[0])
        padded = [F.pad_tasks([step[t] for t in task_ids]) for step in steps]
        num_tasks, num_rows = totals or (len(task_ids), count_rows(steps))
        return cls(list(steps), task_ids, padded, num_tasks, num_rows)


def count_rows(steps: list[dict[int, TaskData]]) -> int:
    """Timesteps in `steps`, all adaptation steps and tasks."""
    return sum(d[F.OBS].shape[0] for step in steps for d in step.values())


class MAMLTorchLearner(TorchLearner):
    """Torch learner for MAML: inner steps, ProMP or TRPO meta-update."""

    @override(TorchLearner)
    def build(self) -> None:
        super().build()
        if self.config.keep_freed_memory:
            allocator.keep_freed_memory()
        # Same learner pipeline as PPO: one artificial timestep per episode for
        # the bootstrap value, then RLlib's GAE (advantages, value targets).
        connector = compat.learner_connector(self)
        if (
            connector is not None
            and self.config.add_default_connectors_to_learner_pipeline
        ):
            connector.prepend(AddOneTsToEpisodesAndTruncate())
            connector.append(
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
        # This iteration's data (read by `meta_update`) and the latest
        # evaluation's (read by nothing else).
        self.iteration_data = AdaptationData()
        self.evaluation_data = AdaptationData()

    @classmethod
    @override(TorchLearner)
    def rl_module_required_apis(cls) -> list[type]:
        return [ValueFunctionAPI]

    def _maml_module(self):
        return self.module[DEFAULT_MODULE_ID].unwrapped()

    # ------------------------------------------------- several learners
    @property
    def world_size(self) -> int:
        """How many learners share the meta-batch (RLlib's process group)."""
        if not self.distributed:
            return 1
        if not torch.distributed.is_initialized():
            raise RuntimeError(
                f"`num_learners` is {self.config.num_learners} but this learner has "
                "no torch process group: build several learners through RLlib's "
                "LearnerGroup (`config.build_algo()`), not `config.build_learner()`."
            )
        return torch.distributed.get_world_size()

    @property
    def rank(self) -> int:
        """This learner's index among them (0 with one learner)."""
        return torch.distributed.get_rank() if self.world_size > 1 else 0

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` summed over the learners (itself with one learner).

        The learners hold different tasks of one meta-batch, and each computes
        its share of the objective's sums; the sum over RLlib's torch process
        group (gloo, or NCCL with GPUs) makes every learner see the totals of
        the whole meta-batch.
        """
        if self.world_size == 1:
            return tensor
        total = tensor.detach().to(self._device).clone()
        torch.distributed.all_reduce(total)
        return total.to(tensor.device)

    def total_meta_batch(
        self, steps: list[dict[int, TaskData]] | MetaBatch
    ) -> MetaBatch:
        """`steps` (this learner's tasks) padded, with the task and timestep
        counts of the whole meta-batch on all learners (a `MetaBatch` as it
        is)."""
        if isinstance(steps, MetaBatch):
            return steps
        counts = torch.tensor([len(steps[0]), count_rows(steps)], dtype=torch.float64)
        num_tasks, num_rows = (int(c) for c in self.all_reduce(counts).tolist())
        return MetaBatch.of(steps, totals=(num_tasks, num_rows))

    # ---------------------------------------------------------- policy math
    def policy_inputs(self, params: F.Params, obs: torch.Tensor) -> torch.Tensor:
        """Action-distribution inputs of the policy with `params` swapped in."""
        return self.policy(params, obs)

    def meta_policy_params(self) -> F.Params:
        """The meta-parameters the inner loop adapts (the policy's), by name."""
        return self.policy.params()

    def policy_params_numpy(self, params: F.Params | None = None) -> NumpyParams:
        """`params` (default: the meta-parameters) as numpy arrays, the form
        env runners sample with (`rllib_maml.env_runner.TaskJob.params`)."""
        params = params if params is not None else self.meta_policy_params()
        return {name: p.detach().cpu().numpy() for name, p in params.items()}

    def meta_policy_state(self) -> dict:
        """The meta-policy as an env-runner state (RLlib's `rl_module` and
        `weights_seq_no` keys, for `EnvRunner.set_state`)."""
        return {
            COMPONENT_RL_MODULE: self._maml_module().get_state(inference_only=True),
            WEIGHTS_SEQ_NO: compat.weights_seq_no(self),
        }

    def _adapt_kwargs(self, config: MAMLConfig, first_order: bool) -> dict:
        return dict(
            policy=self.policy_inputs,
            logp=self._logp,
            kl=self._kl,
            inner_lr=config.inner_lr,
            inner_loss=config.inner_loss,
            first_order=first_order,
        )

    def _task_terms_fn(self, config: MAMLConfig):
        return functools.partial(
            F.task_meta_terms,
            **self._adapt_kwargs(config, config.meta_gradient == "first_order"),
            clip_param=config.clip_param,
        )

    def meta_terms(
        self,
        theta: F.Params,
        steps: list[dict[int, TaskData]] | MetaBatch,
        config: MAMLConfig,
    ) -> dict[str, Any]:
        """`task_meta_terms` for every task: one vmap call, or a loop.

        `steps` may come as a `MetaBatch` (padded once for several calls).
        Returns the per-task terms stacked over tasks; `post_inputs` is a
        tensor [tasks, max length, ...], zero past each task's length.
        """
        batch = MetaBatch.of(steps)
        fn = self._task_terms_fn(config)
        if config.batched_meta_loss:
            return torch.func.vmap(fn, in_dims=(None, 0))(theta, batch.padded)
        per_task = [
            fn(theta, [step[t] for step in batch.steps]) for t in batch.task_ids
        ]
        terms = {
            key: torch.stack([terms[key] for terms in per_task])
            for key in per_task[0]
            if key != "post_inputs"
        }
        terms["post_inputs"] = torch.nn.utils.rnn.pad_sequence(
            [t["post_inputs"] for t in per_task], batch_first=True
        )
        return terms

    def value_loss(
        self, steps: list[dict[int, TaskData]], num_rows: int | None = None
    ) -> torch.Tensor:
        """Regression of the value function to the GAE targets of all steps:
        the squared errors' sum over `steps` divided by `num_rows` (default:
        their count, the mean; with several learners, all learners' count)."""
        data = [d for step in steps for d in step.values()]
        obs = torch.cat([d[F.OBS] for d in data])
        targets = torch.cat([d[VALUE_TARGETS] for d in data])
        values = self._maml_module().compute_values({Columns.OBS: obs})
        num_rows = num_rows if num_rows is not None else obs.shape[0]
        return torch.sum((values - targets) ** 2) / num_rows

    # --------------------------------------------------------- inner loop
    def task_batches(self, episodes_by_task: dict[int, list]) -> dict[int, TaskData]:
        """Episodes -> per-task tensors (`rllib_maml.task_data`)."""
        return episodes_to_task_data(
            compat.learner_connector(self),
            self.module,
            self.metrics,
            episodes_by_task,
            advantage_baseline=self.config.advantage_baseline,
            gamma=self.config.gamma,
            lambda_=self.config.lambda_,
        )

    def adapt(
        self,
        *,
        step: int,
        episodes_by_task: dict[int, list],
        evaluation: bool = False,
        num_steps: int | None = None,
    ) -> dict[int, NumpyParams]:
        """Stores adaptation step `step`'s data; unless it is the last step,
        takes one more inner step per task.

        Args:
            step: the adaptation step the episodes were sampled at (0 starts a
                new run of the inner loop).
            episodes_by_task: task index -> that step's episodes.
            evaluation: store into `evaluation_data` (held-out tasks) instead
                of `iteration_data` (the meta-update's).
            num_steps: inner steps of this run; default
                `inner_adaptation_steps`.

        Returns:
            task index -> policy params to sample step `step + 1` with (empty
            after the last step).
        """
        data = self.evaluation_data if evaluation else self.iteration_data
        if step == 0:
            data = AdaptationData()
            if evaluation:
                self.evaluation_data = data
            else:
                self.iteration_data = data
        if step != len(data.steps):
            raise RuntimeError(
                f"Adaptation data for step {step} arrived, expected step "
                f"{len(data.steps)}."
            )
        batches = self.task_batches(episodes_by_task) if episodes_by_task else {}
        data.steps.append(batches)
        last = self.config.inner_adaptation_steps if num_steps is None else num_steps
        if step >= last:
            return {}
        theta = self.meta_policy_params()
        kwargs = self._adapt_kwargs(self.config, first_order=True)
        params, inner_losses = {}, []
        for task, batch in batches.items():
            start = {n: p.detach() for n, p in data.adapted.get(task, theta).items()}
            chain, _, losses = F.adapt_on_steps(start, [batch], **kwargs)
            data.adapted[task] = {n: p.detach() for n, p in chain[-1].items()}
            params[task] = self.policy_params_numpy(data.adapted[task])
            inner_losses.append(losses[0].item())
        if not evaluation:  # the mean over all learners' tasks
            total, count = self.all_reduce(
                torch.tensor(
                    [sum(inner_losses), len(inner_losses)], dtype=torch.float64
                )
            ).tolist()
            self.metrics.log_value(
                (DEFAULT_MODULE_ID, f"{LEARNER_RESULTS_INNER_LOSS_KEY}_{step}"),
                total / count,
                window=1,
            )
        return params

    def adapt_share(self, *, shares: list, **kwargs) -> dict[int, NumpyParams]:
        """`adapt` on this learner's share of the tasks: `shares[rank]`, the
        episodes by task index (or a Ray object reference to them), the
        driver's split of the meta-batch over the learners."""
        share = shares[self.rank]
        if isinstance(share, ray.ObjectRef):
            share = ray.get(share)
        return self.adapt(episodes_by_task=share, **kwargs)

    # -------------------------------------------------------- meta-update
    def meta_loss(
        self,
        steps: list[dict[int, TaskData]] | MetaBatch,
        config: MAMLConfig | None = None,
    ) -> torch.Tensor:
        """ProMP's meta-objective (Rothfuss et al. 2019, Eq. 10) plus value loss.

        `steps[k][task]` holds the data sampled at adaptation step k. For each
        task the K inner steps are replayed from the current meta-parameters
        (differentiably unless `meta_gradient="first_order"`); the clipped
        surrogate is taken on the step-K (post-adaptation) data, and each inner
        step k adds `inner_kl_coeffs[k] * KL(pi_behavior_k || pi_k)` on step-k
        data. `config` (default: the learner's) sets the objective's settings.
        """
        config = config or self.config
        batch = self.total_meta_batch(steps)
        terms = self.meta_terms(self.meta_policy_params(), batch, config)
        # Means over the meta-batch's tasks (on all learners: this learner's
        # share of them, `compute_gradients` sums the learners' gradients).
        policy_loss = terms["ppo_surrogate"].sum() / batch.num_tasks
        kls = terms["inner_kls"].sum(0) / batch.num_tasks
        coeffs = torch.tensor(self.inner_kl_coeffs, dtype=kls.dtype, device=kls.device)
        total = policy_loss + (coeffs * kls).sum()
        vf_loss = torch.zeros_like(total)
        if self._trains_value_function():
            vf_loss = self.value_loss(batch.steps, batch.num_rows)
            total = total + config.vf_loss_coeff * vf_loss
        logged = self.all_reduce(torch.stack([total, policy_loss, vf_loss])).tolist()
        self.metrics.log_dict(
            {
                LEARNER_RESULTS_META_LOSS_KEY: logged[0],
                LEARNER_RESULTS_POLICY_LOSS_KEY: logged[1],
                LEARNER_RESULTS_NUM_TASKS_KEY: batch.num_tasks,
                **(
                    {LEARNER_RESULTS_VF_LOSS_KEY: logged[2]}
                    if self._trains_value_function()
                    else {}
                ),
            },
            key=DEFAULT_MODULE_ID,
            window=1,
        )
        return total

    def inner_kls(self, steps: list[dict[int, TaskData]] | MetaBatch) -> list[float]:
        """Mean `KL(pi_behavior_k || pi_k)` over tasks for each inner step k,
        with the inner steps replayed from the current meta-parameters."""
        batch = self.total_meta_batch(steps)
        with torch.no_grad():
            terms = self.meta_terms(self.meta_policy_params(), batch, self.config)
        return (self.all_reduce(terms["inner_kls"].sum(0)) / batch.num_tasks).tolist()

    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out=None):
        raise NotImplementedError(_NO_UPDATE_MESSAGE)

    @override(TorchLearner)
    def update(self, *args, **kwargs):
        raise NotImplementedError(_NO_UPDATE_MESSAGE)

    @override(TorchLearner)
    def compute_gradients(self, loss_per_module, **kwargs):
        grads = super().compute_gradients(loss_per_module, **kwargs)
        # Parameters outside the loss (the policy in TRPO's value step) get no step.
        grads = {pid: g for pid, g in grads.items() if g is not None}
        if self.world_size > 1 and grads:
            # Each learner's loss is its share of the meta-batch's sums: the
            # sum of the learners' gradients is the whole batch's gradient,
            # the same on every learner before grad_clip and the optimizer.
            flat = self.all_reduce(trpo.flat(grads.values()))
            grads = trpo.unflat(flat, grads)
        return grads

    def _optimizer_step(self, loss: torch.Tensor) -> None:
        """The Learner's update path: gradients, grad_clip, optimizer step."""
        gradients = self.compute_gradients({DEFAULT_MODULE_ID: loss})
        gradients = self.postprocess_gradients(gradients)
        self.apply_gradients(gradients)

    def meta_update(self, *, timesteps: dict[str, Any]) -> dict:
        """The meta-update on `iteration_data`; returns the learner metrics.

        "ppo": `_promp_update`. "trpo": `_trpo_update`, then
        `maml_optimizer_steps` optimizer steps on the value loss when the value
        function is the advantages' baseline.
        """
        steps = self.iteration_data.steps
        K = self.config.inner_adaptation_steps
        if len(steps) != K + 1:
            raise RuntimeError(
                f"meta_update needs data for {K + 1} adaptation steps, got "
                f"{len(steps)}."
            )
        self.before_gradient_based_update(timesteps=timesteps)
        compat.next_weights_seq_no(self)
        # Padded once for every pass below, with the whole meta-batch's counts.
        batch = self.total_meta_batch(steps)
        if self.config.outer_optimizer == "trpo":
            loss = self._trpo_update(batch)
            if self._trains_value_function():
                for _ in range(self.config.maml_optimizer_steps):
                    vf_loss = self.value_loss(steps, batch.num_rows)
                    self._optimizer_step(vf_loss)
                loss = self.all_reduce(vf_loss.detach()).item()
                self.metrics.log_value(
                    (DEFAULT_MODULE_ID, LEARNER_RESULTS_VF_LOSS_KEY), loss, window=1
                )
        else:
            loss = self._promp_update(batch)
        self.metrics.log_value(
            (ALL_MODULES, "num_env_steps_trained_lifetime"),
            batch.num_rows,
            reduce="lifetime_sum",
        )
        self.metrics.log_value((DEFAULT_MODULE_ID, self.TOTAL_LOSS_KEY), loss, window=1)
        self.after_gradient_based_update(timesteps=timesteps)
        self.iteration_data = AdaptationData()
        return self.metrics.reduce()

    def _promp_update(self, batch: MetaBatch) -> float:
        """ProMP: `maml_optimizer_steps` optimizer steps on `meta_loss`, then
        each inner step's KL coefficient moves towards `kl_target`.

        The coefficients adapt on the inner KLs of the *updated*
        meta-parameters (as ProMP does): before the first optimizer step the
        replayed policies equal the behaviour policies, so KLs measured inside
        the loop lag one step behind, and with one optimizer step are 0.

        Returns:
            The last optimizer step's loss (of the whole meta-batch).
        """
        for _ in range(self.config.maml_optimizer_steps):
            loss = self.meta_loss(batch)
            self._optimizer_step(loss)
        loss = self.all_reduce(loss.detach()).item()
        for k, kl in enumerate(self.inner_kls(batch)):
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
        return loss

    def _trains_value_function(self) -> bool:
        # With the linear baseline the value function is used nowhere.
        return self.config.advantage_baseline == "value_function"

    def trpo_problem(
        self, steps: list[dict[int, TaskData]] | MetaBatch | None = None
    ) -> tuple[F.Params, trpo.TRPOProblem]:
        """TRPO's problem on `steps` (default: `iteration_data`), at the current
        meta-parameters.

        Returns:
            `(theta, problem)`: the problem's outputs are the adapted policies'
            distribution inputs on the post-adaptation data [tasks, rows, ...],
            as functions of the meta-parameters through the inner steps; its
            loss the post-adaptation surrogate (mean over tasks of
            `-mean(ratio * A)`), its KL the mean over tasks of the mean KL
            between the adapted policies before and after an update.
        """
        config = self.config
        batch = self.total_meta_batch(steps or self.iteration_data.steps)
        post = batch.padded[-1]

        def outputs(params: F.Params) -> torch.Tensor:
            return self.meta_terms(params, batch, config)["post_inputs"]

        # Means over the meta-batch's tasks (this learner's share of them).
        def loss(post_inputs: torch.Tensor) -> torch.Tensor:
            logp = self._logp(post_inputs, post[F.ACTIONS])
            return (
                torch.func.vmap(F.ratio_loss)(
                    logp, post[F.BEHAVIOR_LOGP], post[F.ADVANTAGES], post[F.MASK]
                ).sum()
                / batch.num_tasks
            )

        def kl(old: torch.Tensor, post_inputs: torch.Tensor) -> torch.Tensor:
            return (
                torch.func.vmap(F.masked_mean)(
                    self._kl(old, post_inputs), post[F.MASK]
                ).sum()
                / batch.num_tasks
            )

        # d kl / d o: each row's weight in those means times the per-row KL's.
        counts = post[F.MASK].sum(-1, keepdim=True)
        weights = (post[F.MASK] / counts / batch.num_tasks)[..., None]

        def kl_hessian(old: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
            return weights * self.policy.kl_hessian_product(old, d)

        return self.meta_policy_params(), trpo.TRPOProblem(
            outputs,
            loss,
            kl,
            kl_hessian,
            all_reduce=self.all_reduce if self.world_size > 1 else None,
        )

    def _trpo_update(self, batch: MetaBatch) -> float:
        """TRPO on the post-adaptation surrogate (Finn et al. 2017, Sec. 5.3).

        The trust region is the KL between the adapted policies before and after
        the update, both functions of the meta-parameters through the inner steps.

        Returns:
            The surrogate loss after the step.
        """
        config = self.config
        theta, problem = self.trpo_problem(batch)
        new_params, info = trpo.trpo_step(
            theta,
            problem,
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
                LEARNER_RESULTS_NUM_TASKS_KEY: batch.num_tasks,
            },
            key=DEFAULT_MODULE_ID,
            window=1,
        )
        # Inner KLs of the updated meta-policy (at the old one they are 0).
        for k, kl in enumerate(self.inner_kls(batch)):
            self.metrics.log_value(
                (DEFAULT_MODULE_ID, f"{LEARNER_RESULTS_INNER_KL_KEY}_{k}"), kl, window=1
            )
        return info.loss_after

    # ----------------------------------------------------------- baselines
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
            module = compat.module_spec(self).build()[DEFAULT_MODULE_ID]
        return module.unwrapped().get_state()

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


_NO_UPDATE_MESSAGE = (
    "MAMLTorchLearner does not take `update(batch=...)` or "
    "`learner_group.update(...)`: a MAML meta-update needs every task's data at "
    "every adaptation step, which one batch does not carry. Train with "
    "`MAML.train()`, or drive the learner with `adapt(step=k, "
    "episodes_by_task=...)` for k = 0..K, then `meta_update(timesteps=...)`."
)
