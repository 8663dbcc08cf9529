"""Replacement node groups: which groups still run Docker, the containerd twin of each, its lifecycle.

* :func:`plan` reads the cluster (EKS node groups, Kubernetes nodes) and decides what is migrated:
  every managed node group whose nodes run Docker gets a twin; nodes this workflow does not replace
  (self-managed, Karpenter, Fargate, Bottlerocket, Windows) are listed as skipped, and stop the run
  before any change if they run Docker.
* :func:`design_replacement` derives the twin from the old group (pure): same instance types,
  scaling, labels, taints, subnets, capacity type, disk, remote access, tags, update config and the
  old launch template's other settings. Below Kubernetes 1.24 the twin boots the EKS-optimized AL2
  AMI from the public SSM parameter through a launch template whose user data runs
  ``bootstrap.sh --container-runtime containerd`` (keeping the old user data that still applies);
  from 1.24 on it uses the native AMI type, where containerd is the default.
* :func:`create_replacement` / :func:`poll_replacement` / :func:`abandon_replacement`: idempotent
  create (deterministic names and tokens, adopt-if-ours by tags, a named error if a name is taken by
  something that is not ours), readiness (ACTIVE, every node Ready on ``containerd://``), cleanup.
* :func:`retire_old` / :func:`poll_deletion`: delete the old group only once no node of it runs a
  non-DaemonSet pod and its twin is up; wait for the deletion.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import shlex
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from email import message_from_string
from email.charset import Charset
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

from upgrader import drain
from upgrader.errors import (
    NodegroupDeletionFailed,
    NodegroupNameTaken,
    NodeImageNotFound,
    ReplacementNodegroupNotReady,
    UnexpectedAwsError,
    UnmigratableDockerNodes,
)
from upgrader.gateways.aws import AlreadyExists
from upgrader.gateways.cluster_nodes import NODEGROUP_LABEL, ClusterNodesGateway, NodeInfo
from upgrader.gateways.ec2 import LaunchTemplateGateway, LaunchTemplateInfo, decode_user_data
from upgrader.gateways.eks import (
    ClusterInfo,
    LaunchTemplateRef,
    NodegroupInfo,
    NodegroupLifecycle,
    NodegroupSpec,
)
from upgrader.gateways.ssm import ParameterGateway
from upgrader.migration_models import (
    DeletionProgress,
    GroupRequest,
    GroupSummary,
    MigrationPlan,
    PlannedDeletion,
    PlannedGroup,
    ReplacementStatus,
    SkippedNodes,
)
from upgrader.models import ClusterUpgradeRequest
from upgrader.polling import WaitPlan
from upgrader.versions import DOCKERSHIM_REMOVED, NODEGROUP_CREATE, KubeVersion, OperationTiming

MANAGED_BY_TAG = "eks-fleet-upgrader/managed-by"
MANAGED_BY = "eks-fleet-upgrader"
REPLACES_TAG = "eks-fleet-upgrader/replaces"
CLUSTER_TAG = "eks-fleet-upgrader/cluster"
OUR_TAG_PREFIX = "eks-fleet-upgrader/"
REPLACEMENT_SUFFIX = "-containerd"
MAX_NODEGROUP_NAME = 63
MAX_TEMPLATE_NAME = 128
DOCKER = "docker://"
CONTAINERD = "containerd://"
SSM_AMI_PARAMETER = "/aws/service/eks/optimized-ami/{version}/{path}/recommended/image_id"
MIME_BOUNDARY = "==EKSFLEETUPGRADER=="
LISTED_NODES = 10  # node names listed per skipped entry / error (counts are exact)
K8S_EFFECT = {
    "NO_SCHEDULE": "NoSchedule",
    "NO_EXECUTE": "NoExecute",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
}


# -- names, tokens, tags ---------------------------------------------------------------------------------
def _digest(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def replacement_name(old: str) -> str:
    """``<old>-containerd``; long names keep a prefix and a digest of the full name (deterministic)."""
    name = old + REPLACEMENT_SUFFIX
    if len(name) <= MAX_NODEGROUP_NAME:
        return name
    keep = MAX_NODEGROUP_NAME - len(REPLACEMENT_SUFFIX) - 9
    return f"{old[:keep]}-{_digest(old)}{REPLACEMENT_SUFFIX}"


def launch_template_name(cluster: str, replacement: str) -> str:
    name = f"eks-fleet-upgrader-{cluster}-{replacement}"
    if len(name) <= MAX_TEMPLATE_NAME:
        return name
    return f"{name[: MAX_TEMPLATE_NAME - 9]}-{_digest(name)}"


def client_token(request: GroupRequest, what: str) -> str:
    """Deterministic per execution, cluster, replacement and resource: a retried or redriven step
    sends the same token, and EKS/EC2 answer with what the first request created."""
    seed = f"{request.run.execution_id}|{request.cluster.key}|{request.group.new}|{what}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def our_tags(cluster: str, old: str) -> dict[str, str]:
    return {MANAGED_BY_TAG: MANAGED_BY, CLUSTER_TAG: cluster, REPLACES_TAG: old}


def is_ours(tags: Mapping[str, str], cluster: str, old: str | None = None) -> bool:
    """Created by this workflow for this cluster (and, if given, as the replacement of ``old``)."""
    if tags.get(MANAGED_BY_TAG) != MANAGED_BY or tags.get(CLUSTER_TAG) != cluster:
        return False
    return old is None or tags.get(REPLACES_TAG) == old


# -- AMI families -------------------------------------------------------------------------------------
_ARM_FAMILY = re.compile(r"^(a1|[a-z]+\d+g[a-z]*)\.")  # Graviton: m6g, c7gn, t4g, r6gd, a1
_GPU_FAMILY = re.compile(r"^(p\d|g\d|inf\d|trn\d|dl\d)")


def ami_family(group: NodegroupInfo) -> str:
    """``al2`` (and its arch/GPU flavours), ``al2023``, ``bottlerocket``, ``windows`` or ``custom``."""
    ami_type = group.ami_type or "AL2_x86_64"
    if ami_type.startswith("BOTTLEROCKET"):
        return "bottlerocket"
    if ami_type.startswith("WINDOWS"):
        return "windows"
    if ami_type.startswith("AL2023"):
        return "al2023"
    if ami_type == "CUSTOM":
        return "custom"
    return "al2"


def al2_flavour(group: NodegroupInfo) -> tuple[str, str]:
    """(SSM path segment, native amiType) of the EKS-optimized AL2 AMI matching the group's nodes."""
    ami_type = group.ami_type or "AL2_x86_64"
    instance_type = (group.instance_types or ("",))[0]
    arm = ami_type == "AL2_ARM_64" or (ami_type == "CUSTOM" and bool(_ARM_FAMILY.match(instance_type)))
    gpu = ami_type == "AL2_x86_64_GPU" or (ami_type == "CUSTOM" and bool(_GPU_FAMILY.match(instance_type)))
    if arm:
        return "amazon-linux-2-arm64", "AL2_ARM_64"
    if gpu:
        return "amazon-linux-2-gpu", "AL2_x86_64_GPU"
    return "amazon-linux-2", "AL2_x86_64"


