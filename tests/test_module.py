"""MAML's default RLModule: `model_config["initial_action_std"]`."""

import math

import gymnasium as gym
import pytest
import torch
from helpers import local_config, local_runner_and_learner
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
    DefaultPPOTorchRLModule,
)
from ray.rllib.core.columns import Columns

from rllib_maml.module import MAMLTorchRLModule

ENV = "rllib_maml/Navigation2D-v0"


def build_module(config):
    return config.get_rl_module_spec(env=gym.make(config.env)).build()


def log_std_and_mean(module, num_states=50):
    obs = torch.randn(num_states, module.observation_space.shape[0])
    with torch.no_grad():
        out = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    mean, log_std = out.chunk(2, dim=-1)
    return log_std, mean


@pytest.mark.parametrize("free_log_std", [False, True])
def test_initial_action_std_in_every_state(free_log_std):
    config = local_config(ENV).rl_module(
        model_config={"initial_action_std": 0.3, "free_log_std": free_log_std}
    )
    module = build_module(config)
    assert isinstance(module, MAMLTorchRLModule)
    log_std, mean = log_std_and_mean(module)
    torch.testing.assert_close(log_std, torch.full_like(log_std, math.log(0.3)))
    # The means keep RLlib's initialization: they vary over states.
    assert mean.std(dim=0).min() > 1e-3


def test_without_the_key_the_module_is_rllibs():
    config = local_config(ENV)
    module = build_module(config)
    log_std, _ = log_std_and_mean(module)
    assert log_std.std(dim=0).min() > 1e-3  # state-dependent, as RLlib's
    reference = DefaultPPOTorchRLModule(
        observation_space=module.observation_space,
        action_space=module.action_space,
        model_config=config.model_config,
    )
    # Same parameters: checkpoints of either module load into the other.
    assert {k: v.shape for k, v in module.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


def test_learner_and_env_runner_start_from_the_initial_std():
    config = local_config(ENV).rl_module(model_config={"initial_action_std": 0.5})
    runner, learner = local_runner_and_learner(config)
    runner.set_state(learner.get_state(components="rl_module"))
    for module in (learner.module["default_policy"], runner.module):
        log_std, _ = log_std_and_mean(module)
        torch.testing.assert_close(log_std, torch.full_like(log_std, math.log(0.5)))
    # The log std stays a trainable function of the state.
    head = learner.module["default_policy"].pi.net.mlp[-1]
    assert head.weight.requires_grad and head.bias.requires_grad


def test_initial_action_std_needs_a_gaussian_policy():
    config = local_config("rllib_maml/CartPoleMass-v0").rl_module(
        model_config={"initial_action_std": 0.5}
    )
    with pytest.raises(ValueError, match=r"`model_config\['initial_action_std'\]`"):
        build_module(config)


@pytest.mark.parametrize("value", [0, -0.5, float("nan"), "0.5", True])
def test_bad_initial_action_std_is_rejected(value):
    config = local_config(ENV).rl_module(model_config={"initial_action_std": value})
    with pytest.raises(
        ValueError,
        match=r"`model_config\['initial_action_std'\]` must be a positive number",
    ):
        config.validate()


def test_free_log_std_with_an_lstm_gives_the_parameter_at_every_step():
    # RLlib's free-log-std head concatenates a [B, D] log std to a [B, T, D]
    # mean (an LSTM encoder's output) and fails.
    obs_space = gym.spaces.Box(-1.0, 1.0, (3,))
    module = MAMLTorchRLModule(
        observation_space=obs_space,
        action_space=gym.spaces.Box(-1.0, 1.0, (2,)),
        model_config={
            "use_lstm": True,
            "lstm_cell_size": 8,
            "max_seq_len": 5,
            "free_log_std": True,
            "initial_action_std": 0.5,
        },
    )
    batch, steps = 4, 5
    state = {
        k: torch.as_tensor(v).expand(batch, *v.shape)
        for k, v in module.get_initial_state().items()
    }
    with torch.no_grad():
        out = module.forward_train(
            {Columns.OBS: torch.randn(batch, steps, 3), Columns.STATE_IN: state}
        )[Columns.ACTION_DIST_INPUTS]
    assert out.shape == (batch, steps, 4)
    torch.testing.assert_close(
        out[..., 2:], torch.full((batch, steps, 2), math.log(0.5))
    )
