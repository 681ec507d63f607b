"""RL² (Duan et al. 2016, "RL²: Fast Reinforcement Learning via Slow
Reinforcement Learning"; Wang et al. 2016) on RLlib's new API stack.

A recurrent policy adapts to a task in its hidden state. It is trained with
RLlib's PPO over *trials*: a trial samples one task and keeps it for
`episodes_per_trial` episodes, and the policy's state is carried across the
episodes of a trial and reset only between trials.

How the pieces map onto RLlib:
- `TrialEnv` wraps the user's meta env (the task API of `rllib_maml.MetaEnv`):
  one gymnasium episode of it is one trial. An inner episode's end resets the
  inner env but does not end the trial, so RLlib's episode (and the recurrent
  state it carries) spans the trial. The observation gets one more entry, 1.0
  on the first step after an inner episode ended, else 0.0.
- Previous action and previous reward come from RLlib's own
  `PrevActionsPrevRewards` connector (extended here to continuous actions),
  followed by `FlattenObservations`.
- The policy is RLlib's default PPO module with `use_lstm=True`.
- Value bootstrapping: the trial is the episode (as in the RL² paper). At an
  inner-episode boundary GAE goes on into the next inner episode, discounted
  by `gamma` like any other step; only the trial's own end is a terminal (or
  a truncation, bootstrapped by RLlib, if the last inner episode was
  truncated).

Results: `env_runners/episode_return_mean_episode_<n>` is the mean return of
the n-th inner episode of the trials that ended, and `adaptation_delta` is
episode N's mean minus episode 1's, as for MAML.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import uuid
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.spaces import Box, Discrete
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.connectors.env_to_module import FlattenObservations
from ray.rllib.connectors.env_to_module import (
    PrevActionsPrevRewards as RLlibPrevActionsPrevRewards,
)
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.env_context import EnvContext
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS
from ray.util import log_once

from rllib_maml.config import (
    is_int_at_least,
    require_env_runner_cls,
    require_new_api_stack,
)
from rllib_maml.envs.base import check_meta_env, env_from_config, sample_tasks_checked

logger = logging.getLogger(__name__)

ADAPTATION_DELTA = "adaptation_delta"
# The returns of a trial's inner episodes, in the info of its last step.
TRIAL_RETURNS_INFO_KEY = "rl2_trial_returns"
# `env_config` key: a list of tasks the trials take in order (evaluation on
# held-out tasks) instead of sampling them.
TRIAL_TASKS_KEY = "rl2_trial_tasks"
# In a trial's first info: [the TrialEnv's id, the trial's number in it].
TRIAL_ID_INFO_KEY = "rl2_trial"
# `max_seq_len` where the env does not say how long its episodes are.
DEFAULT_MAX_SEQ_LEN = 200


def episode_return_key(n: int) -> str:
    """Result key (under `env_runners`) of the mean return of inner episode n."""
    return f"episode_return_mean_episode_{n}"


class TrialEnv(gym.Wrapper):
    """A meta env's trials: one task for `episodes_per_trial` episodes.

    Args:
        env: a meta env (`sample_tasks`, `set_task`, `get_task`) with a 1-D
            `Box` observation space.
        episodes_per_trial: inner episodes per trial.
        tasks: if given, trial k uses `tasks[k % len(tasks)]` instead of a
            sampled task (evaluation on fixed tasks).
    """

    def __init__(
        self, env: gym.Env, episodes_per_trial: int, tasks: list | None = None
    ):
        check_meta_env(env)
        check_trial_observation_space(env.observation_space, env)
        super().__init__(env)
        self.episodes_per_trial = int(episodes_per_trial)
        space = env.observation_space
        self.observation_space = Box(
            low=np.append(space.low, 0.0).astype(np.float32),
            high=np.append(space.high, 1.0).astype(np.float32),
            dtype=np.float32,
        )
        self._tasks = list(tasks) if tasks is not None else None
        self._uid = uuid.uuid4().hex  # tells this env's trials from others'
        self._trials = 0
        self._inner_episode = 0
        self._returns: list[float] = []

    def _observation(self, obs, inner_episode_ended: bool) -> np.ndarray:
        flag = 1.0 if inner_episode_ended else 0.0
        return np.append(np.asarray(obs, np.float32).ravel(), flag).astype(np.float32)

    @override(gym.Wrapper)
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:  # seeds the task draws (the env's `np_random`)
            self.env.reset(seed=seed)
        if self._tasks is not None:
            task = self._tasks[self._trials % len(self._tasks)]
        else:
            (task,) = sample_tasks_checked(self.env, 1)
        self._trials += 1
        self.env.get_wrapper_attr("set_task")(task)
        self._inner_episode = 0
        self._returns = [0.0]
        obs, info = self.env.reset(options=options)
        info = {**info, TRIAL_ID_INFO_KEY: [self._uid, self._trials]}
        return self._observation(obs, False), info

    @override(gym.Wrapper)
    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._returns[-1] += float(reward)
        if not (terminated or truncated):
            return self._observation(obs, False), reward, False, False, info
        self._inner_episode += 1
        info = {**info, "rl2_inner_episode": self._inner_episode}
        if self._inner_episode >= self.episodes_per_trial:
            info[TRIAL_RETURNS_INFO_KEY] = list(self._returns)
            return self._observation(obs, True), reward, terminated, truncated, info
        # The trial goes on: the next inner episode starts on the same task.
        self._returns.append(0.0)
        obs, _ = self.env.reset()
        return self._observation(obs, True), reward, False, False, info


def inner_episode_length(env: gym.Env) -> int | None:
    """An env's episode length: its `horizon` (this package's envs), else its
    spec's `max_episode_steps` (`gymnasium.make` with a time limit)."""
    horizon = getattr(env.unwrapped, "horizon", None)
    if isinstance(horizon, (int, np.integer)) and horizon > 0:
        return int(horizon)
    spec = getattr(env, "spec", None)
    steps = getattr(spec, "max_episode_steps", None)
    return int(steps) if steps else None


