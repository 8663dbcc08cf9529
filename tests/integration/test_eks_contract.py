"""One contract, two implementations: the in-memory fake the domain tests use, and the real boto3
gateway against moto + the simulator's EKS extension. If they disagree, a fake has drifted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws
from upgrader.errors import AwsResourceNotFound, ClusterNotFound, UpdateAlreadyInProgress
from upgrader.gateways.eks import BotoEksGateway, EksGateway

from simulator.clock import VirtualClock
from simulator.eks import EksSimulation, EksTimings, eks_extension
from tests.fakes import FakeEksGateway


@dataclass
class Harness:
    gateway: EksGateway
    add_cluster: Callable[[str, str], None]
    finish_updates: Callable[[], None]
    add_nodegroup: Callable[..., None]  # (cluster, name, version=None)
    add_addon: Callable[..., None]  # (cluster, name)
    # a node group behind its control plane: the kubelet skew insight for the next version is ERROR
    lag_nodegroup: Callable[[str, str, str], None]  # (cluster, name, older version)


def _fake() -> Iterator[Harness]:
    fake = FakeEksGateway()

    def finish() -> None:
        for name, cluster in fake.clusters.items():
            for update in list(cluster.updates):
                if update.status == "InProgress":
                    fake.finish(name, update.id)

    def lag(cluster: str, name: str, version: str) -> None:
        fake.add_nodegroup(cluster, name, version=version)
        target = f"1.{int(fake.clusters[cluster].version.split('.')[1]) + 1}"
        fake.add_insight(cluster, "Kubelet version skew", "ERROR", target)
        fake.add_insight(cluster, "Amazon EKS add-on version compatibility", "PASSING", target)

    yield Harness(
        fake,
        fake.add_cluster,
        finish,
        lambda cluster, name, version=None: fake.add_nodegroup(cluster, name, version=version),
        lambda cluster, name: fake.add_addon(cluster, name),
        lag,
    )


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

        def add_nodegroup(cluster: str, name: str, version: str | None = None) -> None:
            request = {
                "clusterName": cluster,
                "nodegroupName": name,
                "subnets": subnets,
                "nodeRole": "arn:aws:iam::123456789012:role/eks-node",
                "scalingConfig": {"minSize": 2, "maxSize": 2, "desiredSize": 2},
            }
            client.create_nodegroup(**request | ({"version": version} if version else {}))

        yield Harness(
            BotoEksGateway(client),
            add,
            lambda: clock.sleep(300),
            add_nodegroup,
            lambda cluster, name: client.create_addon(clusterName=cluster, addonName=name),
            add_nodegroup,
        )


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


# -- readiness facts ----------------------------------------------------------------------------
def test_node_groups_are_listed_and_described_in_the_api_shape(harness):
    harness.add_cluster("c1", "1.23")
    harness.add_nodegroup("c1", "general")
    harness.add_nodegroup("c1", "batch")
    assert sorted(harness.gateway.list_nodegroups("c1")) == ["batch", "general"]
    group = harness.gateway.describe_nodegroup("c1", "general")
    assert (group["nodegroupName"], group["clusterName"], group["version"]) == ("general", "c1", "1.23")
    assert group["scalingConfig"]["desiredSize"] == 2


def test_a_node_group_that_is_gone_is_resource_not_found_and_a_missing_cluster_cluster_not_found(harness):
    harness.add_cluster("c1", "1.23")
    with pytest.raises(AwsResourceNotFound) as caught:
        harness.gateway.describe_nodegroup("c1", "deleted-meanwhile")
    assert caught.value.details["resourceName"] == "deleted-meanwhile"
    with pytest.raises(ClusterNotFound):
        harness.gateway.describe_nodegroup("nope", "general")


def test_add_ons_are_listed_and_described_and_a_missing_one_is_resource_not_found(harness):
    harness.add_cluster("c1", "1.23")
    harness.add_addon("c1", "kube-proxy")
    harness.add_addon("c1", "vpc-cni")
    assert sorted(harness.gateway.list_addons("c1")) == ["kube-proxy", "vpc-cni"]
    addon = harness.gateway.describe_addon("c1", "kube-proxy")
    assert addon["addonName"] == "kube-proxy" and addon["addonVersion"].startswith("v1.23.")
    with pytest.raises(AwsResourceNotFound):
        harness.gateway.describe_addon("c1", "coredns")


def test_addon_versions_are_those_compatible_with_the_asked_kubernetes_version(harness):
    [info] = harness.gateway.describe_addon_versions("kube-proxy", "1.24")
    assert info["addonName"] == "kube-proxy"
    versions = info["addonVersions"]
    assert versions and all(v["addonVersion"].startswith("v1.24.") for v in versions)
    clusters = {c["clusterVersion"] for v in versions for c in v["compatibilities"]}
    assert clusters == {"1.24"}
    assert any(c.get("defaultVersion") for v in versions for c in v["compatibilities"])
    assert harness.gateway.describe_addon_versions("no-such-addon", "1.24") == []


def test_upgrade_insights_for_the_target_are_listed_and_described(harness):
    # Given a 1.24 cluster whose node group still runs 1.23
    harness.add_cluster("c1", "1.24")
    harness.lag_nodegroup("c1", "old", "1.23")
    # When the insights for 1.25 are listed
    insights = harness.gateway.list_insights("c1", "1.25")
    # Then they are upgrade-readiness insights for 1.25, the kubelet skew one failing
    assert {(i["category"], i["kubernetesVersion"]) for i in insights} == {("UPGRADE_READINESS", "1.25")}
    [skew] = [i for i in insights if i["name"] == "Kubelet version skew"]
    assert skew["insightStatus"]["status"] == "ERROR"
    # And DescribeInsight adds what to do about it
    detail = harness.gateway.describe_insight("c1", skew["id"])
    assert detail["id"] == skew["id"] and detail["insightStatus"]["status"] == "ERROR"
    assert detail["recommendation"]
    # And other versions' insights are not listed; an unknown id is resource not found
    assert harness.gateway.list_insights("c1", "1.30") == []
    with pytest.raises(AwsResourceNotFound):
        harness.gateway.describe_insight("c1", "00000000-0000-0000-0000-000000000000")


def test_describe_cluster_gives_the_api_endpoint_the_ca_and_the_subnets(harness):
    harness.add_cluster("c1", "1.23")
    info = harness.gateway.describe_cluster("c1")
    assert info.endpoint and info.endpoint.startswith("https://")
    assert info.certificate_authority
    assert len(info.subnet_ids) == 2 and all(s.startswith("subnet-") for s in info.subnet_ids)
    assert (info.raw["name"], info.raw["status"], info.raw["version"]) == ("c1", "ACTIVE", "1.23")
