"""`MAMLEnvRunner`: RLlib's single-agent env runner, sampling many tasks per call.

MAML samples every task of the meta-batch once per adaptation step, each with
its own policy parameters (the meta-policy before adaptation, the task's
adapted parameters after). `MAMLEnvRunner.sample_tasks` does one such step for
the tasks it is given:

- Per-task parameters are used functionally (`torch.func.functional_call`);
  the runner's own module always holds the meta-policy that RLlib syncs to it.
- Batched (`batched_sampling=True`, where the runner allows it): each
  (task, episode) pair is a slot; each sub-env of the runner's vector env runs
  one slot at a time and, when its episode ends, is reset for the next slot.
  Every step is one forward pass for all sub-envs, each with its task's
  parameters (`torch.func.vmap`), RLlib's unsquash/clip of the actions, and
  one step of the (wrapped) vector env. Otherwise each task in turn with
  RLlib's own `sample()`.
- Seeds: a slot's reset seed depends only on the step's `entropy`, the task's
  index in the meta-batch and the episode number, so it does not depend on
  which runner or sub-env runs it; the action noise of a call is seeded by the
  entropy and the call's task indices.
- Episodes keep their infos; `on_sample_end` callbacks run; env steps and
  episodes count in RLlib's metrics. An exception is raised, so RLlib marks
  the runner unhealthy and restores it (`restart_failed_env_runners`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.callbacks.utils import make_callback
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils import metrics as M
from ray.rllib.utils.annotations import override
from ray.rllib.utils.spaces.space_utils import clip_action, unsquash_action

from rllib_maml import compat
from rllib_maml.policy import FunctionalPolicy

logger = logging.getLogger(__name__)

# Episode statistics the runner computes over everything it sampled: they would
# mix adaptation steps, so MAML reports its own per step instead.
MIXED_EPISODE_METRICS = (
    M.EPISODE_DURATION_SEC_MEAN,
    M.EPISODE_LEN_MAX,
    M.EPISODE_LEN_MEAN,
    M.EPISODE_LEN_MIN,
    M.EPISODE_RETURN_MAX,
    M.EPISODE_RETURN_MEAN,
    M.EPISODE_RETURN_MIN,
    "agent_episode_return_mean",
    "module_episode_return_mean",
)
_EPISODE_CALLBACKS = (
    "callbacks_on_episode_created",
    "callbacks_on_episode_start",
    "callbacks_on_episode_step",
    "callbacks_on_episode_end",
)

Params = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class TaskJob:
    """One task to sample at one adaptation step.

    Attributes:
        task_index: the task's position in the meta-batch (keys results and
            seeds).
        task: the task, as the env's `sample_tasks` returned it.
        params: the policy parameters to sample with, by parameter name; None:
            the runner's own module (the meta-policy).
    """

    task_index: int
    task: Any
    params: Params | None = None


@dataclasses.dataclass
class TaskSamples:
    """What `MAMLEnvRunner.sample_tasks` returns."""

    episodes_by_task: dict[int, list[SingleAgentEpisode]]
    metrics: dict


def slot_seed(entropy: int, task_index: int, episode: int) -> int:
    """Reset seed of a task's `episode`-th episode at one adaptation step."""
    return int(
        np.random.SeedSequence([entropy, task_index, episode]).generate_state(1)[0]
    )