def check_trial_env(env: gym.Env, name: Any) -> None:
    """The env RL² is configured with has the task API and a flat `Box`
    observation space (clear errors naming `name`)."""
    check_meta_env(env, name)
    check_trial_observation_space(env.observation_space, name)


def check_trial_observation_space(space: gym.Space, env: Any) -> None:
    if not (isinstance(space, Box) and len(space.shape) == 1):
        raise TypeError(
            f"RL² needs a 1-D `Box` observation space (it appends an "
            f"inner-episode-ended flag), env {env!r} has {space}. Flatten the "
            "observations with a gymnasium wrapper in your env creator."
        )


class PrevActionsPrevRewards(RLlibPrevActionsPrevRewards):
    """RLlib's `PrevActionsPrevRewards`, also for continuous (`Box`) actions
    (RLlib's piece one-hot encodes `Discrete` actions only)."""

    @override(RLlibPrevActionsPrevRewards)
    def _convert_individual_space(self, obs_space, act_space):
        if isinstance(act_space, Discrete):
            return super()._convert_individual_space(obs_space, act_space)
        size = int(np.prod(act_space.shape)) * self.n_prev_actions
        return gym.spaces.Dict(
            {
                self.ORIG_OBS_KEY: obs_space,
                # The module's actions, before RLlib clips them for the env.
                self.PREV_ACTIONS_KEY: Box(-np.inf, np.inf, (size,), np.float32),
                self.PREV_REWARDS_KEY: Box(
                    -np.inf, np.inf, (self.n_prev_rewards,), np.float32
                ),
            }
        )


def rl2_env_to_module(env=None, spaces=None, device=None) -> list:
    """RL²'s env-to-module pieces: previous action and reward, then flatten.
    A user's own `env_to_module_connector` for RL2 should start with these."""
    return [PrevActionsPrevRewards(), FlattenObservations()]