def dockershim_era(version: str) -> bool:
    return KubeVersion.parse(version) < DOCKERSHIM_REMOVED


# -- plan ------------------------------------------------------------------------------------------------
def _management(node: NodeInfo) -> tuple[str, str]:
    labels = node.labels
    if "karpenter.sh/nodepool" in labels or "karpenter.sh/provisioner-name" in labels:
        return "karpenter", labels.get("karpenter.sh/nodepool") or labels.get(
            "karpenter.sh/provisioner-name", ""
        )
    if labels.get("eks.amazonaws.com/compute-type") == "fargate":
        return "fargate", node.name
    return "self-managed", labels.get("alpha.eksctl.io/nodegroup-name", "") or "(no node group label)"


def _runtimes(nodes: list[NodeInfo]) -> str:
    return ", ".join(sorted({n.runtime for n in nodes if n.runtime}))


def plan(eks: NodegroupLifecycle, kube: ClusterNodesGateway, request: ClusterUpgradeRequest) -> MigrationPlan:
    """What this run migrates. Makes no change; raises :class:`UnmigratableDockerNodes` when nodes this
    workflow does not replace run Docker (nothing could make them safe for the next version)."""
    cluster = request.cluster.name
    version = eks.describe_cluster(cluster).version
    groups = {name: eks.find_nodegroup(cluster, name) for name in eks.list_nodegroups(cluster)}
    managed = {name: group for name, group in groups.items() if group is not None}
    replaced_by = {
        g.tags[REPLACES_TAG]: g.name
        for g in managed.values()
        if is_ours(g.tags, cluster) and REPLACES_TAG in g.tags
    }
    by_group: dict[str, list[NodeInfo]] = defaultdict(list)
    unmanaged: dict[tuple[str, str], list[NodeInfo]] = defaultdict(list)
    for node in kube.list_nodes():
        if node.nodegroup:
            by_group[node.nodegroup].append(node)
        else:
            unmanaged[_management(node)].append(node)

    planned: list[PlannedGroup] = []
    skipped: list[SkippedNodes] = []
    blocking: list[dict[str, Any]] = []
    for name, group in sorted(managed.items()):
        if is_ours(group.tags, cluster) and REPLACES_TAG in group.tags:
            continue  # a replacement this workflow created
        nodes = by_group.pop(name, [])
        family = ami_family(group)
        docker = any(n.runtime.startswith(DOCKER) for n in nodes)
        if not nodes and family == "al2":
            docker = dockershim_era(group.version or version)
        names = [n.name for n in nodes][:LISTED_NODES]
        if not nodes and family == "custom":
            skipped.append(
                SkippedNodes(
                    name=name,
                    management="managed",
                    reason="custom AMI node group with no nodes: its runtime cannot be read, so it is "
                    "not replaced",
                )
            )
            continue
        if not docker:
            if family in ("bottlerocket", "windows", "custom", "al2023"):
                skipped.append(
                    SkippedNodes(
                        name=name,
                        management="managed",
                        reason=f"{family} node group already on {_runtimes(nodes) or 'containerd'}: not replaced",
                        runtime=_runtimes(nodes),
                        nodes=names,
                        severity="info",
                    )
                )
            continue
        if family in ("bottlerocket", "windows"):
            blocking.append(
                {"nodegroup": name, "management": "managed", "reason": f"{family} nodes run Docker"}
            )
            continue
        if group.status == "DELETING" and name in replaced_by:
            planned.append(
                PlannedGroup(
                    old=name,
                    new=replaced_by[name],
                    phase="retire",
                    nodes=len(nodes),
                    runtime=_runtimes(nodes),
                )
            )
            continue
        if group.status not in ("ACTIVE", "DEGRADED"):
            blocking.append(
                {
                    "nodegroup": name,
                    "management": "managed",
                    "reason": f"node group is {group.status}",
                    "nodes": names,
                }
            )
            continue
        planned.append(
            PlannedGroup(old=name, new=replacement_name(name), nodes=len(nodes), runtime=_runtimes(nodes))
        )
    for stale, nodes in sorted(by_group.items()):
        # Nodes labelled with a managed node group EKS no longer lists (being deleted, or a label copy).
        unmanaged[("self-managed", stale)].extend(nodes)
    for (management, label), nodes in sorted(unmanaged.items()):
        names = [n.name for n in nodes][:LISTED_NODES]
        if any(n.runtime.startswith(DOCKER) for n in nodes):
            blocking.append(
                {
                    "nodegroup": label,
                    "management": management,
                    "reason": f"{len(nodes)} {management} node(s) run Docker",
                    "nodes": names,
                }
            )
            continue
        skipped.append(
            SkippedNodes(
                name=label,
                management=management,  # type: ignore[arg-type]
                reason=f"{management} nodes are not managed node groups: not replaced by this workflow",
                runtime=_runtimes(nodes),
                nodes=names,
                severity="info" if management == "fargate" else "warning",
            )
        )
    if blocking and request.mode == "plan":
        return MigrationPlan(groups=planned, skipped=skipped, blocking=blocking)
    if blocking:
        raise UnmigratableDockerNodes(
            "nodes this workflow does not replace run Docker: "
            + "; ".join(f"{b['nodegroup']} ({b['management']}: {b['reason']})" for b in blocking)
            + ". Replace them first; nothing was changed",
            cluster=cluster,
            blocking=blocking,
        )
    deletions = [
        PlannedDeletion(kind="Nodegroup", name=name)
        for name in sorted({g.old for g in planned} | {g.new for g in planned})
    ]
    return MigrationPlan(groups=planned, skipped=skipped, planned_deletions=deletions)


