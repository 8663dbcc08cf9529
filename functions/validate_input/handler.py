"""ValidateInput: the execution input against the JSON schema, then the version chain. No AWS call.

The output starts the chain: ``toVersion`` is its first step, ``targetVersion`` where it ends."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate
from upgrader.errors import InvalidInput
from upgrader.models import ClusterUpgradeRequest, StateModel
from upgrader.observability import step_handler
from upgrader.versions import version_chain

SCHEMA: dict[str, Any] = json.loads(
    resources.files("upgrader").joinpath("schemas/cluster_upgrade_input.schema.json").read_text()
)


# The schema's message quotes the offending value or key; an input built to be huge (an unknown key of
# hundreds of KB) must not come back whole in the execution's cause, logs and reports.
MAX_ECHOED_CHARS = 512


def _bounded(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= MAX_ECHOED_CHARS else f"{text[:MAX_ECHOED_CHARS]}... ({len(text)} characters)"


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
            f"execution input rejected: {_bounded(error.validation_message)}",
            path=_bounded(str(error.path)),
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
    chain = version_chain(envelope.input["fromVersion"], envelope.input["toVersion"])
    return ClusterUpgradeRequest.model_validate(
        {
            **envelope.input,
            "toVersion": chain[0],
            "targetVersion": envelope.input["toVersion"],
            "versionChain": chain,
            "versionStep": 0,
            "run": {"executionId": envelope.execution_id, "executionName": envelope.execution_name},
        }
    )


lambda_handler = step_handler("ValidateInput", ValidationEnvelope)(validate_request)
