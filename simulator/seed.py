"""Builds, inside moto and the Kubernetes worlds, the fleet a scenario describes.

Everything is created through the same APIs a platform team would use (IAM, EC2, EKS, Auto
Scaling), so the simulator's rules apply to the seed too; node groups and add-ons then come up in
virtual time ("world setup") before any workflow starts.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import boto3

from simulator import eks_catalog
from simulator.clock import VirtualClock
from simulator.eks import EksSimulation, NodegroupFaults, instance_id
from simulator.engine import ORCHESTRATOR_REGION
from simulator.faults import AwsFaults
from simulator.kube.world import KubeWorld
from simulator.scenario import AccountSpec, ClusterSpec, NodegroupSpec, Scenario
from simulator.workloads import manifests

ClusterKey = tuple[str, str, str]  # (account, region, cluster)
SELF_MANAGED_NODE_READY_SECONDS = 90.0


def account_session(account_id: str) -> boto3.Session:
    """A session in a fleet account (moto isolates accounts by the assumed role's credentials)."""
    creds = boto3.client("sts", region_name=ORCHESTRATOR_REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/simulator-admin", RoleSessionName="simulator"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def aws_auth(account_id: str, target_role_name: str) -> dict[str, Any]:
    """kube-system/aws-auth as a cluster in ``CONFIG_MAP`` mode has it: the node role EKS maps for its
    managed node groups, and the orchestrator's target role mapped to its group
    (docs/kubernetes-access.md, option 2)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "aws-auth", "namespace": "kube-system"},
        "data": {
            "mapRoles": (
                f"- rolearn: arn:aws:iam::{account_id}:role/eks-node-role\n"
                "  username: system:node:{{EC2PrivateDNSName}}\n"
                "  groups:\n  - system:bootstrappers\n  - system:nodes\n"
                f"- rolearn: arn:aws:iam::{account_id}:role/{target_role_name}\n"
                "  username: eks-fleet-upgrader:{{SessionName}}\n"
                "  groups:\n  - eks-fleet-upgrader\n"
            )
        },
    }


class FleetSeeder:
    def __init__(
        self,
        scenario: Scenario,
        clock: VirtualClock,
        eks: EksSimulation,
        faults: AwsFaults,
        worlds: Mapping[ClusterKey, KubeWorld],
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.eks = eks
        self.faults = faults
        self.worlds = worlds

    def seed(self) -> None:
        for account in self.scenario.accounts:
            self._seed_account(account)
        for gap in self.scenario.faults.addon_without_compatible_version:
            self.eks.addon_without_compatible_version.add((gap.addon, gap.version))
        # World setup: let node groups and add-ons come up, then deploy the workloads onto the nodes.
        timings = self.eks.timings
        self.clock.sleep(max(timings.nodegroup_create, timings.addon_create) + 1, why="world setup")
        self.eks.settle_all()
        for account, cluster in self.scenario.clusters():
            world = self.worlds[(account.id, cluster.region, cluster.name)]
            # What EKS leaves in every cluster with managed node groups (a scenario's own manifest of it,
            # applied below, replaces it): the ConfigMap the upgrade must never change.
            world.apply(aws_auth(account.id, self.scenario.target_role_name))
            for workload in cluster.workloads:
                for manifest in manifests(workload):
                    world.apply(manifest)
            for manifest in cluster.manifests:
                world.apply(manifest)
        ready = max((c.pods_ready_seconds for _, c in self.scenario.clusters()), default=0.0)
        self.clock.sleep(max(ready, SELF_MANAGED_NODE_READY_SECONDS) + 1, why="world setup")
        for world in self.worlds.values():
            world.advance()

    def _seed_account(self, account: AccountSpec) -> None:
        scenario = self.scenario
        session = account_session(account.id)
        iam = session.client("iam")
        iam.create_role(RoleName=scenario.target_role_name, AssumeRolePolicyDocument="{}")
        self.faults.external_ids[(account.id, scenario.target_role_name)] = scenario.external_id
        roles = {
            name: iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
            for name in ("eks-cluster-role", "eks-node-role", "eks-fargate-pod-role")
        }
        for cluster in account.clusters:
            self._seed_cluster(session, account, cluster, roles)

    def _seed_cluster(
        self, session: boto3.Session, account: AccountSpec, cluster: ClusterSpec, roles: dict[str, str]
    ) -> None:
        ec2 = session.client("ec2", region_name=cluster.region)
        eks = session.client("eks", region_name=cluster.region)
        subnets = _subnets_with_free_ips(ec2, cluster.subnets, cluster.free_ips)
        eks.create_cluster(
            name=cluster.name,
            version=cluster.version,
            roleArn=roles["eks-cluster-role"],
            resourcesVpcConfig={
                "subnetIds": subnets,
                "endpointPublicAccess": cluster.endpoint_access != "private",
                "endpointPrivateAccess": cluster.endpoint_access != "public",
            },
        )
        state = self.eks.cluster_sim(account.id, cluster.region, cluster.name)
        state.free_ips = sum(
            s["AvailableIpAddressCount"] for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"]
        )
        for fault in self.scenario.faults.fail_control_plane_update:
            if fault.cluster == cluster.name:
                state.fail_next_update = fault.error_code
        for nodegroup in cluster.nodegroups:
            state.nodegroup_faults[nodegroup.name] = NodegroupFaults(
                nodes_never_ready=nodegroup.faults.nodes_never_ready,
                capacity_shortage=nodegroup.faults.capacity_shortage,
            )
            if nodegroup.kind == "managed":
                self._create_managed(session, cluster, nodegroup, subnets, roles["eks-node-role"])
            elif nodegroup.kind == "self-managed":
                self._create_self_managed(session, account, cluster, nodegroup, subnets)
            else:
                eks.create_fargate_profile(
                    fargateProfileName=nodegroup.name,
                    clusterName=cluster.name,
                    podExecutionRoleArn=roles["eks-fargate-pod-role"],
                    subnets=subnets,
                    selectors=[{"namespace": nodegroup.name, "labels": dict(nodegroup.labels)}],
                )
        for addon in cluster.addons:
            if addon.self_managed:
                continue  # installed as manifests in the cluster, invisible to the EKS add-on API
            request: dict[str, Any] = {"clusterName": cluster.name, "addonName": addon.name}
            if addon.version:
                request["addonVersion"] = addon.version
            if addon.configuration_values:
                request["configurationValues"] = addon.configuration_values
            eks.create_addon(**request)

    def _create_managed(
        self,
        session: boto3.Session,
        cluster: ClusterSpec,
        nodegroup: NodegroupSpec,
        subnets: list[str],
        node_role: str,
    ) -> None:
        size = nodegroup.desired_size
        request: dict[str, Any] = {
            "clusterName": cluster.name,
            "nodegroupName": nodegroup.name,
            "scalingConfig": {
                "minSize": nodegroup.min_size if nodegroup.min_size is not None else size,
                "maxSize": nodegroup.max_size if nodegroup.max_size is not None else max(size, 1),
                "desiredSize": size,
            },
            "subnets": subnets,
            "nodeRole": node_role,
            "labels": dict(nodegroup.labels),
            "taints": [t.model_dump() for t in nodegroup.taints],
            "capacityType": nodegroup.capacity_type,
            "instanceTypes": list(nodegroup.instance_types),
            "version": nodegroup.version or cluster.version,
        }
        template = nodegroup.launch_template
        if template is None:
            request["amiType"] = nodegroup.ami_type
            request["diskSize"] = nodegroup.disk_size
        else:
            data: dict[str, Any] = {}
            if template.user_data:
                data["UserData"] = base64.b64encode(template.user_data.encode()).decode()
            if template.image_id:
                data["ImageId"] = template.image_id
                request.pop("version")  # CUSTOM groups take their version from the AMI
            else:
                request["amiType"] = nodegroup.ami_type
            created = session.client("ec2", region_name=cluster.region).create_launch_template(
                LaunchTemplateName=f"{cluster.name}-{nodegroup.name}", LaunchTemplateData=data
            )["LaunchTemplate"]
            request["launchTemplate"] = {"id": created["LaunchTemplateId"], "version": "1"}
        session.client("eks", region_name=cluster.region).create_nodegroup(**request)

    def _create_self_managed(
        self,
        session: boto3.Session,
        account: AccountSpec,
        cluster: ClusterSpec,
        nodegroup: NodegroupSpec,
        subnets: list[str],
    ) -> None:
        """An Auto Scaling group whose instances join the cluster themselves (EKS does not manage them)."""
        region = cluster.region
        version = nodegroup.version or cluster.version
        user_data = nodegroup.launch_template.user_data if nodegroup.launch_template else ""
        image = eks_catalog.ami_id(
            region, version, nodegroup.ami_type if nodegroup.ami_type != "CUSTOM" else "AL2_x86_64"
        )
        template = session.client("ec2", region_name=region).create_launch_template(
            LaunchTemplateName=f"{cluster.name}-{nodegroup.name}",
            LaunchTemplateData={
                "ImageId": image,
                "InstanceType": nodegroup.instance_types[0],
                "UserData": base64.b64encode(user_data.encode()).decode(),
            },
        )["LaunchTemplate"]
        session.client("autoscaling", region_name=region).create_auto_scaling_group(
            AutoScalingGroupName=f"{cluster.name}-{nodegroup.name}",
            LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "1"},
            MinSize=nodegroup.desired_size,
            MaxSize=max(nodegroup.desired_size, 1),
            DesiredCapacity=nodegroup.desired_size,
            VPCZoneIdentifier=",".join(subnets),
            Tags=[
                {"Key": f"kubernetes.io/cluster/{cluster.name}", "Value": "owned", "PropagateAtLaunch": True}
            ],
        )
        world = self.worlds[(account.id, region, cluster.name)]
        never_ready = nodegroup.faults.nodes_never_ready
        world.register_nodes(
            nodegroup.name,
            [
                instance_id(account.id, region, cluster.name, nodegroup.name, 0, i)
                for i in range(nodegroup.desired_size)
            ],
            kubelet_version=eks_catalog.kubelet_version(version),
            container_runtime=eks_catalog.container_runtime(version, nodegroup.ami_type, user_data),
            instance_type=nodegroup.instance_types[0],
            labels={"alpha.eksctl.io/nodegroup-name": nodegroup.name, **nodegroup.labels},
            taints=[
                {"key": t.key, "value": t.value, "effect": _K8S_EFFECT[t.effect]} for t in nodegroup.taints
            ],
            pods_per_node=eks_catalog.pods_per_node(nodegroup.instance_types[0]),
            ready_at=None if never_ready else self.clock.now() + SELF_MANAGED_NODE_READY_SECONDS,
        )


USABLE_IPS = {28: 11, 24: 251}  # AWS reserves 5 addresses in every subnet


def _subnets_with_free_ips(ec2: Any, count: int, free_ips: int | None) -> list[str]:
    """Subnets whose AvailableIpAddressCount adds up to ``free_ips``, as DescribeSubnets (and so the
    readiness scan and the EKS rules) will see them: the smallest subnet size that holds them, the
    surplus taken by network interfaces, as other workloads' ENIs would take it. ``None``: /24s."""
    if free_ips is None:
        free_ips = USABLE_IPS[24] * count
    prefix = 28 if free_ips <= USABLE_IPS[28] * count else 24
    if free_ips > USABLE_IPS[prefix] * count:
        raise ValueError(f"freeIps {free_ips} exceeds what {count} /24 subnets hold")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = []
    remaining = free_ips
    for index in range(count):
        cidr = f"10.0.{index}.0/24" if prefix == 24 else f"10.0.0.{index * 16}/28"
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]
        keep = min(USABLE_IPS[prefix], remaining // (count - index) + (remaining % (count - index) > 0))
        for _ in range(USABLE_IPS[prefix] - keep):
            ec2.create_network_interface(SubnetId=subnet, Description="simulated: other workloads")
        remaining -= keep
        subnets.append(subnet)
    return subnets


_K8S_EFFECT = {
    "NO_SCHEDULE": "NoSchedule",
    "NO_EXECUTE": "NoExecute",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
}


def bulk_apply(world: KubeWorld, documents: list[dict[str, Any]]) -> None:
    """``kubectl apply`` of many manifests at once, for scale benchmarks: the world's controllers
    run once at the end instead of after every object (which costs O(objects) each, so seeding
    thousands of workloads one by one is quadratic). The objects and what the controllers make of
    them are the same as with one ``apply`` each; only the intermediate states are skipped.
    KubeWorld has no public batch API; this shadows its reconcile step for the duration."""
    with world._lock:
        reconcile = world._reconcile
        world._reconcile = lambda: None  # type: ignore[method-assign]
        try:
            for document in documents:
                world.apply(document)
        finally:
            del world._reconcile
        reconcile()
        world.advance()
