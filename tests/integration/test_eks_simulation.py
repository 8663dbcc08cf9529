"""The moto EKS extension (simulator/eks.py), driven through boto3 as the Lambda steps drive it.

moto runs once per module; each test makes its own clusters (unique names) and opens the extension
with a fresh virtual clock, so tests do not see each other's updates.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.eks import urls as eks_urls

from simulator.clock import DEFAULT_EPOCH, VirtualClock
from simulator.eks import MIN_FREE_IPS_FOR_UPDATE, EksSimulation, EksTimings, eks_extension

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/eks-cluster-role"
UPDATE_SECONDS = 480.0

_cluster_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def subnets() -> Iterator[list[str]]:
    """A VPC with two subnets in moto, shared by every cluster of this module."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        yield [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in range(2)
        ]


@pytest.fixture
def eks(subnets: list[str]) -> Any:
    return boto3.client("eks", region_name=REGION)


@pytest.fixture
def sim(subnets: list[str]) -> Iterator[EksSimulation]:
    with eks_extension(EksSimulation(VirtualClock(), EksTimings(control_plane_update=UPDATE_SECONDS))) as s:
        yield s


@pytest.fixture
def make_cluster(eks: Any, subnets: list[str]) -> Callable[..., str]:
    """Create a cluster (and optionally a node group) with moto's own API; returns its name."""

    def make(version: str = "1.23", nodegroup_version: str | None = None) -> str:
        name = f"sim-cluster-{next(_cluster_numbers)}"
        eks.create_cluster(
            name=name, version=version, roleArn=ROLE_ARN, resourcesVpcConfig={"subnetIds": subnets}
        )
        if nodegroup_version is not None:
            eks.create_nodegroup(
                clusterName=name,
                nodegroupName="workers",
                nodeRole=ROLE_ARN,
                subnets=subnets,
                version=nodegroup_version,
            )
        return name

    return make


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _cluster(eks: Any, name: str) -> tuple[str, str]:
    described = eks.describe_cluster(name=name)["cluster"]
    return described["status"], described["version"]


def _update(eks: Any, name: str, update_id: str) -> dict[str, Any]:
    return eks.describe_update(name=name, updateId=update_id)["update"]


def test_update_is_in_progress_until_its_virtual_duration_elapses(sim, eks, make_cluster):
    # Given an ACTIVE 1.23 cluster
    name = make_cluster("1.23")

    # When its control plane update to 1.24 starts
    started = eks.update_cluster_version(name=name, version="1.24")["update"]

    # Then the update is InProgress, stamped with the virtual clock, and the cluster is UPDATING on 1.23
    assert started["status"] == "InProgress"
    assert started["type"] == "VersionUpdate"
    assert {"type": "Version", "value": "1.24"} in started["params"]
    assert started["createdAt"] == DEFAULT_EPOCH
    assert started["errors"] == []
    assert _cluster(eks, name) == ("UPDATING", "1.23")

    # When the virtual clock moves to one second before the update's duration
    sim.clock.sleep(UPDATE_SECONDS - 1)
    # Then nothing has changed yet
    assert _update(eks, name, started["id"])["status"] == "InProgress"
    assert _cluster(eks, name) == ("UPDATING", "1.23")

    # When the duration has elapsed
    sim.clock.sleep(1)
    # Then the update is Successful and the cluster ACTIVE on the new version
    done = _update(eks, name, started["id"])
    assert (done["status"], done["errors"]) == ("Successful", [])
    assert _cluster(eks, name) == ("ACTIVE", "1.24")


@pytest.mark.parametrize("version", ["1.25", "1.23", "1.22"])
def test_only_a_one_minor_step_up_is_accepted(sim, eks, make_cluster, version):
    # Given an ACTIVE 1.23 cluster
    name = make_cluster("1.23")

    # When an update to anything but 1.24 is requested
    with pytest.raises(ClientError) as excinfo:
        eks.update_cluster_version(name=name, version=version)

    # Then EKS refuses it and nothing started
    assert _error(excinfo) == ("InvalidParameterException", 400)
    assert f"from 1.23 to {version}" in excinfo.value.response["Error"]["Message"]
    assert eks.list_updates(name=name)["updateIds"] == []
    assert _cluster(eks, name) == ("ACTIVE", "1.23")


