"""Preflight: assume the target role; the cluster is ACTIVE, on fromVersion, with no foreign update."""

from __future__ import annotations

from upgrader import control_plane
from upgrader.models import ClusterUpgradeRequest, PreflightResult
from upgrader.observability import step_handler
from upgrader.settings import Settings
from upgrader.wiring import eks_for


@step_handler("Preflight", ClusterUpgradeRequest)
def lambda_handler(request: ClusterUpgradeRequest) -> PreflightResult:
    return control_plane.preflight(eks_for(request.cluster, request.run, Settings.load()), request)