class MAMLEnvRunner(SingleAgentEnvRunner):
    """`SingleAgentEnvRunner` plus `sample_tasks`: one adaptation step of
    several tasks, each with its own policy parameters (see the module doc)."""

    @override(SingleAgentEnvRunner)
    def __init__(self, *, config, **kwargs):
        super().__init__(config=config, **kwargs)
        self._functional_policy = None
        self._warned_unbatched = False

    def batching_unavailable(self) -> str | None:
        """None if this runner can sample its tasks batched, else why not."""
        vector_env = self.env.unwrapped
        if not (
            hasattr(vector_env, "set_tasks")
            or isinstance(vector_env, gym.vector.SyncVectorEnv)
        ):
            name = type(vector_env).__name__
            return f"the vector env {name} cannot hold one task per sub-env"
        reason = config_unbatchable(self.config)
        if reason is not None:
            return reason
        if self.module.is_stateful():
            return "the RLModule is stateful"
        if not isinstance(vector_env.single_observation_space, gym.spaces.Box):
            return "the observation space is not a Box"
        mode = vector_env.metadata.get(
            "autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP
        )
        if mode != gym.vector.AutoresetMode.NEXT_STEP:
            return f"the vector env resets sub-envs with {mode}, not NEXT_STEP"
        return None

    def sample_tasks(
        self,
        jobs: list[TaskJob],
        *,
        num_episodes: int,
        entropy: int | None = None,
        meta_policy_state: dict | None = None,
    ) -> TaskSamples:
        """Samples `num_episodes` complete episodes of every job's task.

        Args:
            jobs: the tasks, with the parameters to sample each with.
            num_episodes: episodes per task.
            entropy: seeds resets and action noise (see the module doc); None:
                unseeded. Torch's global RNG is left as it was either way.
            meta_policy_state: the learner's meta-policy as an env-runner state
                (`rl_module` and `weights_seq_no`), loaded with RLlib's
                `set_state` (a no-op when the runner has it already) before
                sampling, so jobs without params sample the current
                meta-policy even if RLlib's asynchronous weight sync has not
                arrived.

        Returns:
            The episodes per task index, and this runner's metrics (without the
            per-episode statistics, which would mix adaptation steps).
        """
        if meta_policy_state is not None:
            self.set_state(meta_policy_state)
        reason = self.batching_unavailable() if self.config.batched_sampling else ""
        with _torch_rng(self, entropy, jobs):
            if reason is None:
                # RLlib's `sample()` times itself; the batched loop likewise.
                with self.metrics.log_time(M.SAMPLE_TIMER):
                    episodes_by_task = self._sample_batched(jobs, num_episodes, entropy)
            else:
                if reason and not self._warned_unbatched:
                    self._warned_unbatched = True
                    logger.warning(
                        "Sampling MAML tasks one after the other on this env "
                        "runner: %s.",
                        reason,
                    )
                episodes_by_task = {
                    job.task_index: self._sample_one_task(job, num_episodes, entropy)
                    for job in jobs
                }
        runner_metrics = self.get_metrics()
        for key in MIXED_EPISODE_METRICS:
            runner_metrics.pop(key, None)
        return TaskSamples(episodes_by_task, runner_metrics)

    # ----------------------------------------------------------- task by task
    def _sample_one_task(
        self, job: TaskJob, num_episodes: int, entropy: int | None
    ) -> list[SingleAgentEpisode]:
        """RLlib's own `sample()` for one task (connectors, callbacks, state)."""
        self.env.unwrapped.call("set_task", job.task)
        seed = None if entropy is None else slot_seed(entropy, job.task_index, 0)
        old_seed = compat.swap_reset_seed(self, seed)
        try:
            with self._module_params(job.params):
                return self.sample(num_episodes=num_episodes, explore=True)
        finally:
            compat.swap_reset_seed(self, old_seed)

    @contextlib.contextmanager
    def _module_params(self, params: Params | None):
        """The module samples with `params` inside, its own ones again after."""
        if params is None:
            yield
            return
        named = dict(self.module.named_parameters())
        saved = {name: named[name].detach().clone() for name in params}
        try:
            with torch.no_grad():
                for name, value in params.items():
                    named[name].copy_(torch.as_tensor(value))
            yield
        finally:
            with torch.no_grad():
                for name, value in saved.items():
                    named[name].copy_(value)

    # ---------------------------------------------------------------- batched
    def _sample_batched(
        self, jobs: list[TaskJob], num_episodes: int, entropy: int | None
    ) -> dict[int, list[SingleAgentEpisode]]:
        vector_env = self.env.unwrapped
        num_envs = vector_env.num_envs
        # Slots in the order they start: (job position, episode number).
        queue = [(j, e) for j in range(len(jobs)) for e in range(num_episodes)][::-1]
        env_slot: list[tuple[int, int] | None] = [None] * num_envs
        start = np.zeros(num_envs, dtype=int)
        policies = _TaskPolicies(self, [job.params for job in jobs])
        recorder = _Recorder(self)

        def begin_slots(envs: list[int], obs, infos, first_reset=False):
            """Gives each sub-env in `envs` the next slot and resets it."""
            for i in envs:
                env_slot[i] = queue.pop() if queue else None
            return reset_slots(
                self,
                env_slot,
                jobs,
                envs,
                entropy,
                obs,
                infos,
                start,
                recorder,
                first_reset,
            )

        obs = np.zeros((num_envs, *vector_env.single_observation_space.shape))
        obs = obs.astype(vector_env.single_observation_space.dtype)
        obs, infos = begin_slots(list(range(num_envs)), obs, [{}] * num_envs, True)
        forward = policies.forward(env_slot)
        spans = []  # (job position, sub-env, first step, last step, final obs, info)
        while any(slot is not None for slot in env_slot):
            recorder.observe(obs, infos)
            obs, term, trunc, infos = recorder.step(forward, obs)
            step = recorder.num_steps - 1
            finished = [
                i for i in np.flatnonzero(term | trunc) if env_slot[i] is not None
            ]
            if not finished:
                continue
            for i in finished:
                spans.append((env_slot[i][0], i, start[i], step, obs[i], infos[i]))
            obs, infos = np.array(obs), list(infos)
            obs, infos = begin_slots(finished, obs, infos)
            forward = policies.forward(env_slot)
        episodes: dict[int, list[SingleAgentEpisode]] = {
            job.task_index: [] for job in jobs
        }
        for j, i, first, last, final_obs, final_info in sorted(
            spans, key=lambda span: span[0]
        ):
            episodes[jobs[j].task_index].append(
                recorder.episode(i, first, last, final_obs, final_info)
            )
        # RLlib's own `sample()` must start from fresh resets after this.
        compat.request_reset(self)
        num_steps = sum(last - first + 1 for _, _, first, last, _, _ in spans)
        compat.count_sampled(self, num_steps, len(spans))
        all_episodes = [ep for eps in episodes.values() for ep in eps]
        make_callback(
            "on_sample_end",
            callbacks_objects=compat.callbacks(self),
            callbacks_functions=self.config.callbacks_on_sample_end,
            kwargs=dict(
                env_runner=self, metrics_logger=self.metrics, samples=all_episodes
            ),
        )
        return episodes

    @property
    def functional_policy(self) -> FunctionalPolicy:
        if self._functional_policy is None:
            self._functional_policy = FunctionalPolicy(self.module, exploration=True)
        return self._functional_policy


