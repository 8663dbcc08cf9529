"""PollReplacementNodegroup: DescribeNodegroup of the twin and its nodes: Ready on containerd, or ReplacementNodegroupNotReady."""

from __future__ import annotations

from upgrader import nodegroups
from upgrader.migration_models import GroupRequest, ReplacementStatus
from upgrader.observability import step_handler
from upgrader.polling import WaitPlan
from upgrader.settings import Settings
from upgrader.wiring import migration_gateways


@step_handler("PollReplacementNodegroup", GroupRequest)
def lambda_handler(request: GroupRequest) -> ReplacementStatus:
    settings = Settings.load()
    gateways = migration_gateways(request.cluster, request.run, settings)
    plan = WaitPlan.for_operation(nodegroups.creation_timing(request), settings)
    return nodegroups.poll_replacement(gateways.eks, gateways.kube, request, plan)
