"""Learning curves of a tuned example over several seeds, with baselines.

Trains `--config` (a YAML from examples/tuned/) for a fixed budget once per seed,
records pre- and post-adaptation return against env steps, then evaluates each
seed's final meta-policy on 20 held-out tasks (`rllib_maml.evaluation`) next to
the requested baselines (evaluated once, with the first seed's algorithm). Writes
`<output>.json` (curves, final numbers, wall-clock, machine) and `<output>.png`.
An RL² config (`algo: rl2`, examples/tuned/rl2/) records episode 1 and episode N
of its trials as pre and post, and is evaluated with one trial per held-out task
(no baselines; `rllib-maml evaluate --rl2-checkpoint` puts it next to MAML's).
A PEARL config (`algo: pearl`, examples/tuned/pearl/) records the episodes with z
from the prior and from the posterior as pre and post, and is evaluated with 4
episodes per held-out task, the context growing online (no baselines).

How to run (Navigation2D at the MAML paper's setting, 3 seeds, about 30 minutes
on 2 cores):
    python benchmarks/learning/run.py --config examples/tuned/navigation2d.yaml \
        --stop-iters 40 --baselines random,oracle \
        --output benchmarks/results/learning_navigation2d

Long runs survive interruption: every `--save-every` iterations each seed saves
an algorithm checkpoint and its curve under `<output>_state/seed<k>/`, and the
results so far (finished seeds) are written after every seed. Running the same
command again skips finished seeds and resumes the unfinished one from its last
checkpoint (the env-step count, iteration and metrics are restored; the task
and episode randomness after the restart differs from an uninterrupted run).
With a later stop (a larger `--stop-iters`) it continues finished seeds from
their final checkpoint too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import write_results  # noqa: E402

from rllib_maml import PEARL, RL2, cli, evaluation  # noqa: E402
from rllib_maml.maml import EPISODE_SUCCESS_RATE  # noqa: E402
from rllib_maml.progress import (  # noqa: E402
    HEADER,
    post_adaptation_return,
    pre_adaptation_return,
    progress_line,
)


def train_seed(args, seed: int, baselines: tuple[str, ...]) -> dict:
    state_dir = Path(args.output + "_state") / f"seed{seed}"
    done_file, curve_file = state_dir / "run.json", state_dir / "curve.json"
    cli_args = cli.make_parser().parse_args(
        ["train", "--config", args.config, "--seed", str(seed)]
        + [x for s in args.set or [] for x in ("--set", s)]
        + (["--stop-iters", str(args.stop_iters)] if args.stop_iters else [])
    )
    config, stop, _ = cli.build_config(cli_args)
    if done_file.exists():
        done = json.loads(done_file.read_text())
        steps = done["curve"]["env_steps"]
        last = {
            "training_iteration": len(steps),
            "env_runners": {"num_env_steps_sampled_lifetime": steps[-1]},
        }
        if cli.stop_reached(last, stop) or not (state_dir / "checkpoint").exists():
            print(f"seed {seed}: finished earlier, loading {done_file}", flush=True)
            return done
        # A later stop (e.g. a larger --stop-iters): go on from the checkpoint
        # saved at the end of the finished run.
        print(
            f"seed {seed}: finished earlier at iteration {len(steps)}; "
            "continuing to the new stop",
            flush=True,
        )
    algo = config.build_algo()
    curve = {
        "env_steps": [],
        "pre": [],
        "post": [],
        "episode_len_mean": [],
        "wall_s": [],
    }
    elapsed = 0.0
    if curve_file.exists():
        curve = json.loads(curve_file.read_text())
        elapsed = curve["wall_s"][-1]
        algo.restore_from_path(str((state_dir / "checkpoint").resolve()))
        print(
            f"seed {seed}: resumed at iteration {algo.training_iteration}, "
            f"{curve['env_steps'][-1]:,} env steps",
            flush=True,
        )
    start = time.perf_counter() - elapsed
    print(HEADER, flush=True)
    try:
        while True:
            result = algo.train()
            print(progress_line(result), flush=True)
            runners = result["env_runners"]
            curve["env_steps"].append(runners["num_env_steps_sampled_lifetime"])
            curve["pre"].append(pre_adaptation_return(result))
            curve["post"].append(post_adaptation_return(result))
            curve["episode_len_mean"].append(runners["episode_len_mean"])
            # Envs that report success (Meta-World): before and after the last
            # inner step.
            rates = sorted(k for k in runners if k.startswith(EPISODE_SUCCESS_RATE))
            if rates:
                curve.setdefault("success_pre", []).append(runners[rates[0]])
                curve.setdefault("success_post", []).append(runners[rates[-1]])
            curve["wall_s"].append(time.perf_counter() - start)
            finished = cli.stop_reached(result, stop)
            if finished or result["training_iteration"] % args.save_every == 0:
                algo.save_to_path(str((state_dir / "checkpoint").resolve()))
                curve_file.write_text(json.dumps(curve))
            if finished:
                break
        wall = time.perf_counter() - start
        if isinstance(algo, RL2):
            report = evaluation.evaluate_rl2(algo, num_tasks=20, seed=seed, log=print)
        elif isinstance(algo, PEARL):
            report = evaluation.evaluate_pearl(
                algo, num_tasks=20, num_episodes=4, seed=seed, log=print
            )
        else:
            report = evaluation.evaluate_with_baselines(
                algo,
                num_tasks=20,
                num_steps=3,
                seed=seed,
                baselines=baselines,
                log=print,
            )
    finally:
        algo.stop()
    run = {"seed": seed, "curve": curve, "wall_clock_s": wall, "evaluation": report}
    done_file.write_text(json.dumps(run))
    return run


def plot(runs: list[dict], path: str, title: str) -> None:
    plot_runs({"": runs}, path, title)


def plot_runs(
    named_runs: dict[str, list[dict]], path: str, title: str, log_steps: bool = False
) -> None:
    """Pre- and post-adaptation curves (RL²: episode 1 and N), mean ± std over
    seeds, of one or more methods' runs (`{name: runs}`) on one axis."""
    from rllib_maml.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, runs in named_runs.items():
        methods = runs[0]["evaluation"]["methods"]
        is_rl2 = "rl2" in methods
        for key, style in (("pre", "--"), ("post", "-")):
            n = min(len(r["curve"][key]) for r in runs)
            steps = np.asarray(runs[0]["curve"]["env_steps"][:n])
            values = np.asarray([r["curve"][key][:n] for r in runs])
            mean, std = values.mean(0), values.std(0)
            if is_rl2:
                label = "episode 1" if key == "pre" else "episode N"
            elif "pearl" in methods:
                label = "z from the prior" if key == "pre" else "z from the posterior"
            else:
                label = "pre-adaptation" if key == "pre" else "post-adaptation"
            prefix = f"{name}: " if name else ""
            ax.plot(steps, mean, style, label=f"{prefix}{label} ({len(runs)} seeds)")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    if log_steps:
        ax.set_xscale("log")
    ax.set_xlabel("env steps")
    ax.set_ylabel("average return")
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summarize(runs: list[dict], last: int) -> dict:
    """Means over seeds of the last `last` iterations, held-out and baselines."""
    methods = runs[0]["evaluation"]["methods"]
    method = next((m for m in ("rl2", "pearl") if m in methods), "maml")
    return {
        "seeds": [r["seed"] for r in runs],
        "env_steps": float(np.mean([r["curve"]["env_steps"][-1] for r in runs])),
        f"pre_mean_last_{last}": float(
            np.mean([np.mean(r["curve"]["pre"][-last:]) for r in runs])
        ),
        f"post_mean_last_{last}": float(
            np.mean([np.mean(r["curve"]["post"][-last:]) for r in runs])
        ),
        "per_seed_post_mean_last": [
            float(np.mean(r["curve"]["post"][-last:])) for r in runs
        ],
        "heldout_method": method,
        "heldout_after_steps_mean_over_seeds": np.mean(
            [r["evaluation"]["methods"][method]["return_mean"] for r in runs], axis=0
        ).tolist(),
        "baselines_first_seed": {
            name: entry["return_mean"]
            for name, entry in runs[0]["evaluation"]["methods"].items()
            if name != method
        },
        "wall_clock_s_per_seed": [r["wall_clock_s"] for r in runs],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append")
    parser.add_argument("--stop-iters", type=int)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--baselines", default="random,oracle")
    parser.add_argument("--last", type=int, default=11, help="iterations averaged")
    parser.add_argument("--output", required=True, help="path without extension")
    parser.add_argument(
        "--save-every", type=int, default=10, help="iterations between checkpoints"
    )
    args = parser.parse_args()
    ray.init(include_dashboard=False, log_to_driver=False)
    runs = []
    for i, seed in enumerate(args.seeds):
        baselines = tuple(b for b in args.baselines.split(",") if b) if i == 0 else ()
        runs.append(train_seed(args, seed, baselines))
        summary = summarize(runs, args.last)
        print(json.dumps(summary, indent=2))
        plot(runs, args.output + ".png", Path(args.config).stem)
        write_results(
            args.output + ".json", "learning curves", args, summary=summary, runs=runs
        )
    ray.shutdown()


if __name__ == "__main__":
    main()
