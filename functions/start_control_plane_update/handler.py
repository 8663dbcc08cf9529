"""StartControlPlaneUpdate: UpdateClusterVersion (idempotent), returning the first wait."""

from __future__ import annotations

from upgrader import control_plane
from upgrader.models import ClusterUpgradeRequest, ControlPlaneUpdate
from upgrader.observability import step_handler
from upgrader.polling import WaitPlan
from upgrader.settings import Settings
from upgrader.versions import CONTROL_PLANE_UPDATE
from upgrader.wiring import eks_for


@step_handler("StartControlPlaneUpdate", ClusterUpgradeRequest)
def lambda_handler(request: ClusterUpgradeRequest) -> ControlPlaneUpdate:
    settings = Settings.load()
    plan = WaitPlan.for_operation(CONTROL_PLANE_UPDATE, settings)
    return control_plane.start_update(eks_for(request.cluster, request.run, settings), request, plan)
