"""The moto EKS extension (simulator/eks.py), driven through boto3 as the Lambda steps drive it.

moto runs once per module; each test makes its own clusters (unique names) and opens the extension
with a fresh virtual clock, so tests do not see each other's updates.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.eks import urls as eks_urls

from simulator import eks_catalog as catalog
from simulator.clock import DEFAULT_EPOCH, VirtualClock
from simulator.eks import MIN_FREE_IPS_FOR_UPDATE, EksSimulation, EksTimings, eks_extension

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
UPDATE_SECONDS = 480.0

_cluster_numbers = itertools.count(1)


@pytest.fixture
def sim(subnets: list[str]) -> Iterator[EksSimulation]:
    with eks_extension(EksSimulation(VirtualClock(), EksTimings(control_plane_update=UPDATE_SECONDS))) as s:
        yield s


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


# -- the Kubernetes hook: endpoint, certificate, control plane version ----------------------------


class VersionRecorder:
    """The part of a ClusterNodes world a control plane update talks to."""

    def __init__(self) -> None:
        self.versions: list[str] = []

    def set_control_plane_version(self, version: str) -> None:
        self.versions.append(version)

    def advance(self) -> None:
        """Nothing of its own runs in virtual time (EKS calls it before answering)."""


def test_describe_cluster_returns_the_hooked_endpoint_and_a_pem_certificate(sim, eks, make_cluster):
    # Given a cluster, and no endpoint hook yet
    name = make_cluster("1.23")
    before = eks.describe_cluster(name=name)["cluster"]

    # Then moto's endpoint is returned with a base64 PEM-looking certificate, the same on every call
    assert before["endpoint"].startswith("https://")
    pem = base64.b64decode(before["certificateAuthority"]["data"]).decode()
    assert pem.startswith("-----BEGIN CERTIFICATE-----\n")
    assert pem.endswith("-----END CERTIFICATE-----\n")
    assert (
        eks.describe_cluster(name=name)["cluster"]["certificateAuthority"] == before["certificateAuthority"]
    )

    # When the simulation serves that cluster's API on loopback with its own CA
    sim.endpoints = lambda account, region, cluster: f"https://127.0.0.1:6443/{account}/{region}/{cluster}"
    sim.certificate_authorities = lambda account, region, cluster: "Q0EtREFUQQ=="

    # Then DescribeCluster returns them
    after = eks.describe_cluster(name=name)["cluster"]
    assert after["endpoint"] == f"https://127.0.0.1:6443/{ACCOUNT}/{REGION}/{name}"
    assert after["certificateAuthority"]["data"] == "Q0EtREFUQQ=="


@pytest.mark.parametrize(("free_ips", "told"), [(250, ["1.24"]), (MIN_FREE_IPS_FOR_UPDATE - 1, [])])
def test_the_world_learns_the_new_version_when_a_successful_update_settles(
    sim, eks, make_cluster, free_ips, told
):
    # Given a cluster whose Kubernetes world records version changes
    name = make_cluster("1.23")
    world = VersionRecorder()
    sim.worlds = lambda account, region, cluster: world if cluster == name else None  # type: ignore[assignment,return-value]
    sim.cluster_sim(ACCOUNT, REGION, name).free_ips = free_ips

    # When its update runs: nothing is told while it is in progress
    eks.update_cluster_version(name=name, version="1.24")
    sim.clock.sleep(UPDATE_SECONDS - 1)
    eks.list_updates(name=name)
    assert world.versions == []
    sim.clock.sleep(1)
    eks.list_updates(name=name)

    # Then a successful update tells the world its new version once; a failed one tells nothing
    assert world.versions == told


# -- SSM public parameters and EC2 launch templates ----------------------------------------------

AMI_PATHS = (
    "amazon-linux-2",
    "amazon-linux-2-arm64",
    "amazon-linux-2023/x86_64/standard",
    "amazon-linux-2023/arm64/standard",
)


def test_eks_ami_parameters_answer_for_every_version_in_every_region(sim, subnets):
    # Given two regions of the account
    images: dict[str, set[str]] = {}
    for region in (REGION, "us-east-1"):
        ssm = boto3.client("ssm", region_name=region)
        ec2 = boto3.client("ec2", region_name=region)

        # When every EKS version's recommended AMI of each flavour is read
        names = [
            f"/aws/service/eks/optimized-ami/{version}/{path}/recommended/{leaf}"
            for version in catalog.KUBERNETES_VERSIONS
            for path in AMI_PATHS
            for leaf in ("image_id", "release_version")
        ]
        values = {}
        for start in range(0, len(names), 10):  # GetParameters takes 10 names at a time
            found = ssm.get_parameters(Names=names[start : start + 10])
            assert found["InvalidParameters"] == []
            values.update({p["Name"]: p["Value"] for p in found["Parameters"]})

        # Then each answers: a distinct ami- id that exists as a public Amazon EC2 image, and its release
        ids = {v for n, v in values.items() if n.endswith("/image_id")}
        assert len(ids) == len(catalog.KUBERNETES_VERSIONS) * len(AMI_PATHS)
        described = ec2.describe_images(ImageIds=sorted(ids))["Images"]
        assert {i["ImageId"] for i in described} == ids
        assert {(i["OwnerId"], i["Public"]) for i in described} == {(catalog.EKS_AMI_OWNER, True)}
        release = values["/aws/service/eks/optimized-ami/1.23/amazon-linux-2/recommended/release_version"]
        assert release == "1.23.17-20240522"
        images[region] = ids

    # And the ids are region-specific, and GetParameter agrees with the catalog
    assert images[REGION].isdisjoint(images["us-east-1"])
    one = boto3.client("ssm", region_name=REGION).get_parameter(
        Name="/aws/service/eks/optimized-ami/1.24/amazon-linux-2/recommended/image_id"
    )["Parameter"]
    assert one["Value"] == catalog.ami_id(REGION, "1.24", "AL2_x86_64")


def test_eks_ami_parameters_are_listed_by_path(sim, subnets):
    # Given the extension
    ssm = boto3.client("ssm", region_name=REGION)

    # When one flavour's recommended parameters are listed by path
    found = ssm.get_parameters_by_path(Path="/aws/service/eks/optimized-ami/1.24/amazon-linux-2/recommended")

    # Then the image id, name and release version are there
    assert sorted(p["Name"].rsplit("/", 1)[1] for p in found["Parameters"]) == [
        "image_id",
        "image_name",
        "release_version",
    ]


def test_eks_ami_parameters_are_not_served_once_the_extension_closes(subnets):
    # Given the extension open: a region's EKS parameters answer
    name = "/aws/service/eks/optimized-ami/1.24/amazon-linux-2/recommended/image_id"
    with eks_extension(EksSimulation(VirtualClock())):
        served = boto3.client("ssm", region_name="ap-southeast-2").get_parameter(Name=name)["Parameter"]
    assert served["Value"] == catalog.ami_id("ap-southeast-2", "1.24", "AL2_x86_64")

    # When it has closed and another region's EKS parameter is read
    with pytest.raises(ClientError) as excinfo:
        boto3.client("ssm", region_name="ap-northeast-1").get_parameter(Name=name)

    # Then moto answers as it does on its own: no such parameter
    assert excinfo.value.response["Error"]["Code"] == "ParameterNotFound"


def test_moto_launch_templates_keep_their_user_data(subnets):
    # Given a launch template whose user data bootstraps nodes with containerd
    ec2 = boto3.client("ec2", region_name=REGION)
    script = "#!/bin/bash\n/etc/eks/bootstrap.sh payments --container-runtime containerd\n"
    encoded = base64.b64encode(script.encode()).decode()
    name = f"user-data-{next(_cluster_numbers)}"
    ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={"ImageId": catalog.ami_id(REGION, "1.23", "AL2_x86_64"), "UserData": encoded},
    )

    # When its versions are described
    [version] = ec2.describe_launch_template_versions(LaunchTemplateName=name)["LaunchTemplateVersions"]

    # Then the user data comes back unchanged, base64 as sent
    assert version["LaunchTemplateData"]["UserData"] == encoded
    assert base64.b64decode(version["LaunchTemplateData"]["UserData"]).decode() == script
