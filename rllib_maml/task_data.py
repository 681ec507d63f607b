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

    With `advantage_baseline="value_function"` the connector (PPO's: one
    bootstrap timestep per episode, then RLlib's GAE with the module's value
    function) gives advantages and value targets. With "linear" the value
    function is not used: each task's columns come straight from its episodes
    and the advantages from GAE with a linear baseline fitted to them
    (`rllib_maml.linear_baseline`; `gamma`, `lambda_` are the GAE settings), on
    the same rows the connector would build (one bootstrap row per episode),
    without the connector's per-timestep bookkeeping and value forward pass.
    Advantages are then standardized per task (as in the MAML/ProMP
    references), not over the whole meta-batch.
    """
    if advantage_baseline == "linear":
        device = next(rl_module[DEFAULT_MODULE_ID].parameters()).device
        return {
            task: _linear_baseline_task_data(
                episodes, gamma=gamma, lambda_=lambda_, device=device
            )
            for task, episodes in sorted(episodes_by_task.items())
        }
    task_ids = sorted(episodes_by_task)
    episodes = [ep for t in task_ids for ep in episodes_by_task[t]]
    # Count before the connector appends one artificial timestep per episode.
    rows_per_task = [sum(len(ep) for ep in episodes_by_task[t]) for t in task_ids]
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
    return {
        task: _standardized({key: splits[key][i] for key in COLUMNS})
        for i, task in enumerate(task_ids)
    }


def _standardized(data: TaskData) -> TaskData:
    """Advantages standardized over the task's rows; an all-ones mask added."""
    adv = data[F.ADVANTAGES]
    std = adv.std(unbiased=False).clamp_min(1e-4)
    data[F.ADVANTAGES] = (adv - adv.mean()) / std
    data[F.MASK] = torch.ones_like(adv)
    return data


def _linear_baseline_task_data(
    episodes: list, *, gamma: float, lambda_: float, device
) -> TaskData:
    """One task's columns and linear-baseline advantages, from its episodes.

    The baseline's rows are those of RLlib's `AddOneTsToEpisodesAndTruncate`:
    each episode's T real rows (loss mask on) and one bootstrap row with its
    final observation and reward 0; the episode's terminated/truncated flag on
    its last real row.
    """
    obs, actions, logp, inputs = [], [], [], []
    rows = {key: [] for key in ("obs", "t", "rewards", "term", "trunc", "mask")}
    for ep in episodes:
        T, observations = len(ep), np.asarray(ep.get_observations())
        obs.append(observations[:-1])
        actions.append(np.asarray(ep.get_actions()))
        logp.append(np.asarray(ep.get_extra_model_outputs(Columns.ACTION_LOGP)))
        inputs.append(
            np.asarray(ep.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS))
        )
        last = np.zeros(T + 1, dtype=np.float32)
        last[T - 1] = 1.0
        rows["obs"].append(observations)
        rows["t"].append(ep.t_started + np.arange(T + 1))
        rows["rewards"].append(np.append(np.asarray(ep.get_rewards()), 0.0))
        rows["term"].append(last * float(ep.is_terminated))
        rows["trunc"].append(last * float(ep.is_truncated))
        rows["mask"].append(np.arange(T + 1) < T)
    row = {key: np.concatenate(value) for key, value in rows.items()}
    advantages, baseline = linear_baseline_gae(
        obs=row["obs"],
        timesteps=row["t"],
        rewards=row["rewards"].astype(np.float32),
        terminateds=row["term"],
        truncateds=row["trunc"],
        loss_mask=row["mask"],
        gamma=gamma,
        lambda_=lambda_,
    )

    def tensor(arrays, dtype=None):
        return torch.as_tensor(np.concatenate(arrays), dtype=dtype, device=device)

    return _standardized(
        {
            F.OBS: tensor(obs, torch.float32),
            F.ACTIONS: tensor(actions),
            F.BEHAVIOR_LOGP: tensor(logp, torch.float32),
            F.BEHAVIOR_INPUTS: tensor(inputs, torch.float32),
            F.ADVANTAGES: torch.as_tensor(advantages, device=device),
            VALUE_TARGETS: torch.as_tensor(advantages + baseline, device=device),
        }
    )
