"""Quiet start-up for rllib_maml's entry points: the terminal shows their own
output and real problems, not Ray's start-up notices.

Only entry points call `quiet_ray()` (the `rllib-maml` command line and the
scripts in `examples/`, each with a `--verbose` flag that skips it); the
library never changes the logging of a program that imports it.

What a newcomer running `examples/quickstart.py` saw besides the progress
table, and what removes it here:

- Ray's and Tune's notices: "Started a local Ray instance", the token
  authentication notice, "Trainable.setup took ... seconds", "Install gputil
  for GPU system monitoring", and the DeprecationWarning about
  `RLModule(config=...)` that RLlib's own `RLModule.__init__` logs. All are
  records of loggers under "ray" below ERROR; `ray.init(logging_level=...)`
  sets that logger's level, so `quiet_ray()` returns it for `ray.init`.
  "ray.rllib" keeps its own level (`config.debugging(log_level=...)`, WARN by
  default, set again by every Algorithm): RLlib's warnings about the config
  still show.
- RLlib's "You are running MAML on the new API stack! ... If you don't want
  to use the new API stack, set ...": not here; `MAMLConfig.validate()` skips
  it for everyone, as MAML has no old-stack version.

Output of the Ray workers (env runners, a remote learner) stays in Ray's log
files: the entry points start Ray with `log_to_driver=False`.

One line stays: "E ... core_worker.cc: Actor with class name: '...EnvRunner'
... has constructor arguments in the object store and max_restarts > 0"
(ray-project/ray#53727). Ray's C++ core worker of this process writes it to
stderr at ERROR level, as RLlib passes env runners their config through the
object store and restarts failed ones (`restart_failed_env_runners`). The
only switch, `RAY_BACKEND_LOG_LEVEL=fatal`, prints a line of its own ("Set
ray log level from environment variable ...") and leaves only fatal messages
in the C++ log files of the Ray processes started here; turning restarts off
would change how MAML survives a failed env runner. Neither is done.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

# Level of the "ray" logger in a quiet entry point.
RAY_LOGGING_LEVEL = logging.ERROR


def quiet_ray() -> dict[str, Any]:
    """Hides Ray's start-up notices in this process. For entry points only;
    call it before `ray.init`:

    .. code-block:: python

        ray.init(include_dashboard=False, log_to_driver=False, **quiet_ray())

    Warnings of rllib_maml ("rllib_maml" loggers) and RLlib ("ray.rllib"),
    errors and exceptions still show.

    Returns:
        The `ray.init` keyword arguments that keep Ray's logger quiet.
    """
    logging.getLogger("ray").setLevel(RAY_LOGGING_LEVEL)
    # RLlib's env runners register the same gymnasium id each time they make
    # their env (e.g. when `evaluate` builds baseline algorithms).
    warnings.filterwarnings(
        "ignore", message=r".*Overriding environment", category=UserWarning
    )
    return {"logging_level": RAY_LOGGING_LEVEL}
