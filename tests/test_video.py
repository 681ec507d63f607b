"""`rllib-maml evaluate --video`: one held-out task's episodes, rendered."""

import os
import sys

import numpy as np
import pytest
from helpers import local_config

from rllib_maml import video
from rllib_maml.evaluation import (
    adaptation_returns,
    evaluate_with_baselines,
    heldout_tasks,
)

HORIZON = 8


def _renderer_or_skip():
    """CI installs OSMesa (`.ci/run`) and must render; elsewhere a machine
    without headless OpenGL skips with the reason."""
    try:
        return video.gl_backend()
    except RuntimeError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(e))


@pytest.mark.integration
def test_video_shows_each_method_before_and_after_adaptation(ray_session, tmp_path):
    _renderer_or_skip()
    # Env runners holding both of the session's CPUs, as `rllib-maml evaluate`
    # runs them: rendering must not wait for a free CPU.
    config = (
        local_config(
            "rllib_maml/HalfCheetahRandDirec-v0", meta_batch_size=2, episodes_per_task=2
        )
        .environment(env_config={"horizon": HORIZON})
        .env_runners(num_env_runners=2, num_cpus_per_env_runner=1)
    )
    algo = config.build_algo()
    try:
        report = evaluate_with_baselines(
            algo,
            num_tasks=2,
            num_steps=1,
            seed=0,
            baselines=("random",),
            video_dir=str(tmp_path / "videos"),
        )
    finally:
        algo.stop()
    import imageio.v2 as imageio

    assert set(report["videos"]) == {"maml", "random"}
    for path in report["videos"].values():
        frames = np.stack(imageio.mimread(path))
        # Two episodes (0 and 1 inner steps), each its first frame and one per
        # step, at the default size.
        assert frames.shape == (2 * (HORIZON + 1), 240, 320, 3)
        assert frames.std() > 10  # a scene, not a blank image
        # The label band at the top is dark, the scene below it is not.
        assert frames[:, :20].mean() < 40 < frames[:, 100:].mean()


def test_params_out_gives_the_start_and_the_adapted_params(ray_session):
    """The params each step sampled with, as they were: evaluating a baseline
    swaps its state into the learner and restores the meta-policy afterwards,
    which must not change what was recorded."""
    config = local_config("rllib_maml/Navigation2D-v0", meta_batch_size=2)
    algo = config.build_algo()
    try:
        baseline = algo._call_learner(lambda learner: learner.fresh_module_state(7))
        params: list = []
        adaptation_returns(
            algo,
            tasks=heldout_tasks(algo, 2, seed=0),
            num_steps=1,
            episodes_per_task=2,
            seed=0,
            module_state=baseline,
            params_out=params,
        )
        meta = algo._call_learner(lambda learner: learner.policy_params_numpy())
    finally:
        algo.stop()
    assert len(params) == 2 and set(params[0]) == set(params[1]) == {0, 1}
    for i in (0, 1):
        for name, value in meta.items():
            start = np.asarray(baseline[name])
            np.testing.assert_array_equal(params[0][i][name], start)
            assert not np.array_equal(start, value)  # not the meta-policy
        assert any(
            not np.array_equal(params[1][i][name], params[0][i][name]) for name in meta
        )


def test_a_failing_renderer_stops_the_evaluation_before_it_starts(
    ray_session, monkeypatch
):
    """The renderer is tried on one frame first (in the Ray task videos are
    made in), so a broken one costs no evaluation."""
    config = local_config("rllib_maml/HalfCheetahRandDirec-v0")
    monkeypatch.setenv("MUJOCO_GL", "bogus")  # what the render task starts with
    with pytest.raises(Exception, match="MUJOCO_GL"):
        video.check_can_record(config)


def test_clear_errors_before_any_work(monkeypatch):
    config = local_config("rllib_maml/Navigation2D-v0")
    with pytest.raises(ValueError, match="does not render rgb_array frames"):
        video.check_can_record(config)
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(video.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install libosmesa6"):
        video.gl_backend()
    monkeypatch.setenv("MUJOCO_GL", "egl")
    assert video.gl_backend() == "egl"  # the user's choice is kept
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(ImportError, match=r"rllib_maml\[video\]"):
        video.check_video_dependencies()
