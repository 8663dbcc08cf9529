"""In-memory fakes of the gateway interfaces. tests/integration/test_eks_contract.py,
test_ec2_contract.py and test_kubernetes_contract.py run the same contract against each fake and its
real gateway (on moto + the simulator), so they cannot drift."""

from __future__ import annotations

import base64
import copy
import itertools
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from upgrader.errors import (
    AwsResourceNotFound,
    ClusterNotFound,
    EksResourceBusy,
    KubernetesAccessDenied,
    TransientKubernetesError,
    UnexpectedAwsError,
    UpdateAlreadyInProgress,
)
from upgrader.gateways.aws import AlreadyExists
from upgrader.gateways.cluster_nodes import (
    CORDONED_BY_ANNOTATION,
    BudgetInfo,
    Eviction,
    NodeInfo,
    Owner,
    PodInfo,
    eviction_outcome,
    node_info,
    pod_info,
)
from upgrader.gateways.ec2 import LaunchTemplateInfo, decode_user_data
from upgrader.gateways.eks import READINESS_CATEGORY, ClusterInfo, NodegroupInfo, NodegroupSpec, UpdateInfo
from upgrader.gateways.kubernetes import LIST_PAGE_SIZE, LISTABLE_KINDS, ListOutcome, clean_listed_object

from simulator.kube.world import KubeError, KubeWorld

FAKE_ACCOUNT = "111111111111"
FAKE_REGION = "eu-west-1"


@dataclass
class _FakeCluster:
    version: str
    status: str = "ACTIVE"
    updates: list[UpdateInfo] = field(default_factory=list)
    subnet_ids: tuple[str, ...] = ("subnet-1", "subnet-2")
    nodegroups: dict[str, dict[str, Any]] = field(default_factory=dict)
    addons: dict[str, dict[str, Any]] = field(default_factory=dict)
    insights: list[dict[str, Any]] = field(default_factory=list)


def _scope(scope: str) -> dict[str, str]:
    kind, name = scope.split("/", 1)
    return {kind: name}


