"""The version step around the control plane: plan, add-ons, node versions, verification.

1. :func:`plan_version_update` (PlanVersionUpdate, read-only, before any change): snapshots what the
   cluster runs (control plane, add-ons, node groups), picks every EKS-managed add-on's target from
   DescribeAddonVersions (the default version for the target Kubernetes version; the VPC CNI one minor
   at a time, as its documentation requires), finds core add-ons installed without EKS and says the
   exact change they need, lists the node groups to update in place and checks each can be (a custom
   AMI must be an EKS-optimized one whose family exists for the target), and estimates both
   strategies for this cluster.
2. :func:`update_addons` (UpdateAddons, a loop with a Wait in the ASL): one converging step: every add-on
   is described; one that is not on its target and not updating gets its next hop (UpdateAddon with
   ``resolveConflicts`` PRESERVE by default and a deterministic ``clientRequestToken``, so a retried or
   lost call adopts the same update). Different add-ons update side by side; hops of one add-on in order.
3. :func:`update_nodegroup_versions` (UpdateNodegroupVersions, a loop): one node group at a time, each
   moved to the control plane's version: custom-AMI groups through a new launch template version with
   the target's EKS-optimized AMI (created once, found again on a retry), native groups through
   ``version``. EKS replaces the nodes, honouring the group's maxUnavailable and the PDBs.
4. :func:`verify_upgrade` (VerifyUpgrade, a loop while workloads settle): the cluster as promised: the
   control plane, every node group and every node on the target kubelet with containerd, all Ready;
   every workload at its desired replicas; no unacknowledged blocking dockershim finding; every planned
   add-on on its target. Writes the upgrade report (before and after) to S3.

Pure domain logic over gateways; no boto3 or kubernetes import here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from upgrader.errors import (
    AddonUpdateFailed,
    AddonUpdateTimedOut,
    AwsResourceNotFound,
    EksResourceBusy,
    NodegroupUpdateUnsupported,
    NodegroupVersionUpdateFailed,
    NodegroupVersionUpdateTimedOut,
    PostUpgradeVerificationFailed,
)
from upgrader.gateways.ec2 import Ec2Facts, LaunchTemplateGateway, NodeImageGateway
from upgrader.gateways.eks import (
    ClusterInfo,
    LaunchTemplateRef,
    NodegroupInfo,
    VersionUpdateGateway,
    nodegroup_info,
)
from upgrader.gateways.kubernetes import KubernetesGateway
from upgrader.gateways.reports import ReportStore
from upgrader.gateways.ssm import ParameterGateway
from upgrader.models import ClusterUpgradeRequest, ReportLocation
from upgrader.polling import WaitPlan
from upgrader.version_models import (
    AddonPlan,
    AddonProgress,
    AddonState,
    AddonUpdates,
    ClusterSnapshot,
    NodegroupProgress,
    NodegroupState,
    NodegroupUpdates,
    SelfManagedAddon,
    StrategyEstimate,
    Verification,
    VersionPlan,
    VersionStepState,
)
from upgrader.versions import (
    ADDON_ORDER,
    CONTROL_PLANE_UPDATE,
    CORE_ADDON_OBJECTS,
    DOCKERSHIM_REMOVED,
    NODEGROUP_CREATE,
    NODEGROUP_DELETE,
    NODEGROUP_UPDATE_ROUND_SECONDS,
    ONE_MINOR_AT_A_TIME,
    KubeVersion,
    al2_image_parameter,
    al2_image_version,
    ami_family,
    kubelet_minor,
)

CUSTOM = "CUSTOM"


def _token(request: ClusterUpgradeRequest, *parts: str) -> str:
    seed = "|".join((request.run.execution_id, request.cluster.key, request.to_version, *parts))
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


# -- add-on versions ------------------------------------------------------------------------------------
_ADDON_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-eksbuild\.(\d+))?")


def addon_version_key(version: str) -> tuple[int, ...]:
    """``v1.12.6-eksbuild.2`` -> ``(1, 12, 6, 2)``; also kube-proxy's ``v1.24.17-minimal-eksbuild.2``."""
    match = _ADDON_VERSION.match(version)
    if not match:
        return (0,)
    build = re.search(r"eksbuild\.(\d+)", version)
    return (int(match[1]), int(match[2]), int(match[3]), int(build[1]) if build else 0)


