"""The end of every simulation checks that each cluster's aws-auth ConfigMap is byte-identical to what it
was once the fleet was seeded (simulator/simulation.py, reliability guarantee 1.16): the check itself."""

from __future__ import annotations

import pytest

from simulator.scenario import Scenario
from simulator.simulation import AWS_AUTH, AwsAuthChanged, Simulation


def two_clusters() -> Scenario:
    return Scenario.model_validate(
        {
            "name": "aws-auth-check",
            "upgrade": {"toVersion": "1.24"},
            "accounts": [
                {
                    "id": "111111111111",
                    "clusters": [
                        {"name": "payments-prod", "region": "eu-west-1", "version": "1.23"},
                        {"name": "search-prod", "region": "us-east-1", "version": "1.23"},
                    ],
                }
            ],
        }
    )


def test_a_written_aws_auth_fails_the_simulation_naming_the_cluster_even_with_the_same_data():
    with (
        pytest.raises(
            AwsAuthChanged,
            match=r"111111111111/us-east-1/search-prod: metadata.resourceVersion '\d+' -> '\d+'$",
        ) as raised,
        Simulation(two_clusters()) as sim,
    ):
        # Given both clusters untouched, the check passes and covers both
        assert sim.check_aws_auth() == list(sim.worlds) and len(sim.worlds) == 2
        # When someone rewrites search-prod's aws-auth with the very same data (a new resourceVersion)
        world = sim.worlds[("111111111111", "us-east-1", "search-prod")]
        current = world.get(*AWS_AUTH)
        world.apply({k: current[k] for k in ("apiVersion", "kind", "metadata", "data")})
    # Then the end of the simulation fails, naming that cluster only
    assert "payments-prod" not in str(raised.value)


def test_an_edited_or_deleted_aws_auth_fails_and_a_block_that_already_failed_is_not_masked():
    with pytest.raises(ZeroDivisionError), Simulation(two_clusters()) as sim:
        world = sim.worlds[("111111111111", "eu-west-1", "payments-prod")]
        # When a mapping is added, the check fails saying what changed
        world.patch(*AWS_AUTH, {"data": {"mapUsers": "- userarn: x"}}, "application/merge-patch+json")
        with pytest.raises(AwsAuthChanged, match=r"eu-west-1/payments-prod: data.mapUsers added, metadata"):
            sim.check_aws_auth()
        # When it is deleted, the check fails saying so
        world.delete(*AWS_AUTH)
        with pytest.raises(AwsAuthChanged, match=r"eu-west-1/payments-prod: deleted$"):
            sim.check_aws_auth()
        # And a block failing for its own reason ends with its own error, not the aws-auth one
        1 / 0  # noqa: B018