# -- the twin's design (pure) -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplacementDesign:
    spec: NodegroupSpec
    template_data: dict[str, Any] | None  # our launch template's data, when the twin needs one
    image_id: str | None
    warnings: tuple[str, ...] = ()


_BOOTSTRAP = re.compile(r"/etc/eks/bootstrap\.sh\b")
_RUNTIME_FLAG = re.compile(r"--container-runtime(?:\s+|=)[\"']?[A-Za-z]+[\"']?")
_DOCKER_FLAGS = re.compile(
    r"\s--enable-docker-bridge(?:\s+|=)[\"']?\w+[\"']?"
    r"|\s--docker-config-json(?:\s+|=)(?:'[^']*'|\"[^\"]*\"|\S+)"
)
_DOCKER_SETTINGS = re.compile(r"/etc/docker/daemon\.json|\bdockerd?\b")


def _parts(text: str) -> list[tuple[str, str]]:
    """(content type, body) of each part of user data: MIME multipart, or one plain document."""
    if not text.strip():
        return []
    if "MIME-Version" in text.split("\n\n", 1)[0] or text.lstrip().startswith("Content-Type: multipart"):
        message = message_from_string(text)
        if message.is_multipart():
            parts = []
            for part in message.walk():
                if part.is_multipart():
                    continue
                payload = part.get_payload(decode=True)
                body = payload.decode("utf-8") if isinstance(payload, bytes) else str(part.get_payload())
                parts.append((part.get_content_type(), body))
            return parts
    kind = "text/cloud-config" if text.lstrip().startswith("#cloud-config") else "text/x-shellscript"
    return [(kind, text)]


