"""EvaluateWave: records the wave (clusters, times, approval) and stops the fleet past its tolerance."""

from __future__ import annotations

from upgrader.fleet.models import WaveRequest, WaveSummary
from upgrader.fleet.report import evaluate_wave
from upgrader.gateways.locks import FleetStepSettings, run_table
from upgrader.observability import step_handler


@step_handler("EvaluateWave", WaveRequest)
def lambda_handler(request: WaveRequest) -> WaveSummary:
    record = evaluate_wave(request, run_table(FleetStepSettings.load()))
    return WaveSummary(
        index=record.index,
        name=record.name,
        outcome=record.outcome,
        failed=record.failed,
        failure_tolerance=record.failure_tolerance,
    )