def _compatible(catalog: Iterable[dict[str, Any]], kubernetes_version: str) -> list[tuple[str, bool]]:
    """(addonVersion, is the default) of every version compatible with ``kubernetes_version``."""
    found = []
    for addon in catalog:
        for version in addon.get("addonVersions") or []:
            for compat in version.get("compatibilities") or []:
                if compat.get("clusterVersion") == kubernetes_version:
                    found.append((str(version.get("addonVersion")), bool(compat.get("defaultVersion"))))
                    break
    return sorted(found, key=lambda item: addon_version_key(item[0]))


def plan_addon(
    name: str, installed: str, catalog: Sequence[dict[str, Any]], to_version: str, skip: Sequence[str]
) -> AddonPlan:
    """The target and the hops of one EKS-managed add-on (see the module docstring)."""
    if name in skip:
        return AddonPlan(
            name=name, current=installed, target=installed, action="skipped", reason="skipped by input"
        )
    compatible = _compatible(catalog, to_version)
    if not compatible:
        return AddonPlan(
            name=name,
            current=installed,
            target=installed,
            action="skipped",
            reason=f"no version compatible with Kubernetes {to_version} (readiness rule GN005)",
        )
    default = next((v for v, is_default in compatible if is_default), compatible[-1][0])
    if addon_version_key(installed) >= addon_version_key(default):
        return AddonPlan(
            name=name,
            current=installed,
            target=installed,
            action="current",
            reason="already on the default version for the target, or newer",
        )
    hops = [default]
    if name in ONE_MINOR_AT_A_TIME:
        now, goal = addon_version_key(installed)[:2], addon_version_key(default)[:2]
        hops = []
        for minor in range(now[1] + 1, goal[1]):
            builds = [v for v, _ in compatible if addon_version_key(v)[:2] == (now[0], minor)]
            if builds:
                hops.append(builds[-1])  # the newest build of each minor in between
        hops.append(default)
    return AddonPlan(name=name, current=installed, target=default, hops=hops, action="update")


def ordered_addons(names: Iterable[str]) -> list[str]:
    """EKS-managed add-ons in update order: versions.ADDON_ORDER first, the rest alphabetically."""
    names = list(names)
    first = [n for n in ADDON_ORDER if n in names]
    return first + sorted(n for n in names if n not in ADDON_ORDER)


# -- snapshots --------------------------------------------------------------------------------------------
def _nodegroup_state(raw: dict[str, Any], image_of: Callable[[NodegroupInfo], str | None]) -> NodegroupState:
    info = nodegroup_info(raw)
    template = info.launch_template
    return NodegroupState(
        name=info.name,
        version=info.version or "",
        ami_type=info.ami_type or "",
        release_version=info.release_version,
        launch_template=f"{template.id}:{template.version}" if template else None,
        image_id=image_of(info),
        status=info.status,
        desired=int(info.scaling.get("desiredSize", 0)),
    )


def snapshot(
    eks: VersionUpdateGateway, ec2: LaunchTemplateGateway, cluster: str, *, info: ClusterInfo | None = None
) -> ClusterSnapshot:
    info = info or eks.describe_cluster(cluster)

    def image_of(group: NodegroupInfo) -> str | None:
        if group.ami_type != CUSTOM or group.launch_template is None:
            return None
        data = ec2.launch_template_data(group.launch_template.id, group.launch_template.version)
        return str(data.get("ImageId") or "") or None

    addons = []
    for name in ordered_addons(eks.list_addons(cluster)):
        try:
            raw = eks.describe_addon(cluster, name)
        except AwsResourceNotFound:
            continue
        addons.append(
            AddonState(
                name=name,
                version=str(raw.get("addonVersion", "")),
                status=str(raw.get("status", "")),
                configured=bool(raw.get("configurationValues")),
            )
        )
    groups = []
    for name in sorted(eks.list_nodegroups(cluster)):
        try:
            groups.append(_nodegroup_state(eks.describe_nodegroup(cluster, name), image_of))
        except AwsResourceNotFound:
            continue
    return ClusterSnapshot(control_plane=info.version, addons=addons, nodegroups=groups)


