"""Episodes of one adaptation step -> per-task tensors via RLlib's learner connector."""

from __future__ import annotations

import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

from rllib_maml import functional as F
from rllib_maml.linear_baseline import linear_baseline_gae

VALUE_TARGETS = Postprocessing.VALUE_TARGETS
# functional.py's step-data keys -> the learner connector's columns.
COLUMNS = {
    F.OBS: Columns.OBS,
    F.ACTIONS: Columns.ACTIONS,
    F.BEHAVIOR_LOGP: Columns.ACTION_LOGP,
    F.BEHAVIOR_INPUTS: Columns.ACTION_DIST_INPUTS,
    F.ADVANTAGES: Postprocessing.ADVANTAGES,
    VALUE_TARGETS: Postprocessing.VALUE_TARGETS,
}

TaskData = dict[str, torch.Tensor]  # functional.py's step-data keys + value targets


def episodes_to_task_data(
    learner_connector,
    rl_module,
    metrics,
    episodes_by_task: dict[int, list],
    *,
    advantage_baseline: str = "linear",
    gamma: float = 0.99,
    lambda_: float = 1.0,
) -> dict[int, TaskData]:
    """Runs the learner connector once over all tasks' episodes, then splits.

    The connector (PPO's: one bootstrap timestep per episode, then GAE) gives
    advantages and value targets. With `advantage_baseline="linear"` the
    advantages are recomputed per task with a fitted linear baseline instead
    of the value function (`rllib_maml.linear_baseline`; `gamma`, `lambda_`
    are the GAE settings). Advantages are then standardized per task (as in
    the MAML/ProMP references), not over the whole meta-batch.
    """
    task_ids = sorted(episodes_by_task)
    episodes = [ep for t in task_ids for ep in episodes_by_task[t]]
    # Count before the connector appends one artificial timestep per episode.
    rows_per_task = [sum(len(ep) for ep in episodes_by_task[t]) for t in task_ids]
    if advantage_baseline == "linear":
        # Each episode's timesteps and its bootstrap row's.
        timesteps_per_task = [
            np.concatenate(
                [ep.t_started + np.arange(len(ep) + 1) for ep in episodes_by_task[t]]
            )
            for t in task_ids
        ]
    batch = learner_connector(
        rl_module=rl_module,
        batch={},
        episodes=episodes,
        shared_data={},
        metrics=metrics,
    )[DEFAULT_MODULE_ID]
    mask = batch[Columns.LOSS_MASK].bool()
    columns = {key: batch[col][mask] for key, col in COLUMNS.items()}
    if columns[F.OBS].shape[0] != sum(rows_per_task):
        raise RuntimeError(
            f"Learner connector output has {columns[F.OBS].shape[0]} rows for "
            f"{sum(rows_per_task)} sampled timesteps; MAML needs one row per timestep."
        )
    splits = {key: torch.split(v, rows_per_task) for key, v in columns.items()}
    if advantage_baseline == "linear":
        splits[F.ADVANTAGES] = _linear_baseline_advantages(
            batch, timesteps_per_task, gamma=gamma, lambda_=lambda_
        )
    task_data = {}
    for i, task in enumerate(task_ids):
        data = {key: splits[key][i] for key in COLUMNS}
        adv = data[F.ADVANTAGES]
        std = adv.std(unbiased=False).clamp_min(1e-4)
        data[F.ADVANTAGES] = (adv - adv.mean()) / std
        data[F.MASK] = torch.ones_like(adv)
        task_data[task] = data
    return task_data


def _linear_baseline_advantages(
    batch, timesteps_per_task: list[np.ndarray], *, gamma, lambda_
) -> list[torch.Tensor]:
    """Per-task advantages from a linear baseline fitted on that task's rows
    (`timesteps_per_task`: one entry per row, bootstrap rows included)."""
    rows_with_bootstrap = [len(t) for t in timesteps_per_task]
    columns = (
        Columns.OBS,
        Columns.REWARDS,
        Columns.TERMINATEDS,
        Columns.TRUNCATEDS,
        Columns.LOSS_MASK,
    )
    arrays = {c: batch[c].detach().cpu().numpy() for c in columns}
    if len(arrays[Columns.OBS]) != sum(rows_with_bootstrap):
        raise RuntimeError(
            f"Learner connector output has {len(arrays[Columns.OBS])} rows for "
            f"{sum(rows_with_bootstrap)} timesteps and bootstrap rows; "
            "`advantage_baseline='linear'` needs one row per timestep."
        )
    bounds = np.cumsum([0] + rows_with_bootstrap)
    advantages = []
    for i, timesteps in enumerate(timesteps_per_task):
        rows = slice(bounds[i], bounds[i + 1])
        adv, _ = linear_baseline_gae(
            obs=arrays[Columns.OBS][rows],
            timesteps=timesteps,
            rewards=arrays[Columns.REWARDS][rows].astype(np.float32),
            terminateds=arrays[Columns.TERMINATEDS][rows].astype(np.float32),
            truncateds=arrays[Columns.TRUNCATEDS][rows].astype(np.float32),
            loss_mask=arrays[Columns.LOSS_MASK][rows].astype(bool),
            gamma=gamma,
            lambda_=lambda_,
        )
        advantages.append(torch.as_tensor(adv, device=batch[Columns.OBS].device))
    return advantages
