"""Deployment configuration: the ``eksFleetUpgrader`` object of the cdk context, parsed and validated.

cdk.json holds the defaults. Any key can be overridden on the command line, either one key at a time::

    npx cdk synth -c eksFleetUpgrader.externalId=my-id -c eksFleetUpgrader.targetAccountIds=444444444444,555555555555

or as the whole object (a JSON string replaces cdk.json's object)::

    npx cdk synth -c 'eksFleetUpgrader={"orchestratorAccountId": "...", ...}'

Values given with ``-c`` arrive as strings: lists accept JSON (``["a","b"]``) or comma-separated text,
``logRetentionDays`` accepts digits, ``orgId`` accepts ``null`` or an empty string for "no organization".
Every problem is reported at once, each naming its key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from constructs import Construct

from infra.catalog import STEPS
from infra.constants import RETENTION_DAYS

CONTEXT_KEY = "eksFleetUpgrader"

_ACCOUNT_ID = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_ORG_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
# sts:AssumeRole ExternalId: 2 to 1224 characters of [\w+=,.@:/-].
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
# A role name (optionally with a path) that may contain '*' wildcards, but must start with a literal
# prefix so iam:PassRole can never reach arbitrary roles of the account.
_NODE_ROLE_PATTERN = re.compile(r"^[\w+=,.@-][\w+=,.@*/-]{0,511}$")

_KEYS = (
    "orchestratorAccountId",
    "orchestratorRegion",
    "targetAccountIds",
    "regions",
    "externalId",
    "orgId",
    "targetRoleName",
    "resourcePrefix",
    "nodeRoleNamePattern",
    "logRetentionDays",
)
_OPTIONAL_KEYS = frozenset({"orgId"})


class ConfigError(ValueError):
    """The cdk context does not hold a usable configuration; the message names every bad key."""


@dataclass(frozen=True)
class FleetUpgraderConfig:
    orchestrator_account_id: str
    orchestrator_region: str
    target_account_ids: tuple[str, ...]
    regions: tuple[str, ...]  # regions of the fleet's clusters (scopes the EKS ARNs of the target role)
    external_id: str
    org_id: str | None
    target_role_name: str
    resource_prefix: str
    node_role_name_pattern: str
    log_retention_days: int

    def step_resource_name(self, step_name: str) -> str:
        """Name of a step's Lambda function and of its IAM role; the target role trusts the role ARN."""
        return f"{self.resource_prefix}-{step_name}"

    def step_role_arn(self, step_name: str, partition: str) -> str:
        return (
            f"arn:{partition}:iam::{self.orchestrator_account_id}:role/{self.step_resource_name(step_name)}"
        )

    def target_role_arn(self, account_id: str, partition: str) -> str:
        return f"arn:{partition}:iam::{account_id}:role/{self.target_role_name}"


def load_config(scope: Construct) -> FleetUpgraderConfig:
    """Read the configuration from the cdk context of ``scope`` (cdk.json plus ``-c`` overrides)."""
    raw = scope.node.try_get_context(CONTEXT_KEY)
    if raw is None:
        raise ConfigError(f"cdk context has no '{CONTEXT_KEY}' object; see docs/deployment.md")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ConfigError(f"'{CONTEXT_KEY}' given with -c is not valid JSON: {error}") from error
    if not isinstance(raw, Mapping):
        raise ConfigError(f"'{CONTEXT_KEY}' must be an object, got {type(raw).__name__}")
    values = dict(raw)
    for key in _KEYS:
        override = scope.node.try_get_context(f"{CONTEXT_KEY}.{key}")
        if override is not None:
            values[key] = override
    return parse_config(values)