# -- 1. the plan ------------------------------------------------------------------------------------------
def self_managed_addons(
    kube: KubernetesGateway, managed: set[str], eks: VersionUpdateGateway, to_version: str
) -> list[SelfManagedAddon]:
    wanted = {name: spec for name, spec in CORE_ADDON_OBJECTS.items() if name not in managed}
    if not wanted:
        return []
    found: list[SelfManagedAddon] = []
    listed: dict[str, tuple[dict[str, Any], ...]] = {}
    for name, (kind, object_name) in sorted(wanted.items()):
        if kind not in listed:
            listed[kind] = kube.list_objects(kind).objects
        obj = next(
            (
                o
                for o in listed[kind]
                if o.get("metadata", {}).get("namespace") == "kube-system"
                and o.get("metadata", {}).get("name") == object_name
            ),
            None,
        )
        if obj is None:
            continue
        containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
        image = str(containers[0].get("image", ""))
        try:
            compatible = _compatible(eks.describe_addon_versions(name, to_version), to_version)
        except AwsResourceNotFound:
            compatible = []
        recommended = next((v for v, d in compatible if d), compatible[-1][0] if compatible else None)
        change = (
            f"{kind} kube-system/{object_name} is self-managed (no EKS add-on): set its image tag to "
            f"{recommended} (the EKS add-on's default for {to_version}), or hand it to EKS with "
            f"`aws eks create-addon --cluster-name <cluster> --addon-name {name} --addon-version {recommended} "
            "--resolve-conflicts OVERWRITE`"
            if recommended
            else f"{kind} kube-system/{object_name} is self-managed and EKS lists no {name} version for "
            f"{to_version}: update it to a release that supports {to_version}"
        )
        found.append(
            SelfManagedAddon(
                name=name,
                kind=kind,
                namespace="kube-system",
                object_name=object_name,
                image=image,
                recommended_version=recommended,
                change=change,
            )
        )
    return found


def _check_in_place(group: NodegroupState, images: NodeImageGateway, to_version: str, cluster: str) -> None:
    """A custom-AMI group can be moved in place only onto the target's EKS-optimized AMI of its family."""
    if group.ami_type != CUSTOM:
        return
    name = images.image_name(group.image_id) if group.image_id else None
    known = al2_image_version(name or "")
    if known is None:
        raise NodegroupUpdateUnsupported(
            f"node group {group.name} runs custom AMI {group.image_id} ({name or 'not visible'}), not an "
            f"EKS-optimized one: the workflow cannot know its {to_version} image; give the group a "
            f"launch template version with a {to_version} AMI, then run again. Nothing was changed",
            cluster=cluster,
            nodegroup=group.name,
            imageId=group.image_id,
            imageName=name,
        )
    if ami_family(to_version) != "AL2":
        raise NodegroupUpdateUnsupported(
            f"node group {group.name} runs Amazon Linux 2, which EKS does not publish for {to_version}: "
            "move it to AL2023 or Bottlerocket first. Nothing was changed",
            cluster=cluster,
            nodegroup=group.name,
            toVersion=to_version,
        )


def estimate_strategies(
    request: ClusterUpgradeRequest, before: ClusterSnapshot, replaced: Sequence[str], addon_hops: int
) -> list[StrategyEstimate]:
    """Expected duration and cost of both strategies for this cluster (shown in the plan and the report).

    A model, not a measurement: EKS's usual durations (versions.py), a drain of about a minute per node
    batch, a node group update of one round per maxUnavailable nodes (1 assumed), and the Step
    Functions transitions of each loop at its first wait plus two polls."""
    groups = {g.name: g for g in before.nodegroups}
    migrated = [groups[n] for n in replaced if n in groups]
    in_place = [g for g in before.nodegroups if g.name not in replaced]
    nodes_migrated = sum(g.desired for g in migrated)
    nodes_in_place = sum(g.desired for g in in_place)
    drain = 60 * nodes_migrated
    create = (NODEGROUP_CREATE.first_wait_seconds + 60) * len(migrated)
    delete = (NODEGROUP_DELETE.first_wait_seconds + 60) * len(migrated)
    control_plane = CONTROL_PLANE_UPDATE.first_wait_seconds + 60
    addons = 120 * max(1, addon_hops) if addon_hops else 0

    def update_seconds(nodes: int, groups_count: int) -> int:
        return NODEGROUP_UPDATE_ROUND_SECONDS * nodes + 60 * groups_count

    migration_transitions = 24 * len(migrated) + 4 * nodes_migrated
    base_transitions = 30 + 4 * max(1, addon_hops)
    runtime_first = StrategyEstimate(
        strategy="runtime-first",
        steps=[
            f"create {len(migrated)} containerd twin(s) on {request.from_version}, drain and retire the Docker groups",
            f"update the control plane to {request.to_version}",
            "update the add-ons",
            f"update {len(in_place) + len(migrated)} node group(s) to {request.to_version} in place",
            "verify",
        ],
        expected_seconds=create
        + drain
        + delete
        + control_plane
        + addons
        + update_seconds(nodes_in_place + nodes_migrated, len(in_place) + len(migrated)),
        node_rotations=2 if migrated else 1,
        extra_instance_hours=round(nodes_migrated * (create + drain) / 3600, 2),
        state_transitions=base_transitions + migration_transitions + 6 * (len(in_place) + len(migrated)),
        lambda_invocations=(base_transitions + migration_transitions) // 3
        + 3 * (len(in_place) + len(migrated)),
    )
    version_first = StrategyEstimate(
        strategy="version-first",
        steps=[
            f"update the control plane to {request.to_version} (Docker nodes keep running on {request.from_version})",
            f"create {len(migrated)} twin(s) directly on {request.to_version}, drain and retire the Docker groups",
            "update the add-ons",
            f"update {len(in_place)} other node group(s) to {request.to_version} in place",
            "verify",
        ],
        expected_seconds=control_plane
        + create
        + drain
        + delete
        + addons
        + update_seconds(nodes_in_place, len(in_place)),
        node_rotations=1,
        extra_instance_hours=round(nodes_migrated * (create + drain) / 3600, 2),
        state_transitions=base_transitions + migration_transitions + 6 * len(in_place),
        lambda_invocations=(base_transitions + migration_transitions) // 3 + 3 * len(in_place),
    )
    return [runtime_first, version_first]


