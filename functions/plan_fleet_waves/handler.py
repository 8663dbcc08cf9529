"""PlanFleetWaves: the canary and the waves, each cluster's child execution name and input. No AWS call."""

from __future__ import annotations

from upgrader.errors import StepMisconfigured
from upgrader.fleet.models import FleetPlan, FleetRequest
from upgrader.fleet.waves import plan_waves
from upgrader.gateways.locks import FleetStepSettings
from upgrader.observability import step_handler


@step_handler("PlanFleetWaves", FleetRequest)
def lambda_handler(request: FleetRequest) -> FleetPlan:
    settings = FleetStepSettings.load()
    if not settings.cluster_state_machine_arn:
        raise StepMisconfigured(
            "CLUSTER_STATE_MACHINE_ARN is not set: the fleet has no cluster workflow to start"
        )
    return plan_waves(request, settings.cluster_state_machine_arn)
