"""ValidateFleetInput: the fleet execution input against its JSON schema and the fleet rules; a ``selector``
is resolved against the fleet registry (the run table's ``CLUSTER#`` items) into the explicit cluster list,
which the output records beside the selector. An input that lists its clusters makes no AWS call."""

from __future__ import annotations

from typing import Any

from upgrader.fleet.models import FleetRequest, FleetUpgradeInput
from upgrader.gateways.locks import FleetStepSettings
from upgrader.gateways.registry import cluster_registry
from upgrader.models import RunRef, StateModel
from upgrader.observability import step_handler

from validate_fleet_input.rules import check_fleet_input, resolve_selector


class FleetValidationEnvelope(StateModel):
    input: Any
    execution_id: str
    execution_name: str


def validate_fleet(envelope: FleetValidationEnvelope) -> FleetRequest:
    fleet: FleetUpgradeInput = check_fleet_input(envelope.input)
    if fleet.selector is not None:
        fleet = resolve_selector(fleet, cluster_registry(FleetStepSettings.load()))
    run = RunRef(execution_id=envelope.execution_id, execution_name=envelope.execution_name)
    return FleetRequest(run=run, fleet=fleet)


lambda_handler = step_handler("ValidateFleetInput", FleetValidationEnvelope)(validate_fleet)
