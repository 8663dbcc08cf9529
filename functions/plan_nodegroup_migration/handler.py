"""PlanNodegroupMigration: Which managed node groups still run Docker, their twins, and the nodes not migrated (said out loud)."""

from __future__ import annotations

from upgrader import nodegroups
from upgrader.migration_models import MigrationPlan
from upgrader.models import ClusterUpgradeRequest
from upgrader.observability import step_handler
from upgrader.settings import Settings
from upgrader.wiring import migration_gateways


@step_handler("PlanNodegroupMigration", ClusterUpgradeRequest)
def lambda_handler(request: ClusterUpgradeRequest) -> MigrationPlan:
    gateways = migration_gateways(request.cluster, request.run, Settings.load())
    return nodegroups.plan(gateways.eks, gateways.kube, request)
