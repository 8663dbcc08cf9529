"""AcquireClusterLock: the cluster's lease lock for this fleet run, or ClusterLocked."""

from __future__ import annotations

from upgrader.errors import InvalidInput
from upgrader.fleet import locks
from upgrader.fleet.models import LeaseResult, LockRequest
from upgrader.fleet.windows import parse_instant
from upgrader.gateways.locks import FleetStepSettings, run_table
from upgrader.observability import step_handler


@step_handler("AcquireClusterLock", LockRequest)
def lambda_handler(request: LockRequest) -> LeaseResult:
    if request.settings is None or request.now is None:
        raise InvalidInput("AcquireClusterLock needs the fleet settings and the state's entered time")
    now = int(parse_instant(request.now).timestamp())
    return locks.acquire(
        run_table(FleetStepSettings.load()),
        request.target.cluster,
        owner=request.run.execution_name,
        now=now,
        lease_seconds=request.settings.lock_lease_seconds,
    )
