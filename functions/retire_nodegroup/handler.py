"""RetireNodegroup: DeleteNodegroup of the old group once no node of it runs a non-DaemonSet pod and its twin is up."""

from __future__ import annotations

from upgrader import nodegroups
from upgrader.migration_models import DeletionProgress, GroupRequest
from upgrader.observability import step_handler
from upgrader.polling import WaitPlan
from upgrader.settings import Settings
from upgrader.versions import NODEGROUP_DELETE
from upgrader.wiring import migration_gateways


@step_handler("RetireNodegroup", GroupRequest)
def lambda_handler(request: GroupRequest) -> DeletionProgress:
    settings = Settings.load()
    gateways = migration_gateways(request.cluster, request.run, settings)
    plan = WaitPlan.for_operation(NODEGROUP_DELETE, settings)
    return nodegroups.retire_old(gateways.eks, gateways.kube, request, plan)
