"""The `rllib-maml` command line: train, evaluate, plot.

rllib-maml train --env rllib_maml/Navigation2D-v0 --stop-iters 30
rllib-maml train --config examples/tuned/navigation2d.yaml --set training.inner_lr=0.05
rllib-maml train --grid training.inner_lr=0.05,0.1 --num-samples 2   # Tune sweep
rllib-maml evaluate --checkpoint DIR --baselines random,pretrained,oracle
rllib-maml plot RESULT_DIR
"""

from __future__ import annotations

import argparse
import csv
import inspect
import logging
import os
import sys
from typing import Any

import yaml

DEFAULT_ENV = "rllib_maml/Navigation2D-v0"
# Builder methods of MAMLConfig that `--config` and `--set` may address.
SECTIONS = (
    "environment",
    "env_runners",
    "training",
    "evaluation",
    "rl_module",
    "learners",
    "fault_tolerance",
    "debugging",
    "resources",
    "reporting",
    "checkpointing",
)
STOP_KEYS = ("training_iteration", "num_env_steps_sampled_lifetime")
# `--algo`: its config class in `rllib_maml` (the config names the algorithm).
ALGOS = {"maml": "MAMLConfig", "rl2": "RL2Config", "pearl": "PEARLConfig"}
DISPLAY_NAMES = {"RL2": "RL²"}
VERBOSE_HELP = "also show Ray's start-up notices (hidden by default)"


class CLIError(Exception):
    """A usage problem, printed as one line."""


# ---------------------------------------------------------------- settings
def config_class(algo: str = "maml") -> type:
    """The config class of `--algo`."""
    import rllib_maml

    return getattr(rllib_maml, ALGOS[algo])


def section_keys(section: str, algo: str = "maml") -> set[str]:
    """The keyword arguments `<Algo>Config.<section>(...)` accepts."""
    keys: set[str] = set()
    for cls in config_class(algo).__mro__:
        if section in vars(cls):
            for name, param in inspect.signature(vars(cls)[section]).parameters.items():
                if param.kind == param.KEYWORD_ONLY:
                    keys.add(name)
    return keys


def parse_setting(text: str, flag: str, algo: str = "maml") -> tuple[str, str, Any]:
    """`section.key=value` (or `key=value` if one section has that key)."""
    if "=" not in text:
        raise CLIError(
            f"{flag} {text!r}: expected KEY=VALUE, e.g. training.inner_lr=0.05"
        )
    key, raw = text.split("=", 1)
    section, name = resolve_key(key.strip(), flag, algo)
    try:
        value = yaml.safe_load(raw) if raw else None
    except yaml.YAMLError as e:
        raise CLIError(f"{flag} {text!r}: the value is not valid YAML.") from e
    return section, name, value


def resolve_key(key: str, flag: str, algo: str = "maml") -> tuple[str, str]:
    if "." in key:
        section, name = key.split(".", 1)
        if section not in SECTIONS:
            raise CLIError(
                f"unknown setting {key!r} in {flag}: no section {section!r}; sections "
                f"are {', '.join(SECTIONS)}."
            )
        if name not in section_keys(section, algo):
            raise CLIError(
                f"unknown setting {key!r} in {flag}: "
                f"`{config_class(algo).__name__}.{section}()` has no argument "
                f"{name!r}."
            )
        return section, name
    owners = [s for s in SECTIONS if key in section_keys(s, algo)]
    if len(owners) != 1:
        why = "no section has it" if not owners else f"it is in {', '.join(owners)}"
        raise CLIError(
            f"unknown setting {key!r} in {flag}: {why}; write it as SECTION.{key} "
            "(e.g. training.inner_lr)."
        )
    return owners[0], key


