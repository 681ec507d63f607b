"""Meta-World (Yu et al. 2019; the Farama `metaworld` 3.x package, v3 envs) as
meta envs with this package's task API.

- `MetaWorldML1Env` (`rllib_maml/MetaWorldML1-v0`): one Meta-World env
  (`env_config={"env_name": "reach-v3"}`); a task is one of the benchmark's
  goal positions. Training draws from the benchmark's train tasks, the
  held-out evaluation from its test tasks (`sample_test_tasks`), never from
  train ones.
- `MetaWorldML10Env` (`rllib_maml/MetaWorldML10-v0`): a task is (env, goal);
  the ten train envs for training, the five test envs held out.
- `MetaWorldML45Env` (`rllib_maml/MetaWorldML45-v0`): the same over the 45
  train envs and 5 test envs of ML45 (building the benchmark takes about 50 s
  in each process, ML10's about 12 s).

A task is a small dict, `{"env_name": ..., "split": "train" | "test",
"index": i}`: the i-th task of that env in the benchmark's split. The
benchmark (its goals) is built from `benchmark_seed` (default 0), the same in
every process, so the driver and every env runner agree on what a task is.

Observations are Meta-World's 39 floats (float32 here; the goal entries are
zero, as the benchmark hides the goal), actions its 4. Episodes last
`horizon` steps (default and at most 500, the benchmark's), and the step's
`info["success"]` is kept: an episode succeeds if any step reports success.
The oracle variant (`...Oracle-v0`) sees the task: the goal position in its
slot of the observation (Meta-World's goal-observable mode), and for ML10 and
ML45 a one-hot of the env among the benchmark's 15 or 50 appended.
"""

from __future__ import annotations

import functools
import pickle
from typing import Any

import gymnasium as gym
import numpy as np

from rllib_maml.envs.base import MetaEnv, render_kwargs

MAX_HORIZON = 500  # Meta-World's `max_path_length`; its envs raise past it
OBS_SIZE = 39
SPLITS = ("train", "test")


def import_metaworld():
    """`metaworld`, or an ImportError naming the extra that installs it."""
    try:
        import metaworld
    except ImportError as e:
        raise ImportError(
            "The Meta-World envs need the `metaworld` package (3.x). Install it "
            "with `pip install 'rllib_maml[metaworld]'` (or `pip install "
            "'metaworld>=3.1,<4'`)."
        ) from e
    return metaworld


@functools.lru_cache(maxsize=8)
def _benchmark(kind: str, env_name: str | None, seed: int):
    """The benchmark object, built once per process (it resets each env 50
    times to draw its goals)."""
    metaworld = import_metaworld()
    if kind == "ML1":
        names = list(metaworld.ML1.ENV_NAMES)
        if env_name not in names:
            raise ValueError(
                f"env_config['env_name']={env_name!r} is not a Meta-World v3 env. "
                f"Choose one of {names[:5]}... ({len(names)} in all), e.g. "
                "'reach-v3'."
            )
        return metaworld.ML1(env_name, seed=seed)
    return getattr(metaworld, kind)(seed=seed)  # ML10, ML45


