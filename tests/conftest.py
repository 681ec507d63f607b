import os

import pytest
import torch

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture
def ray_session():
    """A local Ray (2 CPUs) for the integration tests, started once and reused.

    Tests that start their own cluster shut it down; the next test starts a
    local one again.
    """
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    return ray


@pytest.fixture
def float64():
    """Runs a test with float64 as torch's default dtype (finite differences)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