def plan_version_update(
    request: ClusterUpgradeRequest,
    *,
    eks: VersionUpdateGateway,
    ec2: Ec2Facts,
    kube: Callable[[ClusterInfo], KubernetesGateway],
    replaced: Sequence[str],
) -> VersionPlan:
    """PlanVersionUpdate. ``replaced``: the Docker node groups the migration replaces (not updated in place)."""
    cluster = request.cluster.name
    info = eks.describe_cluster(cluster)
    before = snapshot(eks, ec2, cluster, info=info)
    at_target = info.version == request.to_version
    addons: list[AddonPlan] = []
    for state in before.addons:
        try:
            catalog = eks.describe_addon_versions(state.name, request.to_version)
        except AwsResourceNotFound:
            catalog = []
        addons.append(plan_addon(state.name, state.version, catalog, request.to_version, request.addons.skip))
    self_managed = self_managed_addons(kube(info), {a.name for a in before.addons}, eks, request.to_version)
    to_update: list[str] = []
    for group in before.nodegroups:
        if group.name in replaced or group.status == "DELETING":
            continue
        if group.version != request.to_version:
            _check_in_place(group, ec2, request.to_version, cluster)
        to_update.append(group.name)
    hops = sum(len(a.hops) for a in addons)
    return VersionPlan(
        from_version=request.from_version,
        to_version=request.to_version,
        strategy=request.strategy,
        control_plane_at_target=at_target,
        before=before,
        addons=addons,
        self_managed_addons=self_managed,
        nodegroups_to_update=to_update,
        strategies=estimate_strategies(request, before, replaced, hops),
    )


# -- 2. add-ons -------------------------------------------------------------------------------------------
def _initial_addons(plan: VersionPlan) -> list[AddonProgress]:
    return [
        AddonProgress.model_validate(
            {
                "name": a.name,
                "from": a.current,
                "to": a.target,
                "current": a.current,
                "status": "pending" if a.action == "update" else "skipped",
            }
        )
        for a in plan.addons
    ]