class _MetaWorldEnv(MetaEnv):
    """The task API over a Meta-World benchmark (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(self, config: dict | None, kind: str, env_name: str | None):
        config = dict(config or {})
        self.horizon = int(config.get("horizon", MAX_HORIZON))
        if not 1 <= self.horizon <= MAX_HORIZON:
            raise ValueError(
                f"env_config['horizon']={config.get('horizon')!r}: Meta-World "
                f"episodes last at most {MAX_HORIZON} steps. Set a horizon in "
                f"1..{MAX_HORIZON} (the benchmark's is {MAX_HORIZON})."
            )
        self.oracle = bool(config.get("oracle", False))
        self._render_kwargs = render_kwargs(config)
        self.render_mode = self._render_kwargs["render_mode"]
        self.benchmark = _benchmark(
            kind, env_name, int(config.get("benchmark_seed", 0))
        )
        self.classes = {
            "train": dict(self.benchmark.train_classes),
            "test": dict(self.benchmark.test_classes),
        }
        self.all_env_names = sorted({*self.classes["train"], *self.classes["test"]})
        # The benchmark's tasks per split and env, in its order.
        self.tasks: dict[str, dict[str, list]] = {split: {} for split in SPLITS}
        for split, tasks in (
            ("train", self.benchmark.train_tasks),
            ("test", self.benchmark.test_tasks),
        ):
            for task in tasks:
                self.tasks[split].setdefault(task.env_name, []).append(task)
        size = OBS_SIZE + (
            len(self.task_vector_of(self._first_task())) if self.oracle else 0
        )
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self._envs: dict[str, Any] = {}  # env name -> its Sawyer env, made lazily
        self._env = None
        self._task: dict | None = None
        self._t = 0
        self.set_task(self._first_task())

    def _first_task(self) -> dict:
        name = next(iter(self.tasks["train"]))
        return {"env_name": name, "split": "train", "index": 0}

    # ------------------------------------------------------------- task API
    def _draw(self, split: str, n: int) -> list[dict]:
        pool = [
            {"env_name": name, "split": split, "index": i}
            for name, tasks in self.tasks[split].items()
            for i in range(len(tasks))
        ]
        picks = self.np_random.choice(len(pool), size=n, replace=n > len(pool))
        return [dict(pool[int(i)]) for i in picks]

    def sample_tasks(self, n: int) -> list[dict]:
        """`n` of the benchmark's train tasks (distinct while `n` allows)."""
        return self._draw("train", n)

    def sample_test_tasks(self, n: int) -> list[dict]:
        """`n` of the benchmark's test tasks: the held-out evaluation's."""
        return self._draw("test", n)

    def set_task(self, task: dict) -> None:
        try:
            name, split, index = task["env_name"], task["split"], int(task["index"])
            mw_task = self.tasks[split][name][index]
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise ValueError(
                f"{task!r} is not a task of this benchmark: a task is "
                "{'env_name': ..., 'split': 'train' or 'test', 'index': i} as "
                "`sample_tasks` returns it."
            ) from e
        if name not in self._envs:
            env = self.classes[split][name](**self._render_kwargs)
            self._envs[name] = env
        self._env = self._envs[name]
        if self.oracle:  # the same goal, shown in the observation
            data = pickle.loads(mw_task.data)
            data["partially_observable"] = False
            mw_task = type(mw_task)(env_name=mw_task.env_name, data=pickle.dumps(data))
        self._env.set_task(mw_task)
        self._task = {"env_name": name, "split": split, "index": index}

    def get_task(self) -> dict:
        return dict(self._task)

    def task_vector_of(self, task: dict) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------ gymnasium
    def _obs(self, obs) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if self.oracle:
            obs = np.concatenate([obs, self.task_vector_of(self._task)]).astype(
                np.float32
            )
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.seed(int(seed))
        obs, info = self._env.reset()
        self._t = 0
        return self._obs(obs), dict(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self._env.step(
            np.asarray(action, dtype=np.float64)
        )
        self._t += 1
        truncated = bool(truncated or self._t >= self.horizon)
        info = {k: float(v) if np.isscalar(v) else v for k, v in info.items()}
        return self._obs(obs), float(reward), bool(terminated), truncated, info

    def render(self):
        return self._env.render()

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()


class MetaWorldML1Env(_MetaWorldEnv):
    """ML1: one Meta-World env, its goal positions as tasks.

    env_config: `env_name` (default "reach-v3"), `horizon` (500),
    `benchmark_seed` (0).
    """

    def __init__(self, config: dict | None = None):
        name = (config or {}).get("env_name", "reach-v3")
        super().__init__(config, "ML1", name)

    def task_vector_of(self, task: dict) -> np.ndarray:
        """What the oracle appends (the goal is in the observation already)."""
        return np.zeros(0, np.float32)


class MetaWorldML10Env(MetaWorldML1Env):
    """ML10: a task is (env, goal); ten train envs, five held-out test envs.

    env_config: `horizon` (500), `benchmark_seed` (0).
    """

    kind = "ML10"

    def __init__(self, config: dict | None = None):
        _MetaWorldEnv.__init__(self, config, self.kind, None)

    def task_vector_of(self, task: dict) -> np.ndarray:
        one_hot = np.zeros(len(self.all_env_names), np.float32)
        one_hot[self.all_env_names.index(task["env_name"])] = 1.0
        return one_hot


class MetaWorldML45Env(MetaWorldML10Env):
    """ML45: a task is (env, goal); 45 train envs, five held-out test envs.

    env_config: `horizon` (500), `benchmark_seed` (0).
    """

    kind = "ML45"
