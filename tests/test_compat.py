"""Every private RLlib attribute rllib_maml reaches (`rllib_maml.compat`) still
exists on the installed RLlib; a Ray upgrade that removes one fails here,
naming it."""

import pytest
from helpers import local_config, local_runner_and_learner

from rllib_maml import compat


def test_every_private_attribute_exists():
    config = local_config()
    runner, learner = local_runner_and_learner(config)
    missing = {
        owner: compat.missing_attributes(owner, obj)
        for owner, obj in (
            ("env_runner", runner),
            ("learner", learner),
            ("config", config),
        )
    }
    assert missing == {"env_runner": [], "learner": [], "config": []}, (
        "The installed RLlib lacks private attributes rllib_maml uses; update "
        f"rllib_maml/compat.py: {missing}"
    )
    assert {owner for owner, _, _ in compat.REQUIRED} == set(missing)


def test_a_missing_attribute_is_named():
    class Bare:
        _seed = None

    missing = compat.missing_attributes("env_runner", Bare())
    assert "_needs_initial_reset" in missing and "_seed" not in missing


@pytest.mark.parametrize("owner", ["env_runner", "learner", "config"])
def test_each_owner_lists_why(owner):
    assert all(why for who, _, why in compat.REQUIRED if who == owner)