def update_addons(eks: VersionUpdateGateway, state: VersionStepState, plan: WaitPlan) -> AddonUpdates:
    request, cluster = state, state.cluster.name
    previous = state.addon_updates
    hops = {a.name: a.hops for a in state.version_plan.addons}
    progress = list(previous.addons) if previous else _initial_addons(state.version_plan)
    waited = (previous.waited_seconds + previous.next_wait_seconds) if previous else 0
    polls = (previous.polls + 1) if previous else 0
    started_any, running = False, False
    result: list[AddonProgress] = []
    for item in progress:
        if item.status in ("done", "skipped"):
            result.append(item)
            continue
        raw = eks.describe_addon(cluster, item.name)
        current, status = str(raw.get("addonVersion", "")), str(raw.get("status", ""))
        if item.update_id:
            update = eks.describe_resource_update(cluster, item.update_id, addon=item.name)
            if update.status in ("Failed", "Cancelled"):
                raise AddonUpdateFailed(
                    f"EKS reported the update of add-on {item.name} to {update.params.get('AddonVersion')} "
                    f"{update.status}; the control plane is on {request.to_version}, the add-on stays on {current}",
                    cluster=cluster,
                    addon=item.name,
                    updateId=update.id,
                    errors=list(update.errors),
                    issues=(raw.get("health") or {}).get("issues", []),
                )
            if update.status == "InProgress" or status == "UPDATING":
                result.append(item.model_copy(update={"current": current, "status": "updating"}))
                running = True
                continue
        elif status in ("UPDATING", "CREATING", "DELETING"):
            result.append(item.model_copy(update={"current": current, "status": "pending"}))
            running = True
            continue
        if addon_version_key(current) >= addon_version_key(item.to_version):
            result.append(item.model_copy(update={"current": current, "status": "done", "update_id": None}))
            continue
        following = [
            h
            for h in hops.get(item.name, [item.to_version])
            if addon_version_key(h) > addon_version_key(current)
        ]
        hop = following[0] if following else item.to_version
        try:
            update = eks.update_addon(
                cluster,
                item.name,
                hop,
                request.addons.resolve_conflicts,
                _token(request, "addon", item.name, hop),
            )
        except EksResourceBusy:  # someone else's update of this add-on: wait for it, then go on
            result.append(
                item.model_copy(update={"current": current, "status": "pending", "update_id": None})
            )
            running = True
            continue
        result.append(
            item.model_copy(
                update={
                    "current": current,
                    "status": "updating",
                    "update_id": update.id,
                    "hops_applied": item.hops_applied + 1,
                }
            )
        )
        started_any = True
    if not (started_any or running):
        return AddonUpdates(status="Done", addons=result, waited_seconds=waited, polls=polls)
    if waited >= plan.max_wait():
        raise AddonUpdateTimedOut(
            f"add-on updates still running after {waited}s",
            cluster=cluster,
            addons=[a.dump() for a in result if a.status != "done"],
        )
    wait = plan.first_wait() if started_any else plan.next_wait(waited)
    return AddonUpdates(
        status="InProgress", addons=result, next_wait_seconds=wait, waited_seconds=waited, polls=polls
    )


# -- 3. node versions -------------------------------------------------------------------------------------
def _target_template(
    group: NodegroupInfo, ec2: Ec2Facts, ssm: ParameterGateway, request: ClusterUpgradeRequest
) -> LaunchTemplateRef:
    """A version of the group's launch template booting the target's EKS-optimized AMI (found or made)."""
    assert group.launch_template is not None
    template = group.launch_template
    data = ec2.launch_template_data(template.id, template.version)
    known = al2_image_version(ec2.image_name(str(data.get("ImageId", ""))) or "")
    if known is None:
        raise NodegroupUpdateUnsupported(
            f"node group {group.name} runs a custom AMI that is not EKS-optimized; nothing was changed",
            cluster=request.cluster.name,
            nodegroup=group.name,
            imageId=data.get("ImageId"),
        )
    parameter = al2_image_parameter(request.to_version, known[0])
    image = ssm.get_parameter(parameter)
    if not image:
        raise NodegroupUpdateUnsupported(
            f"no EKS-optimized AMI published for Kubernetes {request.to_version} ({parameter})",
            cluster=request.cluster.name,
            nodegroup=group.name,
            parameter=parameter,
        )
    version = ec2.find_template_version(template.id, image) or ec2.create_template_version(
        template.id, template.version, image, _token(request, "launch-template", group.name)
    )
    return LaunchTemplateRef(id=template.id, version=version, name=template.name)


