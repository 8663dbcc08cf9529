"""One contract, two implementations: the in-memory fake the domain tests use, and the real boto3
gateway against moto + the simulator's EKS extension. If they disagree, a fake has drifted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws
from upgrader.errors import ClusterNotFound, UpdateAlreadyInProgress
from upgrader.gateways.eks import BotoEksGateway, EksGateway

from simulator.clock import VirtualClock
from simulator.eks import EksSimulation, EksTimings, eks_extension
from tests.fakes import FakeEksGateway


@dataclass
class Harness:
    gateway: EksGateway
    add_cluster: Callable[[str, str], None]
    finish_updates: Callable[[], None]


def _fake() -> Iterator[Harness]:
    fake = FakeEksGateway()

    def finish() -> None:
        for name, cluster in fake.clusters.items():
            for update in list(cluster.updates):
                if update.status == "InProgress":
                    fake.finish(name, update.id)

    yield Harness(fake, fake.add_cluster, finish)


def _real() -> Iterator[Harness]:
    clock = VirtualClock()
    with mock_aws(), eks_extension(EksSimulation(clock, EksTimings(control_plane_update=300))):
        ec2 = boto3.client("ec2", region_name="eu-west-1")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in range(2)
        ]
        client = boto3.client("eks", region_name="eu-west-1")

        def add(name: str, version: str) -> None:
            client.create_cluster(
                name=name,
                version=version,
                roleArn="arn:aws:iam::123456789012:role/eks",
                resourcesVpcConfig={"subnetIds": subnets},
            )

        yield Harness(BotoEksGateway(client), add, lambda: clock.sleep(300))


@pytest.fixture(params=["fake", "real"])
def harness(request) -> Iterator[Harness]:
    yield from (_fake() if request.param == "fake" else _real())


def test_unknown_cluster_is_cluster_not_found(harness):
    with pytest.raises(ClusterNotFound):
        harness.gateway.describe_cluster("nope")


def test_describe_cluster_reports_version_and_status(harness):
    harness.add_cluster("c1", "1.23")
    info = harness.gateway.describe_cluster("c1")
    assert (info.name, info.version, info.status) == ("c1", "1.23", "ACTIVE")


def test_version_update_runs_then_succeeds(harness):
    harness.add_cluster("c1", "1.23")
    update = harness.gateway.update_cluster_version("c1", "1.24", "token-1")
    assert (update.status, update.type, update.params["Version"]) == ("InProgress", "VersionUpdate", "1.24")
    assert harness.gateway.describe_cluster("c1").status == "UPDATING"
    assert harness.gateway.list_updates("c1") == [update.id]
    harness.finish_updates()
    assert harness.gateway.describe_update("c1", update.id).status == "Successful"
    info = harness.gateway.describe_cluster("c1")
    assert (info.version, info.status) == ("1.24", "ACTIVE")


def test_same_token_returns_the_same_update(harness):
    harness.add_cluster("c1", "1.23")
    first = harness.gateway.update_cluster_version("c1", "1.24", "token-1")
    again = harness.gateway.update_cluster_version("c1", "1.24", "token-1")
    assert again.id == first.id
    assert harness.gateway.list_updates("c1") == [first.id]


def test_second_update_while_one_runs_is_refused(harness):
    harness.add_cluster("c1", "1.23")
    harness.gateway.update_cluster_version("c1", "1.24", "token-1")
    with pytest.raises(UpdateAlreadyInProgress):
        harness.gateway.update_cluster_version("c1", "1.24", "token-2")