def _rewrite_bootstrap(line: str, old: str, replacement: str) -> str:
    line = _DOCKER_FLAGS.sub("", line)
    line = line.replace(f"{NODEGROUP_LABEL}={old}", f"{NODEGROUP_LABEL}={replacement}")
    if _RUNTIME_FLAG.search(line):
        return _RUNTIME_FLAG.sub("--container-runtime containerd", line)
    match = _BOOTSTRAP.search(line)
    assert match is not None
    # Insert right after the cluster name argument: ``bootstrap.sh <cluster> --container-runtime containerd``.
    rest = line[match.end() :]
    name = re.match(r"\s+(\S+)", rest)
    cut = match.end() + (name.end() if name else 0)
    return line[:cut] + " --container-runtime containerd" + line[cut:]


def bootstrap_command(cluster: ClusterInfo, replacement: str, image_id: str, group: NodegroupInfo) -> str:
    labels = {
        NODEGROUP_LABEL: replacement,
        "eks.amazonaws.com/nodegroup-image": image_id,
        "eks.amazonaws.com/capacityType": group.capacity_type or "ON_DEMAND",
        **dict(group.labels),
    }
    kubelet = ["--node-labels=" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))]
    if group.taints:
        taints = ",".join(
            f"{t['key']}={t.get('value', '')}:{K8S_EFFECT.get(t.get('effect', ''), t.get('effect', ''))}"
            for t in group.taints
        )
        kubelet.append(f"--register-with-taints={taints}")
    args = ["/etc/eks/bootstrap.sh", cluster.name, "--container-runtime", "containerd"]
    # Given, these save each node a DescribeCluster call (bootstrap.sh looks them up otherwise).
    if cluster.certificate_authority and cluster.endpoint:
        args += ["--b64-cluster-ca", cluster.certificate_authority, "--apiserver-endpoint", cluster.endpoint]
    if cluster.service_ipv4_cidr:
        args += ["--dns-cluster-ip", str(ipaddress.ip_network(cluster.service_ipv4_cidr, strict=False)[10])]
    args += ["--kubelet-extra-args", " ".join(kubelet)]
    return " ".join(shlex.quote(a) for a in args)


def _render(parts: list[tuple[str, str]], *, mime: bool = False) -> str:
    """One shell script as it is, anything else (or ``mime``) as MIME multipart, which EKS requires
    for launch template user data on its own AMIs (it merges its bootstrap part in)."""
    if not mime and len(parts) == 1 and parts[0][0] == "text/x-shellscript":
        return parts[0][1]
    message = MIMEMultipart(boundary=MIME_BOUNDARY)
    for kind, body in parts:
        # 7/8-bit bodies, never base64: the parts stay readable (and greppable) in the template.
        charset = Charset("us-ascii" if body.isascii() else "utf-8")
        charset.body_encoding = None
        message.attach(MIMEText(body, kind.split("/", 1)[1], charset))  # type: ignore[arg-type]
    return message.as_string()


