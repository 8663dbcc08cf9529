"""PlanVersionUpdate: the before snapshot, add-on targets, node groups to update in place and both
strategies' estimates. Read-only: a node group that cannot be updated stops the cluster here."""

from __future__ import annotations

from typing import Any

from upgrader import version_update
from upgrader.models import ClusterUpgradeRequest
from upgrader.observability import step_handler
from upgrader.settings import Settings
from upgrader.version_models import VersionPlan
from upgrader.wiring import readiness_gateways


class PlanVersionRequest(ClusterUpgradeRequest):
    nodegroup_plan: dict[str, Any] | None = None  # PlanNodegroupMigration's output: the groups it replaces


@step_handler("PlanVersionUpdate", PlanVersionRequest)
def lambda_handler(request: PlanVersionRequest) -> VersionPlan:
    gateways = readiness_gateways(request.cluster, request.run, Settings.load())
    replaced = [str(g.get("old")) for g in (request.nodegroup_plan or {}).get("groups", [])]
    return version_update.plan_version_update(
        request, eks=gateways.eks, ec2=gateways.ec2, kube=gateways.kubernetes, replaced=replaced
    )
