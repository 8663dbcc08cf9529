"""PollControlPlaneUpdate: DescribeUpdate; Failed/Cancelled and the poll cap become named errors."""

from __future__ import annotations

from upgrader import control_plane
from upgrader.models import ControlPlaneUpdate, PollRequest
from upgrader.observability import step_handler
from upgrader.polling import WaitPlan
from upgrader.settings import Settings
from upgrader.versions import CONTROL_PLANE_UPDATE
from upgrader.wiring import eks_for


@step_handler("PollControlPlaneUpdate", PollRequest)
def lambda_handler(request: PollRequest) -> ControlPlaneUpdate:
    settings = Settings.load()
    plan = WaitPlan.for_operation(CONTROL_PLANE_UPDATE, settings)
    return control_plane.poll_update(eks_for(request.cluster, request.run, settings), request, plan)
