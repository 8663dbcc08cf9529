"""ValidateFleetInput: the fleet execution input against its JSON schema and the fleet rules. No AWS call."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate
from pydantic import ValidationError
from upgrader.errors import InvalidFleetInput
from upgrader.fleet.models import FleetRequest
from upgrader.fleet.waves import find_duplicates
from upgrader.models import StateModel
from upgrader.observability import step_handler

SCHEMA: dict[str, Any] = json.loads(
    resources.files("upgrader").joinpath("schemas/fleet_upgrade_input.schema.json").read_text()
)


class FleetValidationEnvelope(StateModel):
    input: Any
    execution_id: str
    execution_name: str


def _json_path(location: tuple[Any, ...]) -> str:
    path = "$"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validate_fleet(envelope: FleetValidationEnvelope) -> FleetRequest:
    try:
        validate(event=envelope.input, schema=SCHEMA)
    except SchemaValidationError as error:
        # fastjsonschema names the path as ['data', 'clusters', '2', 'region']: say it in JSONPath.
        parts = tuple(int(p) if str(p).isdigit() else p for p in (error.path or ["data"])[1:])
        path = _json_path(parts)
        raise InvalidFleetInput(
            f"fleet input rejected at {path}: {error.validation_message}", path=path, rule=error.rule
        ) from error
    try:
        request = FleetRequest.model_validate(
            {
                "run": {"executionId": envelope.execution_id, "executionName": envelope.execution_name},
                "fleet": envelope.input,
            }
        )
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        path = _json_path(tuple(first["loc"])[1:])
        raise InvalidFleetInput(f"fleet input rejected at {path}: {first['msg']}", path=path) from error
    find_duplicates(request.fleet.clusters)
    return request


lambda_handler = step_handler("ValidateFleetInput", FleetValidationEnvelope)(validate_fleet)
