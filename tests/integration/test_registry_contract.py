"""The fleet registry gateway (DynamoDB on moto) and its in-memory fake agree on the contract."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from upgrader.fleet.models import RegisteredCluster
from upgrader.gateways.locks import DynamoRunTable
from upgrader.gateways.registry import DynamoClusterRegistry, InMemoryClusterRegistry

from simulator.engine import create_run_table

PAY = RegisteredCluster.model_validate(
    {
        "accountId": "111111111111",
        "region": "eu-west-1",
        "name": "pay",
        "tags": {"env": "prod", "team": "payments"},
        "roleArn": "arn:aws:iam::111111111111:role/custom",
        "externalId": "pay-ext",
        "maintenanceWindow": {
            "days": ["SAT", "SUN"],
            "start": "22:00",
            "durationMinutes": 240,
            "timezone": "Europe/Paris",
        },
    }
)
SEARCH = RegisteredCluster.model_validate(
    {"accountId": "111111111111", "region": "us-east-1", "name": "search"}
)
ORDERS = RegisteredCluster.model_validate(
    {"accountId": "222222222222", "region": "eu-west-1", "name": "orders", "tags": {"env": "dev"}}
)


@pytest.fixture(params=["dynamodb", "fake"])
def registry(request):
    if request.param == "fake":
        yield InMemoryClusterRegistry()
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_run_table(client, "runs")
        # The run table also holds locks and approvals: the registry must not list them
        DynamoRunTable(client, "runs").put_approval_request(
            "fleet-1", "canary", "token", "2026-01-01T00:00:00Z"
        )
        yield DynamoClusterRegistry(client, "runs")


def test_registered_clusters_come_back_whole_and_in_key_order(registry):
    # Given three clusters registered out of order
    for cluster in (ORDERS, PAY, SEARCH):
        assert registry.put(cluster) is True
    # When the registry is listed, Then each comes back as registered (tags, role, window), ordered by key
    assert registry.clusters() == [PAY, SEARCH, ORDERS]


def test_registering_again_replaces_and_says_so(registry):
    registry.put(PAY)
    retagged = PAY.model_copy(update={"tags": {"env": "staging"}})
    assert registry.put(retagged) is False
    assert registry.clusters() == [retagged]


def test_removing_forgets_only_that_cluster(registry):
    registry.put(PAY)
    registry.put(SEARCH)
    assert registry.remove("111111111111", "eu-west-1", "pay") is True
    assert registry.remove("111111111111", "eu-west-1", "pay") is False
    assert registry.clusters() == [SEARCH]


def test_an_empty_registry_lists_nothing(registry):
    assert registry.clusters() == []
