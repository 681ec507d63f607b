"""Bad settings fail fast, naming the setting, the value and the fix."""

import logging

import gymnasium as gym
import numpy as np
import pytest
from helpers import local_config

from rllib_maml import MAMLConfig, runner_settings
from rllib_maml import config as config_module


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
            {"outer_optimizer": "sgd"},
            r"`outer_optimizer` must be one of \('ppo', 'trpo'\), got 'sgd'",
        ),
        ({"cg_iters": True}, r"`cg_iters` must be an integer >= 1, got True"),
        ({"max_kl": float("inf")}, r"`max_kl` must be a finite number > 0, got inf"),
        ({"lambda_": "1"}, r"`lambda_` must be in \[0, 1\], got '1'"),
        (
            {"backtrack_ratio": 1.0},
            r"`backtrack_ratio` must be in \(0, 1\), got 1.0",
        ),
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


def test_an_env_runner_without_sample_tasks_is_rejected():
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    config = local_config().env_runners(env_runner_cls=SingleAgentEnvRunner)
    with pytest.raises(ValueError, match=r"`env_runner_cls` must be .*MAMLEnvRunner"):
        config.validate()


def test_truncate_episodes_is_rejected():
    config = local_config().env_runners(batch_mode="truncate_episodes")
    with pytest.raises(ValueError, match=r"`batch_mode` must be 'complete_episodes'"):
        config.validate()


def test_more_learners_than_tasks_rejected():
    config = local_config(meta_batch_size=2).learners(num_learners=3)
    with pytest.raises(ValueError, match=r"`meta_batch_size` \(2\) is smaller than"):
        config.validate()
    local_config(meta_batch_size=3).learners(num_learners=3).validate()


def test_fractional_gpus_with_several_learners_rejected():
    config = local_config().learners(num_learners=2, num_gpus_per_learner=0.5)
    with pytest.raises(
        ValueError, match=r"`num_gpus_per_learner` \(0.5\) is a fraction"
    ):
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


TABLE_FIXES = [
    *((name, example) for name, (_, example) in config_module.INT_SETTINGS.items()),
    *((name, spec[-1]) for name, spec in config_module.FLOAT_SETTINGS.items()),
    *((name, choices[0]) for name, choices in config_module.CHOICE_SETTINGS.items()),
    *((name, True) for name in config_module.BOOL_SETTINGS),
]


@pytest.mark.parametrize("name", config_module.BOOL_SETTINGS)
def test_switches_must_be_booleans(name):
    config = local_config().training(**{name: "yes"})
    with pytest.raises(ValueError, match=rf"`{name}` must be True or False, got 'yes'"):
        config.validate()


def test_keep_freed_memory_sets_glibc_thresholds_on_linux():
    import sys

    from rllib_maml import allocator

    assert allocator.keep_freed_memory() is sys.platform.startswith("linux")


@pytest.mark.parametrize("name, value", TABLE_FIXES)
def test_the_fix_each_table_message_suggests_is_valid(name, value):
    builder = "evaluation" if name.startswith("evaluation_") else "training"
    config = local_config()
    getattr(config, builder)(**{name: value})
    config.validate()


# Fast by default: env-runner settings MAML chooses unless the user sets them.
def runners_config(num_env_runners=2, env="rllib_maml/Navigation2D-v0", **training):
    training.setdefault("meta_batch_size", 20)
    training.setdefault("episodes_per_task", 20)
    return (
        MAMLConfig()
        .environment(env)
        .env_runners(num_env_runners=num_env_runners)
        .training(**training)
    )


def test_envs_per_runner_default_to_the_runners_slots():
    config = runners_config()  # ceil(20 tasks / 2 runners) x 20 episodes
    config.validate()
    assert config.num_envs_per_env_runner == 200
    assert config.gym_env_vectorize_mode == "vector_entry_point"


def test_auto_envs_per_runner_are_capped():
    config = runners_config(num_env_runners=1, meta_batch_size=40)
    config.validate()
    assert (
        config.num_envs_per_env_runner == runner_settings.MAX_AUTO_ENVS_PER_ENV_RUNNER
    )


def test_no_remote_runners_count_as_one_runner():
    config = runners_config(num_env_runners=0, meta_batch_size=3, episodes_per_task=4)
    config.validate()
    assert config.num_envs_per_env_runner == 12


def test_task_by_task_sampling_gets_one_env_per_episode():
    # More would trip MAML.setup's warning: each task steps all envs.
    config = runners_config(batched_sampling=False)
    config.validate()
    assert config.num_envs_per_env_runner == 20


@pytest.mark.parametrize("num_envs", [1, 50])
def test_explicit_envs_per_runner_are_kept(num_envs):
    config = runners_config().env_runners(num_envs_per_env_runner=num_envs)
    config.validate()
    config = config.copy(copy_frozen=False).training(meta_batch_size=4)
    config.validate()
    assert config.num_envs_per_env_runner == num_envs


def test_assigned_envs_per_runner_are_kept():
    config = runners_config()
    config.num_envs_per_env_runner = 3
    config.validate()
    assert config.num_envs_per_env_runner == 3