def update_nodegroup_versions(
    eks: VersionUpdateGateway,
    ec2: Ec2Facts,
    ssm: ParameterGateway,
    state: VersionStepState,
    plan: WaitPlan,
) -> NodegroupUpdates:
    request, cluster = state, state.cluster.name
    previous = state.nodegroup_updates or NodegroupUpdates(status="InProgress")
    done = list(previous.done)
    if previous.current is not None:
        current = previous.current
        waited = previous.waited_seconds + previous.next_wait_seconds
        update = eks.describe_resource_update(cluster, current.update_id, nodegroup=current.name)
        if update.status in ("Failed", "Cancelled"):
            raise NodegroupVersionUpdateFailed(
                f"EKS reported the version update of node group {current.name} to {current.to_version} "
                f"{update.status}; the group keeps its {current.from_version} nodes",
                cluster=cluster,
                nodegroup=current.name,
                updateId=update.id,
                errors=list(update.errors),
            )
        if update.status != "Successful":
            if waited >= plan.max_wait():
                raise NodegroupVersionUpdateTimedOut(
                    f"node group {current.name} version update still {update.status} after {waited}s",
                    cluster=cluster,
                    nodegroup=current.name,
                    updateId=update.id,
                )
            return previous.model_copy(
                update={
                    "next_wait_seconds": plan.next_wait(waited),
                    "waited_seconds": waited,
                    "polls": previous.polls + 1,
                }
            )
        done.append(current)
    for name in sorted(eks.list_nodegroups(cluster)):
        try:
            group = nodegroup_info(eks.describe_nodegroup(cluster, name))
        except AwsResourceNotFound:
            continue
        if group.status == "DELETING" or group.version == request.to_version:
            continue
        progress = _start_nodegroup_update(eks, ec2, ssm, request, group)
        if progress is None:  # another update of this group is running: look again after a poll
            # (the time spent waiting for someone else's update counts against the same cap)
            busy = 0 if previous.current is not None else previous.waited_seconds + previous.next_wait_seconds
            if busy >= plan.max_wait():
                raise NodegroupVersionUpdateTimedOut(
                    f"node group {group.name} stayed busy with another update for {busy}s",
                    cluster=cluster,
                    nodegroup=group.name,
                )
            return NodegroupUpdates(
                status="InProgress", done=done, next_wait_seconds=plan.next_wait(busy), waited_seconds=busy
            )
        return NodegroupUpdates(
            status="InProgress", current=progress, done=done, next_wait_seconds=plan.first_wait()
        )
    return NodegroupUpdates(status="Done", done=done)


def _start_nodegroup_update(
    eks: VersionUpdateGateway,
    ec2: Ec2Facts,
    ssm: ParameterGateway,
    request: ClusterUpgradeRequest,
    group: NodegroupInfo,
) -> NodegroupProgress | None:
    token = _token(request, "nodegroup", group.name)
    template: LaunchTemplateRef | None = None
    try:
        if group.ami_type == CUSTOM and group.launch_template is not None:
            template = _target_template(group, ec2, ssm, request)
            update = eks.update_nodegroup_version(
                cluster=request.cluster.name,
                nodegroup=group.name,
                client_request_token=token,
                launch_template=template,
            )
        else:
            update = eks.update_nodegroup_version(
                cluster=request.cluster.name,
                nodegroup=group.name,
                client_request_token=token,
                version=request.to_version,
            )
    except EksResourceBusy:
        return None
    return NodegroupProgress.model_validate(
        {
            "name": group.name,
            "from": group.version or "",
            "to": request.to_version,
            "updateId": update.id,
            "launchTemplateVersion": template.version if template else None,
        }
    )


# -- 4. verification --------------------------------------------------------------------------------------
def upgrade_report_location(bucket: str, request: ClusterUpgradeRequest) -> ReportLocation:
    c = request.cluster
    prefix = f"reports/{request.run.execution_name}/{c.account_id}/{c.region}/{c.name}/upgrade-{request.to_version}"
    return ReportLocation(bucket=bucket, json_key=f"{prefix}.json", markdown_key=f"{prefix}.md")


def _ready(obj: dict[str, Any]) -> bool:
    for condition in obj.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def workload_shortfalls(objects: Iterable[dict[str, Any]]) -> list[str]:
    """Deployments, StatefulSets and DaemonSets short of their desired replicas."""
    short = []
    for obj in objects:
        kind, meta, spec, status = (
            obj.get("kind"),
            obj.get("metadata", {}),
            obj.get("spec", {}),
            obj.get("status", {}),
        )
        where = f"{kind} {meta.get('namespace')}/{meta.get('name')}"
        if kind in ("Deployment", "StatefulSet"):
            desired, ready = int(spec.get("replicas", 1) or 0), int(status.get("readyReplicas", 0) or 0)
        elif kind == "DaemonSet":
            desired, ready = (
                int(status.get("desiredNumberScheduled", 0) or 0),
                int(status.get("numberReady", 0) or 0),
            )
        else:
            continue
        if ready < desired:
            short.append(f"{where}: {ready}/{desired} ready")
    return short


def node_problems(objects: Iterable[dict[str, Any]], to_version: str) -> tuple[int, list[str]]:
    """(nodes seen, problems): every node Ready, on the target kubelet and, from 1.24, on containerd."""
    problems, count = [], 0
    containerd_required = KubeVersion.parse(to_version) >= DOCKERSHIM_REMOVED
    for node in objects:
        if node.get("kind") != "Node":
            continue
        count += 1
        name = node.get("metadata", {}).get("name")
        info = node.get("status", {}).get("nodeInfo", {})
        kubelet, runtime = str(info.get("kubeletVersion", "")), str(info.get("containerRuntimeVersion", ""))
        if not _ready(node):
            problems.append(f"node {name} is not Ready")
        if kubelet_minor(kubelet) != to_version:
            problems.append(f"node {name} runs kubelet {kubelet}, not {to_version}")
        if containerd_required and not runtime.startswith("containerd://"):
            problems.append(f"node {name} runs {runtime or 'an unknown runtime'}, not containerd")
    return count, problems


