"""PrepareDrain: kubectl's refusals and the capacity check before any disruption, then cordon the old group."""

from __future__ import annotations

from upgrader import drain
from upgrader.migration_models import DrainProgress, GroupRequest
from upgrader.observability import step_handler
from upgrader.polling import WaitPlan
from upgrader.settings import Settings
from upgrader.wiring import migration_gateways


@step_handler("PrepareDrain", GroupRequest)
def lambda_handler(request: GroupRequest) -> DrainProgress:
    settings = Settings.load()
    gateways = migration_gateways(request.cluster, request.run, settings)
    return drain.prepare(
        gateways.kube, request, WaitPlan.for_operation(drain.drain_timing(request), settings)
    )
