"""WriteFleetReport: the fleet report (JSON and Markdown) under reports/<fleet execution name>/."""

from __future__ import annotations

from typing import Any

from upgrader.fleet.models import ReportRequest, ReportResult
from upgrader.fleet.report import write_report
from upgrader.gateways.locks import FleetStepSettings, run_table
from upgrader.observability import step_handler
from upgrader.wiring import report_store


@step_handler("WriteFleetReport", ReportRequest)
def lambda_handler(request: ReportRequest) -> ReportResult:
    settings = FleetStepSettings.load()
    written: dict[str, Any] = write_report(request, run_table(settings), report_store(settings))
    return ReportResult.model_validate(written)
