"""The run table gateway (DynamoDB on moto) and its fake agree on the lock contract."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from upgrader.errors import ClusterLocked
from upgrader.fleet import locks
from upgrader.fleet.models import Approval, WaveRecord
from upgrader.gateways.locks import DynamoRunTable
from upgrader.models import ClusterRef

from simulator.engine import create_run_table
from tests.fakes_fleet import FakeRunTable

CLUSTER = ClusterRef(account_id="111111111111", region="eu-west-1", name="pay")


@pytest.fixture(params=["dynamodb", "fake"])
def table(request):
    if request.param == "fake":
        yield FakeRunTable()
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_run_table(client, "runs")
        yield DynamoRunTable(client, "runs")


def test_a_held_lock_refuses_another_owner_until_its_lease_expires(table):
    # Given fleet-a holds the lock for an hour from t=1000
    lease = locks.acquire(table, CLUSTER, owner="fleet-a", now=1000, lease_seconds=3600)
    assert (lease.key, lease.expires_at) == ("LOCK#111111111111#eu-west-1#pay", 4600)
    # When fleet-b asks within the lease, Then ClusterLocked names the holder and the expiry
    with pytest.raises(ClusterLocked) as refused:
        locks.acquire(table, CLUSTER, owner="fleet-b", now=4600, lease_seconds=3600)
    assert refused.value.details == {"cluster": CLUSTER.key, "owner": "fleet-a", "expiresAt": 4600}
    # And once the lease has expired (a crashed holder), fleet-b gets it: the timestamp decides
    assert locks.acquire(table, CLUSTER, owner="fleet-b", now=4601, lease_seconds=60).owner == "fleet-b"


def test_the_owner_renews_and_only_the_owner_releases(table):
    locks.acquire(table, CLUSTER, owner="fleet-a", now=0, lease_seconds=100)
    renewed = locks.acquire(table, CLUSTER, owner="fleet-a", now=50, lease_seconds=100)  # a redriven run
    assert renewed.expires_at == 150
    assert locks.release(table, CLUSTER, owner="fleet-b") is False  # not ours: left alone
    with pytest.raises(ClusterLocked):
        locks.acquire(table, CLUSTER, owner="fleet-b", now=60, lease_seconds=100)
    assert locks.release(table, CLUSTER, owner="fleet-a") is True
    assert locks.release(table, CLUSTER, owner="fleet-a") is False  # already gone
    assert locks.acquire(table, CLUSTER, owner="fleet-b", now=60, lease_seconds=100).owner == "fleet-b"


def test_wave_records_come_back_in_wave_order(table):
    for index in (1, 0):
        table.put_wave(
            "fleet-a",
            WaveRecord(
                index=index,
                name=f"w{index}",
                canary=index == 0,
                clusters=(),
                outcome="SUCCEEDED",
                approval=Approval(required=False, status="NOT_REQUIRED"),
            ),
        )
    table.put_wave(
        "fleet-b",
        WaveRecord(
            index=0,
            name="x",
            canary=True,
            clusters=(),
            outcome="PLANNED",
            approval=Approval(required=False, status="NOT_REQUIRED"),
        ),
    )
    assert [record.name for record in table.waves("fleet-a")] == ["w0", "w1"]