class _TrialEnvCreator:
    """Env creator: the config's env, wrapped in `TrialEnv`."""

    def __init__(self, creator, episodes_per_trial: int, env: Any = None):
        self.creator = creator
        self.episodes_per_trial = episodes_per_trial
        self.env = env

    def __repr__(self) -> str:
        # Stable across copies of the config (`RL2Config._trial_key`).
        return f"{type(self).__name__}({self.env!r}, {self.episodes_per_trial})"

    def __call__(self, ctx: EnvContext) -> TrialEnv:
        ctx = ctx if isinstance(ctx, EnvContext) else EnvContext(ctx, worker_index=0)
        tasks = ctx.get(TRIAL_TASKS_KEY)
        inner = ctx.copy_with_overrides(
            env_config={k: v for k, v in ctx.items() if k != TRIAL_TASKS_KEY}
        )
        return TrialEnv(self.creator(inner), self.episodes_per_trial, tasks=tasks)


class RL2EnvRunner(SingleAgentEnvRunner):
    """`SingleAgentEnvRunner` on `TrialEnv`s of the config's env; logs the
    mean return of each inner episode of the trials it finishes.

    A training sample (`batch_mode="complete_episodes"`, the trial's length
    known) is one trial per sub-env, each env's first from a reset: the sub-
    envs step `trial_length` times, and trials an early finisher starts after
    its first are dropped. RLlib's own complete-episode sampling stops at the
    n-th finished episode, which favours short trials (in Navigation2D, those
    that reach the goal early): measured on one policy, 70% of its trials
    ended early against 52% sampled one after the other, with returns 20
    higher.
    """

    def __init__(self, *, config: RL2Config, **kwargs):
        self.trial_length = config.trial_length
        _, creator = Algorithm._get_env_id_and_creator(config.env, config)
        trial_config = config.copy(copy_frozen=False)
        trial_config.environment(
            env=_TrialEnvCreator(creator, config.episodes_per_trial, config.env)
        )
        if config._env_checked():  # the same env, wrapped: the same module
            trial_config._env_facts = (
                trial_config._trial_key(),
                *config._env_facts[1:],
            )
        trial_config.freeze()
        super().__init__(config=trial_config, **kwargs)

    @override(SingleAgentEnvRunner)
    def sample(self, **kwargs) -> list:
        one_round = (
            kwargs.get("num_timesteps") is None
            and kwargs.get("num_episodes") is None
            and self.config.batch_mode == "complete_episodes"
            and self.trial_length is not None
        )
        if one_round:
            kwargs.update(
                num_timesteps=self.num_envs * self.trial_length, force_reset=True
            )
            episodes = first_trials(super().sample(**kwargs))
        else:
            episodes = super().sample(**kwargs)
        window = self.config.metrics_num_episodes_for_smoothing
        for episode in episodes:
            if not episode.is_done:
                continue
            returns = episode.get_infos(-1).get(TRIAL_RETURNS_INFO_KEY)
            for n, value in enumerate(returns or (), start=1):
                self.metrics.log_value(
                    episode_return_key(n), float(value), window=window
                )
        return episodes


def first_trials(episodes: list) -> list:
    """The finished trials that were the first of their `TrialEnv` among
    `episodes` (trials started after an env's first are left out)."""
    first: dict[str, Any] = {}
    for episode in episodes:
        if not episode.is_done:
            continue
        uid, number = episode.get_infos(0)[TRIAL_ID_INFO_KEY]
        if uid not in first or number < first[uid][0]:
            first[uid] = (number, episode)
    return [episode for _, episode in first.values()]


