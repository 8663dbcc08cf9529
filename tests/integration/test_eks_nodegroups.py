"""Managed node groups in the moto EKS extension (simulator/eks.py): lifecycles on the virtual clock,
what joins the cluster's Kubernetes world, UpdateNodegroupVersion, faults, the kubelet skew insight.

moto runs once per module; each test makes its own cluster (unique names) and opens the extension
with a fresh virtual clock and a recording Kubernetes world.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from simulator import eks_catalog as catalog
from simulator.clock import VirtualClock
from simulator.eks import EksSimulation, EksTimings, NodegroupFaults, eks_extension

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/eks-node-role"
TIMINGS = EksTimings()
CREATE = TIMINGS.nodegroup_create
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{17}$")
CONTAINERD_USER_DATA = (
    "#!/bin/bash\nset -ex\n/etc/eks/bootstrap.sh {cluster} --container-runtime containerd\n"
)

_numbers = itertools.count(1)


@dataclass
class Registered:
    at: float
    nodegroup: str
    instance_ids: list[str]
    spec: dict[str, Any]


@dataclass
class RecordingWorld:
    """A ClusterNodes that records what the EKS side told it, stamped with the virtual time."""

    clock: VirtualClock
    registered: list[Registered] = field(default_factory=list)
    removed: list[tuple[float, str]] = field(default_factory=list)
    versions: list[tuple[float, str]] = field(default_factory=list)

    def register_nodes(self, nodegroup: str, instance_ids: list[str], **spec: Any) -> None:
        self.registered.append(Registered(self.clock.now(), nodegroup, list(instance_ids), spec))

    def remove_nodes(self, nodegroup: str) -> list[str]:
        self.removed.append((self.clock.now(), nodegroup))
        return []

    def set_control_plane_version(self, version: str) -> None:
        self.versions.append((self.clock.now(), version))

    def node_names(self, nodegroup: str) -> list[str]:
        return [i for r in self.registered if r.nodegroup == nodegroup for i in r.instance_ids]

    # A rolling update whose drain meets no budget: the old nodes go the moment it starts.
    rollouts: list[tuple[float, str, list[str], Any]] = field(default_factory=list)

    def rolling_update(
        self, nodegroup: str, old_nodes: list[str], *, start_at: float, done: Any, **_: Any
    ) -> None:
        self.rollouts.append((start_at, nodegroup, list(old_nodes), done))

    def advance(self) -> None:
        for rollout in [r for r in self.rollouts if r[0] <= self.clock.now()]:
            self.rollouts.remove(rollout)
            self.removed.append((rollout[0], rollout[1]))
            rollout[3](True, rollout[0], None)


@pytest.fixture
def ec2(subnets: list[str]) -> Any:
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def world() -> RecordingWorld:
    return RecordingWorld(VirtualClock())


@pytest.fixture
def sim(subnets: list[str], world: RecordingWorld) -> Iterator[EksSimulation]:
    simulation = EksSimulation(world.clock, TIMINGS)
    simulation.worlds = lambda account, region, cluster: world
    with eks_extension(simulation) as s:
        yield s


@pytest.fixture
def make_nodegroup(eks: Any, subnets: list[str]) -> Callable[..., dict[str, Any]]:
    def make(cluster: str, name: str = "workers", **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("scalingConfig", {"minSize": 1, "maxSize": 4, "desiredSize": 2})
        return eks.create_nodegroup(
            clusterName=cluster, nodegroupName=name, nodeRole=ROLE_ARN, subnets=subnets, **kwargs
        )["nodegroup"]

    return make


def _launch_template(ec2: Any, image_id: str, user_data: str | None = None) -> tuple[str, str]:
    data: dict[str, Any] = {"ImageId": image_id, "InstanceType": "m5.xlarge"}
    if user_data is not None:
        data["UserData"] = base64.b64encode(user_data.encode()).decode()
    name = f"eks-nodes-{next(_numbers)}"
    template = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)["LaunchTemplate"]
    return name, template["LaunchTemplateId"]


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _group(eks: Any, cluster: str, name: str = "workers") -> dict[str, Any]:
    return eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]


def _active_group(sim: EksSimulation, eks: Any, make_cluster: Any, make_nodegroup: Any, **kwargs: Any) -> str:
    cluster = make_cluster(kwargs.pop("version", "1.23"))
    make_nodegroup(cluster, **kwargs)
    sim.clock.sleep(CREATE)
    assert _group(eks, cluster)["status"] == "ACTIVE"
    return cluster


# -- CreateNodegroup ----------------------------------------------------------------------------


def test_a_new_group_is_creating_and_its_nodes_join_a_minute_before_it_is_active(
    sim, eks, world, make_cluster, make_nodegroup
):
    # Given a 1.23 cluster
    cluster = make_cluster("1.23")

    # When a node group of 3 m5.large with a label and a taint is created
    created = make_nodegroup(
        cluster,
        scalingConfig={"minSize": 1, "maxSize": 5, "desiredSize": 3},
        instanceTypes=["m5.large"],
        labels={"team": "payments"},
        taints=[{"key": "dedicated", "value": "payments", "effect": "NO_SCHEDULE"}],
    )

    # Then it is CREATING on the control plane's version with the catalog's AMI release
    assert (created["status"], created["version"]) == ("CREATING", "1.23")
    assert created["releaseVersion"] == catalog.release_version("1.23", "AL2_x86_64")
    # And until a minute before the create completes, no node has joined
    sim.clock.sleep(CREATE - TIMINGS.nodes_join_before_active - 1)
    assert (_group(eks, cluster)["status"], world.registered) == ("CREATING", [])

    # When the clock reaches that minute
    sim.clock.sleep(1)
    eks.list_nodegroups(clusterName=cluster)

    # Then 3 nodes joined, to be Ready when the group becomes ACTIVE
    [joined] = world.registered
    assert (joined.at, joined.nodegroup, len(joined.instance_ids)) == (CREATE - 60, "workers", 3)
    assert all(INSTANCE_ID.match(i) for i in joined.instance_ids)
    assert joined.spec["ready_at"] == CREATE
    assert joined.spec["kubelet_version"] == "v1.23.17-eks-a59e1f0"
    assert joined.spec["container_runtime"] == "docker://20.10.25"
    assert (joined.spec["instance_type"], joined.spec["pods_per_node"]) == ("m5.large", 29)
    assert joined.spec["labels"] == {
        "eks.amazonaws.com/nodegroup": "workers",
        "eks.amazonaws.com/nodegroup-image": catalog.ami_id(REGION, "1.23", "AL2_x86_64"),
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "team": "payments",
    }
    assert joined.spec["taints"] == [{"key": "dedicated", "value": "payments", "effect": "NoSchedule"}]
    assert _group(eks, cluster)["status"] == "CREATING"

    # When the create duration has elapsed, the group is ACTIVE and no other node joined
    sim.clock.sleep(TIMINGS.nodes_join_before_active)
    assert _group(eks, cluster)["status"] == "ACTIVE"
    assert len(world.registered) == 1


def test_update_config_is_kept_and_defaults_to_one_unavailable_node(sim, eks, make_cluster, make_nodegroup):
    # Given a cluster
    cluster = make_cluster()

    # When one group is created with updateConfig and another without
    make_nodegroup(cluster, "explicit", updateConfig={"maxUnavailablePercentage": 25})
    make_nodegroup(cluster, "default")

    # Then DescribeNodegroup returns what was asked, and EKS's default otherwise
    assert _group(eks, cluster, "explicit")["updateConfig"] == {"maxUnavailablePercentage": 25}
    assert _group(eks, cluster, "default")["updateConfig"] == {"maxUnavailable": 1}


def test_the_same_client_request_token_returns_the_same_group(sim, eks, make_cluster, make_nodegroup):
    # Given a group created with a clientRequestToken
    cluster = make_cluster()
    first = make_nodegroup(cluster, clientRequestToken="create-workers-1")

    # When the same request is repeated (a retried Lambda)
    again = make_nodegroup(cluster, clientRequestToken="create-workers-1")

    # Then it is the same group, still creating
    assert (again["nodegroupArn"], again["status"]) == (first["nodegroupArn"], "CREATING")

    # When the same name is created with another token, or without one
    for kwargs in ({"clientRequestToken": "create-workers-2"}, {}):
        with pytest.raises(ClientError) as excinfo:
            make_nodegroup(cluster, **kwargs)
        # Then EKS refuses: the name is in use
        assert _error(excinfo) == ("ResourceInUseException", 409)
    assert eks.list_nodegroups(clusterName=cluster)["nodegroups"] == ["workers"]


def test_a_group_newer_than_the_control_plane_is_refused(sim, eks, make_cluster, make_nodegroup):
    # Given a 1.23 cluster
    cluster = make_cluster("1.23")

    # When a 1.24 node group is asked for
    with pytest.raises(ClientError) as excinfo:
        make_nodegroup(cluster, version="1.24")

    # Then EKS refuses it and no group exists
    assert _error(excinfo) == ("InvalidParameterException", 400)
    assert "1.24" in excinfo.value.response["Error"]["Message"]
    assert eks.list_nodegroups(clusterName=cluster)["nodegroups"] == []


@pytest.mark.parametrize(
    ("version", "ami_type", "runtime"),
    [
        ("1.23", "AL2_x86_64", "docker://20.10.25"),
        ("1.23", "AL2_ARM_64", "docker://20.10.25"),
        ("1.23", "AL2023_x86_64_STANDARD", "containerd://1.6.19"),
        ("1.23", "BOTTLEROCKET_x86_64", "containerd://1.6.19"),
        ("1.24", "AL2_x86_64", "containerd://1.6.19"),
        ("1.24", "WINDOWS_CORE_2019_x86_64", "containerd://1.6.19"),
    ],
)
def test_the_runtime_follows_the_ami_and_version(
    sim, eks, world, make_cluster, make_nodegroup, version, ami_type, runtime
):
    # Given a cluster of that version
    cluster = make_cluster(version)

    # When a group of that AMI type is created and its nodes join
    make_nodegroup(cluster, amiType=ami_type)
    sim.clock.sleep(CREATE)
    group = _group(eks, cluster)

    # Then the nodes report the runtime EKS's AMI ships, and the group its release
    assert world.registered[0].spec["container_runtime"] == runtime
    assert (group["status"], group["amiType"]) == ("ACTIVE", ami_type)
    assert group["releaseVersion"] == catalog.release_version(version, ami_type)


@pytest.mark.parametrize(
    ("user_data", "runtime"),
    [
        (CONTAINERD_USER_DATA, "containerd://1.6.19"),
        (
            "#!/bin/bash\n/etc/eks/bootstrap.sh {cluster} --kubelet-extra-args '--max-pods=20'\n",
            "docker://20.10.25",
        ),
        (None, "docker://20.10.25"),
    ],
)
def test_a_custom_ami_on_1_23_runs_containerd_only_if_its_user_data_asks(
    sim, eks, ec2, world, make_cluster, make_nodegroup, user_data, runtime
):
    # Given a 1.23 cluster and a launch template with the EKS-optimized 1.23 AMI and some user data
    cluster = make_cluster("1.23")
    image = catalog.ami_id(REGION, "1.23", "AL2_x86_64")
    name, template_id = _launch_template(ec2, image, user_data and user_data.format(cluster=cluster))

    # When a group is created from that launch template and its nodes join
    created = make_nodegroup(cluster, launchTemplate={"name": name})
    sim.clock.sleep(CREATE)

    # Then the group is CUSTOM on the AMI's version with no releaseVersion, and remembers the template
    group = _group(eks, cluster)
    assert (created["amiType"], group["version"]) == ("CUSTOM", "1.23")
    assert "releaseVersion" not in group
    assert group["launchTemplate"] == {"name": name, "id": template_id, "version": "1"}
    # And the nodes run the runtime the user data asks for, on the template's image and instance type
    joined = world.registered[0].spec
    assert joined["container_runtime"] == runtime
    assert joined["labels"]["eks.amazonaws.com/nodegroup-image"] == image
    assert joined["labels"]["eks.amazonaws.com/sourceLaunchTemplateId"] == template_id
    assert (joined["instance_type"], joined["pods_per_node"]) == ("m5.xlarge", 58)


def test_an_image_id_in_the_launch_template_cannot_come_with_another_ami_type(
    sim, eks, ec2, make_cluster, make_nodegroup
):
    # Given a launch template with an image id
    cluster = make_cluster("1.23")
    name, _ = _launch_template(ec2, catalog.ami_id(REGION, "1.23", "AL2_x86_64"))

    # When a group names both the template and amiType AL2_x86_64
    with pytest.raises(ClientError) as excinfo:
        make_nodegroup(cluster, launchTemplate={"name": name}, amiType="AL2_x86_64")

    # Then EKS refuses it
    assert _error(excinfo) == ("InvalidParameterException", 400)
    assert eks.list_nodegroups(clusterName=cluster)["nodegroups"] == []


# -- DeleteNodegroup ----------------------------------------------------------------------------


def test_a_deleted_group_is_deleting_until_its_instances_terminate(
    sim, eks, world, make_cluster, make_nodegroup
):
    # Given an ACTIVE group with nodes
    cluster = _active_group(sim, eks, make_cluster, make_nodegroup)

    # When it is deleted
    deleted = eks.delete_nodegroup(clusterName=cluster, nodegroupName="workers")["nodegroup"]

    # Then it is DELETING, still listed and described, its nodes still there
    assert deleted["status"] == "DELETING"
    sim.clock.sleep(TIMINGS.nodegroup_delete - 1)
    assert eks.list_nodegroups(clusterName=cluster)["nodegroups"] == ["workers"]
    assert _group(eks, cluster)["status"] == "DELETING"
    assert world.removed == []

    # When the delete duration has elapsed
    sim.clock.sleep(1)

    # Then the group is gone and its nodes left at that moment
    assert eks.list_nodegroups(clusterName=cluster)["nodegroups"] == []
    with pytest.raises(ClientError) as excinfo:
        _group(eks, cluster)
    assert _error(excinfo) == ("ResourceNotFoundException", 404)
    assert world.removed == [(CREATE + TIMINGS.nodegroup_delete, "workers")]


# -- faults -------------------------------------------------------------------------------------


def test_nodes_that_never_become_ready_fail_the_create_after_twenty_minutes(
    sim, eks, world, make_cluster, make_nodegroup
):
    # Given a cluster where one node group's nodes never become Ready
    cluster = make_cluster()
    sim.cluster_sim(ACCOUNT, REGION, cluster).nodegroup_faults["broken"] = NodegroupFaults(
        nodes_never_ready=True
    )

    # When that group and a healthy one are created and the usual create time passes
    make_nodegroup(cluster, "broken")
    make_nodegroup(cluster, "healthy")
    sim.clock.sleep(CREATE)

    # Then the healthy one is ACTIVE, the broken one's nodes joined without ever being Ready, still CREATING
    assert _group(eks, cluster, "healthy")["status"] == "ACTIVE"
    assert _group(eks, cluster, "broken")["status"] == "CREATING"
    ready = {r.nodegroup: r.spec["ready_at"] for r in world.registered}
    assert ready == {"broken": None, "healthy": CREATE}

    # When EKS's 20-minute wait for the nodes ends
    sim.clock.sleep(TIMINGS.node_join_timeout - CREATE)

    # Then the group is CREATE_FAILED with NodeCreationFailure naming its instances
    broken = _group(eks, cluster, "broken")
    assert broken["status"] == "CREATE_FAILED"
    [issue] = broken["health"]["issues"]
    broken_ids = next(r.instance_ids for r in world.registered if r.nodegroup == "broken")
    assert (issue["code"], sorted(issue["resourceIds"])) == ("NodeCreationFailure", sorted(broken_ids))
    assert _group(eks, cluster, "healthy")["health"]["issues"] == []


def test_a_capacity_shortage_launches_fewer_nodes_and_degrades_the_group(
    sim, eks, world, make_cluster, make_nodegroup
):
    # Given a cluster where EC2 can launch only one instance
    cluster = make_cluster()
    sim.cluster_sim(ACCOUNT, REGION, cluster).capacity_shortage = 1

    # When a group of 3 is created and the create time passes
    make_nodegroup(cluster, scalingConfig={"minSize": 1, "maxSize": 3, "desiredSize": 3})
    sim.clock.sleep(CREATE)

    # Then one node joined, and the group is DEGRADED with AsgInstanceLaunchFailures on its ASG
    group = _group(eks, cluster)
    assert [len(r.instance_ids) for r in world.registered] == [1]
    assert group["status"] == "DEGRADED"
    [issue] = group["health"]["issues"]
    assert issue["code"] == "AsgInstanceLaunchFailures"
    assert "InsufficientInstanceCapacity" in issue["message"]
    assert issue["resourceIds"] == [group["resources"]["autoScalingGroups"][0]["name"]]


# -- UpdateNodegroupVersion ---------------------------------------------------------------------


def _move_control_plane(sim: EksSimulation, eks: Any, cluster: str, version: str) -> None:
    eks.update_cluster_version(name=cluster, version=version)
    sim.clock.sleep(TIMINGS.control_plane_update)
    assert eks.describe_cluster(name=cluster)["cluster"]["version"] == version


def test_a_version_update_replaces_the_nodes_when_it_completes(sim, eks, world, make_cluster, make_nodegroup):
    # Given a 1.23 group (Docker nodes) in a cluster whose control plane moved to 1.24
    cluster = _active_group(sim, eks, make_cluster, make_nodegroup)
    _move_control_plane(sim, eks, cluster, "1.24")
    old_ids = world.registered[0].instance_ids

    # When the group is updated to the control plane's version (the default)
    started = eks.update_nodegroup_version(clusterName=cluster, nodegroupName="workers")["update"]

    # Then a VersionUpdate to 1.24 is InProgress and the group UPDATING, still on 1.23
    assert (started["status"], started["type"]) == ("InProgress", "VersionUpdate")
    assert {"type": "Version", "value": "1.24"} in started["params"]
    assert {"type": "ReleaseVersion", "value": catalog.release_version("1.24", "AL2_x86_64")} in started[
        "params"
    ]
    assert (_group(eks, cluster)["status"], _group(eks, cluster)["version"]) == ("UPDATING", "1.23")
    # And the update is listed with the group's name only, as EKS does
    assert eks.list_updates(name=cluster, nodegroupName="workers")["updateIds"] == [started["id"]]
    assert started["id"] not in eks.list_updates(name=cluster)["updateIds"]
    # And the new nodes join at once, Ready a minute later (the old ones are still there)
    assert len(world.registered) == 2
    new = world.registered[-1]
    assert (new.at, new.spec["ready_at"], len(new.instance_ids)) == (0.0 + new.at, new.at + 60, 2)
    assert set(new.instance_ids).isdisjoint(old_ids)
    sim.clock.sleep(59)
    assert _group(eks, cluster)["status"] == "UPDATING"

    # When the new nodes are Ready and the old ones drained (this world has no budget to wait for)
    sim.clock.sleep(1)

    # Then the update is Successful, the group ACTIVE on 1.24 with the new release
    done = eks.describe_update(name=cluster, updateId=started["id"], nodegroupName="workers")["update"]
    assert done["status"] == "Successful"
    group = _group(eks, cluster)
    assert (group["status"], group["version"]) == ("ACTIVE", "1.24")
    assert group["releaseVersion"] == catalog.release_version("1.24", "AL2_x86_64")
    # And the old nodes left once the new containerd 1.24 nodes were Ready
    end = sim.clock.now()
    assert world.removed == [(end, "workers")]
    assert new.spec["kubelet_version"] == "v1.24.17-eks-8cb36c9"
    assert new.spec["container_runtime"] == "containerd://1.6.19"
    # And the control plane may now move on
    _move_control_plane(sim, eks, cluster, "1.25")


def test_a_node_group_update_is_only_found_with_its_node_group_name(sim, eks, make_cluster, make_nodegroup):
    # Given a node group update in progress
    cluster = _active_group(sim, eks, make_cluster, make_nodegroup)
    update_id = eks.update_nodegroup_version(clusterName=cluster, nodegroupName="workers")["update"]["id"]

    # When it is described without the node group's name
    with pytest.raises(ClientError) as excinfo:
        eks.describe_update(name=cluster, updateId=update_id)

    # Then EKS does not find it; with the name it does
    assert _error(excinfo) == ("ResourceNotFoundException", 404)
    found = eks.describe_update(name=cluster, updateId=update_id, nodegroupName="workers")["update"]
    assert found["id"] == update_id


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"version": "1.24"}, "InvalidParameterException"),
        ({"releaseVersion": "1.24.17-20240522"}, "InvalidParameterException"),
        ({"launchTemplate": {"name": "not-the-groups-template"}}, "InvalidParameterException"),
    ],
)
def test_an_update_beyond_the_control_plane_or_of_another_version_is_refused(
    sim, eks, make_cluster, make_nodegroup, kwargs, code
):
    # Given an ACTIVE 1.23 group in a 1.23 cluster
    cluster = _active_group(sim, eks, make_cluster, make_nodegroup)

    # When it is asked to move past the control plane, to another version's release, or another template
    with pytest.raises(ClientError) as excinfo:
        eks.update_nodegroup_version(clusterName=cluster, nodegroupName="workers", **kwargs)

    # Then EKS refuses and nothing started
    assert _error(excinfo)[0] == code
    assert eks.list_updates(name=cluster, nodegroupName="workers")["updateIds"] == []
    assert _group(eks, cluster)["status"] == "ACTIVE"


def test_one_update_at_a_time_per_group_and_the_token_returns_the_same_update(
    sim, eks, make_cluster, make_nodegroup
):
    # Given a group update started with a token
    cluster = _active_group(sim, eks, make_cluster, make_nodegroup)
    first = eks.update_nodegroup_version(
        clusterName=cluster, nodegroupName="workers", clientRequestToken="t-1"
    )

    # When the same request is repeated, and another one is made
    again = eks.update_nodegroup_version(
        clusterName=cluster, nodegroupName="workers", clientRequestToken="t-1"
    )
    with pytest.raises(ClientError) as excinfo:
        eks.update_nodegroup_version(clusterName=cluster, nodegroupName="workers", clientRequestToken="t-2")

    # Then the repeat returns the same update and the other is refused with 409
    assert again["update"]["id"] == first["update"]["id"]
    assert _error(excinfo) == ("ResourceInUseException", 409)
    assert eks.list_updates(name=cluster, nodegroupName="workers")["updateIds"] == [first["update"]["id"]]


def test_a_new_launch_template_version_moves_custom_1_23_nodes_to_containerd(
    sim, eks, ec2, world, make_cluster, make_nodegroup
):
    # Given a 1.23 CUSTOM group whose launch template (version 1) boots the EKS AMI with Docker
    cluster = make_cluster("1.23")
    image = catalog.ami_id(REGION, "1.23", "AL2_x86_64")
    name, _ = _launch_template(ec2, image)
    make_nodegroup(cluster, launchTemplate={"name": name, "version": "1"})
    sim.clock.sleep(CREATE)
    assert _group(eks, cluster)["status"] == "ACTIVE"
    assert world.registered[0].spec["container_runtime"] == "docker://20.10.25"
    # And a version 2 of the template whose user data bootstraps with containerd
    ec2.create_launch_template_version(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": image,
            "UserData": base64.b64encode(CONTAINERD_USER_DATA.format(cluster=cluster).encode()).decode(),
        },
    )

    # When the group is updated to template version 2 and the update completes
    started = eks.update_nodegroup_version(
        clusterName=cluster, nodegroupName="workers", launchTemplate={"name": name, "version": "2"}
    )["update"]
    sim.clock.sleep(TIMINGS.nodegroup_update)

    # Then the update named the template version, the group uses it, and the new nodes run containerd
    assert {"type": "LaunchTemplateVersion", "value": "2"} in started["params"]
    group = _group(eks, cluster)
    assert (group["status"], group["version"], group["launchTemplate"]["version"]) == ("ACTIVE", "1.23", "2")
    assert world.registered[-1].spec["container_runtime"] == "containerd://1.6.19"
    assert world.registered[-1].spec["kubelet_version"] == "v1.23.17-eks-a59e1f0"


def test_an_update_whose_nodes_never_become_ready_fails_and_keeps_the_old_nodes(
    sim, eks, world, make_cluster, make_nodegroup
):
    # Given an ACTIVE group on a 1.24 control plane, whose new nodes will never become Ready
    cluster = _active_group(sim, eks, make_cluster, make_nodegroup)
    _move_control_plane(sim, eks, cluster, "1.24")
    sim.cluster_sim(ACCOUNT, REGION, cluster).nodes_never_ready = True

    # When it is updated and EKS's usual update time passes
    update_id = eks.update_nodegroup_version(clusterName=cluster, nodegroupName="workers")["update"]["id"]
    sim.clock.sleep(TIMINGS.nodegroup_update)

    # Then it is still in progress
    assert eks.describe_update(name=cluster, updateId=update_id, nodegroupName="workers")["update"][
        "status"
    ] == ("InProgress")

    # When the 20-minute node wait has passed
    sim.clock.sleep(TIMINGS.node_join_timeout - TIMINGS.nodegroup_update)

    # Then the update Failed with NodeCreationFailure, the group is ACTIVE on 1.23 and its nodes stayed
    failed = eks.describe_update(name=cluster, updateId=update_id, nodegroupName="workers")["update"]
    assert (failed["status"], [e["errorCode"] for e in failed["errors"]]) == (
        "Failed",
        ["NodeCreationFailure"],
    )
    assert (_group(eks, cluster)["status"], _group(eks, cluster)["version"]) == ("ACTIVE", "1.23")
    assert (world.removed, len(world.registered)) == ([], 1)


def test_update_nodegroup_config_is_recorded_as_a_config_update(sim, eks, make_cluster, make_nodegroup):
    # Given an ACTIVE group
    cluster = _active_group(sim, eks, make_cluster, make_nodegroup)

    # When its updateConfig is changed
    update = eks.update_nodegroup_config(
        clusterName=cluster, nodegroupName="workers", updateConfig={"maxUnavailable": 2}
    )["update"]

    # Then the ConfigUpdate is found with the group's name, and the group has the new config
    found = eks.describe_update(name=cluster, updateId=update["id"], nodegroupName="workers")["update"]
    assert (found["type"], found["status"]) == ("ConfigUpdate", "Successful")
    assert _group(eks, cluster)["updateConfig"] == {"maxUnavailable": 2}


# -- the kubelet skew insight -------------------------------------------------------------------


def _skew_insight(eks: Any, cluster: str) -> dict[str, Any]:
    [summary] = [
        i for i in eks.list_insights(clusterName=cluster)["insights"] if i["name"] == "Kubelet version skew"
    ]
    return eks.describe_insight(clusterName=cluster, id=summary["id"])["insight"]


def test_the_kubelet_skew_insight_errs_while_a_group_is_behind_the_control_plane(
    sim, eks, make_cluster, make_nodegroup
):
    # Given a cluster whose group is on the control plane's version
    cluster = _active_group(sim, eks, make_cluster, make_nodegroup)
    passing = _skew_insight(eks, cluster)
    assert (passing["insightStatus"]["status"], passing["kubernetesVersion"]) == ("PASSING", "1.24")
    assert passing["category"] == "UPGRADE_READINESS"

    # When the control plane moves to 1.24 without the group
    _move_control_plane(sim, eks, cluster, "1.24")

    # Then the insight is ERROR for the next version, naming the group, since the move
    failing = _skew_insight(eks, cluster)
    assert (failing["insightStatus"]["status"], failing["kubernetesVersion"]) == ("ERROR", "1.25")
    assert [r["arn"] for r in failing["resources"]] == [_group(eks, cluster)["nodegroupArn"]]
    assert failing["lastTransitionTime"] == sim.clock.datetime()

    # When the group catches up
    eks.update_nodegroup_version(clusterName=cluster, nodegroupName="workers")
    sim.clock.sleep(TIMINGS.nodegroup_update)

    # Then the insight passes again
    assert _skew_insight(eks, cluster)["insightStatus"]["status"] == "PASSING"