def config_unbatchable(config) -> str | None:
    """Why no env runner of `config` can sample batched (None: they may; the
    runner's env and module are checked by `MAMLEnvRunner.batching_unavailable`).
    """
    if compat.has_custom_connectors(config):
        return "a custom env-to-module or module-to-env connector is configured"
    callback_classes = config.callbacks_class
    if not isinstance(callback_classes, (list, tuple)):
        callback_classes = [callback_classes]
    hooks = [name.removeprefix("callbacks_") for name in _EPISODE_CALLBACKS]
    if any(getattr(config, name) for name in _EPISODE_CALLBACKS) or any(
        getattr(cls, hook) is not getattr(RLlibCallback, hook)
        for cls in callback_classes
        if isinstance(cls, type)
        for hook in hooks
    ):
        return "episode callbacks are configured"
    return None


@contextlib.contextmanager
def _torch_rng(env_runner, entropy: int | None, jobs: list[TaskJob]):
    """Seeds torch's action sampling from `entropy` and the jobs' task indices;
    torch's RNG state is restored afterwards."""
    if entropy is None:
        yield
        return
    seed = np.random.SeedSequence([entropy, *(job.task_index for job in jobs)])
    dev = torch.device(compat.device(env_runner) or "cpu")
    devices = [dev] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed.generate_state(1)[0]))
        yield