def parse_config(values: Mapping[str, Any]) -> FleetUpgraderConfig:
    errors: list[str] = []

    def fail(key: str, message: str) -> None:
        errors.append(f"{CONTEXT_KEY}.{key}: {message}")

    unknown = sorted(set(values) - set(_KEYS))
    for key in unknown:
        fail(key, f"unknown key (expected one of {', '.join(_KEYS)})")
    for key in _KEYS:
        if key not in values and key not in _OPTIONAL_KEYS:
            fail(key, "is required")

    def text(key: str, pattern: re.Pattern[str], description: str) -> str:
        value = values.get(key)
        if key not in values:
            return ""
        if not isinstance(value, str) or not pattern.match(value):
            fail(key, f"must be {description}, got {value!r}")
            return ""
        return value

    def text_list(key: str, pattern: re.Pattern[str], description: str) -> tuple[str, ...]:
        if key not in values:
            return ()
        items = _as_list(values[key])
        if items is None or not items:
            fail(key, f"must be a non-empty list of {description}, got {values[key]!r}")
            return ()
        bad = [item for item in items if not isinstance(item, str) or not pattern.match(item)]
        if bad:
            fail(key, f"every entry must be {description}; invalid: {bad!r}")
        if len(set(items)) != len(items):
            fail(key, f"has duplicate entries: {items!r}")
        return tuple(items)

    orchestrator_account_id = text("orchestratorAccountId", _ACCOUNT_ID, "a 12-digit AWS account id")
    orchestrator_region = text("orchestratorRegion", _REGION, "an AWS region such as us-east-1")
    target_account_ids = text_list("targetAccountIds", _ACCOUNT_ID, "12-digit AWS account ids")
    regions = text_list("regions", _REGION, "AWS regions such as eu-west-1")
    external_id = text("externalId", _EXTERNAL_ID, "2 to 1224 characters of letters, digits and +=,.@:/_-")
    target_role_name = text("targetRoleName", _ROLE_NAME, "an IAM role name (1 to 64 of [A-Za-z0-9+=,.@_-])")
    resource_prefix = text(
        "resourcePrefix", _PREFIX, "2 to 40 lowercase letters, digits or '-', starting with a letter"
    )
    node_role_name_pattern = text(
        "nodeRoleNamePattern",
        _NODE_ROLE_PATTERN,
        "an IAM role name pattern starting with a literal character, e.g. 'eks-node-*'",
    )

    org_id: str | None = None
    raw_org = values.get("orgId")
    if raw_org not in (None, "", "null", "none", "None"):
        if isinstance(raw_org, str) and _ORG_ID.match(raw_org):
            org_id = raw_org
        else:
            fail("orgId", f"must be null or an AWS Organizations id such as o-a1b2c3d4e5, got {raw_org!r}")

    log_retention_days = 0
    if "logRetentionDays" in values:
        raw_days = values["logRetentionDays"]
        days = _as_int(raw_days)
        if days not in RETENTION_DAYS:
            allowed = ", ".join(str(day) for day in RETENTION_DAYS)
            fail(
                "logRetentionDays",
                f"must be one of the CloudWatch Logs periods ({allowed}), got {raw_days!r}",
            )
        else:
            log_retention_days = days

    if resource_prefix:
        longest = max((f"{resource_prefix}-{step.name}" for step in STEPS), key=len)
        if len(longest) > 64:
            fail(
                "resourcePrefix",
                f"is too long: the step role/function name {longest!r} exceeds IAM's 64 characters",
            )

    if errors:
        raise ConfigError("invalid configuration in the cdk context:\n  " + "\n  ".join(errors))
    return FleetUpgraderConfig(
        orchestrator_account_id=orchestrator_account_id,
        orchestrator_region=orchestrator_region,
        target_account_ids=target_account_ids,
        regions=regions,
        external_id=external_id,
        org_id=org_id,
        target_role_name=target_role_name,
        resource_prefix=resource_prefix,
        node_role_name_pattern=node_role_name_pattern,
        log_retention_days=log_retention_days,
    )


def _as_list(value: Any) -> list[Any] | None:
    """A list from cdk.json, or from a ``-c`` string holding JSON or comma-separated values."""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                parsed = json.loads(stripped)
            except json.JSONDecodeError:
                return None
            return parsed if isinstance(parsed, list) else None
        return [item.strip() for item in stripped.split(",") if item.strip()]
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