def load_yaml(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            spec = yaml.safe_load(f) or {}
    except OSError as e:
        raise CLIError(f"--config {path!r}: {e.strerror}.") from e
    except yaml.YAMLError as e:
        raise CLIError(f"--config {path!r}: not valid YAML ({e}).") from e
    if not isinstance(spec, dict) or not set(spec) <= {"algo", "env", "stop", "config"}:
        raise CLIError(
            f"--config {path!r}: expected a mapping with keys algo, env, stop, config."
        )
    if spec.get("algo", "maml") not in ALGOS:
        raise CLIError(
            f"--config {path!r}: `algo` must be one of {sorted(ALGOS)}, got "
            f"{spec['algo']!r}."
        )
    sections = spec.get("config") or {}
    if not isinstance(sections, dict) or not all(
        isinstance(v, dict) or v is None for v in sections.values()
    ):
        raise CLIError(
            f"--config {path!r}: `config` must map builder sections (e.g. training) "
            "to mappings of settings."
        )
    if not isinstance(spec.get("stop") or {}, dict):
        raise CLIError(f"--config {path!r}: `stop` must be a mapping.")
    return spec


def build_config(args) -> tuple[Any, dict, dict[tuple[str, str], list]]:
    """(config, stop criteria, grid values) from --algo, --config, --set, flags."""
    spec = load_yaml(args.config) if args.config else {}
    given = getattr(args, "algo", None)
    if given and spec.get("algo", given) != given:
        raise CLIError(
            f"--algo {given} but --config {args.config!r} is for {spec['algo']}; "
            "leave out --algo or use a config of that algorithm."
        )
    algo = given or spec.get("algo") or "maml"
    settings: dict[str, dict[str, Any]] = {}
    for section, values in (spec.get("config") or {}).items():
        for key, value in (values or {}).items():
            resolve_key(f"{section}.{key}", "--config", algo)
            settings.setdefault(section, {})[key] = value
    for text in args.set or []:
        section, key, value = parse_setting(text, "--set", algo)
        settings.setdefault(section, {})[key] = value
    grid = {}
    for text in args.grid or []:
        section, key, value = parse_setting(text, "--grid", algo)
        if isinstance(value, str) and "," in value:  # training.inner_lr=0.05,0.1
            value = [yaml.safe_load(v) for v in value.split(",")]
        grid[(section, key)] = value if isinstance(value, list) else [value]
    if args.num_env_runners is not None:
        settings.setdefault("env_runners", {})["num_env_runners"] = args.num_env_runners
    if args.seed is not None:
        settings.setdefault("debugging", {})["seed"] = args.seed

    config = config_class(algo)().environment(
        args.env or spec.get("env") or DEFAULT_ENV
    )
    for section, kwargs in settings.items():
        getattr(config, section)(**kwargs)
    stop = dict(spec.get("stop") or {})
    if args.stop_iters is not None:
        stop = {"training_iteration": args.stop_iters}
    if args.stop_timesteps is not None:
        stop = {"num_env_steps_sampled_lifetime": args.stop_timesteps}
    unknown = set(stop) - set(STOP_KEYS)
    if unknown:
        raise CLIError(f"unknown stop key(s) {sorted(unknown)}; use {STOP_KEYS}.")
    return config, stop or {"training_iteration": 30}, grid


# ------------------------------------------------------------------- train
PROGRESS_COLUMNS = (
    "training_iteration",
    "time_total_s",
    "env_runners/num_env_steps_sampled_lifetime",
    "env_runners/episode_return_mean",
    "adaptation_delta",
    "num_tasks",
)


def return_columns(config) -> list[str]:
    """progress.csv's per-step (MAML) or per-episode (RL²) return columns; all
    of them from the first row, before any RL² trial has ended."""
    from rllib_maml.maml import episode_return_mean_adapt_key
    from rllib_maml.pearl import PEARLConfig
    from rllib_maml.pearl.pearl import EPISODE_RETURN_MEAN_POSTERIOR
    from rllib_maml.rl2 import RL2Config, episode_return_key

    if isinstance(config, PEARLConfig):
        keys = [EPISODE_RETURN_MEAN_POSTERIOR]
    elif isinstance(config, RL2Config):
        keys = [episode_return_key(n) for n in range(1, config.episodes_per_trial + 1)]
    else:
        steps = range(1, config.inner_adaptation_steps + 1)
        keys = [episode_return_mean_adapt_key(k) for k in steps]
    return [f"env_runners/{key}" for key in keys]


def _progress_row(result: dict, columns: list[str]) -> dict:
    from ray.tune.utils import flatten_dict

    flat = flatten_dict(result, delimiter="/")
    return {c: flat.get(c) for c in [*PROGRESS_COLUMNS, *columns]}


def stop_reached(result: dict, stop: dict) -> bool:
    """Whether `result` meets the stop criteria (`STOP_KEYS`)."""
    if "training_iteration" in stop and (
        result["training_iteration"] >= stop["training_iteration"]
    ):
        return True
    steps = result["env_runners"].get("num_env_steps_sampled_lifetime", 0)
    return steps >= stop.get("num_env_steps_sampled_lifetime", float("inf"))


def ray_init_kwargs(args) -> dict[str, Any]:
    """`ray.init` arguments: quiet unless --verbose (see `rllib_maml.quiet`)."""
    from rllib_maml.quiet import quiet_ray

    quiet = {} if args.verbose else quiet_ray()
    return {"address": args.address, "include_dashboard": False, **quiet}


def cmd_train(args) -> int:
    import ray

    init_kwargs = ray_init_kwargs(args)
    config, stop, grid = build_config(args)
    checked = config.copy(copy_frozen=False)
    for (section, key), values in grid.items():
        getattr(checked, section)(**{key: values[0]})
    checked.validate()
    checkpoint_dir = os.path.abspath(args.checkpoint_dir)
    ray.init(log_to_driver=False, **init_kwargs)
    if grid or args.num_samples > 1:
        return _train_with_tune(args, config, stop, grid, checkpoint_dir)

    from rllib_maml.progress import HEADER, progress_line

    algo = config.build_algo()
    os.makedirs(checkpoint_dir, exist_ok=True)
    progress_path = os.path.join(checkpoint_dir, "progress.csv")
    name = config.algo_class.__name__
    display = DISPLAY_NAMES.get(name, name)
    print(f"Training {display} on {config.env}; stop at {stop}.", flush=True)
    print(HEADER, flush=True)
    writer, columns = None, return_columns(config)
    try:
        with open(progress_path, "w", newline="", encoding="utf-8") as f:
            while True:
                result = algo.train()
                print(progress_line(result), flush=True)
                row = _progress_row(result, columns)
                if writer is None:
                    writer = csv.DictWriter(
                        f, fieldnames=list(row), extrasaction="ignore"
                    )
                    writer.writeheader()
                writer.writerow(row)
                f.flush()
                done = stop_reached(result, stop)
                iteration = result["training_iteration"]
                freq = args.checkpoint_freq
                if done or (freq and iteration % freq == 0):
                    path = algo.save_to_path(os.path.join(checkpoint_dir, "checkpoint"))
                if done:
                    break
    finally:
        algo.stop()
    print(f"Checkpoint: {path}\nProgress: {progress_path}", flush=True)
    return 0


def _train_with_tune(args, config, stop, grid, storage) -> int:
    import ray
    from ray import tune

    from rllib_maml.progress import post_adaptation_return, pre_adaptation_return

    need = getattr(config, "num_cpus_for_main_process", 1) + (
        config.num_env_runners * config.num_cpus_per_env_runner
    )
    have = ray.cluster_resources().get("CPU", 0)
    if need > have:
        raise CLIError(
            f"each trial needs {need:g} CPUs (the trial plus {config.num_env_runners} "
            f"env runners x {config.num_cpus_per_env_runner:g}) but the cluster has "
            f"{have:g}; set --set env_runners.num_cpus_per_env_runner=0.5 or fewer "
            "--num-env-runners."
        )
    for (section, key), values in grid.items():
        getattr(config, section)(**{key: tune.grid_search(values)})
    tuner = tune.Tuner(
        config.algo_class,
        param_space=config,
        tune_config=tune.TuneConfig(num_samples=args.num_samples),
        run_config=tune.RunConfig(
            name="rllib-maml",
            storage_path=storage,
            stop=stop,
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_frequency=args.checkpoint_freq or 0, checkpoint_at_end=True
            ),
        ),
    )
    results = tuner.fit()
    print(f"{'trial':<40} {'pre-adapt':>11} {'post-adapt':>11}  settings")
    for result in results:
        if result.error:
            print(f"{os.path.basename(result.path):<40} failed: {result.error}")
            continue
        m = result.metrics
        settings = {f"{s}.{k}": m["config"].get(k) for s, k in grid}
        print(
            f"{os.path.basename(result.path):<40} "
            f"{pre_adaptation_return(m):>11.2f} "
            f"{post_adaptation_return(m):>11.2f}  {settings}"
        )
    print(f"Results and checkpoints: {os.path.join(storage, 'rllib-maml')}")
    return 1 if results.errors else 0