class FakeEksGateway:
    """EKS rules that matter to the domain: one update at a time, tokens are idempotent."""

    def __init__(self) -> None:
        self.clusters: dict[str, _FakeCluster] = {}
        self.tokens: dict[tuple[str, str], str] = {}
        self.calls: list[tuple[str, Any]] = []
        self._ids = (f"update-{n}" for n in itertools.count(1))
        self.resource_updates: dict[tuple[str, str], list[UpdateInfo]] = {}
        self.resource_tokens: dict[tuple[str, str, str], str] = {}
        self.busy: set[str] = set()  # "addon/<name>" or "nodegroup/<name>": someone else's update runs
        # add-on -> (version, Kubernetes versions it supports, default for them)
        self.addon_catalog: dict[str, list[tuple[str, tuple[str, ...], bool]]] = {
            "vpc-cni": [("v1.12.6-eksbuild.2", ("1.23", "1.24", "1.25"), True)],
            "coredns": [
                ("v1.8.7-eksbuild.4", ("1.23",), True),
                ("v1.9.3-eksbuild.7", ("1.24", "1.25"), True),
            ],
            "kube-proxy": [
                ("v1.23.16-eksbuild.2", ("1.23",), True),
                ("v1.24.10-eksbuild.2", ("1.24",), True),
            ],
        }

    def add_cluster(self, name: str, version: str, status: str = "ACTIVE") -> None:
        self.clusters[name] = _FakeCluster(version=version, status=status)

    def _cluster(self, name: str) -> _FakeCluster:
        if name not in self.clusters:
            raise ClusterNotFound(f"cluster {name} not found", cluster=name)
        return self.clusters[name]

    def describe_cluster(self, name: str) -> ClusterInfo:
        self.calls.append(("describe_cluster", name))
        cluster = self._cluster(name)
        endpoint = f"https://{name.lower()}.gr7.{FAKE_REGION}.eks.amazonaws.com"
        authority = base64.b64encode(
            b"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"
        ).decode()
        return ClusterInfo(
            name=name,
            version=cluster.version,
            status=cluster.status,
            platform_version="eks.1",
            endpoint=endpoint,
            certificate_authority=authority,
            subnet_ids=cluster.subnet_ids,
            raw={
                "name": name,
                "arn": f"arn:aws:eks:{FAKE_REGION}:{FAKE_ACCOUNT}:cluster/{name}",
                "version": cluster.version,
                "status": cluster.status,
                "platformVersion": "eks.1",
                "endpoint": endpoint,
                "certificateAuthority": {"data": authority},
                "resourcesVpcConfig": {"subnetIds": list(cluster.subnet_ids)},
            },
        )

    def list_updates(self, name: str) -> list[str]:
        self.calls.append(("list_updates", name))
        return [u.id for u in self._cluster(name).updates]

    def describe_update(self, name: str, update_id: str) -> UpdateInfo:
        self.calls.append(("describe_update", update_id))
        for update in self._cluster(name).updates:
            if update.id == update_id:
                return update
        raise UnexpectedAwsError(f"no update {update_id}", awsErrorCode="ResourceNotFoundException")

    def update_cluster_version(self, name: str, version: str, client_request_token: str) -> UpdateInfo:
        self.calls.append(("update_cluster_version", (name, version, client_request_token)))
        cluster = self._cluster(name)
        if (name, client_request_token) in self.tokens:
            return self.describe_update(name, self.tokens[(name, client_request_token)])
        if any(u.status == "InProgress" for u in cluster.updates):
            raise UpdateAlreadyInProgress(f"cluster {name} has an update in progress", cluster=name)
        update = UpdateInfo(
            id=next(self._ids), status="InProgress", type="VersionUpdate", params={"Version": version}
        )
        cluster.updates.append(update)
        cluster.status = "UPDATING"
        self.tokens[(name, client_request_token)] = update.id
        return update

    # -- readiness facts ------------------------------------------------------------------------
    def list_nodegroups(self, cluster: str) -> list[str]:
        self.calls.append(("list_nodegroups", cluster))
        return sorted(self._cluster(cluster).nodegroups)

    def describe_nodegroup(self, cluster: str, nodegroup: str) -> dict[str, Any]:
        self.calls.append(("describe_nodegroup", nodegroup))
        found = self._cluster(cluster).nodegroups.get(nodegroup)
        if found is None:
            raise AwsResourceNotFound(
                f"nodegroup {nodegroup} not found", resourceType="nodegroup", resourceName=nodegroup
            )
        return copy.deepcopy(found)

    def list_addons(self, cluster: str) -> list[str]:
        self.calls.append(("list_addons", cluster))
        return sorted(self._cluster(cluster).addons)

    def describe_addon(self, cluster: str, addon: str) -> dict[str, Any]:
        self.calls.append(("describe_addon", addon))
        found = self._cluster(cluster).addons.get(addon)
        if found is None:
            raise AwsResourceNotFound(f"addon {addon} not found", resourceType="addon", resourceName=addon)
        return copy.deepcopy(found)

    def describe_addon_versions(self, addon: str, kubernetes_version: str) -> list[dict[str, Any]]:
        self.calls.append(("describe_addon_versions", (addon, kubernetes_version)))
        versions = [
            {
                "addonVersion": version,
                "compatibilities": [
                    {
                        "clusterVersion": kubernetes_version,
                        "platformVersions": ["*"],
                        "defaultVersion": default,
                    }
                ],
            }
            for version, clusters, default in self.addon_catalog.get(addon, [])
            if kubernetes_version in clusters
        ]
        return [{"addonName": addon, "addonVersions": versions}] if versions else []

    def list_insights(self, cluster: str, kubernetes_version: str) -> list[dict[str, Any]]:
        self.calls.append(("list_insights", (cluster, kubernetes_version)))
        summary_fields = ("id", "name", "category", "kubernetesVersion", "insightStatus")
        return [
            {k: copy.deepcopy(i[k]) for k in summary_fields}
            for i in self._cluster(cluster).insights
            if i["category"] == READINESS_CATEGORY and i["kubernetesVersion"] == kubernetes_version
        ]

    def describe_insight(self, cluster: str, insight_id: str) -> dict[str, Any]:
        self.calls.append(("describe_insight", insight_id))
        for insight in self._cluster(cluster).insights:
            if insight["id"] == insight_id:
                return copy.deepcopy(insight)
        raise AwsResourceNotFound(
            f"insight {insight_id} not found", resourceType="insight", resourceName=insight_id
        )

    # -- test controls --------------------------------------------------------------------------

    def add_nodegroup(
        self,
        cluster: str,
        name: str,
        *,
        version: str | None = None,
        launch_template: dict[str, str] | None = None,
        ami_type: str = "AL2_x86_64",
    ) -> None:
        group: dict[str, Any] = {
            "nodegroupName": name,
            "clusterName": cluster,
            "version": version or self._cluster(cluster).version,
            "status": "ACTIVE",
            "amiType": "CUSTOM" if launch_template and "imageId" in launch_template else ami_type,
            "scalingConfig": {"minSize": 2, "maxSize": 2, "desiredSize": 2},
        }
        if launch_template:
            group["launchTemplate"] = {k: v for k, v in launch_template.items() if k != "imageId"}
        self._cluster(cluster).nodegroups[name] = group

    def add_addon(self, cluster: str, name: str, version: str | None = None) -> None:
        default = next(
            (
                v
                for v, clusters, _ in self.addon_catalog.get(name, [])
                if self._cluster(cluster).version in clusters
            ),
            "v0",
        )
        self._cluster(cluster).addons[name] = {
            "addonName": name,
            "clusterName": cluster,
            "addonVersion": version or default,
            "status": "ACTIVE",
        }

    def add_insight(self, cluster: str, name: str, status: str, kubernetes_version: str, **extra: Any) -> str:
        insight_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{cluster}/{name}"))
        self._cluster(cluster).insights.append(
            {
                "id": insight_id,
                "name": name,
                "category": READINESS_CATEGORY,
                "kubernetesVersion": kubernetes_version,
                "insightStatus": {"status": status, "reason": extra.pop("reason", f"{name} is {status}")},
                "recommendation": extra.pop("recommendation", f"Fix {name}."),
                "additionalInfo": extra.pop("additionalInfo", {}),
                **extra,
            }
        )
        return insight_id

    def finish(self, name: str, update_id: str, status: str = "Successful", errors: tuple = ()) -> None:
        cluster = self._cluster(name)
        for index, update in enumerate(cluster.updates):
            if update.id == update_id:
                cluster.updates[index] = UpdateInfo(update.id, status, update.type, update.params, errors)
                if status == "Successful":
                    cluster.version = update.params["Version"]
                cluster.status = "ACTIVE"

    def mutating_calls(self) -> list[tuple[str, Any]]:
        return [
            c
            for c in self.calls
            if c[0] in ("update_cluster_version", "update_addon", "update_nodegroup_version")
        ]

    # -- add-ons and node versions (VersionUpdateGateway) ----------------------------------------------
    def _resource_updates(self, cluster: str, scope: str) -> list[UpdateInfo]:
        return self.resource_updates.setdefault((cluster, scope), [])

    def list_resource_updates(
        self, cluster: str, *, nodegroup: str | None = None, addon: str | None = None
    ) -> list[str]:
        scope = f"nodegroup/{nodegroup}" if nodegroup else f"addon/{addon}"
        return [u.id for u in self._resource_updates(cluster, scope)]

    def describe_resource_update(
        self, cluster: str, update_id: str, *, nodegroup: str | None = None, addon: str | None = None
    ) -> UpdateInfo:
        self.calls.append(("describe_resource_update", update_id))
        scope = f"nodegroup/{nodegroup}" if nodegroup else f"addon/{addon}"
        for update in self._resource_updates(cluster, scope):
            if update.id == update_id:
                return update
        raise AwsResourceNotFound(f"no update {update_id}", resourceType="update", resourceName=update_id)

    def _start(self, cluster: str, scope: str, token: str, kind: str, params: dict[str, str]) -> UpdateInfo:
        if (cluster, scope, token) in self.resource_tokens:
            return self.describe_resource_update(
                cluster, self.resource_tokens[(cluster, scope, token)], **_scope(scope)
            )
        if scope in self.busy or any(
            u.status == "InProgress" for u in self._resource_updates(cluster, scope)
        ):
            raise EksResourceBusy(f"{scope} is being updated", cluster=cluster)
        update = UpdateInfo(id=next(self._ids), status="InProgress", type=kind, params=params)
        self._resource_updates(cluster, scope).append(update)
        self.resource_tokens[(cluster, scope, token)] = update.id
        return update

    def update_addon(
        self, cluster: str, addon: str, version: str, resolve_conflicts: str, client_request_token: str
    ) -> UpdateInfo:
        self.calls.append(("update_addon", (addon, version, resolve_conflicts)))
        update = self._start(
            cluster,
            f"addon/{addon}",
            client_request_token,
            "AddonUpdate",
            {"AddonVersion": version, "ResolveConflicts": resolve_conflicts},
        )
        self._cluster(cluster).addons[addon]["status"] = "UPDATING"
        return update

    def update_nodegroup_version(
        self,
        cluster: str,
        nodegroup: str,
        client_request_token: str,
        *,
        version: str | None = None,
        launch_template: Any = None,
    ) -> UpdateInfo:
        self.calls.append(("update_nodegroup_version", (nodegroup, version, launch_template)))
        params = {"Version": version or self._cluster(cluster).version}
        if launch_template is not None:
            params["LaunchTemplateVersion"] = launch_template.version
        update = self._start(cluster, f"nodegroup/{nodegroup}", client_request_token, "VersionUpdate", params)
        self._cluster(cluster).nodegroups[nodegroup]["status"] = "UPDATING"
        return update

    def finish_resource(
        self, cluster: str, update_id: str, status: str = "Successful", errors: tuple = ()
    ) -> None:
        """The add-on or node group update ends: the resource takes its new version when Successful."""
        for (name, scope), updates in self.resource_updates.items():
            for index, update in enumerate(updates):
                if name != cluster or update.id != update_id:
                    continue
                updates[index] = UpdateInfo(update.id, status, update.type, update.params, errors)
                kind, resource = scope.split("/", 1)
                target = (
                    self._cluster(cluster).addons[resource]
                    if kind == "addon"
                    else self._cluster(cluster).nodegroups[resource]
                )
                target["status"] = "ACTIVE"
                if status == "Successful" and kind == "addon":
                    target["addonVersion"] = update.params["AddonVersion"]
                elif status == "Successful":
                    target["version"] = update.params["Version"]


