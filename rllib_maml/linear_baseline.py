"""A per-task linear feature baseline for the advantages (Duan et al. 2016).

A task's goal is often not in the observation (Navigation2D's goal, the
cheetah's direction), so a value function shared by all tasks cannot predict a
task's returns. The MAML and ProMP references therefore fit, for every task and
every adaptation step, a ridge regression from features of (observation, time)
to that batch's Monte-Carlo returns and use it as the baseline of the
advantages (rllab's `LinearFeatureBaseline`, used by pytorch-maml-rl).

Here it plugs into RLlib's GAE: the fitted baseline takes the place of the
value function's predictions in `compute_value_targets`, on the learner
connector's batch (one artificial bootstrap timestep per episode).
"""

from __future__ import annotations

import numpy as np
from ray.rllib.utils.postprocessing.value_predictions import compute_value_targets

# rllab's LinearFeatureBaseline: time features are t / 100, ridge starts at 1e-5
# and grows 10x while the solution is not finite.
TIME_SCALE = 100.0
REG_COEFF = 1e-5
REG_TRIES = 5


def linear_features(obs: np.ndarray, timesteps: np.ndarray) -> np.ndarray:
    """[obs, obs**2, t, t**2, t**3, 1] with t = timestep / 100 (rllab)."""
    obs = np.clip(obs.reshape(len(obs), -1).astype(np.float64), -10.0, 10.0)
    t = (timesteps.astype(np.float64) / TIME_SCALE)[:, None]
    return np.concatenate([obs, obs**2, t, t**2, t**3, np.ones_like(t)], axis=1)


def fit_linear_baseline(features: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """Ridge-regression coefficients of `returns` on `features`."""
    gram = features.T @ features
    rhs = features.T @ returns
    reg = REG_COEFF
    for _ in range(REG_TRIES):
        try:
            coeffs = np.linalg.solve(gram + reg * np.eye(len(gram)), rhs)
        except np.linalg.LinAlgError:
            coeffs = None
        if coeffs is not None and np.all(np.isfinite(coeffs)):
            return coeffs
        reg *= 10.0
    return np.zeros(features.shape[1])


def linear_baseline_gae(
    *,
    obs: np.ndarray,
    timesteps: np.ndarray,
    rewards: np.ndarray,
    terminateds: np.ndarray,
    truncateds: np.ndarray,
    loss_mask: np.ndarray,
    gamma: float,
    lambda_: float,
) -> tuple[np.ndarray, np.ndarray]:
    """GAE advantages of one task's rows with a fitted linear baseline.

    The arrays are the learner connector's rows of one task's episodes, each
    episode followed by its artificial bootstrap row (`loss_mask` False there).
    The baseline is fitted to the discounted returns of the real rows (no
    bootstrap), then used as the value of every row, bootstrap rows included.

    Returns:
        (advantages, baseline values), both over the real rows only.
    """
    flags = dict(terminateds=terminateds, truncateds=truncateds, gamma=gamma)
    returns = compute_value_targets(
        values=np.zeros(len(rewards), np.float32), rewards=rewards, lambda_=1.0, **flags
    )
    features = linear_features(obs, timesteps)
    coeffs = fit_linear_baseline(features[loss_mask], returns[loss_mask])
    baseline = (features @ coeffs).astype(np.float32)
    targets = compute_value_targets(
        values=baseline, rewards=rewards, lambda_=lambda_, **flags
    )
    return (targets - baseline)[loss_mask], baseline[loss_mask]
