"""Sampling several tasks at once on an env runner, one sub-env per episode.

Each (task, episode) pair is a slot. The runner's vector env
(`num_envs_per_env_runner` sub-envs) runs one slot per sub-env; when a
sub-env's episode ends, it takes the next slot (the vector env resets it on
the next step), so all of a runner's tasks for an adaptation step go through
one loop: 200 envs hold 10 tasks x 20 episodes at once, 1 env runs them one
episode after the other. Every step runs ONE forward pass for all sub-envs,
each with its task's parameters (`torch.func.vmap` over per-sub-env weights),
samples the actions from the module's action distribution, unsquashes or clips
them for the env as RLlib's module-to-env connector does, and steps the
vector env once. Every slot's episode is kept, so no episode length is
favoured. The episodes are RLlib `SingleAgentEpisode`s with the columns
`EnvRunner.sample()` gives (observations, actions, rewards,
`action_dist_inputs`, `action_logp`); infos are empty.

It replaces RLlib's per-step bookkeeping (connectors, one episode object
update per sub-env and step) by array appends; the learner side is unchanged.
`batching_unavailable` says when it cannot be used: the caller then samples
each task with `EnvRunner.sample()`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.spaces.space_utils import clip_action, unsquash_action

from rllib_maml.policy import FunctionalPolicy

_EPISODE_CALLBACKS = (
    "callbacks_on_episode_created",
    "callbacks_on_episode_start",
    "callbacks_on_episode_step",
    "callbacks_on_episode_end",
)


def batching_unavailable(env_runner) -> str | None:
    """None if `sample_tasks_batched` can run on this runner, else why not."""
    config = env_runner.config
    vector_env = env_runner.env.unwrapped
    if not (
        hasattr(vector_env, "set_tasks")
        or isinstance(vector_env, gym.vector.SyncVectorEnv)
    ):
        name = type(vector_env).__name__
        return f"the vector env {name} cannot hold one task per sub-env"
    if config._env_to_module_connector is not None or (
        config._module_to_env_connector is not None
    ):
        return "a custom env-to-module or module-to-env connector is configured"
    if config.callbacks_class is not RLlibCallback or any(
        getattr(config, name) for name in _EPISODE_CALLBACKS
    ):
        return "episode callbacks are configured"
    if env_runner.module.is_stateful():
        return "the RLModule is stateful"
    if not isinstance(vector_env.single_observation_space, gym.spaces.Box):
        return "the observation space is not a Box"
    mode = vector_env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    if mode != gym.vector.AutoresetMode.NEXT_STEP:
        return f"the vector env resets sub-envs with {mode}, not NEXT_STEP"
    return None


def sample_tasks_batched(
    env_runner,
    tasks: list,
    weights: list[dict],
    num_episodes: int,
    seed: int | None = None,
) -> list[list[SingleAgentEpisode]]:
    """`num_episodes` episodes for each task, sampled with that task's weights.

    `seed` (optional) seeds the vector env's reset and torch's action sampling
    (torch's RNG state is restored afterwards): the same call on the same
    runner then gives the same episodes.

    Returns one list of episodes per task, in the order of `tasks`.
    """
    if seed is None:
        return _sample(env_runner, tasks, weights, num_episodes, None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _sample(env_runner, tasks, weights, num_episodes, seed)


def _sample(env_runner, tasks, weights, num_episodes, seed):
    vector_env = env_runner.env.unwrapped
    num_envs = vector_env.num_envs
    policies = _TaskPolicies(env_runner, weights)
    queue = list(np.repeat(np.arange(len(tasks)), num_episodes)[::-1])
    # Sub-env i runs an episode of task `env_task[i]` (-1: none left) whose
    # first observation is record `start[i]`.
    env_task = np.array([queue.pop() if queue else -1 for _ in range(num_envs)])
    start = np.zeros(num_envs, dtype=int)
    _set_tasks(vector_env, env_task, tasks)
    recorder = _Recorder(env_runner)
    obs, _ = vector_env.reset(seed=seed)
    recorder.observe(obs)
    spans: list[tuple[int, int, int, int]] = []  # (task, sub-env, first, last step)
    forward = policies.forward(env_task)
    while (env_task >= 0).any():
        obs, term, trunc = recorder.step(vector_env, forward, obs)
        step = recorder.num_steps - 1
        finished = np.flatnonzero((term | trunc) & (env_task >= 0))
        for i in finished:
            spans.append((env_task[i], i, start[i], step))
            # The next step resets sub-env i (next-step autoreset): its first
            # observation of the next episode is that step's.
            env_task[i] = queue.pop() if queue else -1
            start[i] = step + 2
        if len(finished) and (env_task[finished] >= 0).any():
            _set_tasks(vector_env, env_task, tasks, only=finished)
            forward = policies.forward(env_task)
    episodes: list[list[SingleAgentEpisode]] = [[] for _ in tasks]
    for task, i, first, last in spans:
        episodes[task].append(recorder.episode(i, first, last))
    # RLlib's own `sample()` must start from fresh resets after this.
    env_runner._needs_initial_reset = True
    num_steps = sum(last - first + 1 for _, _, first, last in spans)
    env_runner._increase_sampled_metrics(num_steps, len(spans))
    return episodes


class _TaskPolicies:
    """The policy forward for all sub-envs, sub-env i with the weights of its
    task `env_task[i]`."""

    def __init__(self, env_runner, weights: list[dict]):
        self.module, self.weights = env_runner.module, weights
        self.policy = FunctionalPolicy(env_runner.module)
        self.batched = torch.func.vmap(self.policy)
        self.stacked = None
        self.loaded = None

    def forward(self, env_task: np.ndarray):
        """`obs [num_envs, ...] -> action-distribution inputs [num_envs, ...]`."""
        active = np.unique(env_task[env_task >= 0])
        if len({id(self.weights[j]) for j in active}) <= 1:
            # One set of weights (all tasks before adaptation, or one task at
            # a time): the module's own forward pass.
            weights = self.weights[active[0] if len(active) else 0]
            if self.loaded is not weights:
                self.module.set_state(weights)
                self.loaded = weights
            return self.policy.own
        if self.stacked is None:
            self.stacked = {
                name: torch.stack([torch.as_tensor(w[name]) for w in self.weights])
                for name in self.policy.param_names
            }
        index = torch.as_tensor(np.maximum(env_task, 0))
        params = {name: value[index] for name, value in self.stacked.items()}
        return lambda obs: self.batched(params, obs.unsqueeze(1)).squeeze(1)


def _set_tasks(vector_env, env_task: np.ndarray, tasks: list, only=None) -> None:
    """Sub-env i gets `tasks[env_task[i]]` (for i in `only`, default all).
    Sub-envs without a task (-1) step on unused: any task will do."""
    if hasattr(vector_env, "set_tasks"):  # array-stepped: all at once
        vector_env.set_tasks([tasks[max(j, 0)] for j in env_task])
        return
    for i in range(len(env_task)) if only is None else only:
        if env_task[i] >= 0:
            vector_env.envs[i].get_wrapper_attr("set_task")(tasks[env_task[i]])


class _Recorder:
    """Steps a vector env with per-sub-env parameters and keeps every step's
    arrays, from which `episode` cuts one sub-env's episode."""

    def __init__(self, env_runner):
        self.env_runner = env_runner
        self.dist_cls = env_runner.module.get_exploration_action_dist_cls()
        self.columns = {key: [] for key in ("obs", "actions", "rewards", "inputs")}
        self.columns.update(logp=[], terminated=[], truncated=[])
        self.arrays = None

    @property
    def num_steps(self) -> int:
        return len(self.columns["actions"])

    def observe(self, obs) -> None:
        self.columns["obs"].append(obs)

    def step(self, vector_env, forward, obs):
        """One batched policy forward (`forward(obs)`) and one env step."""
        with torch.no_grad():
            inputs = forward(torch.as_tensor(obs, dtype=torch.float32))
            dist = self.dist_cls.from_logits(inputs)
            actions = dist.sample()
            logp = dist.logp(actions)
        actions = actions.numpy()
        config, space = self.env_runner.config, vector_env.single_action_space
        if config.normalize_actions:
            env_actions = unsquash_action(actions, space)
        elif config.clip_actions:
            env_actions = clip_action(actions, space)
        else:
            env_actions = actions
        obs, rewards, term, trunc, _ = vector_env.step(env_actions)
        for key, value in (
            ("obs", obs),
            ("actions", actions),
            ("rewards", rewards),
            ("inputs", inputs.numpy()),
            ("logp", logp.numpy()),
            ("terminated", term),
            ("truncated", trunc),
        ):
            self.columns[key].append(value)
        return obs, term, trunc

    def episode(self, i: int, first: int, last: int) -> SingleAgentEpisode:
        """Sub-env i's episode with actions at steps `first..last`."""
        if self.arrays is None:
            self.arrays = {k: np.stack(v) for k, v in self.columns.items()}
        a, vector_env = self.arrays, self.env_runner.env.unwrapped
        steps = slice(first, last + 1)
        episode = SingleAgentEpisode(
            observations=list(a["obs"][first : last + 2, i]),
            actions=list(a["actions"][steps, i]),
            rewards=list(a["rewards"][steps, i]),
            extra_model_outputs={
                Columns.ACTION_DIST_INPUTS: list(a["inputs"][steps, i]),
                Columns.ACTION_LOGP: list(a["logp"][steps, i]),
            },
            terminated=bool(a["terminated"][last, i]),
            truncated=bool(a["truncated"][last, i]),
            observation_space=vector_env.single_observation_space,
            action_space=vector_env.single_action_space,
            len_lookback_buffer=0,
            t_started=0,
        )
        return episode.to_numpy() if self.env_runner.episodes_to_numpy else episode
