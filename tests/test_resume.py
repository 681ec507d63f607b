"""A Tune run killed with SIGKILL resumes from its last checkpoint."""

import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.integration

STOP_ITERS = 6
RUN = textwrap.dedent(
    """
    import sys
    import ray
    from ray import tune
    import rllib_maml
    from rllib_maml import MAML, MAMLConfig

    def config():
        return (
            MAMLConfig()
            .environment("rllib_maml/Navigation2D-v0")
            .env_runners(num_env_runners=1, num_cpus_per_env_runner=0.5)
            .training(meta_batch_size=2, episodes_per_task=2)
            .debugging(seed=0)
        )

    if __name__ == "__main__":
        ray.init(num_cpus=2, include_dashboard=False)
        tune.Tuner(
            MAML,
            param_space=config(),
            run_config=tune.RunConfig(
                name="resume",
                storage_path=sys.argv[1],
                stop={"training_iteration": STOP_ITERS},
                checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1),
            ),
        ).fit()
    """
).replace("STOP_ITERS", str(STOP_ITERS))


def test_tune_run_killed_with_sigkill_resumes(tmp_path, ray_session):
    from ray import tune

    from rllib_maml import MAML

    script = tmp_path / "run.py"
    script.write_text(RUN)
    storage = tmp_path / "storage"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(storage)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pattern = str(storage / "resume" / "MAML_*" / "checkpoint_000001")
    deadline = time.time() + 240
    while not glob.glob(pattern) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert glob.glob(pattern), "the run never wrote its second checkpoint"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started
    proc.wait()

    (checkpoint,) = glob.glob(pattern)
    saved = MAML.from_checkpoint(checkpoint)
    saved_iteration = saved.iteration
    saved_steps = saved.metrics.peek(("env_runners", "num_env_steps_sampled_lifetime"))
    saved.stop()
    assert saved_iteration >= 2 and saved_steps > 0

    tuner = tune.Tuner.restore(
        str(storage / "resume"), trainable=MAML, resume_unfinished=True
    )
    (result,) = tuner.fit()
    assert result.error is None
    assert result.metrics["training_iteration"] == STOP_ITERS
    frame = result.metrics_dataframe
    after = frame[frame["training_iteration"] > saved_iteration]
    first = after.iloc[0]
    # The restored run continues the iteration and env-step counters.
    assert first["training_iteration"] == saved_iteration + 1
    assert first["env_runners/num_env_steps_sampled_lifetime"] > saved_steps
    # (Weights, optimizer and KL coefficients restore exactly: see
    # test_integration.py::test_checkpoint_round_trip.)
