"""The fleet input's checks, shared by the ValidateFleetInput step and ``fleetctl start``/``plan`` (which run
them on the operator's machine before any AWS call): the JSON schema, the models' rules, then, for an input
with a ``selector``, its resolution against the fleet registry into the explicit cluster list."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate
from pydantic import ValidationError
from upgrader.errors import InvalidFleetInput, InvalidInput
from upgrader.fleet.models import FleetRequest, FleetUpgradeInput
from upgrader.fleet.waves import find_duplicates, plan_waves
from upgrader.gateways.registry import ClusterRegistry
from upgrader.models import RunRef

SCHEMA: dict[str, Any] = json.loads(
    resources.files("upgrader").joinpath("schemas/fleet_upgrade_input.schema.json").read_text()
)
MAX_CLUSTERS = 500  # one fleet execution's state carries the plan (docs/fleet.md, "Deployment")


def json_path(location: tuple[Any, ...]) -> str:
    path = "$"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def check_fleet_input(document: Any) -> FleetUpgradeInput:
    """Schema and rules, no AWS call. ``InvalidFleetInput`` names the JSON path of the first problem."""
    if isinstance(document, dict):
        # Said before the schema, whose oneOf would only say "valid exactly by one definition".
        if "clusters" in document and "selector" in document:
            raise InvalidFleetInput(
                "fleet input rejected at $.selector: give clusters[] or a selector, not both",
                path="$.selector",
            )
        if "clusters" not in document and "selector" not in document:
            raise InvalidFleetInput(
                "fleet input rejected at $: give clusters[] or a selector", path="$", rule="required"
            )
    document = copy.deepcopy(document)  # fastjsonschema fills the schema's defaults in: not in the caller's
    try:
        validate(event=document, schema=SCHEMA)
    except SchemaValidationError as error:
        # fastjsonschema names the path as ['data', 'clusters', '2', 'region']: say it in JSONPath.
        parts = tuple(int(p) if str(p).isdigit() else p for p in (error.path or ["data"])[1:])
        path = json_path(parts)
        raise InvalidFleetInput(
            f"fleet input rejected at {path}: {error.validation_message}", path=path, rule=error.rule
        ) from error
    try:
        fleet = FleetUpgradeInput.model_validate(document)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        path = json_path(tuple(first["loc"]))
        raise InvalidFleetInput(f"fleet input rejected at {path}: {first['msg']}", path=path) from error
    except InvalidInput as error:  # a cluster's roleArn in another account (upgrader.models.ClusterRef)
        raise InvalidFleetInput(f"fleet input rejected: {error.message}", **error.details) from error
    find_duplicates(fleet.clusters)
    return fleet


def check_waves(fleet: FleetUpgradeInput) -> None:
    """The wave rules PlanFleetWaves applies (canary keys in the fleet, every cluster in a wave), for an input
    that lists its clusters: fleetctl runs them before starting anything. No AWS call."""
    if not fleet.clusters:
        return  # a selector's clusters are only known to the workflow
    run = RunRef(execution_id="local-check", execution_name="local-check")
    plan_waves(FleetRequest(run=run, fleet=fleet), "arn:aws:states:::stateMachine:local-check")


def resolve_selector(fleet: FleetUpgradeInput, registry: ClusterRegistry) -> FleetUpgradeInput:
    """The explicit cluster list a selector stands for (the input itself when it lists clusters)."""
    if fleet.selector is None:
        return fleet
    registered = registry.clusters()
    chosen = fleet.selector.select(registered)
    if not chosen:
        raise InvalidFleetInput(
            f"fleet input rejected at $.selector: it selects none of the {len(registered)} registered clusters",
            path="$.selector",
            selector=fleet.selector.dump(),
            registered=len(registered),
        )
    if len(chosen) > MAX_CLUSTERS:
        raise InvalidFleetInput(
            f"fleet input rejected at $.selector: it selects {len(chosen)} clusters, more than {MAX_CLUSTERS}",
            path="$.selector",
            selected=len(chosen),
        )
    return fleet.model_copy(update={"clusters": chosen})
