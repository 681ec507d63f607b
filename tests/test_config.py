"""Bad settings fail fast, naming the setting, the value and the fix."""

import gymnasium as gym
import numpy as np
import pytest
from helpers import local_config

from rllib_maml import MAMLConfig


@pytest.mark.parametrize(
    "training, match",
    [
        (
            {"inner_adaptation_steps": 0},
            r"`inner_adaptation_steps` must be an integer >= 1, got 0",
        ),
        ({"meta_batch_size": 0}, r"`meta_batch_size` must be an integer >= 1, got 0"),
        (
            {"episodes_per_task": 2.5},
            r"`episodes_per_task` must be an integer >= 1, got 2.5",
        ),
        ({"maml_optimizer_steps": -1}, r"`maml_optimizer_steps` .* got -1"),
        ({"inner_lr": 0.0}, r"`inner_lr` must be a finite number > 0, got 0.0"),
        (
            {"inner_lr": float("nan")},
            r"`inner_lr` must be a finite number > 0, got nan",
        ),
        ({"clip_param": -0.1}, r"`clip_param` must be a finite number > 0"),
        ({"kl_target": 0}, r"`kl_target` must be a finite number > 0"),
        ({"kl_coeff": -1.0}, r"`kl_coeff` must be a finite number >= 0"),
        ({"lambda_": 1.5}, r"`lambda_` must be in \[0, 1\], got 1.5"),
        (
            {"inner_loss": "ppo"},
            r"`inner_loss` must be one of \('lvc', 'vpg'\), got 'ppo'",
        ),
        ({"meta_gradient": "third"}, r"`meta_gradient` must be one of"),
        (
            {"advantage_baseline": "critic"},
            r"`advantage_baseline` must be one of \('value_function', 'linear'\), "
            "got 'critic'",
        ),
    ],
)
def test_bad_training_settings(training, match):
    config = local_config(**training)
    with pytest.raises(ValueError, match=match) as info:
        config.validate()
    assert "config.training(" in str(info.value)


def test_tensorflow_is_rejected():
    config = local_config().framework("tf2")
    with pytest.raises(ValueError, match=r"`framework` must be 'torch', got 'tf2'"):
        config.validate()


def test_truncate_episodes_is_rejected():
    config = local_config().env_runners(batch_mode="truncate_episodes")
    with pytest.raises(ValueError, match=r"`batch_mode` must be 'complete_episodes'"):
        config.validate()


def test_multiple_learners_rejected():
    config = local_config().learners(num_learners=2)
    with pytest.raises(ValueError, match=r"`num_learners` must be 0 or 1, got 2"):
        config.validate()


def test_missing_env_rejected():
    with pytest.raises(ValueError, match=r"`env` is not set"):
        MAMLConfig().validate()


class PlainEnv(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, True, False, {}


def test_env_class_without_task_api_rejected_in_validate():
    config = local_config().environment(PlainEnv)
    with pytest.raises(
        ValueError, match=r"missing `sample_tasks`, `set_task`, `get_task`"
    ):
        config.validate()


def test_defaults_are_valid_and_match_the_reference():
    config = MAMLConfig().environment("rllib_maml/Navigation2D-v0")
    config.validate()
    assert (config.inner_adaptation_steps, config.maml_optimizer_steps) == (1, 5)
    assert (config.inner_lr, config.lr, config.clip_param) == (0.1, 1e-3, 0.3)
    assert (config.kl_coeff, config.kl_target, config.vf_loss_coeff) == (
        0.0005,
        0.01,
        0.5,
    )
    assert config.lambda_ == 1.0
    assert config.advantage_baseline == "linear"  # as in the MAML and ProMP code


def test_registered_env_without_task_api_fails_before_runners_start():
    from ray.tune.registry import register_env

    register_env("tests/PlainEnv-v0", lambda cfg: PlainEnv())
    config = local_config().environment("tests/PlainEnv-v0")
    with pytest.raises(TypeError, match=r"tests/PlainEnv-v0.*missing `sample_tasks`"):
        config.build_algo()


class ShortTaskEnv(PlainEnv):
    def sample_tasks(self, n):
        return [0] * (n - 1)

    def set_task(self, task):
        pass

    def get_task(self):
        return 0


def test_wrong_task_count_is_reported():
    from ray.tune.registry import register_env

    register_env("tests/ShortTaskEnv-v0", lambda cfg: ShortTaskEnv())
    algo = (
        local_config(meta_batch_size=3)
        .environment("tests/ShortTaskEnv-v0")
        .build_algo()
    )
    try:
        with pytest.raises(
            ValueError, match=r"`sample_tasks\(3\)` .* returned 2 tasks"
        ):
            algo.train()
    finally:
        algo.stop()


def test_user_model_config_keeps_the_maml_defaults_it_does_not_set():
    config = local_config().rl_module(model_config={"fcnet_hiddens": [100, 100]})
    assert config.model_config["fcnet_hiddens"] == [100, 100]
    assert config.model_config["vf_share_layers"] is False
    assert config.model_config["fcnet_activation"] == "tanh"
    assert MAMLConfig().model_config["fcnet_hiddens"] == [64, 64]


@pytest.mark.parametrize(
    "evaluation, match",
    [
        ({"evaluation_num_tasks": 0}, r"`evaluation_num_tasks` must be an integer"),
        (
            {"evaluation_adaptation_steps": -1},
            r"`evaluation_adaptation_steps` must be None or an integer >= 0, got -1",
        ),
        (
            {
                "evaluation_interval": 1,
                "evaluation_num_env_runners": 1,
                "evaluation_parallel_to_training": True,
            },
            r"`evaluation_parallel_to_training=True` is not supported",
        ),
    ],
)
def test_bad_evaluation_settings(evaluation, match):
    config = local_config().evaluation(**evaluation)
    with pytest.raises(ValueError, match=match) as info:
        config.validate()
    assert "config.evaluation(" in str(info.value)
