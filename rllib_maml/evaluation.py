"""Few-shot evaluation: adapt to held-out tasks, against baselines.

Every method is a module state evaluated with the same procedure as MAML's
training: sample each held-out task with the method's policy, take one inner
step on that data (the algorithm's `inner_loss` and `inner_lr`), sample again,
... up to `num_steps` steps. The returns after 0, 1, ..., `num_steps` steps are
reported per task, with mean, standard deviation and standard error.

Methods:
- `maml`: the algorithm's meta-policy.
- `random`: a freshly initialized policy (same network).
- `pretrained`: one policy trained on the whole task distribution without
  meta-learning (multi-task PPO, see `rllib_maml.baselines`).
- `oracle`: a policy trained on the oracle env (the task in the observation),
  evaluated on the oracle env: the upper bound.
- `pearl`: a PEARL algorithm (`rllib_maml.pearl`), the paper's protocol: N
  episodes per held-out task one after the other with the policy's mode, the
  first with z from the prior, each later one with z inferred from all earlier
  episodes of the task (episode n: n - 1 episodes of experience).
- `rl2`: an RL² policy (`rllib_maml.rl2`), one trial per held-out task; its
  returns are those of the trial's episodes 1..N, not of inner steps.

All methods share one axis, `experience_episodes`: the episodes of experience
on the task before the evaluated ones (MAML after k inner steps: k x
`episodes_per_task`; RL²'s episode n: n - 1).

The report (`evaluate_with_baselines`) is a dict; `write_report` saves it as
`evaluation.json` (schema: `REPORT_SCHEMA` below), `evaluation.md` and
`adaptation.png`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from rllib_maml.envs.base import (
    env_from_config,
    heldout_task_method,
    sample_tasks_checked,
)
from rllib_maml.sampling import derive_seed

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
METHODS = ("maml", "random", "pretrained", "oracle", "rl2", "pearl")
# Methods measured by episodes of experience, not after inner steps.
BY_EXPERIENCE = ("rl2", "pearl")
BASELINES = ("random", "pretrained", "oracle")
# Held-out tasks come from a task RNG seeded apart from training's (which is
# seeded with `config.seed`), so for continuous task distributions they are
# disjoint from every training draw.
HELDOUT_SEED_OFFSET = 1_000_003

# Documented in the README; `check_report` enforces it.
REPORT_SCHEMA: dict[str, type | tuple] = {
    "schema_version": int,
    "env": str,
    "checkpoint": (str, type(None)),
    "num_tasks": int,
    "seed": int,
    "tasks": list,
    "methods": dict,
}
# The adaptation procedure: required when MAML or a baseline was evaluated
# (absent in a report of RL² alone).
ADAPTATION_REPORT_KEYS: dict[str, type | tuple] = {
    "adaptation_steps": int,
    "episodes_per_task": int,
    "inner_lr": float,
    "inner_loss": str,
}
# Written by this version; reports from before it lack them.
OPTIONAL_REPORT_KEYS: dict[str, type | tuple] = {
    "advantage_baseline": str,
    "videos": dict,  # method -> mp4 path (`video_dir`)
}
METHOD_SCHEMA: dict[str, type | tuple] = {
    "env": str,
    "return_mean": list,  # [adaptation_steps + 1]
    "return_std": list,  # over tasks
    "return_sem": list,  # standard error of the mean over tasks
    "task_returns": list,  # [num_tasks][adaptation_steps + 1]
    "source": str,  # where the policy came from
}
# Written by this version; `rl2` entries must have it (their width is the
# trial's episodes, not `adaptation_steps + 1`).
OPTIONAL_METHOD_KEYS: dict[str, type | tuple] = {
    "experience_episodes": list,
    # Envs that report `info["success"]` (Meta-World): the share of episodes
    # with a successful step, per point and per task and point.
    "success_rate_mean": list,
    "task_success_rates": list,
}


def heldout_tasks(algo, num_tasks: int, seed: int):
    """`num_tasks` held-out tasks (`algo`: an algorithm, or anything with its
    `config`): from the env's `sample_test_tasks` where it has one (a
    benchmark's test split, e.g. Meta-World's), else from its task
    distribution with a held-out seed."""
    config = algo.config
    env = env_from_config(config)
    try:
        env.reset(seed=seed + HELDOUT_SEED_OFFSET)
        return sample_tasks_checked(
            env, num_tasks, config.env, method=heldout_task_method(env)
        )
    finally:
        env.close()


def adaptation_returns(
    algo,
    *,
    tasks: list,
    num_steps: int,
    episodes_per_task: int,
    seed: int,
    module_state: dict | None = None,
    env_runner_group=None,
    success_out: np.ndarray | None = None,
    params_out: list | None = None,
) -> np.ndarray:
    """Mean episode return per task after 0..`num_steps` inner steps.

    Runs the algorithm's own inner loop (`MAML.adapt_to_tasks`) with
    `evaluation=True`: the meta-policy, the env runners' modules and the
    iteration's training data are left untouched. Seeded: the same module
    state, tasks and seed give the same returns.

    Args:
        module_state: a full module state to evaluate instead of the
            meta-policy (a baseline); the learner's meta-policy is restored
            afterwards, and the runners sample it with functional parameters.
        success_out: filled with the success rates ([len(tasks), num_steps +
            1], NaN where the env reports no success).
        params_out: gets the params each step sampled with (see
            `MAML.adapt_to_tasks`).

    Returns:
        Array of shape [len(tasks), num_steps + 1].
    """
    call = algo._call_learner
    saved = None
    if module_state is not None:
        saved = call(lambda learner: learner.module_state())
    try:
        if module_state is not None:
            call(lambda learner: learner.set_module_state(module_state))
        start = call(lambda learner: learner.policy_params_numpy())
        return algo.adapt_to_tasks(
            tasks,
            num_steps=num_steps,
            num_episodes=episodes_per_task,
            seed=derive_seed(seed, HELDOUT_SEED_OFFSET),
            evaluation=True,
            start_params=start,
            env_runner_group=env_runner_group,
            success_out=success_out,
            params_out=params_out,
        )
    finally:
        if saved is not None:
            call(lambda learner: learner.set_module_state(saved))


def summarize(
    returns: np.ndarray,
    env: str,
    source: str,
    experience_episodes: list[int],
    success: np.ndarray | None = None,
) -> dict[str, Any]:
    """One method's entry of the report; `returns` is [tasks, points] with
    `experience_episodes[j]` episodes on the task before point j; `success`
    (same shape, NaN where the env reports none) adds the success rates."""
    n = returns.shape[0]
    std = returns.std(axis=0, ddof=1) if n > 1 else np.zeros(returns.shape[1])
    entry = {
        "env": env,
        "return_mean": returns.mean(axis=0).tolist(),
        "return_std": std.tolist(),
        "return_sem": (std / np.sqrt(n)).tolist(),
        "task_returns": returns.tolist(),
        "source": source,
        "experience_episodes": [int(e) for e in experience_episodes],
    }
    if success is not None and not np.isnan(success).any():
        entry["success_rate_mean"] = success.mean(axis=0).tolist()
        entry["task_success_rates"] = success.tolist()
    return entry


def _measured(algo, summary_args: tuple, **run) -> dict[str, Any]:
    """`adaptation_returns(algo, **run)` summarized with its success rates."""
    success = np.full((len(run["tasks"]), run["num_steps"] + 1), np.nan)
    returns = adaptation_returns(algo, success_out=success, **run)
    return summarize(returns, *summary_args, success=success)


def evaluate_with_baselines(
    algo,
    *,
    num_tasks: int = 20,
    num_steps: int = 3,
    episodes_per_task: int | None = None,
    seed: int = 0,
    baselines: tuple[str, ...] = ("random", "pretrained", "oracle"),
    pretrained_state: dict | None = None,
    oracle_state: dict | None = None,
    oracle_env: str | None = None,
    pretrained_env: Any = None,
    baseline_iterations: int = 50,
    checkpoint: str | None = None,
    rl2=None,
    pearl=None,
    video_dir: str | None = None,
    log: Callable[[str], None] = logger.info,
) -> dict[str, Any]:
    """Evaluates MAML, the baselines and (optionally) RL² on the same
    held-out tasks.

    Args:
        algo: a built MAML algorithm (trained, or restored from a checkpoint).
        num_tasks: held-out tasks to adapt to.
        num_steps: inner steps per task (may exceed the training setting).
        episodes_per_task: episodes per task and step; default: the
            algorithm's `episodes_per_task`.
        seed: seeds the held-out tasks and all evaluation sampling.
        baselines: any of "random", "pretrained", "oracle".
        pretrained_state, oracle_state: module states to use for those
            baselines; if missing they are trained with multi-task PPO for
            `baseline_iterations` iterations.
        oracle_env: the oracle env's registered name; default: the shipped
            env's `...Oracle-v0` variant.
        pretrained_env: the task distribution the pretrained baseline trains
            on; default: the evaluated env (another where the held-out env is
            not the training distribution, `evaluate_on_env`).
        checkpoint: recorded in the report.
        rl2: an RL² algorithm or `rllib_maml.rl2.RL2Policy` on the same env:
            one trial per held-out task (method `rl2`).
        pearl: a PEARL algorithm on the same env: `num_steps + 1` episodes per
            held-out task with a growing context (method `pearl`).
        video_dir: if given, writes `<method>.mp4` there for MAML and the
            random and pretrained baselines: one episode on the first held-out
            task after 0..`num_steps` inner steps (`rllib_maml.video`; MuJoCo
            and Meta-World envs).
        log: called with a line of progress per method.
    """
    from rllib_maml import baselines as bl

    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"Unknown baseline(s) {unknown}; choose from {BASELINES}.")
    config = algo.config
    if pearl is not None and str(pearl.config.env) != str(config.env):
        raise ValueError(
            f"The PEARL algorithm's env {pearl.config.env!r} is not MAML's "
            f"{config.env!r}; evaluate it on its own (`evaluate_pearl`)."
        )
    if rl2 is not None and str(rl2.config.env) != str(config.env):
        raise ValueError(
            f"The RL² policy's env {rl2.config.env!r} is not MAML's "
            f"{config.env!r}; both must be evaluated on the same held-out tasks. "
            "Pass an RL² checkpoint trained on the same env."
        )
    if "oracle" in baselines:  # before any work: a custom env may have none
        oracle_env = oracle_env or bl.oracle_env_name(config.env)
    if video_dir is not None:  # as early: the writer, OpenGL, a rendering env
        from rllib_maml import video

        video.check_can_record(config)
    episodes = episodes_per_task or config.episodes_per_task
    tasks = heldout_tasks(algo, num_tasks, seed)
    run = dict(tasks=tasks, num_steps=num_steps, episodes_per_task=episodes, seed=seed)
    experience = [k * episodes for k in range(num_steps + 1)]
    methods: dict[str, dict] = {}
    filmed: dict[str, list] = {}  # method -> the params each step sampled with

    def params_out(method: str) -> list | None:
        return None if video_dir is None else filmed.setdefault(method, [])

    log(f"Evaluating maml on {num_tasks} held-out tasks, {num_steps} steps ...")
    methods["maml"] = _measured(
        algo,
        (config.env, checkpoint or "algorithm", experience),
        params_out=params_out("maml"),
        **run,
    )
    if "random" in baselines:
        log("Evaluating random init ...")
        state = algo._call_learner(lambda learner: learner.fresh_module_state(seed))
        methods["random"] = _measured(
            algo,
            (config.env, f"fresh module, torch seed {seed}", experience),
            module_state=state,
            params_out=params_out("random"),
            **run,
        )

    def given_or_trained(name: str, state: dict | None, env) -> tuple[dict, str]:
        if state is not None:
            return state, "given module state"
        log(f"Training the {name} baseline ({baseline_iterations} PPO iterations)")
        state = bl.train_multitask_ppo(
            config, env, num_iterations=baseline_iterations, seed=seed
        )
        return state, f"multi-task PPO on {env}, {baseline_iterations} iterations"

    if "pretrained" in baselines:
        state, source = given_or_trained(
            "pretrained", pretrained_state, pretrained_env or config.env
        )
        log("Evaluating pretrained ...")
        methods["pretrained"] = _measured(
            algo,
            (config.env, source, experience),
            module_state=state,
            params_out=params_out("pretrained"),
            **run,
        )
    if "oracle" in baselines:
        oracle_state, source = given_or_trained("oracle", oracle_state, oracle_env)
        log("Evaluating oracle ...")
        oracle_algo = bl.build_like(algo, env=oracle_env)
        try:
            methods["oracle"] = _measured(
                oracle_algo,
                (oracle_env, source, experience),
                module_state=oracle_state,
                **run,
            )
        finally:
            oracle_algo.stop()
    if rl2 is not None:
        methods["rl2"] = _rl2_entry(rl2, tasks, seed, log)
    if pearl is not None:
        methods["pearl"] = _pearl_entry(pearl, tasks, seed, num_steps + 1, log)
    videos = None
    if video_dir is not None:
        videos = video.record_adaptation_videos(  # the first task's params
            algo,
            video_dir,
            params={name: [by_task[0] for by_task in p] for name, p in filmed.items()},
            task=tasks[0],
            seed=seed,
            log=log,
        )

    report = {
        "schema_version": SCHEMA_VERSION,
        "env": str(config.env),
        "checkpoint": checkpoint,
        "num_tasks": num_tasks,
        "adaptation_steps": num_steps,
        "episodes_per_task": episodes,
        "inner_lr": float(config.inner_lr),
        "inner_loss": config.inner_loss,
        "advantage_baseline": config.advantage_baseline,
        "seed": seed,
        "tasks": [to_jsonable(task) for task in tasks],
        "methods": methods,
    }
    if videos is not None:
        report["videos"] = videos
    check_report(report)
    return report


def evaluate_on_env(algo, env: str):
    """A MAML algorithm like `algo` (config, meta-policy) on another env with
    the same spaces: a held-out task family, e.g. `HalfCheetahBackward-v0`
    for a policy meta-trained on `HalfCheetahRandDirec-v0`. The caller stops
    both."""
    from rllib_maml.baselines import build_like

    def spaces(a):
        return a._call_learner(
            lambda learner: (
                learner._maml_module().observation_space,
                learner._maml_module().action_space,
            )
        )

    state = algo._call_learner(lambda learner: learner.module_state())
    moved = build_like(algo, env=env)
    try:
        if spaces(moved) != spaces(algo):
            raise ValueError(
                f"{env!r} has the observation and action spaces {spaces(moved)}, "
                f"the policy meta-trained on {algo.config.env!r} {spaces(algo)}. "
                "Evaluate on an env with the same spaces."
            )
        moved._call_learner(lambda learner: learner.set_module_state(state))
    except BaseException:
        moved.stop()
        raise
    return moved


def _rl2_entry(rl2, tasks: list, seed: int, log: Callable[[str], None]) -> dict:
    trials = rl2.config.episodes_per_trial
    log(f"Evaluating rl2 on {len(tasks)} held-out tasks, {trials} episodes per trial")
    return summarize(
        rl2.trial_returns(tasks, seed=derive_seed(seed, HELDOUT_SEED_OFFSET)),
        str(rl2.config.env),
        f"RL², {trials} episodes per trial",
        list(range(trials)),
    )


def _pearl_entry(pearl, tasks: list, seed: int, num_episodes: int, log) -> dict:
    log(
        f"Evaluating pearl on {len(tasks)} held-out tasks, {num_episodes} episodes "
        "each, the context growing online"
    )
    success = np.full((len(tasks), num_episodes), np.nan)
    returns = pearl.context_returns(
        tasks,
        num_episodes=num_episodes,
        seed=derive_seed(seed, HELDOUT_SEED_OFFSET),
        success_out=success,
    )
    return summarize(
        returns,
        str(pearl.config.env),
        f"PEARL, {num_episodes} episodes with a growing context",
        list(range(num_episodes)),
        success=success,
    )


def evaluate_pearl(
    pearl,
    *,
    num_tasks: int = 20,
    num_episodes: int = 3,
    seed: int = 0,
    checkpoint: str | None = None,
    log: Callable[[str], None] = logger.info,
) -> dict[str, Any]:
    """Evaluates PEARL alone on the held-out tasks MAML's evaluation would use
    (same env and seed: the same tasks); a report with the method `pearl`
    (episode n's return after n - 1 episodes in the context)."""
    tasks = heldout_tasks(pearl, num_tasks, seed)
    entry = _pearl_entry(pearl, tasks, seed, num_episodes, log)
    return _report_of_one(pearl, "pearl", entry, tasks, seed, checkpoint)


def _report_of_one(algo, method, entry, tasks, seed, checkpoint) -> dict[str, Any]:
    """The report of one method measured by episodes of experience."""
    report = {
        "schema_version": SCHEMA_VERSION,
        "env": str(algo.config.env),
        "checkpoint": checkpoint,
        "num_tasks": len(tasks),
        "seed": seed,
        "tasks": [to_jsonable(task) for task in tasks],
        "methods": {method: entry},
    }
    check_report(report)
    return report


def evaluate_rl2(
    rl2,
    *,
    num_tasks: int = 20,
    seed: int = 0,
    checkpoint: str | None = None,
    log: Callable[[str], None] = logger.info,
) -> dict[str, Any]:
    """Evaluates RL² alone on the held-out tasks MAML's evaluation would use
    (same env and seed: the same tasks and seed stream); a report with the
    method `rl2` only.

    Args:
        rl2: an RL² algorithm or `rllib_maml.rl2.RL2Policy`.
    """
    tasks = heldout_tasks(rl2, num_tasks, seed)
    entry = _rl2_entry(rl2, tasks, seed, log)
    return _report_of_one(rl2, "rl2", entry, tasks, seed, checkpoint)


def to_jsonable(value: Any) -> Any:
    """Tasks (numpy arrays, scalars, dicts of them) as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_report(report: dict[str, Any]) -> None:
    """Raises ValueError if `report` does not follow `REPORT_SCHEMA`."""

    def check(obj, schema, where):
        for key, kind in schema.items():
            if key not in obj:
                raise ValueError(f"{where}: missing key {key!r}.")
            if not isinstance(obj[key], kind):
                raise ValueError(f"{where}: {key!r} is {type(obj[key]).__name__}.")

    check(report, REPORT_SCHEMA, "report")
    if set(report["methods"]) - set(BY_EXPERIENCE):
        check(report, ADAPTATION_REPORT_KEYS, "report")
    check(
        report, {k: v for k, v in OPTIONAL_REPORT_KEYS.items() if k in report}, "report"
    )
    for name, entry in report["methods"].items():
        if name not in METHODS:
            raise ValueError(f"report: unknown method {name!r}.")
        check(entry, METHOD_SCHEMA, f"methods[{name!r}]")
        where = f"methods[{name!r}]"
        check(
            entry, {k: v for k, v in OPTIONAL_METHOD_KEYS.items() if k in entry}, where
        )
        if name in BY_EXPERIENCE and "experience_episodes" not in entry:
            raise ValueError(f"{where}: missing key 'experience_episodes'.")
        width = len(experience_episodes(report, name))
        if name not in BY_EXPERIENCE and width != report["adaptation_steps"] + 1:
            raise ValueError(
                f"{where}['experience_episodes'] needs "
                f"{report['adaptation_steps'] + 1} values."
            )
        for key in ("return_mean", "return_std", "return_sem"):
            if len(entry[key]) != width:
                raise ValueError(f"methods[{name!r}][{key!r}] needs {width} values.")
        for key in ("task_returns", "task_success_rates"):
            rows = entry.get(key, [[None] * width] * report["num_tasks"])
            if len(rows) != report["num_tasks"] or any(len(r) != width for r in rows):
                raise ValueError(
                    f"methods[{name!r}][{key!r}] must be "
                    f"[{report['num_tasks']}][{width}]."
                )
        if len(entry.get("success_rate_mean", [None] * width)) != width:
            raise ValueError(
                f"methods[{name!r}]['success_rate_mean'] needs {width} values."
            )


def experience_episodes(report: dict[str, Any], method: str) -> list[int]:
    """Episodes on the task before each of `method`'s returns (reports from
    before this key: inner steps x `episodes_per_task`)."""
    entry = report["methods"][method]
    if "experience_episodes" in entry:
        return entry["experience_episodes"]
    steps = range(report["adaptation_steps"] + 1)
    return [k * report["episodes_per_task"] for k in steps]


def markdown_table(report: dict[str, Any]) -> str:
    """Mean return (± standard error) after each number of inner steps; with
    RL², every method by episodes of experience on the task."""
    if not set(report["methods"]) - set(BY_EXPERIENCE):  # RL² or PEARL alone
        return (
            "\n".join(
                [
                    f"Held-out tasks: {report['num_tasks']} of {report['env']}, "
                    f"seed {report['seed']}.",
                    "",
                    *_experience_table(report),
                ]
            )
            + "\n"
        )
    steps = range(report["adaptation_steps"] + 1)
    lines = [
        f"Held-out tasks: {report['num_tasks']} of {report['env']}, "
        f"{report['episodes_per_task']} episodes per task and step, inner lr "
        f"{report['inner_lr']}, "
        + (
            f"{report['advantage_baseline']} baseline, "
            if "advantage_baseline" in report
            else ""
        )
        + f"seed {report['seed']}.",
        "",
        "| method | " + " | ".join(f"{k} steps" for k in steps) + " |",
        "|---|" + "---:|" * len(steps),
    ]
    for name, entry in report["methods"].items():
        if name in BY_EXPERIENCE:
            continue
        cells = [
            f"{m:.2f} ± {s:.2f}"
            for m, s in zip(entry["return_mean"], entry["return_sem"], strict=True)
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    rates = {
        name: entry["success_rate_mean"]
        for name, entry in report["methods"].items()
        if "success_rate_mean" in entry
    }
    if rates:
        lines += [
            "",
            "Success rate (share of episodes with a successful step):",
            "",
            "| method | " + " | ".join(f"{k} steps" for k in steps) + " |",
            "|---|" + "---:|" * len(steps),
        ]
        for name, rate in rates.items():
            lines.append(f"| {name} | " + " | ".join(f"{r:.2f}" for r in rate) + " |")
    if set(BY_EXPERIENCE) & set(report["methods"]):
        lines += ["", *_experience_table(report)]
    return "\n".join(lines) + "\n"


def _experience_table(report: dict[str, Any]) -> list[str]:
    """All methods by episodes of experience on the task (RL² included)."""
    points = sorted(
        {e for name in report["methods"] for e in experience_episodes(report, name)}
    )
    lines = [
        "By episodes of experience on the task before the evaluated episodes "
        "(MAML: inner steps x episodes per task; RL²: earlier episodes of the "
        "trial; PEARL: earlier episodes in the context):",
        "",
        "| method | " + " | ".join(str(e) for e in points) + " |",
        "|---|" + "---:|" * len(points),
    ]
    for name, entry in report["methods"].items():
        at = dict(
            zip(
                experience_episodes(report, name),
                zip(entry["return_mean"], entry["return_sem"], strict=True),
                strict=True,
            )
        )
        cells = [f"{at[e][0]:.2f} ± {at[e][1]:.2f}" if e in at else "" for e in points]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def write_report(report: dict[str, Any], output_dir: str) -> dict[str, str]:
    """Writes evaluation.json, evaluation.md and adaptation.png; returns paths."""
    from rllib_maml.plots import plot_adaptation

    check_report(report)
    os.makedirs(output_dir, exist_ok=True)
    paths = {
        "json": os.path.join(output_dir, "evaluation.json"),
        "markdown": os.path.join(output_dir, "evaluation.md"),
        "png": os.path.join(output_dir, "adaptation.png"),
    }
    with open(paths["json"], "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    with open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write(markdown_table(report))
    plot_adaptation(report, paths["png"])
    return paths
