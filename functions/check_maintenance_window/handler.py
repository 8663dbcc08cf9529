"""CheckMaintenanceWindow: may the cluster start now; if not, wait until its window opens or skip it."""

from __future__ import annotations

from upgrader.fleet.models import WindowDecision, WindowRequest
from upgrader.fleet.windows import decide, parse_instant
from upgrader.observability import step_handler


@step_handler("CheckMaintenanceWindow", WindowRequest)
def lambda_handler(request: WindowRequest) -> WindowDecision:
    return decide(
        request.target.maintenance_window, request.settings.outside_window, parse_instant(request.now)
    )
