"""EKS behind a small interface. The domain talks to :class:`EksGateway`; tests use a fake with the
same contract (tests/fakes.py), and tests/integration/test_eks_contract.py proves the two agree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from upgrader.errors import (
    AwsResourceNotFound,
    ClusterNotFound,
    EksResourceBusy,
    UpdateAlreadyInProgress,
    UpgradeError,
)
from upgrader.gateways.aws import AlreadyExists, aws_errors, json_safe, translate_client_error

if TYPE_CHECKING:
    from mypy_boto3_eks import EKSClient

READINESS_CATEGORY = "UPGRADE_READINESS"


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    version: str
    status: str
    platform_version: str | None = None
    endpoint: str | None = None  # the API server URL
    certificate_authority: str | None = None  # base64 PEM, as DescribeCluster returns it
    subnet_ids: tuple[str, ...] = ()
    service_ipv4_cidr: str | None = None  # kubernetesNetworkConfig.serviceIpv4Cidr (a node's DNS IP)
    raw: dict[str, Any] = field(default_factory=dict, compare=False)  # DescribeCluster's `cluster`


@dataclass(frozen=True)
class UpdateInfo:
    id: str
    status: str
    type: str
    params: dict[str, str] = field(default_factory=dict)
    errors: tuple[dict[str, Any], ...] = ()


class EksGateway(Protocol):
    def describe_cluster(self, name: str) -> ClusterInfo: ...

    def list_updates(self, name: str) -> list[str]: ...

    def describe_update(self, name: str, update_id: str) -> UpdateInfo: ...

    def update_cluster_version(self, name: str, version: str, client_request_token: str) -> UpdateInfo: ...

    # Facts of the readiness scan, as the EKS API returns them (dicts in the API's shape). A node group
    # or add-on that is gone raises AwsResourceNotFound; a missing cluster ClusterNotFound.
    def list_nodegroups(self, cluster: str) -> list[str]: ...

    def describe_nodegroup(self, cluster: str, nodegroup: str) -> dict[str, Any]: ...

    def list_addons(self, cluster: str) -> list[str]: ...

    def describe_addon(self, cluster: str, addon: str) -> dict[str, Any]: ...

    def describe_addon_versions(self, addon: str, kubernetes_version: str) -> list[dict[str, Any]]:
        """DescribeAddonVersions' ``addons`` for one add-on, versions compatible with ``kubernetes_version``
        only (empty when none is)."""
        ...

    def list_insights(self, cluster: str, kubernetes_version: str) -> list[dict[str, Any]]:
        """ListInsights' ``insights``: upgrade-readiness insights for ``kubernetes_version``."""
        ...

    def describe_insight(self, cluster: str, insight_id: str) -> dict[str, Any]: ...


class VersionUpdateGateway(EksGateway, Protocol):
    """The calls that move add-ons and node groups to the new version (after the control plane).

    ``ResourceInUseException`` (another update of that add-on or node group running) raises
    :class:`~upgrader.errors.EksResourceBusy`."""

    def list_resource_updates(
        self, cluster: str, *, nodegroup: str | None = None, addon: str | None = None
    ) -> list[str]:
        """ListUpdates of one node group or add-on (oldest first)."""
        ...

    def describe_resource_update(
        self, cluster: str, update_id: str, *, nodegroup: str | None = None, addon: str | None = None
    ) -> UpdateInfo: ...

    def update_addon(
        self, cluster: str, addon: str, version: str, resolve_conflicts: str, client_request_token: str
    ) -> UpdateInfo: ...

    def update_nodegroup_version(
        self,
        cluster: str,
        nodegroup: str,
        client_request_token: str,
        *,
        version: str | None = None,
        launch_template: LaunchTemplateRef | None = None,
    ) -> UpdateInfo: ...


@dataclass(frozen=True)
class LaunchTemplateRef:
    id: str
    version: str
    name: str | None = None


@dataclass(frozen=True)
class NodegroupInfo:
    name: str
    status: str
    version: str | None = None
    release_version: str | None = None
    ami_type: str | None = None
    capacity_type: str | None = None
    instance_types: tuple[str, ...] = ()
    scaling: Mapping[str, int] = field(default_factory=dict)
    subnets: tuple[str, ...] = ()
    node_role: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, str], ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    disk_size: int | None = None
    remote_access: Mapping[str, Any] | None = None
    update_config: Mapping[str, int] | None = None
    launch_template: LaunchTemplateRef | None = None
    health_issues: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class NodegroupSpec:
    """A CreateNodegroup request (without cluster and token)."""

    name: str
    node_role: str
    subnets: tuple[str, ...]
    scaling: Mapping[str, int]
    capacity_type: str | None = None
    instance_types: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, str], ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    update_config: Mapping[str, int] | None = None
    ami_type: str | None = None
    version: str | None = None
    disk_size: int | None = None
    remote_access: Mapping[str, Any] | None = None
    launch_template: LaunchTemplateRef | None = None