def verify_upgrade(
    state: VersionStepState,
    *,
    eks: VersionUpdateGateway,
    ec2: Ec2Facts,
    kubernetes: Callable[[ClusterInfo], KubernetesGateway],
    store: ReportStore,
    plan: WaitPlan,
    collect: Callable[..., Any],
    evaluate_dockershim: Callable[[Any, str, str], list[Any]],
) -> Verification:
    """See the module docstring. ``collect`` is the readiness scan's inventory collector and
    ``evaluate_dockershim`` runs the dockershim pack on it (both from readiness_check, injected so this
    module stays free of the scanner's imports)."""
    request, cluster = state, state.cluster.name
    previous = state.verification
    waited = (previous.waited_seconds + previous.next_wait_seconds) if previous else 0
    collected = collect(cluster, request.to_version, eks=eks, ec2=ec2, kubernetes=kubernetes)
    inventory = collected.inventory
    after = snapshot(eks, ec2, cluster)
    hard: list[str] = []  # wrong, and waiting cannot fix it
    settling: list[str] = []  # may still converge (pods starting, nodes joining)
    if after.control_plane != request.to_version:
        hard.append(f"control plane runs {after.control_plane}, not {request.to_version}")
    for group in after.nodegroups:
        if group.version != request.to_version:
            hard.append(f"node group {group.name} is on {group.version}, not {request.to_version}")
        elif group.status != "ACTIVE":
            settling.append(f"node group {group.name} is {group.status}")
    targets = {a.name: a for a in state.version_plan.addons}
    for addon in after.addons:
        planned = targets.get(addon.name)
        if (
            planned is not None
            and planned.action == "update"
            and addon_version_key(addon.version) < addon_version_key(planned.target)
        ):
            hard.append(f"add-on {addon.name} is on {addon.version}, not {planned.target}")
        if addon.status not in ("ACTIVE", "UPDATING"):
            hard.append(f"add-on {addon.name} is {addon.status}")
    nodes, node_issues = node_problems(inventory.objects, request.to_version)
    for issue in node_issues:
        (settling if "not Ready" in issue else hard).append(issue)
    shortfalls = workload_shortfalls(inventory.objects)
    settling += shortfalls
    acknowledged = {a.rule for a in request.acknowledge}
    dockershim = [
        f
        for f in evaluate_dockershim(inventory, request.from_version, request.to_version)
        if f.severity == "blocking" and f.rule not in acknowledged
    ]
    hard += [
        f"dockershim finding {f.rule} on {f.evidence.kind} {f.evidence.name}: {f.message}" for f in dockershim
    ]
    workloads = sum(
        1 for o in inventory.objects if o.get("kind") in ("Deployment", "StatefulSet", "DaemonSet")
    )
    if settling and not hard and waited < plan.max_wait():
        return Verification(
            status="Settling",
            problems=settling[:20],
            next_wait_seconds=plan.next_wait(waited),
            waited_seconds=waited,
            nodes=nodes,
            workloads=workloads,
        )
    location = upgrade_report_location(store.bucket, request)
    problems = hard + settling
    document = upgrade_document(state, after, problems, nodes, workloads, waited)
    store.put(location.json_key, json.dumps(document, indent=2).encode(), "application/json")
    store.put(
        location.markdown_key, render_upgrade_markdown(document).encode(), "text/markdown; charset=utf-8"
    )
    if problems:
        raise PostUpgradeVerificationFailed(
            f"cluster {cluster} is not as the {request.to_version} step promised: {len(problems)} problem(s)",
            cluster=cluster,
            problems=problems[:25],
            problemsTotal=len(problems),
            report=location.dump(),
        )
    return Verification(
        status="Verified", nodes=nodes, workloads=workloads, waited_seconds=waited, report=location
    )