class RL2Config(PPOConfig):
    """RLlib's `PPOConfig` plus `episodes_per_trial`; RL²'s env runner, its
    connectors and a recurrent default module are set up.

    Example:
        config = (
            RL2Config()
            .environment("rllib_maml/Navigation2D-v0")
            .env_runners(num_env_runners=2)
            .training(episodes_per_trial=2)
        )
        algo = config.build_algo()
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or RL2)
        self.episodes_per_trial = 2
        self.env_runner_cls = RL2EnvRunner
        self._env_to_module_connector = rl2_env_to_module
        # A trial is one RLlib episode, sampled whole: a batch holds whole
        # trials, and with `max_seq_len` a trial's length (see `validate`)
        # backpropagation through time reaches from a later inner episode
        # into the earlier ones. Fragments would cut trials where iterations
        # end, often exactly at an inner-episode boundary.
        self.batch_mode = "complete_episodes"
        # PPO settings for trials of a few short episodes on two cores:
        # fewer, larger minibatches than PPO's defaults (30 epochs of 128).
        # lr 1e-3: ProMP's RL² setting (benchmarks/README.md, RL², has the
        # runs with 3e-4 and 1e-3).
        self.lr = 1e-3
        self.num_epochs = 5
        self.minibatch_size = 4000
        # With whole trials this is a minimum: an iteration samples rounds of
        # one trial per env (`RL2EnvRunner.sample`) until it has this many
        # env steps (Navigation2D, 2 runners x 40 envs x 200 steps: one
        # round, 16,000 steps).
        self.train_batch_size_per_learner = 8000
        # RLlib's PPO clips the squared value error at `vf_clip_param` (10):
        # beyond an error of about 3 the value function gets no gradient, and
        # a trial's returns are tens to hundreds.
        self.vf_clip_param = float("inf")
        # Set by `validate` from the env: (env, env_config, episodes_per_trial)
        # -> steps of a trial (None where the env does not say), and whether
        # its actions are a `Box`.
        self._env_facts: tuple[str, int | None, bool] | None = None
        self.lambda_ = 0.95
        self.gamma = 0.99
        self.entropy_coeff = 0.0
        # Trials step in parallel: 40 envs sample Navigation2D at about twice
        # the env steps per second of 10 (benchmarks/rl2_throughput.py).
        self.num_envs_per_env_runner = 40

    @override(PPOConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        # RLlib's PPO module, with `initial_action_std` and a `free_log_std`
        # that works with an LSTM (`rllib_maml.module`).
        from rllib_maml.module import MAMLTorchRLModule

        return RLModuleSpec(module_class=MAMLTorchRLModule)

    @override(PPOConfig)
    def training(self, *, episodes_per_trial=NotProvided, **kwargs) -> RL2Config:
        """Sets PPO's training settings and:

        Args:
            episodes_per_trial: inner episodes per trial; the policy's state
                is reset only between trials.
        """
        super().training(**kwargs)
        if episodes_per_trial is not NotProvided:
            self.episodes_per_trial = episodes_per_trial
        return self

    @property
    @override(PPOConfig)
    def _model_config_auto_includes(self) -> dict[str, Any]:
        # RLlib's default module with an LSTM; keys the user sets win.
        return {
            **super()._model_config_auto_includes,
            "use_lstm": True,
            "lstm_cell_size": 64,
            # One sequence per trial: its steps plus the one RLlib's PPO
            # appends to an episode to bootstrap its value.
            "max_seq_len": (self.trial_length or DEFAULT_MAX_SEQ_LEN) + 1,
            # One action std for all states, as in rllab's and garage's
            # `GaussianGRUPolicy` (the std outside the network). With RLlib's
            # state-dependent std the policy learned a "give up" state: log
            # std 8-11 (clipped actions, a random walk) that the LSTM never
            # left, in about 20% of Navigation2D trials (benchmarks/README.md,
            # RL²). RLlib has it for `Box` actions only.
            # Configs saved before this default (with `_trial_length`) keep
            # RLlib's std, so that their checkpoints load.
            "free_log_std": self._env_checked()
            and self._env_facts[2]
            and "_trial_length" not in self.__dict__,
            "fcnet_hiddens": [64],
            "fcnet_activation": "tanh",
            "vf_share_layers": False,
        }

    @property
    def trial_length(self) -> int | None:
        """Steps of a trial (`episodes_per_trial` x the env's episode length)
        once `validate` has looked at the env; None before, or where the env
        does not say (no `horizon` attribute, no `max_episode_steps`)."""
        return self._env_facts[1] if self._env_checked() else None

    def _trial_key(self) -> str:
        env_config = {k: v for k, v in self.env_config.items() if k != TRIAL_TASKS_KEY}
        return repr((self.env, env_config, self.episodes_per_trial))

    def _env_checked(self) -> bool:
        """Whether `validate` created and checked this config's env."""
        return self._env_facts is not None and (self._env_facts[0] == self._trial_key())

    def _inspect_env(self) -> None:
        """Creates the env once per (env, env_config, episodes_per_trial) to
        check its task API and observation space and read its episode length
        (`RL2.setup` then does not create it again: Meta-World's ML10 takes
        about 15 s). An env that cannot be created is left to `RL2.setup`,
        which reports why."""
        if self._env_checked():
            return
        key = self._trial_key()
        try:
            env = env_from_config(self)
        except Exception:  # noqa: BLE001 - RL2.setup raises it with context
            return
        try:
            check_trial_env(env, self.env)
            length = inner_episode_length(env)
            box_actions = isinstance(env.action_space, Box)
        finally:
            env.close()
        self._env_facts = (
            key,
            None if length is None else length * self.episodes_per_trial,
            box_actions,
        )

    def _check_max_seq_len(self) -> None:
        """Warns where training cannot backpropagate through a whole trial."""
        seq = self.model_config.get("max_seq_len")
        length = self.trial_length
        if self.batch_mode != "complete_episodes" and log_once("rl2_batch_mode"):
            logger.warning(
                "RL² with batch_mode=%r: trials are cut where a sample ends, so "
                "training cannot backpropagate from a later inner episode into an "
                "earlier one. Set `config.env_runners(batch_mode="
                "'complete_episodes')` (RL2Config's default).",
                self.batch_mode,
            )
        if length is None:
            if log_once("rl2_trial_length_unknown"):
                logger.warning(
                    "RL² could not read the episode length of env %r (no `horizon` "
                    "attribute, no `max_episode_steps`); `max_seq_len` is %s. Set "
                    "`config.rl_module(model_config={'max_seq_len': "
                    "episodes_per_trial * episode length})`.",
                    self.env,
                    seq,
                )
        elif seq is not None and seq <= length and log_once("rl2_short_max_seq_len"):
            logger.warning(
                "RL²'s `max_seq_len` is %s, shorter than a trial (%s steps): "
                "training backpropagates through pieces of a trial only. Leave "
                "`max_seq_len` unset (RL² sets it to the trial's length + 1, for "
                "the step RLlib's PPO appends to bootstrap values) or set %s.",
                seq,
                length,
                length + 1,
            )

    @override(PPOConfig)
    def validate(self) -> None:
        # RL² has no old-stack version: RLlib's "You are running RL2 on the
        # new API stack! ... If you don't want to use the new API stack"
        # advice does not apply (as in `MAMLConfig.validate`).
        log_once(f"{self.algo_class.__name__}_on_new_api_stack")
        super().validate()
        require_new_api_stack(self, "RL²")
        n = self.episodes_per_trial
        if not is_int_at_least(n, 1):
            self._value_error(
                f"`episodes_per_trial` must be an integer >= 1, got {n!r}. A trial "
                "is the episodes RL² adapts over; set "
                "`config.training(episodes_per_trial=2)`."
            )
        if self.env is None:
            self._value_error(
                "`env` is not set. RL² needs a meta env with `sample_tasks`/"
                "`set_task`; set `config.environment('rllib_maml/Navigation2D-v0')`."
            )
        if (
            self._rl_module_spec is None or self._rl_module_spec.module_class is None
        ) and not self.model_config.get("use_lstm"):
            self._value_error(
                "RL² needs a recurrent policy (it adapts in its hidden state), got "
                "`model_config['use_lstm']=False`. Set `config.rl_module("
                "model_config={'use_lstm': True})` or pass a recurrent RLModule."
            )
        if "vector_entry_point" in str(self.gym_env_vectorize_mode).lower():
            self._value_error(
                "`gym_env_vectorize_mode` 'vector_entry_point' is not supported by "
                "RL²: each sub-env is wrapped in its own trial. Set "
                "`config.env_runners(gym_env_vectorize_mode='SYNC')`."
            )
        self._inspect_env()
        self._check_max_seq_len()
        seq = self.model_config.get("max_seq_len")
        if self.trial_length is not None and isinstance(seq, int):
            # RLlib's minibatches of a recurrent module are whole sequences.
            seq = min(seq, self.trial_length + 1)
            if self.minibatch_size < seq:
                self._value_error(
                    f"`minibatch_size` ({self.minibatch_size}) is shorter than one "
                    f"sequence of the recurrent policy ({seq} steps: a trial and "
                    "the step PPO appends to bootstrap values). Set "
                    f"`config.training(minibatch_size={seq})` or larger."
                )
        require_env_runner_cls(self, RL2EnvRunner, "runs the trials")


@dataclasses.dataclass
class RL2Policy:
    """An RL² policy and the config it was trained with; evaluates without
    an algorithm (no env runners or learners to start)."""

    config: RL2Config
    module_state: dict

    @classmethod
    def from_checkpoint(cls, path: str) -> RL2Policy:
        """From an RL² algorithm checkpoint (`algo.save_to_path`)."""
        from rllib_maml.baselines import module_from_checkpoint

        try:
            with open(os.path.join(path, "class_and_ctor_args.pkl"), "rb") as f:
                stored = pickle.load(f)
        except OSError as e:
            raise FileNotFoundError(
                f"{path!r} is not an algorithm checkpoint ({e.strerror}); give the "
                "directory `algo.save_to_path()` wrote."
            ) from e
        if not issubclass(stored["class"], RL2):
            raise ValueError(
                f"{path!r} is a {stored['class'].__name__} checkpoint, not RL²'s."
            )
        (config_state,), _ = stored["ctor_args_and_kwargs"]
        config = RL2Config.from_state(config_state)
        module = module_from_checkpoint(path)
        # The policy as it was saved: a checkpoint from before RL2Config's
        # `free_log_std` default has a std per state.
        free_log_std = bool(module.model_config.get("free_log_std", False))
        config.rl_module(
            model_config={**config._model_config, "free_log_std": free_log_std}
        )
        return cls(config, module.get_state())

    def trial_returns(self, tasks: list, *, seed: int) -> np.ndarray:
        """The returns of the inner episodes of `trials(tasks, seed=seed)`,
        `[len(tasks), episodes_per_trial]`."""
        return np.array(
            [
                e.get_infos(-1)[TRIAL_RETURNS_INFO_KEY]
                for e in self.trials(tasks, seed=seed)
            ]
        )

    def trials(self, tasks: list, *, seed: int) -> list:
        """One trial per task, sampled as in training (exploring) on a local
        env runner: its finished RLlib episodes, in the tasks' order. Seeded:
        the same policy, tasks and seed give the same trials; torch's global
        RNG is left as it was."""
        config = self.config.copy(copy_frozen=False)
        config.environment(env_config={**config.env_config, TRIAL_TASKS_KEY: tasks})
        config.env_runners(num_envs_per_env_runner=1)
        config.debugging(seed=seed)
        config.freeze()
        with torch.random.fork_rng(devices=[]):
            runner = config.env_runner_cls(config=config)
            try:
                runner.module.set_state(self.module_state)
                episodes = runner.sample(num_episodes=len(tasks), explore=True)
            finally:
                runner.stop()
        return [e for e in episodes if e.is_done][: len(tasks)]


class RL2(PPO):
    """RLlib's PPO on trials of a meta env (see the module docstring)."""

    @classmethod
    @override(PPO)
    def get_default_config(cls) -> RL2Config:
        return RL2Config()

    @override(PPO)
    def setup(self, config: RL2Config) -> None:
        # Check the env on the driver before any env runner starts (unless
        # `RL2Config.validate` did).
        if not config._env_checked():
            env = self.env_creator(EnvContext(config.env_config, worker_index=0))
            try:
                check_trial_env(env, config.env)
            finally:
                env.close()
        super().setup(config)

    def policy(self) -> RL2Policy:
        """The current policy with its config, for `RL2Policy.trial_returns`."""
        return RL2Policy(self.config, self.get_module().get_state())

    def trial_returns(self, tasks: list, *, seed: int) -> np.ndarray:
        """`RL2Policy.trial_returns` of the current policy."""
        return self.policy().trial_returns(tasks, seed=seed)

    @override(PPO)
    def training_step(self) -> None:
        super().training_step()
        try:  # until a trial has ended, there is no inner-episode return
            first, last = (
                self.metrics.peek((ENV_RUNNER_RESULTS, episode_return_key(n)))
                for n in (1, self.config.episodes_per_trial)
            )
        except KeyError:
            return
        self.metrics.log_value(ADAPTATION_DELTA, last - first, window=1)