class FakeEc2Gateway:
    """Subnets with their free addresses, launch templates with user data per version."""

    def __init__(self) -> None:
        self.subnets: dict[str, int] = {}  # subnet id -> AvailableIpAddressCount
        self.templates: dict[str, dict[str, Any]] = {}  # id -> {"name", "default", "versions": {n: data}}
        self.calls: list[tuple[str, Any]] = []

    def add_subnet(self, subnet_id: str, free: int) -> None:
        self.subnets[subnet_id] = free

    def add_launch_template(self, name: str, user_data: str | None, *, versions: int = 1) -> dict[str, str]:
        template_id = f"lt-{len(self.templates) + 1:017x}"
        encoded = base64.b64encode(user_data.encode()).decode() if user_data is not None else None
        self.templates[template_id] = {
            "name": name,
            "default": "1",
            "versions": {str(n): encoded for n in range(1, versions + 1)},
        }
        return {"id": template_id, "name": name, "version": str(versions)}

    def describe_subnets(self, subnet_ids: Sequence[str]) -> list[dict[str, Any]]:
        self.calls.append(("describe_subnets", tuple(subnet_ids)))
        missing = [s for s in subnet_ids if s not in self.subnets]
        if missing:
            raise AwsResourceNotFound(
                f"subnet {missing[0]} not found", resourceType="subnet", resourceName=",".join(missing)
            )
        return [{"SubnetId": s, "AvailableIpAddressCount": self.subnets[s]} for s in subnet_ids]

    def launch_template_user_data(
        self, *, template_id: str | None, template_name: str | None, version: str | None
    ) -> str | None:
        self.calls.append(("launch_template_user_data", (template_id, template_name, version)))
        found = self.templates.get(template_id or "") or next(
            (t for t in self.templates.values() if t["name"] == template_name), None
        )
        if found is None:
            raise AwsResourceNotFound(
                "launch template not found", resourceType="launch template", resourceName=str(template_id)
            )
        versions = found["versions"]
        wanted = {
            None: found["default"],
            "$Default": found["default"],
            "$Latest": max(versions, key=int),
        }.get(version, version)
        if wanted not in versions:
            raise AwsResourceNotFound(
                f"version {version} not found", resourceType="launch template", resourceName=str(template_id)
            )
        data = versions[wanted]
        return decode_user_data(data) if data else None