class NodegroupLifecycle(Protocol):
    """What the node group migration does with managed node groups (typed, unlike the readiness facts)."""

    def describe_cluster(self, name: str) -> ClusterInfo: ...

    def list_nodegroups(self, cluster: str) -> list[str]: ...

    def find_nodegroup(self, cluster: str, name: str) -> NodegroupInfo | None:
        """The node group, or None when there is none of that name."""
        ...

    def create_nodegroup(self, cluster: str, spec: NodegroupSpec, client_request_token: str) -> NodegroupInfo:
        """Raises AlreadyExists when the name is taken (and the token is not the one that created it)."""
        ...

    def delete_nodegroup(self, cluster: str, name: str) -> NodegroupInfo | None:
        """The group, now DELETING; None when there is none of that name."""
        ...


def _update_info(raw: dict[str, Any]) -> UpdateInfo:
    return UpdateInfo(
        id=raw["id"],
        status=raw["status"],
        type=raw.get("type", ""),
        params={p["type"]: p["value"] for p in raw.get("params", [])},
        errors=tuple(raw.get("errors", [])),
    )


class BotoEksGateway:
    def __init__(self, client: EKSClient) -> None:
        self._client = client

    def _translate(
        self, error: ClientError, operation: str, cluster: str, resource: tuple[str, str] | None = None
    ) -> UpgradeError:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code == "ResourceNotFoundException":
            # Describing a node group, add-on or insight: what is missing is that resource, unless EKS
            # says the cluster itself is gone ("No cluster found for name: ...").
            if resource is not None and not message.startswith("No cluster"):
                kind, name = resource
                return AwsResourceNotFound(
                    f"{operation}: {kind} {name} of cluster {cluster} not found",
                    cluster=cluster,
                    resourceType=kind,
                    resourceName=name,
                    awsMessage=message,
                )
            return ClusterNotFound(
                f"{operation}: cluster {cluster} not found", cluster=cluster, awsMessage=message
            )
        if code == "ResourceInUseException":
            return UpdateAlreadyInProgress(
                f"{operation}: cluster {cluster} has another update in progress",
                cluster=cluster,
                awsMessage=message,
            )
        return translate_client_error(error, operation)

    def _call(
        self, operation: str, cluster: str, resource: tuple[str, str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        method = getattr(self._client, operation)
        with aws_errors(f"eks:{operation}"):
            try:
                return method(**kwargs)
            except ClientError as error:
                raise self._translate(error, f"eks:{operation}", cluster, resource) from error

    def _pages(
        self,
        operation: str,
        cluster: str,
        field_name: str,
        resource: tuple[str, str] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        items: list[Any] = []
        while True:
            page = self._call(operation, cluster, resource, **kwargs)
            items.extend(page.get(field_name, []))
            token = page.get("nextToken")
            if not token:
                return items
            kwargs["nextToken"] = token

    def describe_cluster(self, name: str) -> ClusterInfo:
        raw = self._call("describe_cluster", name, name=name)["cluster"]
        return ClusterInfo(
            name=raw["name"],
            version=raw["version"],
            status=raw["status"],
            platform_version=raw.get("platformVersion"),
            endpoint=raw.get("endpoint"),
            certificate_authority=(raw.get("certificateAuthority") or {}).get("data"),
            subnet_ids=tuple((raw.get("resourcesVpcConfig") or {}).get("subnetIds") or ()),
            service_ipv4_cidr=(raw.get("kubernetesNetworkConfig") or {}).get("serviceIpv4Cidr"),
            raw=json_safe(raw),
        )

    def list_nodegroups(self, cluster: str) -> list[str]:
        return self._pages("list_nodegroups", cluster, "nodegroups", clusterName=cluster)

    def describe_nodegroup(self, cluster: str, nodegroup: str) -> dict[str, Any]:
        raw = self._call(
            "describe_nodegroup",
            cluster,
            ("nodegroup", nodegroup),
            clusterName=cluster,
            nodegroupName=nodegroup,
        )
        return json_safe(raw["nodegroup"])

    def list_addons(self, cluster: str) -> list[str]:
        return self._pages("list_addons", cluster, "addons", clusterName=cluster)

    def describe_addon(self, cluster: str, addon: str) -> dict[str, Any]:
        raw = self._call("describe_addon", cluster, ("addon", addon), clusterName=cluster, addonName=addon)
        return json_safe(raw["addon"])

    def describe_addon_versions(self, addon: str, kubernetes_version: str) -> list[dict[str, Any]]:
        found = self._pages(
            "describe_addon_versions",
            "",
            "addons",
            ("addon", addon),
            addonName=addon,
            kubernetesVersion=kubernetes_version,
        )
        return [json_safe(item) for item in found]

    def list_insights(self, cluster: str, kubernetes_version: str) -> list[dict[str, Any]]:
        found = self._pages(
            "list_insights",
            cluster,
            "insights",
            clusterName=cluster,
            filter={"categories": [READINESS_CATEGORY], "kubernetesVersions": [kubernetes_version]},
        )
        return [json_safe(item) for item in found]

    def describe_insight(self, cluster: str, insight_id: str) -> dict[str, Any]:
        raw = self._call(
            "describe_insight", cluster, ("insight", insight_id), clusterName=cluster, id=insight_id
        )
        return json_safe(raw["insight"])

    def list_updates(self, name: str) -> list[str]:
        ids: list[str] = []
        kwargs: dict[str, Any] = {"name": name}
        while True:
            page = self._call("list_updates", name, **kwargs)
            ids.extend(page.get("updateIds", []))
            token = page.get("nextToken")
            if not token:
                return ids
            kwargs["nextToken"] = token

    def describe_update(self, name: str, update_id: str) -> UpdateInfo:
        return _update_info(self._call("describe_update", name, name=name, updateId=update_id)["update"])

    def update_cluster_version(self, name: str, version: str, client_request_token: str) -> UpdateInfo:
        raw = self._call(
            "update_cluster_version",
            name,
            name=name,
            version=version,
            clientRequestToken=client_request_token,
        )
        return _update_info(raw["update"])

    # -- add-ons and node versions ---------------------------------------------------------------------
    def _scope(self, nodegroup: str | None, addon: str | None) -> dict[str, str]:
        if nodegroup:
            return {"nodegroupName": nodegroup}
        return {"addonName": addon} if addon else {}

    def list_resource_updates(
        self, cluster: str, *, nodegroup: str | None = None, addon: str | None = None
    ) -> list[str]:
        return self._pages(
            "list_updates", cluster, "updateIds", name=cluster, **self._scope(nodegroup, addon)
        )

    def describe_resource_update(
        self, cluster: str, update_id: str, *, nodegroup: str | None = None, addon: str | None = None
    ) -> UpdateInfo:
        raw = self._call(
            "describe_update", cluster, name=cluster, updateId=update_id, **self._scope(nodegroup, addon)
        )
        return _update_info(raw["update"])

    def _update(self, operation: str, cluster: str, resource: tuple[str, str], **kwargs: Any) -> UpdateInfo:
        with aws_errors(f"eks:{operation}"):
            try:
                raw = getattr(self._client, operation)(**kwargs)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ResourceInUseException":
                    kind, name = resource
                    raise EksResourceBusy(
                        f"eks:{operation}: {kind} {name} of cluster {cluster} is being changed by another update",
                        cluster=cluster,
                        resourceType=kind,
                        resourceName=name,
                        awsMessage=error.response.get("Error", {}).get("Message", ""),
                    ) from error
                raise self._translate(error, f"eks:{operation}", cluster, resource) from error
        return _update_info(raw["update"])

    def update_addon(
        self, cluster: str, addon: str, version: str, resolve_conflicts: str, client_request_token: str
    ) -> UpdateInfo:
        return self._update(
            "update_addon",
            cluster,
            ("addon", addon),
            clusterName=cluster,
            addonName=addon,
            addonVersion=version,
            resolveConflicts=resolve_conflicts,
            clientRequestToken=client_request_token,
        )

    def update_nodegroup_version(
        self,
        cluster: str,
        nodegroup: str,
        client_request_token: str,
        *,
        version: str | None = None,
        launch_template: LaunchTemplateRef | None = None,
    ) -> UpdateInfo:
        kwargs: dict[str, Any] = {}
        if launch_template is not None:
            kwargs["launchTemplate"] = {"id": launch_template.id, "version": launch_template.version}
        elif version is not None:
            kwargs["version"] = version
        return self._update(
            "update_nodegroup_version",
            cluster,
            ("nodegroup", nodegroup),
            clusterName=cluster,
            nodegroupName=nodegroup,
            clientRequestToken=client_request_token,
            **kwargs,
        )

    # -- node group migration --------------------------------------------------------------------
    def _maybe(self, operation: str, cluster: str, **kwargs: Any) -> dict[str, Any] | None:
        """A call whose ResourceNotFoundException means "no such node group" (None), not an error."""
        with aws_errors(f"eks:{operation}"):
            try:
                return getattr(self._client, operation)(**kwargs)  # type: ignore[no-any-return]
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                message = error.response.get("Error", {}).get("Message", "")
                if code == "ResourceNotFoundException" and not message.startswith("No cluster"):
                    return None
                raise self._translate(error, f"eks:{operation}", cluster) from error

    def find_nodegroup(self, cluster: str, name: str) -> NodegroupInfo | None:
        found = self._maybe("describe_nodegroup", cluster, clusterName=cluster, nodegroupName=name)
        return nodegroup_info(found["nodegroup"]) if found else None

    def create_nodegroup(self, cluster: str, spec: NodegroupSpec, client_request_token: str) -> NodegroupInfo:
        with aws_errors("eks:CreateNodegroup"):
            try:
                raw = self._client.create_nodegroup(
                    **create_nodegroup_request(cluster, spec, client_request_token)
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ResourceInUseException":
                    raise AlreadyExists(f"node group {spec.name}") from error
                raise self._translate(error, "eks:CreateNodegroup", cluster) from error
        return nodegroup_info(raw["nodegroup"])

    def delete_nodegroup(self, cluster: str, name: str) -> NodegroupInfo | None:
        found = self._maybe("delete_nodegroup", cluster, clusterName=cluster, nodegroupName=name)
        return nodegroup_info(found["nodegroup"]) if found else None


def nodegroup_info(raw: Mapping[str, Any]) -> NodegroupInfo:
    template = raw.get("launchTemplate")
    return NodegroupInfo(
        name=raw["nodegroupName"],
        status=raw["status"],
        version=raw.get("version"),
        release_version=raw.get("releaseVersion"),
        ami_type=raw.get("amiType"),
        capacity_type=raw.get("capacityType"),
        instance_types=tuple(raw.get("instanceTypes") or ()),
        scaling={k: int(v) for k, v in (raw.get("scalingConfig") or {}).items()},
        subnets=tuple(raw.get("subnets") or ()),
        node_role=raw.get("nodeRole", ""),
        labels=dict(raw.get("labels") or {}),
        taints=tuple(dict(t) for t in raw.get("taints") or ()),
        tags=dict(raw.get("tags") or {}),
        disk_size=int(raw["diskSize"]) if raw.get("diskSize") not in (None, "") else None,
        remote_access=dict(raw["remoteAccess"]) if raw.get("remoteAccess") else None,
        update_config=dict(raw["updateConfig"]) if raw.get("updateConfig") else None,
        launch_template=LaunchTemplateRef(
            id=template.get("id", ""), version=str(template.get("version", "")), name=template.get("name")
        )
        if template
        else None,
        health_issues=tuple((raw.get("health") or {}).get("issues") or ()),
    )


def create_nodegroup_request(cluster: str, spec: NodegroupSpec, token: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "clusterName": cluster,
        "nodegroupName": spec.name,
        "nodeRole": spec.node_role,
        "subnets": list(spec.subnets),
        "scalingConfig": dict(spec.scaling),
        "labels": dict(spec.labels),
        "taints": [dict(t) for t in spec.taints],
        "tags": dict(spec.tags),
        "clientRequestToken": token,
    }
    optional = {
        "capacityType": spec.capacity_type,
        "instanceTypes": list(spec.instance_types) or None,
        "updateConfig": dict(spec.update_config) if spec.update_config else None,
        "amiType": spec.ami_type,
        "version": spec.version,
        "diskSize": spec.disk_size,
        "remoteAccess": dict(spec.remote_access) if spec.remote_access else None,
        "launchTemplate": {"id": spec.launch_template.id, "version": spec.launch_template.version}
        if spec.launch_template
        else None,
    }
    request.update({k: v for k, v in optional.items() if v is not None})
    return request