def containerd_user_data(
    old_user_data: str | None,
    *,
    cluster: ClusterInfo,
    old: NodegroupInfo,
    replacement: str,
    image_id: str | None,
    bootstrap: bool,
) -> tuple[str, list[str]]:
    """The twin's user data: the old parts that still apply, and a bootstrap for containerd.

    ``bootstrap``: the twin runs a custom AMI (EKS adds no bootstrap call), so the user data must end
    in one; an old bootstrap call is rewritten (runtime flag, Docker-only flags, node group label),
    otherwise one is appended. Without ``bootstrap`` (native AMI type) old bootstrap calls are dropped:
    EKS writes its own, and containerd is its default.
    """
    warnings: list[str] = []
    parts: list[tuple[str, str]] = []
    bootstrapped = False
    for kind, body in _parts(decode_user_data(old_user_data or "")):
        if kind != "text/x-shellscript":
            parts.append((kind, body))
            continue
        lines = []
        for line in body.splitlines():
            stripped = line.strip()
            if _BOOTSTRAP.search(line) and not stripped.startswith("#"):
                if not bootstrap:
                    warnings.append(
                        f"dropped the old bootstrap call (EKS bootstraps {replacement}): {stripped}"
                    )
                    continue
                if _DOCKER_FLAGS.search(line):
                    warnings.append(
                        "removed Docker-only bootstrap flags (--enable-docker-bridge, --docker-config-json): "
                        "containerd ignores them; move registry settings to containerd's config"
                    )
                line = _rewrite_bootstrap(line, old.name, replacement)
                bootstrapped = True
            elif _DOCKER_SETTINGS.search(line) and not stripped.startswith("#"):
                warnings.append(
                    f"kept a line that configures Docker, which containerd nodes do not run: {stripped}"
                )
            lines.append(line)
        text = "\n".join(lines) + ("\n" if body.endswith("\n") else "")
        if text.strip() and text.strip() != "#!/bin/bash":
            parts.append((kind, text))
    if bootstrap and not bootstrapped:
        assert image_id is not None
        script = "#!/bin/bash\nset -ex\n" + bootstrap_command(cluster, replacement, image_id, old) + "\n"
        parts.append(("text/x-shellscript", script))
    return (_render(parts, mime=not bootstrap) if parts else ""), warnings


def design_replacement(
    old: NodegroupInfo,
    cluster: ClusterInfo,
    replacement: str,
    *,
    old_template_data: Mapping[str, Any] | None,
    image_id: str | None,
) -> ReplacementDesign:
    """The twin of ``old`` (see the module docstring). ``image_id``: the EKS-optimized AL2 AMI for the
    cluster's version, needed (and only used) below 1.24."""
    warnings: list[str] = []
    tags = {k: v for k, v in old.tags.items() if not k.startswith(("aws:", OUR_TAG_PREFIX))}
    tags.update(our_tags(cluster.name, old.name))
    spec = NodegroupSpec(
        name=replacement,
        node_role=old.node_role,
        subnets=old.subnets,
        scaling=dict(old.scaling),
        capacity_type=old.capacity_type,
        instance_types=old.instance_types,
        labels=dict(old.labels),
        taints=old.taints,
        tags=tags,
        update_config=dict(old.update_config) if old.update_config else None,
    )
    data: dict[str, Any] | None = None
    if old_template_data is not None:
        data = {k: v for k, v in old_template_data.items() if k not in ("ImageId", "UserData")}
    old_user_data = (old_template_data or {}).get("UserData")
    if dockershim_era(cluster.version):
        if image_id is None:
            raise ValueError("a custom AMI twin needs the EKS-optimized AMI id")
        data = data if data is not None else {}
        if old.launch_template is None:
            # EKS puts diskSize and remoteAccess in the template it makes; ours must carry them.
            data["BlockDeviceMappings"] = [
                {
                    "DeviceName": "/dev/xvda",
                    "Ebs": {
                        "VolumeSize": old.disk_size or 20,
                        "VolumeType": "gp2",
                        "DeleteOnTermination": True,
                    },
                }
            ]
            if old.remote_access and old.remote_access.get("ec2SshKey"):
                data["KeyName"] = old.remote_access["ec2SshKey"]
            if old.remote_access and old.remote_access.get("sourceSecurityGroups"):
                warnings.append(
                    "remoteAccess.sourceSecurityGroups cannot be given with a launch template: allow SSH "
                    "to the new nodes from "
                    + ", ".join(old.remote_access["sourceSecurityGroups"])
                    + " in their security group"
                )
        user_data, notes = containerd_user_data(
            old_user_data,
            cluster=cluster,
            old=old,
            replacement=replacement,
            image_id=image_id,
            bootstrap=True,
        )
        warnings += notes
        data["ImageId"] = image_id
        data["UserData"] = base64.b64encode(user_data.encode()).decode()
        if "InstanceType" in data:
            spec = replace(spec, instance_types=())
        return ReplacementDesign(spec=spec, template_data=data, image_id=image_id, warnings=tuple(warnings))
    # 1.24 and later: the native AMI type runs containerd.
    ami_type = old.ami_type if old.ami_type not in (None, "CUSTOM") else al2_flavour(old)[1]
    spec = replace(spec, ami_type=ami_type, version=cluster.version)
    if data is None:
        spec = replace(
            spec,
            disk_size=old.disk_size,
            remote_access=dict(old.remote_access) if old.remote_access else None,
        )
        return ReplacementDesign(spec=spec, template_data=None, image_id=None, warnings=tuple(warnings))
    user_data, notes = containerd_user_data(
        old_user_data, cluster=cluster, old=old, replacement=replacement, image_id=None, bootstrap=False
    )
    warnings += notes
    if user_data:
        data["UserData"] = base64.b64encode(user_data.encode()).decode()
    if "InstanceType" in data:
        spec = replace(spec, instance_types=())
    return ReplacementDesign(spec=spec, template_data=data, image_id=None, warnings=tuple(warnings))


