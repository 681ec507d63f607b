import os

import pytest
import torch

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray instance shared by the integration tests (2 CPUs)."""
    import ray

    if ray.is_initialized():  # a unit test's build_algo() started one implicitly
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def float64():
    """Runs a test with float64 as torch's default dtype (finite differences)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
