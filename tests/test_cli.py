"""The `rllib-maml` command line: train, evaluate, plot; clear errors."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rllib_maml import cli

CLI = os.path.join(os.path.dirname(sys.executable), "rllib-maml")
TUNED = sorted(
    glob.glob(
        os.path.join(os.path.dirname(__file__), "..", "examples", "tuned", "*.yaml")
    )
)
TUNED_RL2, TUNED_PEARL = (
    sorted(
        glob.glob(
            os.path.join(
                os.path.dirname(__file__), "..", "examples", "tuned", name, "*.yaml"
            )
        )
    )
    for name in ("rl2", "pearl")
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_cli(*args, timeout=600, cwd=None):
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def assert_png(path):
    import matplotlib.image

    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    height, width, _ = matplotlib.image.imread(path).shape
    assert height > 100 and width > 100


def main_in_process(argv, capsys):
    """`cli.main(argv)` in this process (no interpreter to start): its exit
    status and captured output."""
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse: --help, usage errors
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("command", ["train", "evaluate", "plot"])
def test_help_lists_the_options(command, capsys):
    code, stdout, _ = main_in_process([command, "--help"], capsys)
    assert code == 0
    expected = {
        "train": "--stop-timesteps",
        "evaluate": "--baselines",
        "plot": "RESULT_DIR",
    }
    assert expected[command] in stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--set", "training.foo=1"], "training.foo"),
        (["train", "--set", "foo=1"], "'foo'"),
        (["train", "--set", "nosuchsection.lr=1"], "nosuchsection.lr"),
        (["train", "--set", "training.meta_batch_size=0"], "`meta_batch_size`"),
        (["train", "--config", "/no/such.yaml"], "/no/such.yaml"),
        (["train", "--stop-iters", "0"], "--stop-iters"),
        (["evaluate", "--checkpoint", "/no/such/dir"], "/no/such/dir"),
        (["plot", "/no/such/dir"], "/no/such/dir"),
        (["train", "--set", "training.inner_lr=[0.1"], "not valid YAML"),
        (["evaluate", "--checkpoint", ".", "--episodes-per-task", "0"], "--episodes"),
        (["evaluate", "--checkpoint", ".", "--output", "setup.py"], "--output"),
    ],
)
def test_bad_arguments_give_one_clear_line(args, message, capsys, monkeypatch):
    monkeypatch.chdir(os.path.join(os.path.dirname(__file__), ".."))
    code, _, stderr = main_in_process(args, capsys)  # raises on a traceback
    assert code == 2
    assert message in stderr


def test_grid_values_and_yaml_sections(tmp_path):
    args = cli.make_parser().parse_args(
        ["train", "--grid", "training.inner_lr=0.05,0.1", "--grid", "lr=[1, 2]"]
    )
    _, _, grid = cli.build_config(args)
    assert grid == {("training", "inner_lr"): [0.05, 0.1], ("training", "lr"): [1, 2]}
    bad = tmp_path / "bad.yaml"
    bad.write_text("config:\n  training: [1, 2]\n")
    args = cli.make_parser().parse_args(["train", "--config", str(bad)])
    with pytest.raises(cli.CLIError, match="`config` must map builder sections"):
        cli.build_config(args)


@pytest.mark.parametrize("path", TUNED + TUNED_RL2 + TUNED_PEARL, ids=os.path.basename)
def test_tuned_examples_build_valid_configs(path):
    args = cli.make_parser().parse_args(["train", "--config", path])
    config, stop, grid = cli.build_config(args)
    config.validate()
    assert set(stop) <= set(cli.STOP_KEYS) and not grid
    with open(path, encoding="utf-8") as f:
        assert f.readline().startswith("# ")  # the sources come first


def test_there_is_a_tuned_example_per_shipped_env():
    from rllib_maml.envs import ENV_SPECS

    envs = set()
    for path in TUNED:
        args = cli.make_parser().parse_args(["train", "--config", path])
        envs.add(cli.build_config(args)[0].env.split("/")[-1])
    assert envs == set(ENV_SPECS)


@pytest.mark.integration
def test_train_evaluate_plot(tmp_path, capsys):
    import ray

    ray.shutdown()  # the command line starts its own local Ray
    run_dir, eval_dir = tmp_path / "run", tmp_path / "eval"
    tuned = [p for p in TUNED if p.endswith("navigation2d.yaml")][0]
    out = run_cli(
        "train",
        "--config",
        tuned,
        "--stop-iters",
        "2",
        "--set",
        "training.meta_batch_size=3",
        "--set",
        "training.episodes_per_task=3",
        "--checkpoint-dir",
        str(run_dir),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "post-adapt" in out.stdout and os.path.isdir(run_dir / "checkpoint")

    rl2_dir = tmp_path / "rl2"
    out = run_cli(
        "train",
        "--algo",
        "rl2",
        "--env",
        "rllib_maml/Navigation2D-v0",
        "--stop-iters",
        "1",
        "--set",
        "environment.env_config={horizon: 100}",
        "--set",
        "training.train_batch_size_per_learner=400",
        "--set",
        "training.minibatch_size=400",
        "--set",
        "env_runners.num_env_runners=1",
        "--set",
        "env_runners.num_envs_per_env_runner=2",
        "--checkpoint-dir",
        str(rl2_dir),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Training RL² on" in out.stdout and os.path.isdir(rl2_dir / "checkpoint")
    # One iteration: one 200-step trial per env.
    header = (rl2_dir / "progress.csv").read_text().splitlines()[0].split(",")
    assert {f"env_runners/episode_return_mean_episode_{n}" for n in (1, 2)} <= set(
        header
    )

    pearl_dir = tmp_path / "pearl"
    out = run_cli(
        "train",
        "--algo",
        "pearl",
        "--env",
        "rllib_maml/Navigation2D-v0",
        "--stop-iters",
        "1",
        "--set",
        "environment.env_config={horizon: 20}",
        "--set",
        "training.num_train_tasks=4",
        "--set",
        "training.meta_batch_size=2",
        "--set",
        "training.num_initial_steps=40",
        "--set",
        "training.num_train_steps_per_iteration=2",
        "--set",
        "training.train_batch_size_per_learner=16",
        "--checkpoint-dir",
        str(pearl_dir),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Training PEARL on" in out.stdout
    header = (pearl_dir / "progress.csv").read_text().splitlines()[0].split(",")
    assert "env_runners/episode_return_mean_posterior" in header

    out = run_cli(
        "evaluate",
        "--checkpoint",
        str(run_dir / "checkpoint"),
        "--rl2-checkpoint",
        str(rl2_dir / "checkpoint"),
        "--pearl-checkpoint",
        str(pearl_dir / "checkpoint"),
        "--tasks",
        "2",
        "--steps",
        "2",
        "--episodes-per-task",
        "2",
        "--baseline-iters",
        "1",
        "--output",
        str(eval_dir),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    with open(eval_dir / "evaluation.json", encoding="utf-8") as f:
        report = json.load(f)
    methods = {"maml", "random", "pretrained", "oracle", "rl2", "pearl"}
    assert set(report["methods"]) == methods
    for name, entry in report["methods"].items():
        expected = {"rl2": [0, 1], "pearl": [0, 1, 2]}.get(name, [0, 2, 4])
        assert entry["experience_episodes"] == expected
        assert len(entry["return_mean"]) == len(expected)
    assert "| rl2 |" in (eval_dir / "evaluation.md").read_text()
    assert report["methods"]["oracle"]["env"].endswith("Navigation2DOracle-v0")
    assert "| oracle |" in (eval_dir / "evaluation.md").read_text()
    assert_png(eval_dir / "adaptation.png")

    # An RL² checkpoint alone: its trials on the same held-out tasks, no baselines,
    # on a local env runner (in this process: no Ray is started).
    rl2_eval = tmp_path / "rl2_eval"
    argv = ["evaluate", "--checkpoint", str(rl2_dir / "checkpoint"), "--tasks", "2"]
    assert main_in_process([*argv, "--output", str(rl2_eval)], capsys)[0] == 0
    assert not ray.is_initialized()
    alone = json.loads((rl2_eval / "evaluation.json").read_text())
    assert set(alone["methods"]) == {"rl2"} and "inner_lr" not in alone
    assert alone["tasks"] == report["tasks"]
    np.testing.assert_allclose(
        alone["methods"]["rl2"]["task_returns"],
        report["methods"]["rl2"]["task_returns"],
    )
    code, _, stderr = main_in_process([*argv, "--baselines", "random"], capsys)
    assert code == 2 and "is an RL² checkpoint" in stderr

    # A PEARL checkpoint alone: the same tasks and episodes as beside MAML.
    pearl_eval = tmp_path / "pearl_eval"
    out = run_cli(
        "evaluate",
        "--checkpoint",
        str(pearl_dir / "checkpoint"),
        "--tasks",
        "2",
        "--steps",
        "2",
        "--output",
        str(pearl_eval),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    alone = json.loads((pearl_eval / "evaluation.json").read_text())
    assert set(alone["methods"]) == {"pearl"} and alone["tasks"] == report["tasks"]
    np.testing.assert_allclose(
        alone["methods"]["pearl"]["task_returns"],
        report["methods"]["pearl"]["task_returns"],
    )

    os.remove(eval_dir / "adaptation.png")  # `plot` writes it again
    for target, png in ((run_dir, "training_curve.png"), (eval_dir, "adaptation.png")):
        assert main_in_process(["plot", str(target)], capsys)[0] == 0  # no Ray
        assert_png(target / png)


def test_training_curves_read_rl2_episode_columns(tmp_path):
    from rllib_maml.plots import plot_training_curves, read_curve

    path = tmp_path / "progress.csv"
    path.write_text(
        "env_runners/num_env_steps_sampled_lifetime,env_runners/episode_return_mean,"
        "env_runners/episode_return_mean_episode_1,"
        "env_runners/episode_return_mean_episode_2\n"
        "100,,,\n200,-10.0,-6.0,-4.0\n300,-8.0,-5.0,-3.0\n"
    )
    curve = read_curve(str(path))
    assert curve == {
        "env_steps": [200.0, 300.0],
        "episode 1": [-6.0, -5.0],
        "episode 2": [-4.0, -3.0],
    }
    assert_png(plot_training_curves(str(tmp_path), str(tmp_path / "curve.png")))
