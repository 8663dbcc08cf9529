"""CreateReplacementNodegroup: CreateNodegroup of the containerd twin (and its launch template), or adopt it if it is ours."""

from __future__ import annotations

from upgrader import nodegroups
from upgrader.migration_models import GroupRequest, ReplacementStatus
from upgrader.observability import step_handler
from upgrader.polling import WaitPlan
from upgrader.settings import Settings
from upgrader.wiring import migration_gateways


@step_handler("CreateReplacementNodegroup", GroupRequest)
def lambda_handler(request: GroupRequest) -> ReplacementStatus:
    settings = Settings.load()
    gateways = migration_gateways(request.cluster, request.run, settings)
    plan = WaitPlan.for_operation(nodegroups.creation_timing(request), settings)
    return nodegroups.create_replacement(gateways.eks, gateways.ec2, gateways.ssm, request, plan)
