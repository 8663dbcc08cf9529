"""In-memory fakes of the node group migration's gateways.

* :class:`FakeNodegroups` (EKS node groups), :class:`FakeLaunchTemplates` (EC2), :class:`FakeParameters`
  (SSM): dictionaries with EKS's rules that matter to the domain (token idempotency, name taken,
  statuses moved by the test).
* :class:`WorldClusterNodes`: the Kubernetes side, over the simulator's in-memory ``KubeWorld`` (its
  controllers, scheduler and eviction rules) without HTTP, parsed by the same functions the real
  gateway uses.

``tests/integration/test_migration_gateway_contract.py`` runs one contract against each fake and its
real gateway, so they cannot drift.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from upgrader.gateways.cluster_nodes import (
    CORDONED_BY_ANNOTATION,
    BudgetInfo,
    Eviction,
    NodeInfo,
    Owner,
    PodInfo,
    api_error,
    eviction_outcome,
    node_info,
    pod_info,
)
from upgrader.gateways.nodegroups import (
    AlreadyExists,
    ClusterAccess,
    LaunchTemplateInfo,
    NodegroupInfo,
    NodegroupSpec,
)

from simulator.kube.world import KubeError, KubeWorld


class FakeNodegroups:
    def __init__(self, cluster: str = "payments-prod", version: str = "1.23") -> None:
        self.access = ClusterAccess(
            name=cluster,
            version=version,
            status="ACTIVE",
            endpoint="https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
            certificate_authority="Q0EtREFUQQ==",
            service_ipv4_cidr="10.100.0.0/16",
        )
        self.groups: dict[str, NodegroupInfo] = {}
        self.tokens: dict[str, str] = {}  # token -> group name
        self.calls: list[tuple[str, Any]] = []
        self.created: list[NodegroupSpec] = []

    def add(self, group: NodegroupInfo) -> NodegroupInfo:
        self.groups[group.name] = group
        return group

    def set_status(self, name: str, status: str, **changes: Any) -> None:
        self.groups[name] = replace(self.groups[name], status=status, **changes)

    def describe_cluster_access(self, name: str) -> ClusterAccess:
        self.calls.append(("describe_cluster_access", name))
        return self.access

    def list_nodegroups(self, cluster: str) -> list[str]:
        self.calls.append(("list_nodegroups", cluster))
        return sorted(self.groups)

    def describe_nodegroup(self, cluster: str, name: str) -> NodegroupInfo | None:
        self.calls.append(("describe_nodegroup", name))
        return self.groups.get(name)

    def create_nodegroup(self, cluster: str, spec: NodegroupSpec, client_request_token: str) -> NodegroupInfo:
        self.calls.append(("create_nodegroup", (spec.name, client_request_token)))
        if spec.name in self.groups:
            if self.tokens.get(client_request_token) == spec.name:
                return self.groups[spec.name]
            raise AlreadyExists(spec.name)
        group = NodegroupInfo(
            name=spec.name,
            status="CREATING",
            version=spec.version or (None if spec.launch_template else self.access.version),
            ami_type=spec.ami_type or ("CUSTOM" if spec.launch_template else "AL2_x86_64"),
            capacity_type=spec.capacity_type,
            instance_types=spec.instance_types,
            scaling=dict(spec.scaling),
            subnets=spec.subnets,
            node_role=spec.node_role,
            labels=dict(spec.labels),
            taints=spec.taints,
            tags=dict(spec.tags),
            disk_size=spec.disk_size,
            remote_access=spec.remote_access,
            update_config=spec.update_config or {"maxUnavailable": 1},
            launch_template=spec.launch_template,
        )
        self.groups[spec.name] = group
        self.tokens[client_request_token] = spec.name
        self.created.append(spec)
        return group

    def delete_nodegroup(self, cluster: str, name: str) -> NodegroupInfo | None:
        self.calls.append(("delete_nodegroup", name))
        group = self.groups.get(name)
        if group is None:
            return None
        self.groups[name] = replace(group, status="DELETING")
        return self.groups[name]

    def finish_deletion(self, name: str) -> None:
        self.groups.pop(name, None)

    def mutating_calls(self) -> list[tuple[str, Any]]:
        return [c for c in self.calls if c[0] in ("create_nodegroup", "delete_nodegroup")]


class FakeLaunchTemplates:
    def __init__(self) -> None:
        self.templates: dict[str, LaunchTemplateInfo] = {}
        self.data: dict[tuple[str, str], dict[str, Any]] = {}  # (id, version) -> data
        self.tokens: dict[str, str] = {}
        self.calls: list[tuple[str, Any]] = []
        self._ids = (f"lt-{n:017x}" for n in itertools.count(1))

    def add(
        self, name: str, data: Mapping[str, Any], tags: Mapping[str, str] | None = None
    ) -> LaunchTemplateInfo:
        info = LaunchTemplateInfo(id=next(self._ids), name=name, latest_version="1", tags=dict(tags or {}))
        self.templates[name] = info
        self.data[(info.id, "1")] = dict(data)
        return info

    def launch_template_data(self, template_id: str, version: str) -> dict[str, Any]:
        self.calls.append(("launch_template_data", (template_id, version)))
        return dict(self.data[(template_id, version)])

    def find_launch_template(self, name: str) -> LaunchTemplateInfo | None:
        self.calls.append(("find_launch_template", name))
        return self.templates.get(name)

    def create_launch_template(
        self, name: str, data: Mapping[str, Any], tags: Mapping[str, str], client_token: str
    ) -> LaunchTemplateInfo:
        self.calls.append(("create_launch_template", (name, client_token)))
        if client_token in self.tokens and self.tokens[client_token] == name:
            return self.templates[name]
        if name in self.templates:
            raise AlreadyExists(name)
        info = self.add(name, data, tags)
        self.tokens[client_token] = name
        return info


class FakeParameters:
    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self.values = dict(values or {})
        self.calls: list[str] = []

    def get_parameter(self, name: str) -> str | None:
        self.calls.append(name)
        return self.values.get(name)


class WorldClusterNodes:
    """The ClusterNodesGateway over a KubeWorld, in process (no HTTP, no token)."""

    def __init__(self, world: KubeWorld) -> None:
        self.world = world
        self.evictions: list[tuple[str, str, str]] = []  # (namespace, name, outcome)
        self.throttle_evictions = 0  # the next N evictions answer 429 without a budget (API throttling)
        self.fail_next: dict[str, int] = {}  # method name -> HTTP status to raise once

    def _maybe_fail(self, method: str) -> None:
        status = self.fail_next.pop(method, None)
        if status is not None:
            raise api_error(status, "injected", method)

    def list_nodes(self, label_selector: str | None = None) -> list[NodeInfo]:
        self._maybe_fail("list_nodes")
        wanted = dict(part.split("=", 1) for part in label_selector.split(",")) if label_selector else {}
        nodes = [
            node_info(n)
            for n in self.world.list("Node")
            if all((n["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]
        return sorted(nodes, key=lambda n: n.name)

    def cordon(self, node: str, *, mark: bool = True) -> None:
        self._maybe_fail("cordon")
        patch: dict[str, Any] = {"spec": {"unschedulable": True}}
        if mark:
            patch["metadata"] = {"annotations": {CORDONED_BY_ANNOTATION: "true"}}
        self.world.patch_node(node, patch, "application/strategic-merge-patch+json")

    def uncordon(self, node: str) -> None:
        self._maybe_fail("uncordon")
        patch = {"spec": {"unschedulable": None}, "metadata": {"annotations": {CORDONED_BY_ANNOTATION: None}}}
        self.world.patch_node(node, patch, "application/strategic-merge-patch+json")

    def list_pods(self, node: str | None = None) -> list[PodInfo]:
        self._maybe_fail("list_pods")
        pods = [pod_info(p) for p in self.world.list("Pod")]
        return [p for p in pods if node is None or p.node == node]

    def evict(self, namespace: str, name: str) -> Eviction:
        if self.throttle_evictions:
            self.throttle_evictions -= 1
            outcome = eviction_outcome(429, '{"message": "the server has received too many requests"}')
        else:
            status = self.world.evict(namespace, name)
            outcome = eviction_outcome(status.code, _body(status.body()))
        self.evictions.append((namespace, name, outcome.outcome))
        return outcome

    def delete_pod(self, namespace: str, name: str) -> bool:
        try:
            self.world.delete("Pod", namespace, name)
        except KubeError as error:
            if error.status.code == 404:
                return False
            raise
        return True

    def list_budgets(self, namespace: str) -> list[BudgetInfo]:
        return [
            BudgetInfo(namespace=namespace, name=b["metadata"]["name"], selector=b["spec"].get("selector"))
            for b in self.world.list("PodDisruptionBudget", namespace)
        ]

    def desired_replicas(self, namespace: str, owner: Owner) -> int | None:
        if owner.kind not in ("ReplicaSet", "StatefulSet", "ReplicationController"):
            return None
        try:
            obj = self.world.get(owner.kind, namespace, owner.name)
        except KubeError:
            return None
        if obj["metadata"].get("uid") != owner.uid:
            return None
        replicas = obj["spec"].get("replicas")
        return int(replicas) if replicas is not None else 1


def _body(body: Mapping[str, Any]) -> str:
    return json.dumps(body)