class _TaskPolicies:
    """The policy forward for all sub-envs, sub-env i with the parameters of its
    slot's job (`None`: the runner's own module)."""

    def __init__(self, env_runner: MAMLEnvRunner, params: list[Params | None]):
        self.policy = env_runner.functional_policy
        self.device = compat.device(env_runner) or "cpu"
        self.params = params
        # Each distinct parameter set as tensors on the module's device, once.
        self.tensors: dict[int, dict[str, torch.Tensor]] = {}
        for p in params:
            if p is not None and id(p) not in self.tensors:
                self.tensors[id(p)] = {
                    name: torch.as_tensor(value, device=self.device)
                    for name, value in p.items()
                }
        self.batched = torch.func.vmap(self.policy)
        self.stacked = None

    def forward(self, env_slot: list):
        """`obs [num_envs, ...] -> action-distribution inputs [num_envs, ...]`."""
        jobs = [slot[0] for slot in env_slot if slot is not None]
        if len({id(self.params[j]) for j in jobs}) <= 1:
            params = self.params[jobs[0]] if jobs else None
            if params is None:
                return self.policy.own
            tensors = self.tensors[id(params)]
            return lambda obs: self.policy(tensors, obs)
        if self.stacked is None:
            own = {n: p.detach() for n, p in self.policy.params().items()}
            self.stacked = {
                name: torch.stack(
                    [
                        self.tensors[id(p)][name] if p is not None else own[name]
                        for p in self.params
                    ]
                )
                for name in self.policy.param_names
            }
        index = torch.as_tensor(
            [slot[0] if slot is not None else 0 for slot in env_slot],
            device=self.device,
        )
        params = {name: value[index] for name, value in self.stacked.items()}
        return lambda obs: self.batched(params, obs.unsqueeze(1)).squeeze(1)


def _set_tasks(vector_env, env_slot: list, tasks: list, only: list[int]) -> None:
    """Sub-env i (for i in `only`) gets the task of its slot."""
    if hasattr(vector_env, "set_tasks"):  # array-stepped: all at once
        vector_env.set_tasks(
            [tasks[slot[0]] if slot is not None else tasks[0] for slot in env_slot]
        )
        return
    for i in only:
        vector_env.envs[i].get_wrapper_attr("set_task")(tasks[env_slot[i][0]])


