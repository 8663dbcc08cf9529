"""ValidateInput: the execution input against the JSON schema, then the version step. No AWS call."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate
from upgrader.errors import InvalidInput
from upgrader.models import ClusterUpgradeRequest, StateModel
from upgrader.observability import step_handler
from upgrader.versions import validate_step

SCHEMA: dict[str, Any] = json.loads(
    resources.files("upgrader").joinpath("schemas/cluster_upgrade_input.schema.json").read_text()
)


class ValidationEnvelope(StateModel):
    """What the ASL passes in: the raw execution input plus the execution's identity."""

    input: Any
    execution_id: str
    execution_name: str


def validate_request(envelope: ValidationEnvelope) -> ClusterUpgradeRequest:
    try:
        validate(event=envelope.input, schema=SCHEMA)
    except SchemaValidationError as error:
        raise InvalidInput(
            f"execution input rejected: {error.validation_message}",
            path=error.path,
            rule=error.rule,
        ) from error
    rules = [item["rule"] for item in envelope.input.get("acknowledge", [])]
    repeated = sorted({rule for rule in rules if rules.count(rule) > 1})
    if repeated:
        raise InvalidInput(
            f"execution input rejected: acknowledge names {', '.join(repeated)} more than once",
            path="$.acknowledge",
            rule="one acknowledgment per rule",
        )
    validate_step(envelope.input["fromVersion"], envelope.input["toVersion"])
    return ClusterUpgradeRequest.model_validate(
        {
            **envelope.input,
            "run": {"executionId": envelope.execution_id, "executionName": envelope.execution_name},
        }
    )


lambda_handler = step_handler("ValidateInput", ValidationEnvelope)(validate_request)
