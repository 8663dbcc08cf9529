"""RollbackDrain: After a failed drain: uncordon (or keep cordoned) per the input; the failure, with where it stopped."""

from __future__ import annotations

from upgrader import drain
from upgrader.migration_models import GroupRequest, MigrationFailure
from upgrader.observability import step_handler
from upgrader.settings import Settings
from upgrader.wiring import migration_gateways


@step_handler("RollbackDrain", GroupRequest)
def lambda_handler(request: GroupRequest) -> MigrationFailure:
    gateways = migration_gateways(request.cluster, request.run, Settings.load())
    return drain.rollback(gateways.kube, request)
