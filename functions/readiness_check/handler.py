"""ReadinessCheck: the live readiness scan, the gate before the cluster changes. Writes the full report
to S3; blocking findings the input did not acknowledge raise ReadinessBlocked."""

from __future__ import annotations

from upgrader import readiness_check
from upgrader.models import ClusterUpgradeRequest, ReadinessResult
from upgrader.observability import step_handler
from upgrader.settings import Settings
from upgrader.wiring import readiness_gateways


@step_handler("ReadinessCheck", ClusterUpgradeRequest)
def lambda_handler(request: ClusterUpgradeRequest) -> ReadinessResult:
    gateways = readiness_gateways(request.cluster, request.run, Settings.load())
    return readiness_check.check_readiness(
        request, eks=gateways.eks, ec2=gateways.ec2, kubernetes=gateways.kubernetes, store=gateways.store
    )
