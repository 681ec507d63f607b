"""The learner's inner step against an independent computation of the math.

The reference recomputes everything by hand from the sampled episodes: the
Gaussian log-likelihood, Monte-Carlo returns with the value bootstrap at
truncation (GAE with lambda = 1), per-task advantage standardization, the
policy-gradient loss, and `theta - inner_lr * grad` with plain autograd.
"""

import copy
import math

import numpy as np
import pytest
import torch
from helpers import local_config, local_runner_and_learner, sample

GAMMA = 0.99
INNER_LR = 0.1
TASKS = [{"goal": np.array([0.4, -0.3])}, {"goal": np.array([-0.2, 0.45])}]


def gaussian_logp(inputs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    mean, log_std = inputs.chunk(2, dim=-1)
    z = (actions - mean) / log_std.exp()
    return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def reference_value_function_advantages(module, episodes):
    """Monte-Carlo returns bootstrapped with the value function at truncation
    (GAE with lambda 1) minus the value function, standardized."""
    advantages = []
    for ep in episodes:
        o = torch.as_tensor(np.asarray(ep.get_observations()), dtype=torch.float32)
        r = np.asarray(ep.get_rewards(), dtype=np.float64)
        with torch.no_grad():
            values = module.compute_values({"obs": o}).numpy().astype(np.float64)
        ret = 0.0 if ep.is_terminated else values[-1]
        returns = np.zeros(len(r))
        for t in reversed(range(len(r))):
            ret = r[t] + GAMMA * ret
            returns[t] = ret
        advantages.append(returns - values[:-1])
    adv = np.concatenate(advantages)
    return (adv - adv.mean()) / max(adv.std(), 1e-4)


def reference_adapted_weights(
    module, episodes, lr, advantage_baseline="value_function"
):
    """theta - lr * d/dtheta [-mean(logp * A)], computed without rllib_maml code.

    A: GAE (lambda 1) with the module's value function as the baseline, or with
    a linear baseline fitted to these episodes (`reference_linear_baseline_...`).
    """
    module = copy.deepcopy(module)
    if advantage_baseline == "linear":
        adv = reference_linear_baseline_advantages(episodes, GAMMA, 1.0)
    else:
        adv = reference_value_function_advantages(module, episodes)
    adv = torch.as_tensor(adv, dtype=torch.float32)
    obs, actions = [], []
    for ep in episodes:
        o = np.asarray(ep.get_observations())[:-1]
        obs.append(torch.as_tensor(o, dtype=torch.float32))
        actions.append(torch.as_tensor(np.asarray(ep.get_actions())))
    obs, actions = torch.cat(obs), torch.cat(actions)
    inputs = module.pi(module.encoder.actor_encoder({"obs": obs})["encoder_out"])
    loss = -(gaussian_logp(inputs, actions) * adv).mean()
    module.zero_grad()
    loss.backward()
    return {
        name: (p - lr * p.grad).detach().numpy()
        for name, p in module.named_parameters()
        if p.grad is not None
    }


@pytest.mark.parametrize("inner_loss", ["vpg", "lvc"])
def test_inner_step_equals_theta_minus_lr_grad(inner_loss):
    config = local_config(
        inner_lr=INNER_LR,
        inner_loss=inner_loss,
        gamma=GAMMA,
        advantage_baseline="value_function",
    )
    runner, learner = local_runner_and_learner(config)
    episodes = sample(runner, learner, TASKS, num_episodes=3)
    module = learner.module["default_policy"]
    expected = {
        task: reference_adapted_weights(module, episodes[task], INNER_LR)
        for task in episodes
    }
    theta = {n: p.detach().numpy().copy() for n, p in module.named_parameters()}

    adapted = learner.adapt(step=0, episodes_by_task=episodes)

    assert sorted(adapted) == [0, 1]
    for task, weights in adapted.items():
        # Exactly the policy parameters move; the value function does not.
        assert set(expected[task]) == set(learner.policy_param_names)
        for name in learner.policy_param_names:
            np.testing.assert_allclose(
                weights[name], expected[task][name], rtol=1e-4, atol=1e-6
            )
            assert not np.allclose(weights[name], theta[name])
        # The two tasks adapt differently.
    name = learner.policy_param_names[-1]
    assert not np.allclose(adapted[0][name], adapted[1][name])
    # The meta-parameters themselves are untouched by the inner step.
    for n, p in module.named_parameters():
        np.testing.assert_array_equal(p.detach().numpy(), theta[n])


def test_task_batches_keep_episode_order():
    """Rows of each task's batch are that task's timesteps, in episode order."""
    runner, learner = local_runner_and_learner(local_config())
    episodes = sample(runner, learner, TASKS, num_episodes=2)
    expected_obs = {
        task: np.concatenate([np.asarray(e.get_observations())[:-1] for e in eps])
        for task, eps in episodes.items()
    }
    batches = learner.task_batches(episodes)
    for task, obs in expected_obs.items():
        np.testing.assert_allclose(batches[task]["obs"].numpy(), obs)
        adv = batches[task]["advantages"].numpy()
        assert abs(adv.mean()) < 1e-5 and abs(adv.std() - 1.0) < 1e-3


def reference_linear_baseline(paths, gamma, lambda_):
    """rllab's LinearFeatureBaseline (ridge 1e-5) fitted by hand, then GAE.

    `paths`: (observations including the one after the last step, rewards,
    terminated) per episode. Returns the raw advantages and the baseline's
    values over the steps, concatenated over episodes.
    """

    def features(obs):
        obs = np.clip(obs, -10, 10)
        t = np.arange(len(obs), dtype=np.float64)[:, None] / 100.0
        return np.hstack([obs, obs**2, t, t**2, t**3, np.ones_like(t)])

    X, returns = [], []
    for obs, r, _ in paths:
        g, disc = 0.0, np.zeros(len(r))
        for t in reversed(range(len(r))):
            g = r[t] + gamma * g
            disc[t] = g
        X.append(features(obs)[:-1])
        returns.append(disc)
    X, y = np.vstack(X), np.concatenate(returns)
    coeffs = np.linalg.solve(X.T @ X + 1e-5 * np.eye(X.shape[1]), X.T @ y)  # ridge
    advantages, baselines = [], []
    for obs, r, terminated in paths:
        b = features(obs) @ coeffs
        next_b = b[1:].copy()
        if terminated:
            next_b[-1] = 0.0  # no state after a terminal step
        deltas = r + gamma * next_b - b[:-1]
        adv, running = np.zeros(len(r)), 0.0
        for t in reversed(range(len(r))):
            running = deltas[t] + gamma * lambda_ * running
            adv[t] = running
        advantages.append(adv)
        baselines.append(b[:-1])
    return np.concatenate(advantages), np.concatenate(baselines)


def reference_linear_baseline_advantages(episodes, gamma, lambda_):
    """`reference_linear_baseline` on sampled episodes, standardized."""
    paths = [
        (
            np.asarray(ep.get_observations(), dtype=np.float64),
            np.asarray(ep.get_rewards(), dtype=np.float64),
            ep.is_terminated,
        )
        for ep in episodes
    ]
    adv, _ = reference_linear_baseline(paths, gamma, lambda_)
    return (adv - adv.mean()) / adv.std()


@pytest.mark.parametrize("lambda_", [1.0, 0.9])
def test_linear_baseline_advantages_match_an_independent_fit(lambda_):
    config = local_config(
        advantage_baseline="linear", gamma=GAMMA, lambda_=lambda_
    ).environment(env_config={"horizon": 30})
    runner, learner = local_runner_and_learner(config)
    episodes = sample(runner, learner, TASKS, num_episodes=4)
    expected = {
        task: reference_linear_baseline_advantages(eps, GAMMA, lambda_)
        for task, eps in episodes.items()
    }
    # The learner connector extends the episodes it is given: pass copies.
    _, vf_learner = local_runner_and_learner(
        local_config(gamma=GAMMA, lambda_=lambda_, advantage_baseline="value_function")
    )
    vf_batches = vf_learner.task_batches(copy.deepcopy(episodes))
    batches = learner.task_batches(episodes)
    for task, adv in expected.items():
        np.testing.assert_allclose(
            batches[task]["advantages"].numpy(), adv, rtol=1e-3, atol=1e-3
        )
    # The value function's baseline gives other advantages.
    assert not np.allclose(vf_batches[0]["advantages"].numpy(), expected[0], atol=1e-2)


@pytest.mark.parametrize(
    "env, tasks",
    [
        ("rllib_maml/Navigation2D-v0", TASKS),
        ("rllib_maml/CartPoleMass-v0", [{"masscart": 0.6, "masspole": 0.06}] * 2),
    ],
)
def test_linear_baseline_rows_equal_the_learner_connectors(env, tasks):
    """With the linear baseline, the columns come straight from the episodes:
    the same as RLlib's learner connector builds (value-function path), and
    advantages as the independent fit (CartPole: terminated episodes too)."""
    config = local_config(env, advantage_baseline="linear", gamma=GAMMA)
    runner, learner = local_runner_and_learner(config)
    episodes = sample(runner, learner, tasks, num_episodes=4)
    _, vf_learner = local_runner_and_learner(
        local_config(env, gamma=GAMMA, advantage_baseline="value_function")
    )
    vf_batches = vf_learner.task_batches(copy.deepcopy(episodes))
    batches = learner.task_batches(episodes)
    for task in episodes:
        for key in ("obs", "actions", "behavior_logp", "behavior_inputs", "mask"):
            np.testing.assert_array_equal(
                batches[task][key].numpy(), vf_batches[task][key].numpy(), key
            )
        expected = reference_linear_baseline_advantages(episodes[task], GAMMA, 1.0)
        np.testing.assert_allclose(
            batches[task]["advantages"].numpy(), expected, rtol=1e-3, atol=1e-3
        )
    if env.endswith("CartPoleMass-v0"):
        assert any(ep.is_terminated for eps in episodes.values() for ep in eps)


def test_linear_baseline_gae_on_hand_made_rows():
    """One terminated and one truncated episode, each with its bootstrap row."""
    from rllib_maml.linear_baseline import linear_baseline_gae

    rng = np.random.default_rng(0)
    lengths, terminated = (5, 7), (True, False)
    obs = [rng.normal(size=(n + 1, 3)) for n in lengths]
    rewards = [np.append(rng.normal(size=n), 0.0) for n in lengths]
    rows = lambda parts: np.concatenate(parts)  # noqa: E731
    flags = lambda end: [  # noqa: E731
        np.array([0.0] * (n - 1) + [float(e), 0.0]) for n, e in zip(lengths, end)
    ]
    timesteps = [np.arange(n + 1) for n in lengths]
    gamma, lambda_ = 0.9, 0.8
    adv, baseline = linear_baseline_gae(
        obs=rows(obs).astype(np.float32),
        timesteps=rows(timesteps),
        rewards=rows(rewards).astype(np.float32),
        terminateds=rows(flags(terminated)),
        truncateds=rows(flags([not t for t in terminated])),
        loss_mask=rows([np.arange(n + 1) < n for n in lengths]),
        gamma=gamma,
        lambda_=lambda_,
    )
    # The terminated episode has no value after its last step, the truncated
    # one bootstraps with the baseline at its last observation.
    paths = [
        (o, r[:n], term) for o, r, n, term in zip(obs, rewards, lengths, terminated)
    ]
    expected_adv, expected_b = reference_linear_baseline(paths, gamma, lambda_)
    np.testing.assert_allclose(baseline, expected_b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(adv, expected_adv, rtol=1e-4, atol=1e-4)
