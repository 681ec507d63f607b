"""MAML on a real multi-node Ray cluster (three raylets on this machine)."""

import math

import pytest
import ray
from ray.cluster_utils import Cluster

from rllib_maml import MAMLConfig

pytestmark = pytest.mark.integration


@pytest.fixture
def three_node_cluster():
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "resources": {"head": 1}},
    )
    # One "runner_slot" per worker node: each env runner needs one, so the two
    # runners land on different nodes.
    for _ in range(2):
        cluster.add_node(num_cpus=1, resources={"runner_slot": 1})
    ray.init(address=cluster.address)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_env_runners_on_different_nodes(three_node_cluster):
    config = (
        MAMLConfig()
        .environment("rllib_maml/Navigation2D-v0")
        .env_runners(
            num_env_runners=2,
            num_cpus_per_env_runner=0.5,
            custom_resources_per_env_runner={"runner_slot": 1},
        )
        .training(meta_batch_size=4, episodes_per_task=2)
    )
    algo = config.build_algo()
    try:
        nodes = algo.env_runner_group.foreach_env_runner(
            lambda runner: ray.get_runtime_context().get_node_id(),
            local_env_runner=False,
        )
        driver_node = ray.get_runtime_context().get_node_id()
        assert len(set(nodes)) == 2 and driver_node not in nodes
        for _ in range(2):
            result = algo.train()
        assert result["num_tasks"] == 4
        assert math.isfinite(result["adaptation_delta"])
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] > 0
    finally:
        algo.stop()
