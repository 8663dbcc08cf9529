"""One contract, two implementations, for each gateway of the node group migration: the in-memory fakes
(tests/fakes.py) and the real ones (boto3 on moto + the simulator's EKS extension; the
official Kubernetes client over HTTP to the simulator's API server). If they disagree, a fake drifted."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws
from upgrader.errors import ClusterNotFound
from upgrader.gateways.aws import AlreadyExists
from upgrader.gateways.cluster_nodes import ApiClusterNodesGateway, ClusterNodesGateway, Owner
from upgrader.gateways.ec2 import BotoEc2Gateway, LaunchTemplateGateway
from upgrader.gateways.eks import BotoEksGateway, NodegroupLifecycle, NodegroupSpec
from upgrader.gateways.kubernetes import api_client
from upgrader.gateways.ssm import BotoSsmGateway, ParameterGateway

from simulator.clock import VirtualClock
from simulator.eks import EksSimulation, EksTimings, eks_extension
from simulator.kube.apiserver import serve
from simulator.kube.world import KubeWorld
from tests.fakes import FakeLaunchTemplates, FakeNodegroups, FakeParameters, WorldClusterNodes

REGION = "eu-west-1"
CLUSTER = "contract"
AMI_PARAMETER = "/aws/service/eks/optimized-ami/1.23/amazon-linux-2/recommended/image_id"


@dataclass
class Aws:
    eks: NodegroupLifecycle
    ec2: LaunchTemplateGateway
    ssm: ParameterGateway
    base_spec: NodegroupSpec
    finish_deletions: Callable[[], None]


def _fake() -> Iterator[Aws]:
    eks = FakeNodegroups(CLUSTER, "1.23")
    ssm = FakeParameters({AMI_PARAMETER: "ami-0123456789abcdef0"})
    spec = NodegroupSpec(
        name="ng",
        node_role="arn:aws:iam::123456789012:role/node",
        subnets=("subnet-1",),
        scaling={"desiredSize": 1},
    )

    def finish() -> None:
        for name, group in list(eks.groups.items()):
            if group.status == "DELETING":
                eks.finish_deletion(name)

    yield Aws(eks, FakeLaunchTemplates(), ssm, spec, finish)


def _real() -> Iterator[Aws]:
    clock = VirtualClock()
    with mock_aws(), eks_extension(EksSimulation(clock, EksTimings())):
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="node", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        eks = boto3.client("eks", region_name=REGION)
        eks.create_cluster(
            name=CLUSTER, version="1.23", roleArn=role, resourcesVpcConfig={"subnetIds": [subnet]}
        )
        spec = NodegroupSpec(name="ng", node_role=role, subnets=(subnet,), scaling={"desiredSize": 1})
        yield Aws(
            BotoEksGateway(eks),
            BotoEc2Gateway(ec2),
            BotoSsmGateway(boto3.client("ssm", region_name=REGION)),
            spec,
            lambda: clock.sleep(EksTimings().nodegroup_delete + 1),
        )


@pytest.fixture(params=["fake", "real"])
def aws(request) -> Iterator[Aws]:
    yield from (_fake() if request.param == "fake" else _real())


def test_cluster_access_reports_version_endpoint_and_ca(aws):
    access = aws.eks.describe_cluster(CLUSTER)
    assert (access.name, access.version, access.status) == (CLUSTER, "1.23", "ACTIVE")
    assert access.endpoint.startswith("https://") and base64.b64decode(access.certificate_authority)


def test_unknown_cluster_is_cluster_not_found(aws):
    with pytest.raises(ClusterNotFound):
        aws.eks.describe_cluster("nope")


def test_missing_nodegroup_is_none_and_listing_is_empty(aws):
    assert aws.eks.find_nodegroup(CLUSTER, "nope") is None
    assert aws.eks.delete_nodegroup(CLUSTER, "nope") is None
    assert aws.eks.list_nodegroups(CLUSTER) == []


def test_create_keeps_the_shape_and_the_same_token_returns_the_same_group(aws):
    spec = NodegroupSpec(
        **{
            **aws.base_spec.__dict__,
            "labels": {"team": "a"},
            "taints": ({"key": "k", "value": "v", "effect": "NO_SCHEDULE"},),
            "tags": {"eks-fleet-upgrader/managed-by": "eks-fleet-upgrader"},
            "capacity_type": "SPOT",
            "instance_types": ("m5.large",),
            "update_config": {"maxUnavailable": 2},
        }
    )
    created = aws.eks.create_nodegroup(CLUSTER, spec, "token-1")
    assert created.status == "CREATING"
    again = aws.eks.create_nodegroup(CLUSTER, spec, "token-1")
    assert again.name == "ng"
    with pytest.raises(AlreadyExists):
        aws.eks.create_nodegroup(CLUSTER, spec, "token-2")
    found = aws.eks.find_nodegroup(CLUSTER, "ng")
    assert found is not None
    assert (found.capacity_type, found.instance_types, dict(found.labels)) == (
        "SPOT",
        ("m5.large",),
        {"team": "a"},
    )
    assert found.tags["eks-fleet-upgrader/managed-by"] == "eks-fleet-upgrader"
    assert dict(found.update_config or {}) == {"maxUnavailable": 2}
    assert found.taints[0]["key"] == "k" and found.node_role == spec.node_role
    assert aws.eks.list_nodegroups(CLUSTER) == ["ng"]


def test_delete_is_deleting_then_gone(aws):
    aws.eks.create_nodegroup(CLUSTER, aws.base_spec, "token-1")
    assert aws.eks.delete_nodegroup(CLUSTER, "ng").status == "DELETING"
    assert aws.eks.find_nodegroup(CLUSTER, "ng").status == "DELETING"
    aws.finish_deletions()
    assert aws.eks.find_nodegroup(CLUSTER, "ng") is None


def test_launch_templates_are_found_by_name_created_once_and_read_back(aws):
    assert aws.ec2.find_launch_template("eks-fleet-upgrader-x") is None
    data = {"ImageId": "ami-0123456789abcdef0", "UserData": base64.b64encode(b"#!/bin/bash\n").decode()}
    created = aws.ec2.create_launch_template("eks-fleet-upgrader-x", data, {"owner": "us"}, "token-1")
    assert created.tags == {"owner": "us"} and created.latest_version == "1"
    found = aws.ec2.find_launch_template("eks-fleet-upgrader-x")
    assert (found.id, found.tags) == (created.id, {"owner": "us"})
    with pytest.raises(AlreadyExists):
        aws.ec2.create_launch_template("eks-fleet-upgrader-x", data, {"owner": "us"}, "token-2")
    read = aws.ec2.launch_template_data(created.id, "1")
    assert read["ImageId"] == data["ImageId"] and read["UserData"] == data["UserData"]


def test_the_eks_ami_parameter_is_public_and_a_missing_one_is_none(aws):
    assert aws.ssm.get_parameter(AMI_PARAMETER).startswith("ami-")
    assert (
        aws.ssm.get_parameter("/aws/service/eks/optimized-ami/1.99/amazon-linux-2/recommended/image_id")
        is None
    )


# -- Kubernetes ------------------------------------------------------------------------------------------
@dataclass
class Kube:
    gateway: ClusterNodesGateway
    world: KubeWorld
    clock: VirtualClock


def _world() -> tuple[KubeWorld, VirtualClock]:
    clock = VirtualClock()
    world = KubeWorld(CLUSTER, clock, "1.23")
    world.register_nodes(
        "general",
        ["i-a", "i-b"],
        kubelet_version="v1.23.17-eks-a59e1f0",
        container_runtime="docker://20.10.25",
        instance_type="m5.large",
        labels={"eks.amazonaws.com/nodegroup": "general"},
        taints=[],
        pods_per_node=17,
        ready_at=0.0,
    )
    world.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "api"}},
                "template": {
                    "metadata": {"labels": {"app": "api"}},
                    "spec": {
                        "containers": [
                            {"name": "api", "image": "x", "resources": {"requests": {"cpu": "250m"}}}
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
        }
    )
    world.apply(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "api"}}},
        }
    )
    clock.sleep(30)
    world.advance()
    return world, clock


@pytest.fixture(params=["fake", "real"])
def kube(request) -> Iterator[Kube]:
    world, clock = _world()
    if request.param == "fake":
        yield Kube(WorldClusterNodes(world), world, clock)
        return
    with serve({"c": world}, lambda cluster, token: True) as server:
        yield Kube(ApiClusterNodesGateway(api_client(server.url_for("c"), None, "token")), world, clock)


def test_nodes_are_listed_by_label_with_runtime_capacity_and_readiness(kube):
    nodes = kube.gateway.list_nodes("eks.amazonaws.com/nodegroup=general")
    assert [n.name for n in nodes] == ["i-a", "i-b"]
    node = nodes[0]
    assert (node.ready, node.runtime, node.nodegroup, node.allocatable_pods) == (
        True,
        "docker://20.10.25",
        "general",
        17,
    )
    assert node.allocatable_cpu_milli > 1000 and node.allocatable_memory_bytes > 2**30
    assert kube.gateway.list_nodes("eks.amazonaws.com/nodegroup=other") == []


def test_cordon_marks_and_uncordon_clears(kube):
    kube.gateway.cordon("i-a", mark=True)
    kube.gateway.cordon("i-b", mark=False)
    nodes = {n.name: n for n in kube.gateway.list_nodes()}
    assert nodes["i-a"].unschedulable and nodes["i-a"].cordoned_by_us
    assert nodes["i-b"].unschedulable and not nodes["i-b"].cordoned_by_us
    kube.gateway.uncordon("i-a")
    node = next(n for n in kube.gateway.list_nodes() if n.name == "i-a")
    assert not node.unschedulable and not node.cordoned_by_us


def test_pods_carry_what_the_drain_filters_on(kube):
    pods = kube.gateway.list_pods()
    assert len(pods) == 2
    pod = pods[0]
    assert pod.owner is not None and pod.owner.kind == "ReplicaSet"
    assert (pod.phase, pod.ready, pod.empty_dir, pod.mirror, pod.deleting) == (
        "Running",
        True,
        True,
        False,
        False,
    )
    assert pod.cpu_request_milli == 250
    on_a = kube.gateway.list_pods("i-a")
    assert [p.node for p in on_a] == ["i-a"]  # the scheduler spreads the two replicas


def test_eviction_outcomes_follow_the_api_server(kube):
    pod = kube.gateway.list_pods()[0]
    blocked = kube.gateway.evict(pod.namespace, pod.name)
    assert (blocked.outcome, blocked.budget) == ("blocked", "api")
    assert kube.gateway.evict("shop", "nope").outcome == "gone"
    kube.world.apply(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "api-2", "namespace": "shop"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "api"}}},
        }
    )
    assert kube.gateway.evict(pod.namespace, pod.name).outcome == "multiple-budgets"
    kube.world.delete("PodDisruptionBudget", "shop", "api")
    kube.world.delete("PodDisruptionBudget", "shop", "api-2")
    assert kube.gateway.evict(pod.namespace, pod.name).outcome == "evicted"


def test_budgets_replicas_and_deletes(kube):
    budgets = kube.gateway.list_budgets("shop")
    assert [(b.name, b.selector) for b in budgets] == [("api", {"matchLabels": {"app": "api"}})]
    pod = kube.gateway.list_pods()[0]
    assert kube.gateway.desired_replicas("shop", pod.owner) == 2
    assert kube.gateway.desired_replicas("shop", Owner("ReplicaSet", pod.owner.name, "other-uid")) is None
    assert kube.gateway.desired_replicas("shop", Owner("Job", "x", "y")) is None
    kube.world.expect_deletion("Pod", pod.name)
    assert kube.gateway.delete_pod(pod.namespace, pod.name) is True
    assert kube.gateway.delete_pod(pod.namespace, pod.name) is False