@pytest.mark.parametrize(
    "env, mode",
    [
        ("rllib_maml/Navigation2D-v0", "vector_entry_point"),
        ("rllib_maml/Navigation2DOracle-v0", "vector_entry_point"),
        ("rllib_maml/CartPoleMass-v0", "sync"),
    ],
)
def test_array_stepped_vector_env_is_chosen_where_there_is_one(env, mode):
    config = runners_config(env=env)
    config.validate()
    assert config.gym_env_vectorize_mode == mode


def test_evaluation_runners_get_one_env_per_held_out_slot():
    config = runners_config().evaluation(
        evaluation_interval=1, evaluation_num_env_runners=1, evaluation_num_tasks=5
    )
    config.validate()
    evaluation = config.get_evaluation_config_object()
    evaluation.validate()  # as the algorithm does
    assert evaluation.num_envs_per_env_runner == 100  # 5 tasks x 20 episodes


def test_explicit_vectorize_mode_is_kept():
    config = runners_config().env_runners(gym_env_vectorize_mode="sync")
    config.validate()
    assert config.gym_env_vectorize_mode == "sync"
    assert config.num_envs_per_env_runner == 200  # still chosen by MAML


def test_auto_settings_follow_later_changes_and_copies():
    config = runners_config()
    config.validate()
    copied = config.copy(copy_frozen=False)
    copied.environment("rllib_maml/CartPoleMass-v0").training(meta_batch_size=4)
    copied.validate()
    assert copied.num_envs_per_env_runner == 40
    assert copied.gym_env_vectorize_mode == "sync"
    assert config.num_envs_per_env_runner == 200


def test_a_config_dict_chooses_again_unless_it_sets_the_value():
    config = runners_config()
    config.validate()
    as_dict = config.to_dict()  # as Tune's param_space and trial configs hold it
    as_dict["meta_batch_size"] = 4
    for build in (MAMLConfig.from_dict, MAMLConfig().update_from_dict):
        rebuilt = build(dict(as_dict))
        rebuilt.validate()
        assert rebuilt.num_envs_per_env_runner == 40
        assert rebuilt.gym_env_vectorize_mode == "vector_entry_point"
    as_dict.update(num_envs_per_env_runner=7, gym_env_vectorize_mode="sync")
    for build in (MAMLConfig.from_dict, MAMLConfig().update_from_dict):
        rebuilt = build(dict(as_dict))
        rebuilt.validate()
        assert rebuilt.num_envs_per_env_runner == 7
        assert rebuilt.gym_env_vectorize_mode == "sync"
        assert rebuilt.to_dict()["num_envs_per_env_runner"] == 7


def test_saved_state_keeps_what_the_user_set():
    auto, explicit = runners_config(), runners_config()
    explicit.env_runners(num_envs_per_env_runner=5)
    for config, expected in ((auto, 40), (explicit, 5)):
        config.validate()
        restored = MAMLConfig.from_state(config.get_state())
        restored.training(meta_batch_size=4).validate()
        assert restored.num_envs_per_env_runner == expected
    # A state saved before MAML chose these settings keeps its values.
    state = explicit.get_state()
    del state["_auto_env_runner_settings"]
    state["num_envs_per_env_runner"] = 1
    assert MAMLConfig.from_state(state).num_envs_per_env_runner == 1


def test_few_explicit_envs_per_runner_warn_once(caplog, monkeypatch):
    monkeypatch.setattr(runner_settings, "_SLOW_SAMPLING_WARNED", set())
    config = runners_config().env_runners(num_envs_per_env_runner=4)
    with caplog.at_level(logging.WARNING, logger="rllib_maml.config"):
        config.validate()
        config.validate()
    (record,) = [r for r in caplog.records if r.name == "rllib_maml.config"]
    message = record.getMessage()
    assert "`num_envs_per_env_runner` is 4" in message
    assert "200 (task, episode) slots" in message and "slow" in message
    assert "config.env_runners(num_envs_per_env_runner=200)" in message


@pytest.mark.parametrize("num_envs", [None, 8, 20, 50])
def test_enough_envs_per_runner_do_not_warn(caplog, monkeypatch, num_envs):
    monkeypatch.setattr(runner_settings, "_SLOW_SAMPLING_WARNED", set())
    config = runners_config()
    if num_envs is not None:
        config.env_runners(num_envs_per_env_runner=num_envs)
    with caplog.at_level(logging.WARNING, logger="rllib_maml.config"):
        config.validate()
    assert not [r for r in caplog.records if r.name == "rllib_maml.config"]


def test_no_advice_to_leave_the_new_api_stack(caplog):
    # RLlib's "If you don't want to use the new API stack" cannot apply to MAML.
    from ray.util.debug import reset_log_once

    reset_log_once("MAML_on_new_api_stack")
    rllib_logger = logging.getLogger("ray.rllib")  # does not propagate to root
    rllib_logger.addHandler(caplog.handler)
    try:
        local_config().validate()
    finally:
        rllib_logger.removeHandler(caplog.handler)
    assert "new API stack" not in caplog.text
