"""Videos of adaptation (`rllib-maml evaluate --video DIR`).

For one held-out task, one episode is rendered with each method's policy after
0, 1, ..., N inner steps (the params the evaluation's inner loop sampled that
task with), one after the other in one mp4 per method (`DIR/<method>.mp4`). The
rendered episodes take the mean action of the policy (its deterministic
version); the evaluation's returns are those of sampled actions.

Rendering runs in a Ray task of its own, with `MUJOCO_GL` set before MuJoCo is
imported: the user's `MUJOCO_GL` if set, else OSMesa or EGL, whichever the
machine has (both render without a display; `apt-get install libosmesa6`
gives OSMesa on Debian and Ubuntu). The envs render through gymnasium's
`render_mode="rgb_array"` (the MuJoCo and Meta-World envs; `render_width` and
`render_height` in the env_config set the frame size).
"""

from __future__ import annotations

import copy
import ctypes.util
import logging
import math
import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

VIDEO_EXTRA = "pip install 'rllib_maml[video]' (imageio and imageio-ffmpeg)"
NO_BACKEND_MESSAGE = (
    "No headless OpenGL for MuJoCo's renderer found (neither libOSMesa nor "
    "libEGL). Install one, e.g. `apt-get install libosmesa6` on Debian or "
    "Ubuntu, or set MUJOCO_GL to a backend that works on this machine "
    "(glfw with a display, egl, osmesa)."
)
# Frames per rendered episode at most: longer episodes are rendered every
# k-th step (Meta-World's 500 steps: every 3rd).
MAX_FRAMES_PER_EPISODE = 200
DEFAULT_SIZE = (320, 240)  # width, height; both multiples of 16 for H.264


def gl_backend() -> str:
    """The `MUJOCO_GL` rendering runs with: the user's if set, else `osmesa`
    or `egl`, whichever library the machine has (OSMesa first: it needs no
    GPU driver). Raises `RuntimeError` naming the fix where there is none."""
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        return chosen
    for backend, library in (("osmesa", "OSMesa"), ("egl", "EGL")):
        if ctypes.util.find_library(library):
            return backend
    raise RuntimeError(NO_BACKEND_MESSAGE)


def check_video_dependencies() -> None:
    """Raises `ImportError` naming the extra if the mp4 writer is missing."""
    try:
        import imageio  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"Writing videos needs imageio-ffmpeg ({e}): {VIDEO_EXTRA}."
        ) from e


def check_can_record(config) -> None:
    """Raises before any work if videos of `config`'s env cannot be made: an
    env that does not render frames (`ValueError`), no mp4 writer
    (`ImportError`), no headless OpenGL (`RuntimeError`), or a renderer or
    encoder that fails on one frame (the error of the Ray task that tried)."""
    import ray

    env, _, _ = _render_env(config, DEFAULT_SIZE)  # renders nothing here
    env.close()
    check_video_dependencies()
    ray.get(_remote(_render_one_frame, gl_backend()).remote(config, DEFAULT_SIZE))


def _remote(function, backend: str):
    """`function` as a Ray task started with `MUJOCO_GL=backend`. No CPU is
    reserved: the driver only waits on it, and the env runners may hold every
    CPU of the cluster (with one reserved it would never start)."""
    import ray

    env_vars = {"MUJOCO_GL": backend}
    if backend in ("egl", "osmesa"):  # MuJoCo refuses any other value with these
        env_vars["PYOPENGL_PLATFORM"] = backend
    return ray.remote(num_cpus=0)(function).options(runtime_env={"env_vars": env_vars})


def _render_one_frame(config, size: tuple[int, int]) -> None:
    env, _, fps = _render_env(config, size)
    try:
        env.reset(seed=0)
        frame = env.render()
    finally:
        env.close()
    _mp4([frame, frame], fps)


def record_adaptation_videos(
    algo,
    output_dir: str,
    *,
    params: dict[str, list[dict[str, np.ndarray]]],
    task: Any,
    seed: int,
    size: tuple[int, int] = DEFAULT_SIZE,
    log: Callable[[str], None] = logger.info,
) -> dict[str, str]:
    """Writes `<output_dir>/<method>.mp4` per method: one episode on `task`
    per params, one after the other.

    Args:
        algo: the built MAML algorithm whose network the params are for.
        params: method name -> the policy params after 0..N inner steps on
            `task` (numpy, by name; `adaptation_returns(..., params_out=)`
            records them).
        task: the held-out task (one of the env's tasks).
        seed: the rendered episodes' reset seed.
        size: frame width and height.

    Returns:
        Method -> path of its mp4.
    """
    import ray

    check_video_dependencies()
    backend = gl_backend()
    os.makedirs(output_dir, exist_ok=True)
    # A CPU copy: the learner's module may live on a GPU the task has not.
    module = algo._call_learner(
        lambda learner: copy.deepcopy(learner._maml_module()).cpu()
    )
    render = _remote(_render_adaptation, backend)
    paths = {}
    for name, by_step in params.items():
        log(f"Rendering {name}: {len(by_step)} episodes ({backend}) ...")
        video, returns = ray.get(
            render.remote(
                algo.config,
                module,
                by_step,
                task,
                seed,
                name,
                size,
            )
        )
        paths[name] = os.path.join(output_dir, f"{name}.mp4")
        with open(paths[name], "wb") as f:
            f.write(video)
        shown = ", ".join(f"{r:.1f}" for r in returns)
        log(f"Wrote {paths[name]} (returns of the rendered episodes: {shown})")
    return paths


