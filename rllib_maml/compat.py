"""The private RLlib attributes rllib_maml still needs, reached from one place.

Each is used by one small function here; `tests/test_compat.py` checks that
every attribute in `REQUIRED` exists on the installed RLlib, so a Ray upgrade
that removes one fails loudly, naming it, instead of deep inside sampling.
"""

from __future__ import annotations

from typing import Any

# (owner, attribute, why rllib_maml needs it). Owners: "env_runner" (a built
# `SingleAgentEnvRunner`), "learner" (a built `TorchLearner`), "config" (an
# `AlgorithmConfig`).
REQUIRED: tuple[tuple[str, str, str], ...] = (
    (
        "env_runner",
        "_needs_initial_reset",
        "RLlib's own `sample()` must reset its envs after MAML's batched loop",
    ),
    (
        "env_runner",
        "_increase_sampled_metrics",
        "count env steps and episodes of the batched loop like `sample()` does",
    ),
    ("env_runner", "_seed", "seed the resets of a task-by-task `sample()` call"),
    ("env_runner", "_device", "the device the runner's module lives on"),
    ("env_runner", "_callbacks", "`on_sample_end` after a batched sampling call"),
    ("learner", "_learner_connector", "turn episodes into per-task batches"),
    ("learner", "_module_spec", "build a fresh module (random-init baseline)"),
    ("learner", "_weights_seq_no", "number the meta-policy's weight versions"),
    ("config", "_env_to_module_connector", "detect a custom env-to-module connector"),
    ("config", "_module_to_env_connector", "detect a custom module-to-env connector"),
)


def missing_attributes(owner: str, obj: Any) -> list[str]:
    """The `REQUIRED` attributes of `owner` that `obj` lacks."""
    return [
        name for who, name, _ in REQUIRED if who == owner and not hasattr(obj, name)
    ]


# Env runner ------------------------------------------------------------------
def request_reset(env_runner) -> None:
    """The runner's next `sample()` starts from fresh env resets."""
    env_runner._needs_initial_reset = True


def count_sampled(env_runner, num_steps: int, num_episodes: int) -> None:
    """Adds env steps and episodes to the runner's metrics (as `sample()` does)."""
    env_runner._increase_sampled_metrics(num_steps, num_episodes)


def swap_reset_seed(env_runner, seed: int | None) -> int | None:
    """Sets the seed of the runner's next `sample()` resets; returns the old one."""
    old, env_runner._seed = env_runner._seed, seed
    return old


def device(env_runner):
    """The torch device of the runner's module."""
    return env_runner._device


def callbacks(env_runner) -> list:
    """The runner's callback objects (for `make_callback`)."""
    return env_runner._callbacks


# Learner ---------------------------------------------------------------------
def learner_connector(learner):
    return learner._learner_connector


def module_spec(learner):
    return learner._module_spec


def weights_seq_no(learner) -> int:
    return learner._weights_seq_no


def next_weights_seq_no(learner) -> int:
    learner._weights_seq_no += 1
    return learner._weights_seq_no


# Config ----------------------------------------------------------------------
def has_custom_connectors(config) -> bool:
    """Whether the user configured an env-to-module or module-to-env connector."""
    return (
        config._env_to_module_connector is not None
        or config._module_to_env_connector is not None
    )
