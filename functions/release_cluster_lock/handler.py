"""ReleaseClusterLock: deletes the cluster's lease lock if this fleet run holds it (after success or failure)."""

from __future__ import annotations

from upgrader.fleet import locks
from upgrader.fleet.models import LockRequest, ReleaseResult
from upgrader.gateways.locks import FleetStepSettings, run_table
from upgrader.observability import step_handler


@step_handler("ReleaseClusterLock", LockRequest)
def lambda_handler(request: LockRequest) -> ReleaseResult:
    released = locks.release(
        run_table(FleetStepSettings.load()), request.target.cluster, request.run.execution_name
    )
    return ReleaseResult(key=locks.lock_key(request.target.cluster), released=released)