def _render_adaptation(
    config,
    module,
    params_by_step: list[dict[str, np.ndarray]],
    task: Any,
    seed: int,
    method: str,
    size: tuple[int, int],
) -> tuple[bytes, list[float]]:
    """(mp4 bytes, episode returns): one rendered episode per params."""
    frames: list[np.ndarray] = []
    returns = []
    env, every, fps = _render_env(config, size)
    try:
        for step, params in enumerate(params_by_step):
            episode, ret, succeeded = _rollout(
                env, config, module, params, task, seed, every
            )
            returns.append(ret)
            label = [f"{method}: {step} inner step{'s' * (step != 1)}"]
            label.append(
                f"return {ret:.1f}"
                + ("" if succeeded is None else f", success {int(succeeded)}")
            )
            frames += [_banner(frame, label) for frame in episode]
    finally:
        env.close()
    return _mp4(frames, fps), returns


def _render_env(config, size: tuple[int, int]):
    """(env rendering rgb_array frames, render every k-th step, frames/s)."""
    from rllib_maml.envs.base import env_from_config

    width, height = size
    env_config = {
        **config.env_config,
        "render_mode": "rgb_array",
        "render_width": width,
        "render_height": height,
    }
    env = env_from_config(config, env_config)
    if getattr(env, "render_mode", None) != "rgb_array":
        env.close()
        raise ValueError(
            f"The env {config.env!r} does not render rgb_array frames "
            "(render_mode from its env_config), so it cannot be filmed. Videos "
            "are for the MuJoCo and Meta-World envs; a custom env renders if it "
            "takes `render_mode` (and `render_width`, `render_height`) from its "
            "env_config."
        )
    try:
        horizon = int(env.get_wrapper_attr("horizon"))
    except AttributeError:
        horizon = MAX_FRAMES_PER_EPISODE
    every = max(1, math.ceil(horizon / MAX_FRAMES_PER_EPISODE))
    render_fps = float(env.metadata.get("render_fps") or 30)
    return env, every, max(1.0, render_fps / every)


def _rollout(env, config, module, params, task, seed: int, every: int):
    """One episode with the policy's mean action, a frame every `every`
    steps: (frames, return, success: None where the env reports none). The
    action reaches the env as on the env runners (`normalize_actions`,
    `clip_actions`)."""
    import torch
    from ray.rllib.utils.spaces.space_utils import clip_action, unsquash_action

    from rllib_maml.policy import FunctionalPolicy

    policy = FunctionalPolicy(module)
    dist_cls = module.get_inference_action_dist_cls()
    params = {name: torch.as_tensor(value) for name, value in params.items()}
    env.get_wrapper_attr("set_task")(task)
    obs, _ = env.reset(seed=seed)
    frames, total, succeeded, t = [env.render()], 0.0, None, 0
    done = False
    while not done:
        with torch.no_grad():
            inputs = policy(
                params, torch.as_tensor(np.asarray(obs)[None], dtype=torch.float32)
            )
            action = dist_cls.from_logits(inputs).to_deterministic().sample()[0].numpy()
        if config.normalize_actions:
            action = unsquash_action(action, env.action_space)
        elif config.clip_actions:
            action = clip_action(action, env.action_space)
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        if "success" in info:
            succeeded = bool(succeeded) or bool(info["success"])
        done = terminated or truncated
        t += 1
        if t % every == 0 or done:
            frames.append(env.render())
    return frames, total, succeeded


def _banner(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    """`frame` with `lines` written on a dark band at its top."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.ascontiguousarray(frame))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, image.width, 12 * len(lines) + 4], fill=(0, 0, 0))
    for i, line in enumerate(lines):
        draw.text((4, 2 + 12 * i), line, fill=(255, 255, 255))
    return np.asarray(image)


def _mp4(frames: list[np.ndarray], fps: float) -> bytes:
    import imageio.v2 as imageio

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "video.mp4")
        imageio.mimwrite(path, frames, fps=fps, codec="libx264", macro_block_size=16)
        with open(path, "rb") as f:
            return f.read()