# -- lifecycle ------------------------------------------------------------------------------------------
def creation_timing(request: GroupRequest) -> OperationTiming:
    """The expected creation time first, then short polls, capped by replacementReadyTimeoutSeconds."""
    return OperationTiming(
        first_wait_seconds=NODEGROUP_CREATE.first_wait_seconds,
        poll_seconds=NODEGROUP_CREATE.poll_seconds,
        max_wait_seconds=request.options.replacement_ready_timeout_seconds,
    )


def summary(request: GroupRequest, status: str, **counters: int) -> GroupSummary:
    progress = request.drain
    values: dict[str, Any] = {
        "old": request.group.old,
        "new": request.group.new,
        "status": status,
    }
    if progress is not None:
        values |= {
            "nodes_total": progress.nodes_total,
            "nodes_drained": progress.nodes_drained,
            "pods_evicted": progress.pods_evicted,
            "pods_forced": progress.pods_forced,
            "pdb_blocked_seconds": progress.pdb_blocked_seconds,
        }
    return GroupSummary.model_validate(values | counters)


def _taken(what: str, name: str, cluster: str, tags: Mapping[str, str]) -> NodegroupNameTaken:
    return NodegroupNameTaken(
        f"{what} {name} exists and was not created by this workflow for this migration: it is left "
        "alone; rename or remove it, then run again",
        cluster=cluster,
        name=name,
        kind=what,
        tags=dict(tags),
    )


def _ensure_template(
    ec2: LaunchTemplateGateway, request: GroupRequest, data: Mapping[str, Any]
) -> LaunchTemplateInfo:
    cluster, old = request.cluster.name, request.group.old
    name = launch_template_name(cluster, request.group.new)
    found = ec2.find_launch_template(name)
    if found is None:
        try:
            return ec2.create_launch_template(
                name, data, our_tags(cluster, old), client_token(request, "launch-template")
            )
        except AlreadyExists:
            found = ec2.find_launch_template(name)
            if found is None:
                raise
    if not is_ours(found.tags, cluster, old):
        raise _taken("launch template", name, cluster, found.tags)
    return found


def _image_id(ssm: ParameterGateway, old: NodegroupInfo, version: str) -> str:
    path = al2_flavour(old)[0]
    parameter = SSM_AMI_PARAMETER.format(version=version, path=path)
    image = ssm.get_parameter(parameter)
    if not image:
        raise NodeImageNotFound(
            f"no EKS-optimized AMI published for Kubernetes {version} ({parameter})",
            parameter=parameter,
        )
    return image


def _status(
    request: GroupRequest, group: NodegroupInfo, *, adopted: bool, plan: WaitPlan, warnings: list[str]
) -> ReplacementStatus:
    template = group.launch_template
    return ReplacementStatus(
        nodegroup=group.name,
        status="Creating",
        adopted=adopted,
        ami_type=group.ami_type,
        launch_template_id=template.id if template else None,
        launch_template_version=template.version if template else None,
        desired_nodes=int(group.scaling.get("desiredSize", 0)),
        warnings=warnings,
        next_wait_seconds=plan.first_wait(),
        summary=summary(request, "creating"),
    )


