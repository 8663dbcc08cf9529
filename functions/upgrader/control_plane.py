"""Control plane version update: preflight, start (or adopt), poll. Pure domain logic over EksGateway."""

from __future__ import annotations

import hashlib

from upgrader.errors import (
    AwsResourceNotFound,
    ClusterNotActive,
    ClusterVersionMismatch,
    ControlPlaneUpdateFailed,
    ControlPlaneUpdateTimedOut,
    NodegroupVersionSkew,
    UpdateAlreadyInProgress,
)
from upgrader.gateways.eks import EksGateway, UpdateInfo
from upgrader.models import ClusterUpgradeRequest, ControlPlaneUpdate, PollRequest, PreflightResult
from upgrader.polling import WaitPlan
from upgrader.versions import validate_step

VERSION_UPDATE = "VersionUpdate"


def client_request_token(request: ClusterUpgradeRequest) -> str:
    """Deterministic per execution, cluster and target: a retried or redriven start is idempotent."""
    seed = f"{request.run.execution_id}|{request.cluster.key}|{request.to_version}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def _in_progress_updates(eks: EksGateway, cluster: str) -> list[UpdateInfo]:
    # Newest first: EKS lists updates oldest first, and the running one is the last started.
    found = []
    for update_id in reversed(eks.list_updates(cluster)):
        update = eks.describe_update(cluster, update_id)
        if update.status == "InProgress":
            found.append(update)
    return found


def _is_version_update_to(update: UpdateInfo, version: str) -> bool:
    return update.type == VERSION_UPDATE and update.params.get("Version") == version


def preflight(eks: EksGateway, request: ClusterUpgradeRequest) -> PreflightResult:
    validate_step(request.from_version, request.to_version)
    name = request.cluster.name
    cluster = eks.describe_cluster(name)

    adoptable: str | None = None
    if cluster.status == "UPDATING":
        running = _in_progress_updates(eks, name)
        ours = [u for u in running if _is_version_update_to(u, request.to_version)]
        if not ours:
            raise UpdateAlreadyInProgress(
                f"cluster {name} is UPDATING with an update this workflow did not ask for",
                cluster=name,
                updates=[{"id": u.id, "type": u.type, "params": u.params} for u in running],
            )
        adoptable = ours[0].id
    elif cluster.status != "ACTIVE":
        raise ClusterNotActive(f"cluster {name} is {cluster.status}", cluster=name, status=cluster.status)

    at_target = cluster.version == request.to_version and adoptable is None
    if cluster.version not in (request.from_version, request.to_version):
        raise ClusterVersionMismatch(
            f"cluster {name} runs {cluster.version}, declared {request.from_version}",
            cluster=name,
            actualVersion=cluster.version,
            fromVersion=request.from_version,
            toVersion=request.to_version,
        )
    return PreflightResult(
        cluster_status=cluster.status,
        cluster_version=cluster.version,
        platform_version=cluster.platform_version,
        control_plane_at_target=at_target,
        adoptable_update_id=adoptable,
    )


def _check_nodegroups_on_control_plane(eks: EksGateway, name: str) -> None:
    """EKS moves a control plane only when every managed node group runs its version (none may be left
    behind by more than the skew the next version allows): checked here, before the update starts."""
    version = eks.describe_cluster(name).version
    behind = []
    for group_name in eks.list_nodegroups(name):
        try:
            group = eks.describe_nodegroup(name, group_name)
        except AwsResourceNotFound:  # deleted since the list: nothing to hold back
            continue
        if group.get("status") != "DELETING" and group.get("version") not in (None, version):
            behind.append({"nodegroup": group_name, "version": group.get("version")})
    if behind:
        raise NodegroupVersionSkew(
            f"cluster {name}: managed node group(s) not on the control plane's version {version}; the control "
            "plane was not updated",
            cluster=name,
            controlPlane=version,
            nodegroups=behind,
        )


def start_update(eks: EksGateway, request: ClusterUpgradeRequest, plan: WaitPlan) -> ControlPlaneUpdate:
    """Start the update, or take over one to the same version that is already running.

    Adoption covers a lost response, a Lambda retried after a timeout and a redriven execution:
    there is never a second update for the same step.
    """
    name = request.cluster.name
    for update in _in_progress_updates(eks, name):
        if _is_version_update_to(update, request.to_version):
            return ControlPlaneUpdate(
                update_id=update.id,
                status="InProgress",
                to_version=request.to_version,
                adopted=True,
                next_wait_seconds=plan.first_wait(),
            )
    _check_nodegroups_on_control_plane(eks, name)
    update = eks.update_cluster_version(name, request.to_version, client_request_token(request))
    return ControlPlaneUpdate(
        update_id=update.id,
        status="InProgress",
        to_version=request.to_version,
        next_wait_seconds=plan.first_wait(),
    )


def poll_update(eks: EksGateway, request: PollRequest, plan: WaitPlan) -> ControlPlaneUpdate:
    previous = request.update
    name = request.cluster.name
    update = eks.describe_update(name, previous.update_id)
    waited = previous.waited_seconds + previous.next_wait_seconds
    polls = previous.polls + 1
    if update.status in ("Failed", "Cancelled"):
        raise ControlPlaneUpdateFailed(
            f"EKS reported the control plane update to {request.to_version} {update.status}; "
            "the control plane stays on its current version",
            cluster=name,
            updateId=update.id,
            status=update.status,
            errors=list(update.errors),
        )
    if update.status == "Successful":
        return previous.model_copy(
            update={"status": "Successful", "next_wait_seconds": 0, "waited_seconds": waited, "polls": polls}
        )
    if waited >= plan.max_wait():
        raise ControlPlaneUpdateTimedOut(
            f"control plane update still {update.status} after {waited}s",
            cluster=name,
            updateId=update.id,
            waitedSeconds=waited,
        )
    return previous.model_copy(
        update={
            "status": "InProgress",
            "next_wait_seconds": plan.next_wait(waited),
            "waited_seconds": waited,
            "polls": polls,
        }
    )