# -- the upgrade report -----------------------------------------------------------------------------------
def upgrade_document(
    state: VersionStepState,
    after: ClusterSnapshot,
    problems: list[str],
    nodes: int,
    workloads: int,
    waited: int,
) -> dict[str, Any]:
    plan = state.version_plan
    before_addons = {a.name: a for a in plan.before.addons}
    after_addons = {a.name: a for a in after.addons}
    planned = {a.name: a for a in plan.addons}
    replacements = {
        g.get("old"): g.get("new")
        for g in (state.nodegroup_plan or {}).get("groups", [])
        if isinstance(g, dict)
    }
    after_groups = {g.name: g for g in after.nodegroups}
    nodegroups = []
    for group in plan.before.nodegroups:
        new = replacements.get(group.name)
        now = after_groups.get(new or group.name)
        nodegroups.append(
            {
                "name": group.name,
                "before": group.dump(),
                "after": now.dump() if now else None,
                "replacedBy": new,
                "how": "replaced by a containerd twin" if new else "updated in place",
            }
        )
    known = {g.name for g in plan.before.nodegroups} | {v for v in replacements.values() if v}
    for group in after.nodegroups:
        if group.name not in known:
            nodegroups.append(
                {"name": group.name, "before": None, "after": group.dump(), "replacedBy": None, "how": "new"}
            )
    return {
        "schema": "eks-fleet-upgrader/upgrade-report@1",
        "cluster": state.cluster.dump(),
        "run": state.run.dump(),
        "fromVersion": state.from_version,
        "toVersion": state.to_version,
        "targetVersion": state.target_version or state.to_version,
        "strategy": state.strategy,
        "outcome": "verified" if not problems else "verification-failed",
        "problems": problems,
        "controlPlane": {"from": plan.before.control_plane, "to": after.control_plane},
        "addons": [
            {
                "name": name,
                "from": before_addons[name].version if name in before_addons else None,
                "to": after_addons[name].version if name in after_addons else None,
                "action": planned[name].action if name in planned else "new",
                "reason": planned[name].reason if name in planned else "",
                "configurationKept": bool(before_addons.get(name) and before_addons[name].configured)
                and bool(after_addons.get(name) and after_addons[name].configured),
            }
            for name in ordered_addons(set(before_addons) | set(after_addons))
        ],
        "selfManagedAddons": [a.dump() for a in plan.self_managed_addons],
        "nodegroups": nodegroups,
        "strategies": [s.dump() for s in plan.strategies],
        "verification": {"nodes": nodes, "workloads": workloads, "settleSeconds": waited},
    }


def render_upgrade_markdown(document: dict[str, Any]) -> str:
    c = document["cluster"]
    lines = [
        f"# Upgrade of {c['name']} ({c['accountId']}, {c['region']}): {document['fromVersion']} -> {document['toVersion']}",
        "",
        f"Outcome: **{document['outcome']}**. Strategy: {document['strategy']}. "
        f"Run: {document['run']['executionName']}.",
        "",
        f"Control plane: {document['controlPlane']['from']} -> {document['controlPlane']['to']}.",
        "",
        "## Add-ons",
        "",
        "| Add-on | Before | After | Action | Configuration kept |",
        "|---|---|---|---|---|",
    ]
    for addon in document["addons"]:
        lines.append(
            f"| {addon['name']} | {addon['from']} | {addon['to']} | {addon['action']} {addon['reason']} | "
            f"{'yes' if addon['configurationKept'] else '-'} |"
        )
    if document["selfManagedAddons"]:
        lines += ["", "Self-managed add-ons (not changed by the workflow):", ""]
        lines += [f"- {a['name']}: {a['change']}" for a in document["selfManagedAddons"]]
    lines += ["", "## Node groups", "", "| Node group | Before | After | How |", "|---|---|---|---|"]
    for group in document["nodegroups"]:
        before, after = group["before"] or {}, group["after"] or {}
        lines.append(
            f"| {group['name']} | {before.get('version', '-')} {before.get('amiType', '')} | "
            f"{(group['replacedBy'] + ': ') if group['replacedBy'] else ''}{after.get('version', '-')} "
            f"{after.get('amiType', '')} | {group['how']} |"
        )
    v = document["verification"]
    lines += [
        "",
        "## Verification",
        "",
        f"{v['nodes']} node(s) and {v['workloads']} workload(s) checked after {v['settleSeconds']} s of settling.",
    ]
    lines += [f"- {p}" for p in document["problems"]] or ["Every check passed."]
    lines += [
        "",
        "## Strategies for this cluster (estimates)",
        "",
        "| Strategy | Expected duration | Node rotations | Transitions |",
        "|---|---|---|---|",
    ]
    for s in document["strategies"]:
        lines.append(
            f"| {s['strategy']} | {s['expectedSeconds'] // 60} min | {s['nodeRotations']} | {s['stateTransitions']} |"
        )
    return "\n".join(lines) + "\n"