class FakeKubernetesGateway:
    """A cluster's objects by kind, listed the way the real gateway lists them (one paginated list per
    kind; list items become standalone objects; secret values dropped)."""

    def __init__(self, *, page_size: int = LIST_PAGE_SIZE, keep_secret_values: bool = False) -> None:
        self.page_size = page_size
        self.keep_secret_values = keep_secret_values  # a careless gateway, to test the domain's own guard
        self.objects: dict[str, list[dict[str, Any]]] = {}
        self.forbidden: dict[str, str] = {}
        self.not_served: set[str] = set()
        self.expiring: dict[str, int] = {}
        self.token_refused = False
        self.calls: list[str] = []
        self.pages: list[str] = []  # one entry per page served, like the API server's request log

    # -- test controls --------------------------------------------------------------------------
    def add(self, *manifests: dict[str, Any]) -> None:
        for manifest in manifests:
            self.objects.setdefault(manifest["kind"], []).append(copy.deepcopy(manifest))

    def forbid(self, kind: str, user: str = "eks-fleet-upgrader") -> None:
        plural = _PLURALS[kind]
        group = LISTABLE_KINDS[kind].api_version.rpartition("/")[0]
        qualified = f"{plural}.{group}" if group else plural
        self.forbidden[kind] = (
            f'403 Forbidden: {qualified} is forbidden: User "{user}" cannot list resource "{plural}" '
            f'in API group "{group}" at the cluster scope'
        )

    def stop_serving(self, kind: str) -> None:
        self.not_served.add(kind)

    def expire_continue(self, kind: str, times: int = 1) -> None:
        self.expiring[kind] = self.expiring.get(kind, 0) + times

    def refuse_token(self) -> None:
        self.token_refused = True

    # -- the contract ---------------------------------------------------------------------------
    def list_objects(self, kind: str) -> ListOutcome:
        spec = LISTABLE_KINDS.get(kind)
        if spec is None:
            raise ValueError(f"kind {kind!r} is not listable")
        self.calls.append(kind)
        if self.token_refused:
            raise KubernetesAccessDenied(f"list {kind}: 401", httpStatus=401)
        if kind in self.forbidden:
            self.pages.append(kind)
            return ListOutcome(kind, unreadable=self.forbidden[kind])
        if kind in self.not_served:
            self.pages.append(kind)
            return ListOutcome(
                kind, unreadable="404 NotFound: the server could not find the requested resource"
            )
        items = sorted(
            self.objects.get(kind, []),
            key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]),
        )
        pages = max(1, -(-len(items) // self.page_size))
        restarted = False
        if pages > 1 and self.expiring.get(kind):
            self.pages.extend([kind] * 2)  # the first page, then the continue that answered 410
            self.expiring[kind] -= 1
            restarted = True
            if self.expiring[kind]:
                self.expiring[kind] -= 1
                self.pages.extend([kind] * 2)
                raise TransientKubernetesError(
                    f"list {kind}: the continue token expired twice", httpStatus=410
                )
        self.pages.extend([kind] * pages)
        if self.keep_secret_values:
            listed = [{"apiVersion": spec.api_version, **copy.deepcopy(o)} for o in items]
        else:
            listed = [clean_listed_object(spec, copy.deepcopy(o)) for o in items]
        return ListOutcome(kind, tuple(listed), restarted=restarted)


_PLURALS = {
    "Namespace": "namespaces",
    "Node": "nodes",
    "Pod": "pods",
    "ReplicationController": "replicationcontrollers",
    "ConfigMap": "configmaps",
    "ServiceAccount": "serviceaccounts",
    "Secret": "secrets",
    "Deployment": "deployments",
    "ReplicaSet": "replicasets",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "Job": "jobs",
    "CronJob": "cronjobs",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
}


class FakeReportStore:
    def __init__(self, bucket: str = "reports-bucket") -> None:
        self._bucket = bucket
        self.objects: dict[str, tuple[bytes, str]] = {}

    @property
    def bucket(self) -> str:
        return self._bucket

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = (body, content_type)

    def text(self, key: str) -> str:
        return self.objects[key][0].decode()


# -- the node group migration --------------------------------------------------------------------------
class FakeNodegroups:
    """NodegroupLifecycle: node groups as typed records; statuses are moved by the test."""

    def __init__(self, cluster: str = "payments-prod", version: str = "1.23") -> None:
        self.access = ClusterInfo(
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

    def describe_cluster(self, name: str) -> ClusterInfo:
        self.calls.append(("describe_cluster", name))
        if name != self.access.name:
            raise ClusterNotFound(f"cluster {name} not found", cluster=name)
        return self.access

    def list_nodegroups(self, cluster: str) -> list[str]:
        self.calls.append(("list_nodegroups", cluster))
        return sorted(self.groups)

    def find_nodegroup(self, cluster: str, name: str) -> NodegroupInfo | None:
        self.calls.append(("find_nodegroup", name))
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
    """The ClusterNodesGateway over the simulator's KubeWorld, in process (no HTTP, no token): its
    controllers, scheduler and eviction rules, parsed by the functions the real gateway uses."""

    def __init__(self, world: KubeWorld) -> None:
        self.world = world
        self.evictions: list[tuple[str, str, str]] = []  # (namespace, name, outcome)
        self.throttle_evictions = 0  # the next N evictions answer 429 without a budget (API throttling)

    def list_nodes(self, label_selector: str | None = None) -> list[NodeInfo]:
        wanted = dict(part.split("=", 1) for part in label_selector.split(",")) if label_selector else {}
        nodes = [
            node_info(n)
            for n in self.world.list("Node")
            if all((n["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]
        return sorted(nodes, key=lambda n: n.name)

    def cordon(self, node: str, *, mark: bool = True) -> None:
        patch: dict[str, Any] = {"spec": {"unschedulable": True}}
        if mark:
            patch["metadata"] = {"annotations": {CORDONED_BY_ANNOTATION: "true"}}
        self.world.patch_node(node, patch, "application/strategic-merge-patch+json")

    def uncordon(self, node: str) -> None:
        patch = {"spec": {"unschedulable": None}, "metadata": {"annotations": {CORDONED_BY_ANNOTATION: None}}}
        self.world.patch_node(node, patch, "application/strategic-merge-patch+json")

    def list_pods(self, node: str | None = None) -> list[PodInfo]:
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
