"""EKS managed node groups, EC2 launch templates and the EKS AMI parameters behind small interfaces.

The node group migration (``upgrader.nodegroups``) talks to :class:`NodegroupGateway`,
:class:`LaunchTemplateGateway` and :class:`ParameterGateway`; tests use the fakes in
``tests/fakes_nodegroups.py`` and ``tests/integration/test_nodegroup_contract.py`` proves the fakes
and these boto3 implementations agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import ClientError

from upgrader.errors import ClusterNotFound
from upgrader.gateways.aws import aws_errors, translate_client_error


class AlreadyExists(Exception):
    """A create found the name taken (EKS ResourceInUseException, EC2 ...AlreadyExists).

    Not part of the error tree: the domain decides whether the existing resource is ours to adopt.
    """


@dataclass(frozen=True)
class ClusterAccess:
    """What bootstrapping a node and building a Kubernetes client need from DescribeCluster."""

    name: str
    version: str
    status: str
    endpoint: str
    certificate_authority: str  # base64 PEM, as DescribeCluster returns it
    service_ipv4_cidr: str | None = None


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


@dataclass(frozen=True)
class LaunchTemplateInfo:
    id: str
    name: str
    latest_version: str
    tags: Mapping[str, str] = field(default_factory=dict)


class NodegroupGateway(Protocol):
    def describe_cluster_access(self, name: str) -> ClusterAccess: ...

    def list_nodegroups(self, cluster: str) -> list[str]: ...

    def describe_nodegroup(self, cluster: str, name: str) -> NodegroupInfo | None: ...

    def create_nodegroup(
        self, cluster: str, spec: NodegroupSpec, client_request_token: str
    ) -> NodegroupInfo: ...

    def delete_nodegroup(self, cluster: str, name: str) -> NodegroupInfo | None: ...


class LaunchTemplateGateway(Protocol):
    def launch_template_data(self, template_id: str, version: str) -> dict[str, Any]: ...

    def find_launch_template(self, name: str) -> LaunchTemplateInfo | None: ...

    def create_launch_template(
        self, name: str, data: Mapping[str, Any], tags: Mapping[str, str], client_token: str
    ) -> LaunchTemplateInfo: ...


class ParameterGateway(Protocol):
    def get_parameter(self, name: str) -> str | None: ...


# -- boto3 implementations --------------------------------------------------------------------------
_MISSING = object()


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _call(
    operation: str, method: Any, missing: tuple[str, ...] = (), taken: tuple[str, ...] = (), **kwargs: Any
) -> Any:
    """One AWS call, its errors translated once: ``missing`` codes return :data:`_MISSING`, ``taken``
    codes raise :class:`AlreadyExists`, everything else goes through the error tree."""
    with aws_errors(operation):
        try:
            return method(**kwargs)
        except ClientError as error:
            code = _code(error)
            if code in missing:
                return _MISSING
            if code in taken:
                raise AlreadyExists(operation) from error
            raise translate_client_error(error, operation) from error


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


class BotoNodegroupGateway:
    def __init__(self, client: Any) -> None:
        self._client = client

    def describe_cluster_access(self, name: str) -> ClusterAccess:
        found = _call(
            "eks:DescribeCluster", self._client.describe_cluster, ("ResourceNotFoundException",), name=name
        )
        if found is _MISSING:
            raise ClusterNotFound(f"eks:DescribeCluster: cluster {name} not found", cluster=name)
        raw = found["cluster"]
        return ClusterAccess(
            name=raw["name"],
            version=raw["version"],
            status=raw["status"],
            endpoint=raw.get("endpoint", ""),
            certificate_authority=(raw.get("certificateAuthority") or {}).get("data", ""),
            service_ipv4_cidr=(raw.get("kubernetesNetworkConfig") or {}).get("serviceIpv4Cidr"),
        )

    def list_nodegroups(self, cluster: str) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"clusterName": cluster}
        while True:
            page = _call("eks:ListNodegroups", self._client.list_nodegroups, **kwargs)
            names.extend(page.get("nodegroups", []))
            if not page.get("nextToken"):
                return names
            kwargs["nextToken"] = page["nextToken"]

    def describe_nodegroup(self, cluster: str, name: str) -> NodegroupInfo | None:
        found = _call(
            "eks:DescribeNodegroup",
            self._client.describe_nodegroup,
            ("ResourceNotFoundException",),
            clusterName=cluster,
            nodegroupName=name,
        )
        return None if found is _MISSING else nodegroup_info(found["nodegroup"])

    def create_nodegroup(self, cluster: str, spec: NodegroupSpec, client_request_token: str) -> NodegroupInfo:
        raw = _call(
            "eks:CreateNodegroup",
            self._client.create_nodegroup,
            taken=("ResourceInUseException",),
            **create_nodegroup_request(cluster, spec, client_request_token),
        )
        return nodegroup_info(raw["nodegroup"])

    def delete_nodegroup(self, cluster: str, name: str) -> NodegroupInfo | None:
        found = _call(
            "eks:DeleteNodegroup",
            self._client.delete_nodegroup,
            ("ResourceNotFoundException",),
            clusterName=cluster,
            nodegroupName=name,
        )
        return None if found is _MISSING else nodegroup_info(found["nodegroup"])


# Fields of a launch template version a managed node group's template may not carry.
_NOT_COPIED = frozenset({"IamInstanceProfile"})  # EKS sets the instance profile from the node role


class BotoLaunchTemplateGateway:
    def __init__(self, client: Any) -> None:
        self._client = client

    def launch_template_data(self, template_id: str, version: str) -> dict[str, Any]:
        versions = _call(
            "ec2:DescribeLaunchTemplateVersions",
            self._client.describe_launch_template_versions,
            LaunchTemplateId=template_id,
            Versions=[version],
        )["LaunchTemplateVersions"]
        data = dict(versions[0].get("LaunchTemplateData") or {}) if versions else {}
        return {k: v for k, v in data.items() if k not in _NOT_COPIED}

    def find_launch_template(self, name: str) -> LaunchTemplateInfo | None:
        found = _call(
            "ec2:DescribeLaunchTemplates",
            self._client.describe_launch_templates,
            ("InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound"),
            LaunchTemplateNames=[name],
        )
        if found is _MISSING or not found["LaunchTemplates"]:
            return None
        return _template_info(found["LaunchTemplates"][0])

    def create_launch_template(
        self, name: str, data: Mapping[str, Any], tags: Mapping[str, str], client_token: str
    ) -> LaunchTemplateInfo:
        created = _call(
            "ec2:CreateLaunchTemplate",
            self._client.create_launch_template,
            taken=("InvalidLaunchTemplateName.AlreadyExistsException",),
            LaunchTemplateName=name,
            LaunchTemplateData=dict(data),
            ClientToken=client_token,
            TagSpecifications=[
                {
                    "ResourceType": "launch-template",
                    "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
                }
            ],
        )["LaunchTemplate"]
        info = _template_info(created)
        # CreateLaunchTemplate's answer omits the tags it was given.
        return info if info.tags else LaunchTemplateInfo(info.id, info.name, info.latest_version, dict(tags))


def _template_info(raw: Mapping[str, Any]) -> LaunchTemplateInfo:
    return LaunchTemplateInfo(
        id=raw["LaunchTemplateId"],
        name=raw["LaunchTemplateName"],
        latest_version=str(raw.get("LatestVersionNumber", 1)),
        tags={t["Key"]: t["Value"] for t in raw.get("Tags") or []},
    )


class BotoParameterGateway:
    def __init__(self, client: Any) -> None:
        self._client = client

    def get_parameter(self, name: str) -> str | None:
        found = _call("ssm:GetParameter", self._client.get_parameter, ("ParameterNotFound",), Name=name)
        return None if found is _MISSING else str(found["Parameter"]["Value"])