# ---------------------------------------------------------------- evaluate
def cmd_evaluate(args) -> int:
    import ray
    from ray.rllib.algorithms.algorithm import Algorithm

    from rllib_maml import MAML, PEARL
    from rllib_maml.baselines import module_state_from_checkpoint
    from rllib_maml.evaluation import (
        BASELINES,
        evaluate_on_env,
        evaluate_pearl,
        evaluate_rl2,
        evaluate_with_baselines,
    )
    from rllib_maml.rl2 import RL2Policy

    init_kwargs = ray_init_kwargs(args)
    given = args.baselines  # None: not given (all three, or none for RL² alone)
    text = ",".join(BASELINES) if given is None else given
    baselines = tuple(b for b in text.split(",") if b)
    valid = BASELINES
    bad = [b for b in baselines if b not in valid]
    if bad:
        raise CLIError(f"--baselines: unknown {bad}; choose from {','.join(valid)}.")
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise CLIError(f"--output {args.output!r}: exists and is not a directory.")
    os.makedirs(args.output, exist_ok=True)  # fails now, not after the evaluation
    for flag, path in (
        ("--checkpoint", args.checkpoint),
        ("--pretrained-checkpoint", args.pretrained_checkpoint),
        ("--oracle-checkpoint", args.oracle_checkpoint),
        ("--rl2-checkpoint", args.rl2_checkpoint),
        ("--pearl-checkpoint", args.pearl_checkpoint),
    ):
        if path and not os.path.isdir(path):
            raise CLIError(f"{flag} {path!r}: no such checkpoint directory.")
    try:  # an RL² checkpoint: RL² alone (baselines adapt with MAML's steps)
        rl2_alone = RL2Policy.from_checkpoint(os.path.abspath(args.checkpoint))
    except (ValueError, FileNotFoundError):
        rl2_alone = None
    if rl2_alone is None:
        ray.init(log_to_driver=False, **init_kwargs)
    else:  # evaluated on a local env runner: no Ray to start
        if args.env:
            raise CLIError(
                f"--env: {args.checkpoint!r} is an RL² checkpoint, evaluated on "
                "its own env; --env moves a MAML checkpoint to another env."
            )
        if args.video:
            raise CLIError(
                f"--video: {args.checkpoint!r} is an RL² checkpoint; videos show "
                "MAML and the baselines adapting. Pass a MAML checkpoint as "
                "--checkpoint."
            )
        if given or args.rl2_checkpoint:
            raise CLIError(
                f"--checkpoint {args.checkpoint!r} is an RL² checkpoint: it is "
                "evaluated alone. The baselines and a second RL² policy are "
                "evaluated next to a MAML checkpoint: pass that as --checkpoint and "
                "this one as --rl2-checkpoint."
            )
        report = evaluate_rl2(
            rl2_alone,
            num_tasks=args.tasks,
            seed=args.seed,
            checkpoint=os.path.abspath(args.checkpoint),
            log=lambda line: print(line, flush=True),
        )
        return _write_evaluation(report, args.output)
    # Any algorithm's checkpoint loads; the checks below name a wrong one.
    algo = Algorithm.from_checkpoint(os.path.abspath(args.checkpoint))
    pearl = None
    try:
        if isinstance(algo, PEARL):  # PEARL alone, as RL² alone above
            extra = [
                flag
                for flag, value in (
                    ("--env", args.env),
                    ("--video", args.video),
                    ("--baselines", given),
                    ("--rl2-checkpoint", args.rl2_checkpoint),
                    ("--pearl-checkpoint", args.pearl_checkpoint),
                )
                if value
            ]
            if extra:
                raise CLIError(
                    f"{extra[0]}: {args.checkpoint!r} is a PEARL checkpoint, evaluated "
                    "alone on its env. Pass a MAML checkpoint as --checkpoint and "
                    "this one as --pearl-checkpoint to evaluate them side by side."
                )
            report = evaluate_pearl(
                algo,
                num_tasks=args.tasks,
                num_episodes=args.steps + 1,
                seed=args.seed,
                checkpoint=os.path.abspath(args.checkpoint),
                log=lambda line: print(line, flush=True),
            )
            return _write_evaluation(report, args.output)
        if not isinstance(algo, MAML):
            raise CLIError(
                f"--checkpoint {args.checkpoint!r} is a {type(algo).__name__} "
                "checkpoint, not MAML's. Pass a MAML checkpoint as --checkpoint "
                "and an RL² one as --rl2-checkpoint."
            )
        trained_on = algo.config.env  # a name, or an env class
        if args.env and args.env != str(trained_on):
            try:
                moved = evaluate_on_env(algo, args.env)
            except ValueError as e:
                raise CLIError(f"--env: {e}") from e
            algo.stop()
            algo = moved
        rl2 = None
        if args.rl2_checkpoint:  # only its policy: no second set of runners
            try:
                rl2 = RL2Policy.from_checkpoint(os.path.abspath(args.rl2_checkpoint))
            except ValueError as e:
                raise CLIError(f"--rl2-checkpoint: {e}") from e
        if args.pearl_checkpoint:
            pearl = Algorithm.from_checkpoint(os.path.abspath(args.pearl_checkpoint))
            if not isinstance(pearl, PEARL):
                raise CLIError(
                    f"--pearl-checkpoint {args.pearl_checkpoint!r} is a "
                    f"{type(pearl).__name__} checkpoint, not PEARL's."
                )
        report = evaluate_with_baselines(
            algo,
            num_tasks=args.tasks,
            num_steps=args.steps,
            episodes_per_task=args.episodes_per_task,
            seed=args.seed,
            baselines=baselines,
            pretrained_state=(
                module_state_from_checkpoint(args.pretrained_checkpoint)
                if args.pretrained_checkpoint
                else None
            ),
            oracle_state=(
                module_state_from_checkpoint(args.oracle_checkpoint)
                if args.oracle_checkpoint
                else None
            ),
            oracle_env=args.oracle_env,
            pretrained_env=trained_on,
            baseline_iterations=args.baseline_iters,
            checkpoint=os.path.abspath(args.checkpoint),
            rl2=rl2,
            pearl=pearl,
            video_dir=args.video,
            log=lambda line: print(line, flush=True),
        )
    finally:
        algo.stop()
        if pearl is not None:
            pearl.stop()
    return _write_evaluation(report, args.output)


