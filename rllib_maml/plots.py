"""PNG plots: return vs adaptation steps, and training curves."""

from __future__ import annotations

import csv
import glob
import os
from typing import Any

# Column names in Tune's progress.csv (and in the one `rllib-maml train` writes).
STEPS_COLUMN = "env_runners/num_env_steps_sampled_lifetime"
PRE_COLUMN = "env_runners/episode_return_mean"
ADAPT_PREFIX = "env_runners/episode_return_mean_adapt_"
RL2_PREFIX = "env_runners/episode_return_mean_episode_"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_adaptation(report: dict[str, Any], path: str) -> str:
    """Return vs number of inner steps, one line per method (± standard error).
    With RL² in the report: vs episodes of experience on the task."""
    from rllib_maml.evaluation import experience_episodes

    plt = _pyplot()
    # A second panel with the success rates where the env reports success.
    success = {
        name: entry["success_rate_mean"]
        for name, entry in report["methods"].items()
        if "success_rate_mean" in entry
    }
    fig, axes = plt.subplots(1, 2 if success else 1, figsize=(11 if success else 6, 4))
    axes = list(axes) if success else [axes]
    ax = axes[0]
    by_experience = bool({"rl2", "pearl"} & set(report["methods"]))

    def x_of(name):
        if by_experience:
            return experience_episodes(report, name)
        return list(range(report["adaptation_steps"] + 1))

    for name, entry in report["methods"].items():
        mean, sem = entry["return_mean"], entry["return_sem"]
        ax.errorbar(x_of(name), mean, yerr=sem, marker="o", capsize=3, label=name)
    for name, rate in success.items():
        axes[1].plot(x_of(name), rate, marker="o", label=name)
    for a in axes:
        if by_experience:
            a.set_xlabel("episodes of experience on the task")
        else:
            a.set_xticks(range(report["adaptation_steps"] + 1))
            a.set_xlabel("inner gradient steps")
        a.legend()
    ax.set_ylabel("average return")
    ax.set_title(f"{report['env']}: {report['num_tasks']} held-out tasks")
    if success:
        axes[1].set_ylabel("success rate")
        axes[1].set_ylim(-0.05, 1.05)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def find_progress_files(result_dir: str) -> list[str]:
    """progress.csv files under a Tune experiment, trial or `train` directory."""
    if os.path.isfile(result_dir):
        return [result_dir]
    files = sorted(
        glob.glob(os.path.join(result_dir, "**", "progress.csv"), recursive=True)
    )
    if not files:
        raise FileNotFoundError(
            f"No progress.csv under {result_dir!r}. Give a Tune experiment or trial "
            "directory, or the --checkpoint-dir of `rllib-maml train`."
        )
    return files


def read_curve(progress_csv: str) -> dict[str, list[float]]:
    """Env steps, pre-adaptation and per-step post-adaptation returns."""
    with open(progress_csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or STEPS_COLUMN not in rows[0] or PRE_COLUMN not in rows[0]:
        raise ValueError(
            f"{progress_csv!r} has no MAML results (columns {STEPS_COLUMN!r} and "
            f"{PRE_COLUMN!r})."
        )
    rl2 = sorted(
        (c for c in rows[0] if c.startswith(RL2_PREFIX)),
        key=lambda c: int(c[len(RL2_PREFIX) :]),
    )
    if rl2:  # RL²: the return of each episode of a trial
        labels = {c: f"episode {c[len(RL2_PREFIX) :]}" for c in rl2}
    else:
        adapt = sorted(c for c in rows[0] if c.startswith(ADAPT_PREFIX))
        labels = {PRE_COLUMN: "pre-adaptation"} | {
            c: f"after {c[len(ADAPT_PREFIX) :]} step(s)" for c in adapt
        }
    rows = [r for r in rows if all(r.get(c) not in (None, "") for c in labels)]
    curve = {"env_steps": [float(r[STEPS_COLUMN]) for r in rows]}
    for column, label in labels.items():
        curve[label] = [float(r[column]) for r in rows]
    return curve


def plot_training_curves(result_dir: str, path: str) -> str:
    """Pre- and post-adaptation return over env steps for each run found."""
    plt = _pyplot()
    files = find_progress_files(result_dir)
    fig, ax = plt.subplots(figsize=(7, 4))
    for progress_csv in files:
        curve = read_curve(progress_csv)
        run = os.path.basename(os.path.dirname(progress_csv))
        prefix = f"{run}: " if len(files) > 1 else ""
        steps = curve.pop("env_steps")
        for label, values in curve.items():
            style = "--" if label in ("pre-adaptation", "episode 1") else "-"
            ax.plot(steps, values, style, label=prefix + label)
    ax.set_xlabel("env steps")
    ax.set_ylabel("average return")
    ax.set_title("meta-training")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