def test_a_second_update_while_one_runs_is_refused_with_409(sim, eks, make_cluster):
    # Given a cluster with an update in progress
    name = make_cluster("1.23")
    first = eks.update_cluster_version(name=name, version="1.24", clientRequestToken="first")["update"]

    # When another update is requested (another token) before the first finishes
    with pytest.raises(ClientError) as excinfo:
        eks.update_cluster_version(name=name, version="1.24", clientRequestToken="second")

    # Then it is refused with ResourceInUseException (HTTP 409) and only the first update exists
    assert _error(excinfo) == ("ResourceInUseException", 409)
    assert eks.list_updates(name=name)["updateIds"] == [first["id"]]

    # And once the first has finished, the next step is accepted
    sim.clock.sleep(UPDATE_SECONDS)
    second = eks.update_cluster_version(name=name, version="1.25", clientRequestToken="second")["update"]
    assert second["status"] == "InProgress"
    assert second["id"] != first["id"]


def test_a_node_group_behind_the_control_plane_blocks_the_next_update(sim, eks, make_cluster):
    # Given a 1.23 cluster whose node group is also on 1.23: the control plane may move to 1.24
    name = make_cluster("1.23", nodegroup_version="1.23")
    eks.update_cluster_version(name=name, version="1.24")
    sim.clock.sleep(UPDATE_SECONDS)
    assert _cluster(eks, name) == ("ACTIVE", "1.24")

    # When the control plane is asked to move on to 1.25 while the node group is still on 1.23
    with pytest.raises(ClientError) as excinfo:
        eks.update_cluster_version(name=name, version="1.25")

    # Then EKS refuses, naming the node group, and the cluster stays where it is
    assert _error(excinfo) == ("InvalidRequestException", 400)
    assert "workers" in excinfo.value.response["Error"]["Message"]
    assert len(eks.list_updates(name=name)["updateIds"]) == 1
    assert _cluster(eks, name) == ("ACTIVE", "1.24")


def test_the_same_client_request_token_returns_the_same_update(sim, eks, make_cluster):
    # Given an update started with a clientRequestToken
    name = make_cluster("1.23")
    first = eks.update_cluster_version(name=name, version="1.24", clientRequestToken="token-1")["update"]

    # When the same request is repeated (a retried Lambda), during and after the update
    again = eks.update_cluster_version(name=name, version="1.24", clientRequestToken="token-1")["update"]
    sim.clock.sleep(UPDATE_SECONDS)
    later = eks.update_cluster_version(name=name, version="1.24", clientRequestToken="token-1")["update"]

    # Then it returns the same update (no 409) and starts nothing new
    assert again["id"] == first["id"]
    assert again["status"] == "InProgress"
    assert (later["id"], later["status"]) == (first["id"], "Successful")
    assert eks.list_updates(name=name)["updateIds"] == [first["id"]]
    assert _cluster(eks, name) == ("ACTIVE", "1.24")


def test_too_few_free_ips_fail_the_update_and_keep_the_version(sim, eks, make_cluster, subnets):
    # Given a cluster whose subnets have one free IP address fewer than an update needs
    name = make_cluster("1.23")
    sim.cluster_sim(ACCOUNT, REGION, name).free_ips = MIN_FREE_IPS_FOR_UPDATE - 1

    # When its update is started: EKS accepts it as usual
    started = eks.update_cluster_version(name=name, version="1.24")["update"]
    assert (started["status"], started["errors"]) == ("InProgress", [])
    assert _cluster(eks, name) == ("UPDATING", "1.23")

    # Then once the duration has elapsed it is Failed with IpNotAvailable naming the subnets
    sim.clock.sleep(UPDATE_SECONDS)
    failed = _update(eks, name, started["id"])
    assert failed["status"] == "Failed"
    assert [e["errorCode"] for e in failed["errors"]] == ["IpNotAvailable"]
    assert sorted(failed["errors"][0]["resourceIds"]) == sorted(subnets)
    # And the cluster is back to ACTIVE on its old version
    assert _cluster(eks, name) == ("ACTIVE", "1.23")


def test_exactly_the_minimum_of_free_ips_is_enough(sim, eks, make_cluster):
    # Given a cluster with exactly the free IP addresses an update needs
    name = make_cluster("1.23")
    sim.cluster_sim(ACCOUNT, REGION, name).free_ips = MIN_FREE_IPS_FOR_UPDATE

    # When its update runs to the end
    update_id = eks.update_cluster_version(name=name, version="1.24")["update"]["id"]
    sim.clock.sleep(UPDATE_SECONDS)

    # Then it succeeds
    assert _update(eks, name, update_id)["status"] == "Successful"
    assert _cluster(eks, name) == ("ACTIVE", "1.24")