def _write_evaluation(report: dict, output: str) -> int:
    from rllib_maml.evaluation import write_report

    paths = write_report(report, output)
    with open(paths["markdown"], encoding="utf-8") as f:
        print(f.read())
    print("Wrote " + ", ".join(paths.values()))
    return 0


# -------------------------------------------------------------------- plot
def cmd_plot(args) -> int:
    import json

    from rllib_maml.evaluation import check_report
    from rllib_maml.plots import plot_adaptation, plot_training_curves

    target = args.result_dir
    if not os.path.exists(target):
        raise CLIError(f"{target!r}: no such file or directory.")
    written = []
    report_path = os.path.join(target, "evaluation.json")
    if os.path.isfile(report_path):
        with open(report_path, encoding="utf-8") as f:
            report = json.load(f)
        check_report(report)
        written.append(
            plot_adaptation(
                report, args.output or os.path.join(target, "adaptation.png")
            )
        )
    else:
        out = args.output or os.path.join(
            target if os.path.isdir(target) else os.path.dirname(target),
            "training_curve.png",
        )
        written.append(plot_training_curves(target, out))
    print("Wrote " + ", ".join(written))
    return 0


# -------------------------------------------------------------------- main
def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rllib-maml", description="MAML meta-RL on Ray RLlib."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train",
        help="meta-train MAML or RL² (one run, or a Tune sweep)",
        description="Meta-trains MAML (or RL² with --algo rl2, PEARL with --algo "
        "pearl) with a progress "
        "line per iteration; "
        "checkpoints and progress.csv go to --checkpoint-dir. With --grid or "
        "--num-samples > 1 it runs a Tune sweep instead.",
    )
    train.add_argument(
        "--algo",
        choices=sorted(ALGOS),
        help="maml (default), rl2 (RL², recurrent PPO over trials) or pearl "
        "(PEARL, SAC with a task encoder); default: the --config file's `algo`, "
        "else maml",
    )
    train.add_argument("--env", help=f"registered meta env (default: {DEFAULT_ENV})")
    train.add_argument("--config", help="YAML file with env, stop and config sections")
    train.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. training.inner_lr=0.05 (repeatable)",
    )
    train.add_argument(
        "--grid",
        action="append",
        metavar="SECTION.KEY=V1,V2",
        help="sweep a setting with Tune, e.g. training.inner_lr=0.05,0.1 (or a "
        "YAML list: [0.05,0.1])",
    )
    train.add_argument("--num-env-runners", type=int)
    stop = train.add_mutually_exclusive_group()
    stop.add_argument("--stop-iters", type=int, help="training iterations (default 30)")
    stop.add_argument("--stop-timesteps", type=int, help="env steps to train for")
    train.add_argument("--seed", type=int)
    train.add_argument("--checkpoint-dir", default="rllib_maml_results")
    train.add_argument(
        "--checkpoint-freq", type=int, default=0, help="also checkpoint every N iters"
    )
    train.add_argument("--num-samples", type=int, default=1, help="Tune samples")
    train.add_argument(
        "--address", help="Ray cluster to attach to (default: RAY_ADDRESS or local)"
    )
    train.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="adapt a checkpoint to held-out tasks, against baselines",
        description="Adapts the checkpoint's meta-policy to held-out tasks for "
        "--steps inner steps and compares it with the baselines; writes "
        "evaluation.json, evaluation.md and adaptation.png into --output.",
    )
    evaluate.add_argument(
        "--checkpoint",
        required=True,
        help="MAML checkpoint dir (or an RL² or PEARL one, evaluated alone; "
        "PEARL: --steps + 1 episodes per task with a growing context)",
    )
    evaluate.add_argument(
        "--baselines",
        help="comma-separated subset of random,pretrained,oracle ('' for none); "
        "default: all three (none for an RL² --checkpoint)",
    )
    evaluate.add_argument(
        "--env",
        help="evaluate on this env instead of the checkpoint's (same spaces; e.g. "
        "rllib_maml/HalfCheetahBackward-v0 for a HalfCheetahRandDirec policy); the "
        "pretrained baseline still trains on the checkpoint's env",
    )
    evaluate.add_argument("--tasks", type=int, default=20, help="held-out tasks")
    evaluate.add_argument("--steps", type=int, default=3, help="inner steps per task")
    evaluate.add_argument(
        "--episodes-per-task", type=int, help="default: the checkpoint's setting"
    )
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--output", default="rllib_maml_evaluation")
    evaluate.add_argument(
        "--baseline-iters",
        type=int,
        default=50,
        help="PPO iterations to train the pretrained/oracle baselines",
    )
    evaluate.add_argument("--pretrained-checkpoint", help="use this policy instead")
    evaluate.add_argument("--oracle-checkpoint", help="use this policy instead")
    evaluate.add_argument("--oracle-env", help="oracle env (default: shipped variant)")
    evaluate.add_argument(
        "--rl2-checkpoint",
        help="also evaluate this RL² checkpoint (same env) on the same tasks",
    )
    evaluate.add_argument(
        "--pearl-checkpoint",
        help="a PEARL checkpoint on the same env, evaluated next to MAML: --steps "
        "+ 1 episodes per held-out task with a growing context",
    )
    evaluate.add_argument(
        "--video",
        metavar="DIR",
        help="also write DIR/<method>.mp4 for MAML and the random and pretrained "
        "baselines: one episode on the first held-out task after 0..--steps inner "
        "steps (MuJoCo and Meta-World envs; needs rllib_maml[video] and OSMesa or "
        "EGL)",
    )
    evaluate.add_argument("--address", help="Ray cluster to attach to")
    evaluate.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    evaluate.set_defaults(func=cmd_evaluate)

    plot = sub.add_parser(
        "plot",
        help="plot training curves or an evaluation",
        description="RESULT_DIR with evaluation.json: return vs adaptation steps. "
        "Otherwise every progress.csv under RESULT_DIR (Tune or `train` output): "
        "pre- and post-adaptation return over env steps.",
    )
    plot.add_argument("result_dir", metavar="RESULT_DIR")
    plot.add_argument("--output", help="PNG path")
    plot.set_defaults(func=cmd_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    for name in (
        "stop_iters",
        "stop_timesteps",
        "tasks",
        "steps",
        "num_samples",
        "episodes_per_task",
        "baseline_iters",
    ):
        value = getattr(args, name, None)
        low = 0 if name == "steps" else 1
        if value is not None and value < low:
            parser.error(f"--{name.replace('_', '-')} must be >= {low}, got {value}.")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except (CLIError, ValueError, TypeError, OSError) as e:
        if os.environ.get("RLLIB_MAML_DEBUG"):
            raise
        message = str(e).strip().splitlines()
        print(
            f"rllib-maml: error: {message[0] if message else type(e).__name__}",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