def create_replacement(
    eks: NodegroupLifecycle,
    ec2: LaunchTemplateGateway,
    ssm: ParameterGateway,
    request: GroupRequest,
    plan: WaitPlan,
) -> ReplacementStatus:
    """Create the twin, or adopt it if this workflow already did (lost response, retry, re-run)."""
    cluster, old_name, name = request.cluster.name, request.group.old, request.group.new
    existing = eks.find_nodegroup(cluster, name)
    if existing is not None:
        if not is_ours(existing.tags, cluster, old_name):
            raise _taken("node group", name, cluster, existing.tags)
        return _status(request, existing, adopted=True, plan=plan, warnings=[])
    old = eks.find_nodegroup(cluster, old_name)
    if old is None:
        raise UnexpectedAwsError(
            f"node group {old_name} disappeared before its replacement was created",
            cluster=cluster,
            nodegroup=old_name,
        )
    access = eks.describe_cluster(cluster)
    old_data = (
        ec2.launch_template_data(old.launch_template.id, old.launch_template.version)
        if old.launch_template
        else None
    )
    image = _image_id(ssm, old, access.version) if dockershim_era(access.version) else None
    design = design_replacement(old, access, name, old_template_data=old_data, image_id=image)
    spec = design.spec
    if design.template_data is not None:
        template = _ensure_template(ec2, request, design.template_data)
        spec = replace(
            spec, launch_template=LaunchTemplateRef(id=template.id, version="1", name=template.name)
        )
    try:
        created = eks.create_nodegroup(cluster, spec, client_token(request, "nodegroup"))
    except AlreadyExists:
        found = eks.find_nodegroup(cluster, name)
        if found is None or not is_ours(found.tags, cluster, old_name):
            raise _taken("node group", name, cluster, found.tags if found else {}) from None
        created = found
    status = _status(request, created, adopted=False, plan=plan, warnings=list(design.warnings))
    return status.model_copy(update={"image_id": design.image_id})


def poll_replacement(
    eks: NodegroupLifecycle, kube: ClusterNodesGateway, request: GroupRequest, plan: WaitPlan
) -> ReplacementStatus:
    """Ready when the twin is ACTIVE (or DEGRADED: the capacity check decides) and every node that
    joined is Ready on containerd. Fails (for the abandon flow) on CREATE_FAILED, on a node that runs
    anything but containerd, and past the deadline."""
    previous = request.replacement
    assert previous is not None
    cluster, name = request.cluster.name, request.group.new
    waited = previous.waited_seconds + previous.next_wait_seconds
    polls = previous.polls + 1
    group = eks.find_nodegroup(cluster, name)
    if group is None or group.status in ("CREATE_FAILED", "DELETING", "DELETE_FAILED"):
        raise ReplacementNodegroupNotReady(
            f"replacement node group {name} is {group.status if group else 'gone'}; the old group "
            f"{request.group.old} was not touched",
            cluster=cluster,
            nodegroup=name,
            status=group.status if group else None,
            healthIssues=list(group.health_issues) if group else [],
        )
    nodes = kube.list_nodes(f"{NODEGROUP_LABEL}={name}")
    wrong = [n.name for n in nodes if n.runtime and not n.runtime.startswith(CONTAINERD)]
    if wrong:
        raise ReplacementNodegroupNotReady(
            f"replacement node group {name} runs {_runtimes(nodes)}, not containerd",
            cluster=cluster,
            nodegroup=name,
            nodes=wrong[:LISTED_NODES],
        )
    ready = [n for n in nodes if n.ready and n.runtime.startswith(CONTAINERD)]
    desired = int(group.scaling.get("desiredSize", 0))
    joined_ready = len(ready) == len(nodes)
    up = (group.status == "ACTIVE" and len(ready) >= desired) or (group.status == "DEGRADED" and joined_ready)
    update: dict[str, Any] = {
        "desired_nodes": desired,
        "ready_nodes": len(ready),
        "waited_seconds": waited,
        "polls": polls,
    }
    if up:
        warnings = list(previous.warnings)
        if group.status == "DEGRADED":
            warnings.append(
                "replacement is DEGRADED: " + "; ".join(str(i.get("message", i)) for i in group.health_issues)
            )
        return previous.model_copy(
            update=update
            | {
                "status": "Ready",
                "next_wait_seconds": 0,
                "warnings": warnings,
                "summary": summary(request, "ready"),
            }
        )
    if waited >= plan.max_wait():
        raise ReplacementNodegroupNotReady(
            f"replacement node group {name} not ready after {waited}s ({group.status}, {len(ready)} of "
            f"{desired} nodes Ready on containerd); the old group {request.group.old} was not touched",
            cluster=cluster,
            nodegroup=name,
            status=group.status,
            readyNodes=len(ready),
            desiredNodes=desired,
            waitedSeconds=waited,
            notReady=[n.name for n in nodes if not n.ready][:LISTED_NODES],
        )
    return previous.model_copy(
        update=update | {"status": "Creating", "next_wait_seconds": plan.next_wait(waited)}
    )