def test_fail_next_update_fails_one_update_only(sim, eks, make_cluster):
    # Given a cluster whose next update is set to fail
    name = make_cluster("1.23")
    state = sim.cluster_sim(ACCOUNT, REGION, name)
    state.fail_next_update = "ClusterUnreachable"

    # When an update runs to the end
    first_id = eks.update_cluster_version(name=name, version="1.24")["update"]["id"]
    sim.clock.sleep(UPDATE_SECONDS)

    # Then it failed with the injected errorCode, the fault is used up and the cluster unchanged
    first = _update(eks, name, first_id)
    assert first["status"] == "Failed"
    assert [e["errorCode"] for e in first["errors"]] == ["ClusterUnreachable"]
    assert state.fail_next_update is None
    assert _cluster(eks, name) == ("ACTIVE", "1.23")

    # And when the update is tried again, it succeeds
    second_id = eks.update_cluster_version(name=name, version="1.24")["update"]["id"]
    sim.clock.sleep(UPDATE_SECONDS)
    assert _update(eks, name, second_id)["status"] == "Successful"
    assert _cluster(eks, name) == ("ACTIVE", "1.24")


def test_list_updates_is_oldest_first_and_paginates(sim, eks, make_cluster):
    # Given a cluster that went through three updates, one after the other
    name = make_cluster("1.23")
    started = []
    for version in ("1.24", "1.25", "1.26"):
        started.append(eks.update_cluster_version(name=name, version=version)["update"]["id"])
        sim.clock.sleep(UPDATE_SECONDS)

    # When its updates are listed in one page
    # Then the ids come oldest first, with no nextToken
    whole = eks.list_updates(name=name)
    assert whole["updateIds"] == started
    assert "nextToken" not in whole

    # When they are listed two at a time
    first_page = eks.list_updates(name=name, maxResults=2)
    second_page = eks.list_updates(name=name, maxResults=2, nextToken=first_page["nextToken"])

    # Then the pages split the same order, and the last page has no nextToken
    assert first_page["updateIds"] == started[:2]
    assert second_page["updateIds"] == started[2:]
    assert "nextToken" not in second_page

    # And boto3's paginator walks them one per page
    pages = eks.get_paginator("list_updates").paginate(name=name, PaginationConfig={"PageSize": 1})
    assert [page["updateIds"] for page in pages] == [[started[0]], [started[1]], [started[2]]]


def test_describe_update_of_an_unknown_id_is_not_found(sim, eks, make_cluster):
    # Given two clusters, one with an update
    name, other = make_cluster("1.23"), make_cluster("1.23")
    update_id = eks.update_cluster_version(name=name, version="1.24")["update"]["id"]

    # When an unknown id, or another cluster's update id, is described
    for cluster, wanted in ((name, "00000000-0000-0000-0000-000000000000"), (other, update_id)):
        with pytest.raises(ClientError) as excinfo:
            eks.describe_update(name=cluster, updateId=wanted)

        # Then EKS answers ResourceNotFoundException (404) naming the id
        assert _error(excinfo) == ("ResourceNotFoundException", 404)
        assert wanted in excinfo.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("operation", "kwargs"),
    [
        ("describe_cluster", {}),
        ("update_cluster_version", {"version": "1.24"}),
        ("describe_update", {"updateId": "00000000-0000-0000-0000-000000000000"}),
        ("list_updates", {}),
    ],
)
def test_any_call_on_an_unknown_cluster_is_not_found(sim, eks, operation, kwargs):
    # Given no cluster called "ghost"
    # When any EKS call names it
    with pytest.raises(ClientError) as excinfo:
        getattr(eks, operation)(name="ghost", **kwargs)

    # Then EKS answers ResourceNotFoundException (404) naming the cluster
    assert _error(excinfo) == ("ResourceNotFoundException", 404)
    assert "ghost" in excinfo.value.response["Error"]["Message"]


def test_moto_url_paths_are_restored_when_the_extension_closes(eks, make_cluster):
    # Given moto without the extension: UpdateClusterVersion is not implemented
    name = make_cluster("1.23")
    moto_paths = dict(eks_urls.url_paths)
    with pytest.raises(ClientError) as before:
        eks.update_cluster_version(name=name, version="1.24")
    assert _error(before) == ("404", 404)
    assert before.value.response["Error"]["Message"] == "Not yet implemented"

    # When the extension is opened, used, and closed
    with eks_extension(EksSimulation(VirtualClock())):
        assert eks.update_cluster_version(name=name, version="1.24")["update"]["status"] == "InProgress"
        assert eks_urls.url_paths != moto_paths

    # Then moto's url paths are exactly as before, and the calls answer "Not yet implemented" again
    assert eks_urls.url_paths == moto_paths
    for call in (
        lambda: eks.update_cluster_version(name=name, version="1.24"),
        lambda: eks.list_updates(name=name),
    ):
        with pytest.raises(ClientError) as after:
            call()
        assert _error(after) == ("404", 404)
        assert after.value.response["Error"]["Message"] == "Not yet implemented"
