"""The GPU learner (`config.learners(num_gpus_per_learner=1)`).

Where torch sees a CUDA GPU, the inner step on the GPU learner is checked against
`theta - lr * grad` computed independently on the CPU, and the algorithm trains
with the GPU learner end to end. Where it sees none, those tests are skipped and
asking for a GPU learner is a clear error instead.
"""

import copy

import numpy as np
import pytest
import torch
from helpers import local_config, local_runner_and_learner, sample
from test_inner_step import INNER_LR, TASKS, reference_adapted_weights

from rllib_maml import MAMLConfig
from rllib_maml.config import check_local_learner_device

needs_gpu = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="torch sees no CUDA GPU on this machine"
)


def gpu_config(**training) -> MAMLConfig:
    return local_config(**training).learners(num_learners=0, num_gpus_per_learner=1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_learner_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match=r"num_gpus_per_learner=1.*no CUDA GPU"):
        check_local_learner_device(gpu_config())
    check_local_learner_device(local_config())  # the CPU learner is fine


@needs_gpu
@pytest.mark.parametrize("advantage_baseline", ["value_function", "linear"])
def test_gpu_inner_step_equals_theta_minus_lr_grad(advantage_baseline):
    config = gpu_config(inner_lr=INNER_LR, advantage_baseline=advantage_baseline)
    runner, learner = local_runner_and_learner(config)
    module = learner.module["default_policy"]
    assert next(module.parameters()).is_cuda
    episodes = sample(runner, learner, TASKS, num_episodes=3)
    cpu_module = copy.deepcopy(module).cpu()
    expected = {
        task: reference_adapted_weights(
            cpu_module, episodes[task], INNER_LR, advantage_baseline
        )
        for task in episodes
    }

    adapted = learner.adapt(step=0, episodes_by_task=episodes)

    for task, weights in adapted.items():
        for name in learner.policy_param_names:
            np.testing.assert_allclose(
                weights[name], expected[task][name], rtol=1e-4, atol=1e-5
            )


@needs_gpu
@pytest.mark.parametrize("outer_optimizer", ["ppo", "trpo"])
def test_algorithm_trains_with_a_gpu_learner(outer_optimizer):
    algo = gpu_config(outer_optimizer=outer_optimizer).build_algo()
    try:
        learner = algo.learner_group._learner
        before = {
            n: p.detach().cpu().clone()
            for n, p in learner.module["default_policy"].named_parameters()
        }
        for _ in range(2):
            result = algo.train()
        assert np.isfinite(result["adaptation_delta"])
        after = dict(learner.module["default_policy"].named_parameters())
        assert all(p.is_cuda for p in after.values())
        assert any(not torch.equal(before[n], after[n].cpu()) for n in before)
        # The env runner samples with the learner's (CPU copy of the) weights.
        runner_state = algo.env_runner.module.get_state(inference_only=True)
        for name, value in runner_state.items():
            if name in after:
                np.testing.assert_allclose(
                    np.asarray(value), after[name].detach().cpu().numpy()
                )
    finally:
        algo.stop()


@needs_gpu
@pytest.mark.integration
def test_env_runner_samples_batched_on_a_gpu(ray_session):
    """A remote env runner with a GPU keeps its module and the per-task
    parameters on the GPU (sampling with two inner steps: per-task params)."""
    config = (
        local_config(inner_adaptation_steps=2, episodes_per_task=2)
        .env_runners(num_env_runners=1, num_gpus_per_env_runner=1)
        .env_runners(num_cpus_per_env_runner=0.5)
    )
    algo = config.build_algo()
    try:
        devices = algo.env_runner_group.foreach_env_runner(
            lambda runner: str(next(runner.module.parameters()).device),
            local_env_runner=False,
        )
        assert devices and all(d.startswith("cuda") for d in devices)
        for _ in range(2):
            result = algo.train()
        assert np.isfinite(result["env_runners"]["episode_return_mean_adapt_2"])
    finally:
        algo.stop()


@pytest.mark.skipif(
    torch.cuda.device_count() < 2,
    reason="two GPU learners need two CUDA GPUs (NCCL takes one per learner); "
    f"torch sees {torch.cuda.device_count()}",
)
@pytest.mark.parametrize("outer_optimizer", ["ppo", "trpo"])
def test_two_gpu_learners_train_alike(ray_session, outer_optimizer):
    algo = (
        local_config(meta_batch_size=4, outer_optimizer=outer_optimizer)
        .learners(num_learners=2, num_gpus_per_learner=1, num_cpus_per_learner=0)
        .build_algo()
    )
    try:
        before = algo._call_learner(lambda lrn: lrn.policy_params_numpy())
        before = {n: v.copy() for n, v in before.items()}
        for _ in range(2):
            result = algo.train()
        assert result["learners"]["default_policy"]["num_tasks"] == 4
        devices = algo._call_learners(
            lambda lrn: {p.device.type for p in lrn.meta_policy_params().values()}
        )
        assert devices == [{"cuda"}, {"cuda"}]
        params = algo._call_learners(lambda lrn: lrn.policy_params_numpy())
        for name in before:
            np.testing.assert_array_equal(params[0][name], params[1][name])
        assert any(not np.array_equal(params[0][n], before[n]) for n in before)
    finally:
        algo.stop()