class _Recorder:
    """Steps the runner's vector env with per-sub-env parameters and keeps every
    step's arrays, from which `episode` cuts one sub-env's episode."""

    def __init__(self, env_runner: SingleAgentEnvRunner, explore: bool = True):
        self.env_runner = env_runner
        self.explore = explore
        self.dist_cls = env_runner.module.get_exploration_action_dist_cls()
        self.device = compat.device(env_runner) or "cpu"
        self.columns: dict[str, list] = {
            key: []
            for key in (
                "obs",
                "infos",
                "actions",
                "rewards",
                "inputs",
                "logp",
                "terminated",
                "truncated",
            )
        }
        self.arrays = None

    @property
    def num_steps(self) -> int:
        return len(self.columns["actions"])

    def observe(self, obs, infos) -> None:
        """The observations (and infos) the next action is taken on."""
        self.columns["obs"].append(np.array(obs))
        self.columns["infos"].append(infos)

    def step(self, forward, obs):
        """One batched policy forward (`forward(obs)`) and one env step."""
        with torch.no_grad():
            inputs = forward(
                torch.as_tensor(obs, dtype=torch.float32, device=self.device)
            )
            dist = self.dist_cls.from_logits(inputs)
            if self.explore:
                actions = dist.sample()
                logp = dist.logp(actions)
            else:  # the distribution's mode (RLlib's `to_deterministic`)
                actions = dist.to_deterministic().sample()
                logp = torch.zeros(actions.shape[0], device=actions.device)
        actions = actions.cpu().numpy()
        config = self.env_runner.config
        space = self.env_runner.env.single_action_space
        if config.normalize_actions:
            env_actions = unsquash_action(actions, space)
        elif config.clip_actions:
            env_actions = clip_action(actions, space)
        else:
            env_actions = actions
        next_obs, rewards, term, trunc, infos = self.env_runner.env.step(env_actions)
        for key, value in (
            ("actions", actions),
            ("rewards", rewards),
            ("inputs", inputs.cpu().numpy()),
            ("logp", logp.cpu().numpy()),
            ("terminated", np.asarray(term)),
            ("truncated", np.asarray(trunc)),
        ):
            self.columns[key].append(value)
        return next_obs, np.asarray(term), np.asarray(trunc), infos

    def episode(self, i, first, last, final_obs, final_info) -> SingleAgentEpisode:
        """Sub-env i's episode with actions at steps `first..last`."""
        if self.arrays is None:
            self.arrays = {
                k: np.stack(v) for k, v in self.columns.items() if k != "infos"
            }
        a, env = self.arrays, self.env_runner.env
        steps = slice(first, last + 1)
        infos = [_plain(self.columns["infos"][t][i]) for t in range(first, last + 1)]
        episode = SingleAgentEpisode(
            observations=[*a["obs"][steps, i], final_obs],
            infos=[*infos, _plain(final_info)],
            actions=list(a["actions"][steps, i]),
            rewards=list(a["rewards"][steps, i]),
            extra_model_outputs={
                Columns.ACTION_DIST_INPUTS: list(a["inputs"][steps, i]),
                Columns.ACTION_LOGP: list(a["logp"][steps, i]),
            },
            terminated=bool(a["terminated"][last, i]),
            truncated=bool(a["truncated"][last, i]),
            observation_space=env.single_observation_space,
            action_space=env.single_action_space,
            len_lookback_buffer=0,
            t_started=0,
        )
        return episode.to_numpy() if self.env_runner.episodes_to_numpy else episode


def reset_slots(
    env_runner,
    env_slot: list,
    jobs: list,
    envs: list[int],
    entropy: int | None,
    obs,
    infos,
    start,
    recorder: _Recorder,
    first_reset: bool,
):
    """Resets the sub-envs in `envs` that have a slot `(job position, episode)`
    with their job's task and the slot's seed; their observations and infos go
    into `obs` and `infos`, and `start` records the step they start at."""
    vector_env = env_runner.env.unwrapped
    num_envs = vector_env.num_envs
    starting = [i for i in envs if env_slot[i] is not None]
    if not starting:
        return obs, infos
    _set_tasks(vector_env, env_slot, [job.task for job in jobs], only=starting)
    seeds: list[int | None] = [None] * num_envs
    if entropy is not None:
        for i in starting:
            j, episode = env_slot[i]
            seeds[i] = slot_seed(entropy, jobs[j].task_index, episode)
    mask = np.zeros(num_envs, dtype=bool)
    mask[starting] = True
    # The first reset is of all sub-envs (unused ones too: a vector env needs
    # every sub-env's observation), later ones of `starting`.
    options = None if first_reset else {"reset_mask": mask}
    reset_obs, reset_infos = env_runner.env.reset(seed=seeds, options=options)
    for i in starting:
        obs[i] = reset_obs[i]
        infos[i] = reset_infos[i]
        start[i] = recorder.num_steps
    return obs, infos


def _plain(info: dict) -> dict:
    """`info` with numpy scalars as Python scalars. A vector env batches each
    info key into an array and `DictInfoToList` splits it again into numpy
    scalars, which pickle about 10x slower than the floats and bools most envs
    put there; episodes travel from runner to driver to learner."""
    return {
        key: value.item() if isinstance(value, np.generic) else value
        for key, value in info.items()
    }
