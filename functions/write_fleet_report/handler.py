"""WriteFleetReport: the fleet report (JSON, Markdown and HTML with the timeline) under
reports/<fleet execution name>/, and the fleet's CloudWatch metrics (EMF)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from upgrader.fleet.models import ReportRequest, ReportResult
from upgrader.fleet.report import write_report
from upgrader.gateways.locks import FleetStepSettings, run_table
from upgrader.observability import SERVICE, metrics, step_handler
from upgrader.wiring import report_store

from write_fleet_report.history import StepFunctionsHistories


@step_handler("WriteFleetReport", ReportRequest)
def lambda_handler(request: ReportRequest) -> ReportResult:
    settings = FleetStepSettings.load()
    written: dict[str, Any] = write_report(
        request, run_table(settings), report_store(settings), StepFunctionsHistories.from_settings(settings)
    )
    for name, unit, value, dimensions in written.pop("metrics"):
        if not dimensions:
            metrics.add_metric(name=name, unit=MetricUnit(unit), value=value)
            continue
        # A metric with its own dimension (PhaseSeconds by Phase) is its own EMF document.
        with single_metric(
            name=name,
            unit=MetricUnit(unit),
            value=value,
            namespace=metrics.namespace,
            default_dimensions={"service": SERVICE, **dimensions},
        ):
            pass
    return ReportResult.model_validate(written)
