"""AbandonReplacementNodegroup: DeleteNodegroup of a twin that never became ready (only if it is ours)."""

from __future__ import annotations

from upgrader import nodegroups
from upgrader.migration_models import DeletionProgress, GroupRequest
from upgrader.observability import step_handler
from upgrader.polling import WaitPlan
from upgrader.settings import Settings
from upgrader.versions import NODEGROUP_DELETE
from upgrader.wiring import migration_gateways


@step_handler("AbandonReplacementNodegroup", GroupRequest)
def lambda_handler(request: GroupRequest) -> DeletionProgress:
    settings = Settings.load()
    gateways = migration_gateways(request.cluster, request.run, settings)
    plan = WaitPlan.for_operation(NODEGROUP_DELETE, settings)
    return nodegroups.abandon_replacement(gateways.eks, request, plan)