def abandon_replacement(eks: NodegroupLifecycle, request: GroupRequest, plan: WaitPlan) -> DeletionProgress:
    """Delete a twin that never became ready (only if it is ours); the old group stays as it is."""
    cluster, name = request.cluster.name, request.group.new
    group = eks.find_nodegroup(cluster, name)
    if group is not None and not is_ours(group.tags, cluster, request.group.old):
        raise _taken("node group", name, cluster, group.tags)
    deleted = eks.delete_nodegroup(cluster, name) if group is not None else None
    status = "Deleting" if deleted is not None else "Deleted"
    return DeletionProgress(
        nodegroup=name,
        status=status,
        next_wait_seconds=plan.first_wait() if status == "Deleting" else 0,
        summary=summary(request, "abandoned"),
    )


def retire_old(
    eks: NodegroupLifecycle, kube: ClusterNodesGateway, request: GroupRequest, plan: WaitPlan
) -> DeletionProgress:
    """Delete the old group, only when none of its nodes runs a non-DaemonSet pod and its twin is up.

    Pods still there (terminating, or scheduled since) send the workflow back to the drain
    (``NotEmpty``). aws-auth is never read or written: the twin uses the same node role, so its
    mapping stays."""
    cluster, old_name, name = request.cluster.name, request.group.old, request.group.new
    old = eks.find_nodegroup(cluster, old_name)
    if old is None:
        return DeletionProgress(nodegroup=old_name, status="Deleted", summary=summary(request, "retired"))
    if old.status != "DELETING":
        nodes = {n.name for n in kube.list_nodes(f"{NODEGROUP_LABEL}={old_name}")}
        remaining = [p for p in kube.list_pods() if p.node in nodes and drain.blocks_retirement(p)]
        if remaining:
            return DeletionProgress(
                nodegroup=old_name,
                status="NotEmpty",
                next_wait_seconds=plan.timing.poll_seconds,
                summary=summary(request, "draining"),
            )
        twin = eks.find_nodegroup(cluster, name)
        if (
            twin is None
            or not is_ours(twin.tags, cluster, old_name)
            or twin.status not in ("ACTIVE", "DEGRADED")
        ):
            raise ReplacementNodegroupNotReady(
                f"replacement node group {name} is {twin.status if twin else 'gone'}: {old_name} is kept",
                cluster=cluster,
                nodegroup=name,
            )
        if eks.delete_nodegroup(cluster, old_name) is None:
            return DeletionProgress(nodegroup=old_name, status="Deleted", summary=summary(request, "retired"))
    return DeletionProgress(
        nodegroup=old_name,
        status="Deleting",
        next_wait_seconds=plan.first_wait(),
        summary=summary(request, "retiring"),
    )


def poll_deletion(eks: NodegroupLifecycle, request: GroupRequest, plan: WaitPlan) -> DeletionProgress:
    previous = request.deletion
    assert previous is not None
    cluster = request.cluster.name
    waited = previous.waited_seconds + previous.next_wait_seconds
    polls = previous.polls + 1
    retiring = previous.nodegroup == request.group.old
    group = eks.find_nodegroup(cluster, previous.nodegroup)
    if group is None:
        return previous.model_copy(
            update={
                "status": "Deleted",
                "next_wait_seconds": 0,
                "waited_seconds": waited,
                "polls": polls,
                "summary": summary(request, "retired" if retiring else "abandoned"),
            }
        )
    if group.status == "DELETE_FAILED" or waited >= plan.max_wait():
        raise NodegroupDeletionFailed(
            f"node group {previous.nodegroup} is {group.status} after {waited}s",
            cluster=cluster,
            nodegroup=previous.nodegroup,
            status=group.status,
            healthIssues=list(group.health_issues),
            waitedSeconds=waited,
        )
    return previous.model_copy(
        update={
            "status": "Deleting",
            "next_wait_seconds": plan.next_wait(waited),
            "waited_seconds": waited,
            "polls": polls,
        }
    )
