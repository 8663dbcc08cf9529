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
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    "schedules",
)
_OPTIONAL_KEYS = frozenset({"orgId", "schedules"})


class ConfigError(ValueError):
    """The cdk context does not hold a usable configuration; the message names every bad key."""


# --- schedules (EventBridge Scheduler) -----------------------------------------------------------------
_SCHEDULE_NAME = re.compile(r"^[0-9a-zA-Z_.-]{1,64}$")
_SCHEDULE_KEYS = (
    "name",
    "cron",
    "timezone",
    "flexibleWindowMinutes",
    "mode",
    "input",
    "enabled",
    "description",
)
# EventBridge Scheduler's target Input is at most 8,192 characters.
MAX_SCHEDULE_INPUT = 8192
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (field, low, high, names, extra tokens) of the six fields of a Scheduler cron expression:
# minutes hours day-of-month month day-of-week year (docs.aws.amazon.com/scheduler: cron-based schedules).
_CRON_FIELDS = (
    ("minutes", 0, 59, (), ()),
    ("hours", 0, 23, (), ()),
    ("day-of-month", 1, 31, (), ("?", "L", "LW")),
    ("month", 1, 12, _MONTHS, ()),
    ("day-of-week", 1, 7, _DAYS, ("?", "L")),
    ("year", 1970, 2199, (), ()),
)


def cron_problems(expression: str) -> list[str]:
    """What is wrong with a Scheduler cron expression (``cron(...)`` or the six fields alone); empty if
    nothing. Written by hand: the Python cron libraries parse Unix's five fields, not AWS's six with
    ``?``, ``L``, ``W`` and ``#``."""
    text = expression.strip()
    if text.startswith("cron(") and text.endswith(")"):
        text = text[5:-1]
    fields = text.split()
    if len(fields) != 6:
        return [f"needs 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}"]
    problems = []

    def value_ok(token: str, low: int, high: int, names: tuple[str, ...]) -> bool:
        if token.upper() in names:
            return True
        return token.isdigit() and low <= int(token) <= high

    for token_field, (name, low, high, names, extras) in zip(fields, _CRON_FIELDS, strict=True):
        for item in token_field.split(","):
            upper = item.upper()
            if upper in extras or item == "*":
                continue
            if (
                name == "day-of-month"
                and re.fullmatch(r"\d{1,2}W", upper)
                and value_ok(upper[:-1], low, high, ())
            ):
                continue
            if (
                name == "day-of-week"
                and re.fullmatch(r"[1-7A-Z]{1,3}(L|#[1-5])", upper)
                and value_ok(re.split(r"L|#", upper)[0], low, high, names)
            ):
                continue
            base, _, step = item.partition("/")
            if step and not (step.isdigit() and int(step) > 0):
                problems.append(f"{name}: bad increment in {item!r}")
                continue
            bounds = base.split("-") if base != "*" else []
            if base != "*" and not (
                1 <= len(bounds) <= 2 and all(value_ok(b, low, high, names) for b in bounds)
            ):
                problems.append(
                    f"{name}: {item!r} is not a value, range, list or increment within {low}-{high}"
                )
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        problems.append("exactly one of day-of-month and day-of-week must be '?'")
    return problems


@dataclass(frozen=True)
class FleetSchedule:
    """One EventBridge Scheduler schedule starting the fleet workflow (infra/constructs/schedules.py)."""

    name: str
    expression: str  # cron(...)
    timezone: str
    flexible_window_minutes: int  # 0: OFF
    mode: str
    input: Mapping[str, Any] = field(hash=False)
    enabled: bool = True
    description: str = ""

    def execution_input(self) -> dict[str, Any]:
        return {**self.input, "mode": self.mode}


def parse_schedules(value: Any, fail: Any) -> tuple[FleetSchedule, ...]:
    """``schedules``: a list of ``{name, cron, timezone, flexibleWindowMinutes, mode, input, enabled,
    description}``; every problem goes to ``fail(key, message)`` naming the entry."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            fail("schedules", "given with -c must be a JSON list")
            return ()
    if value is None:
        return ()
    if not isinstance(value, list):
        fail("schedules", f"must be a list of schedules, got {type(value).__name__}")
        return ()
    found: list[FleetSchedule] = []
    names: set[str] = set()
    for index, entry in enumerate(value):
        key = f"schedules[{index}]"
        before = len(found)
        if not isinstance(entry, Mapping):
            fail(key, "must be an object")
            continue
        problems: list[tuple[str, str]] = []
        for unknown in sorted(set(entry) - set(_SCHEDULE_KEYS)):
            problems.append(
                (f"{key}.{unknown}", f"unknown key (expected one of {', '.join(_SCHEDULE_KEYS)})")
            )
        name = entry.get("name")
        if not isinstance(name, str) or not _SCHEDULE_NAME.match(name):
            problems.append((f"{key}.name", f"must be 1 to 64 of [0-9A-Za-z_.-], got {name!r}"))
        elif name in names:
            problems.append((f"{key}.name", f"{name!r} is used by another schedule"))
        cron = entry.get("cron")
        if not isinstance(cron, str):
            problems.append(
                (f"{key}.cron", f"must be a cron expression such as '0 22 ? * SAT *', got {cron!r}")
            )
        else:
            problems += [
                (f"{key}.cron", f"invalid cron expression {cron!r}: {p}") for p in cron_problems(cron)
            ]
        timezone = entry.get("timezone", "UTC")
        try:
            if not isinstance(timezone, str) or not timezone:
                raise zoneinfo.ZoneInfoNotFoundError(timezone)
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(
                (f"{key}.timezone", f"unknown time zone {timezone!r} (an IANA name such as Europe/Paris)")
            )
        window = _as_int(entry.get("flexibleWindowMinutes", 0))
        if window is None or not 0 <= window <= 1440:
            problems.append(
                (
                    f"{key}.flexibleWindowMinutes",
                    f"must be 0 (off) to 1440 minutes, got {entry.get('flexibleWindowMinutes')!r}",
                )
            )
        mode = entry.get("mode", "upgrade")
        if mode not in ("upgrade", "plan"):
            problems.append((f"{key}.mode", f"must be 'upgrade' or 'plan', got {mode!r}"))
        fleet_input = entry.get("input")
        if not isinstance(fleet_input, Mapping):
            problems.append((f"{key}.input", "must be the fleet input object (docs/fleet.md)"))
        else:
            if not isinstance(fleet_input.get("toVersion"), str):
                problems.append((f"{key}.input.toVersion", "is required"))
            if not fleet_input.get("clusters") and not fleet_input.get("selector"):
                problems.append((f"{key}.input", "needs clusters (a non-empty list) or a selector"))
            if "mode" in fleet_input:
                problems.append((f"{key}.input.mode", "set the schedule's mode instead"))
            if len(json.dumps({**fleet_input, "mode": mode})) > MAX_SCHEDULE_INPUT:
                problems.append(
                    (f"{key}.input", f"exceeds Scheduler's {MAX_SCHEDULE_INPUT} characters: use a selector")
                )
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            problems.append((f"{key}.enabled", f"must be true or false, got {enabled!r}"))
        for problem_key, message in problems:
            fail(problem_key, message)
        if problems or len(found) != before:
            continue
        names.add(str(name))
        text = str(cron).strip()
        found.append(
            FleetSchedule(
                name=str(name),
                expression=text if text.startswith("cron(") else f"cron({text})",
                timezone=str(timezone),
                flexible_window_minutes=int(window or 0),
                mode=str(mode),
                input=dict(fleet_input),  # type: ignore[arg-type]
                enabled=bool(enabled),
                description=str(entry.get("description", "")),
            )
        )
    return tuple(found)


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
    schedules: tuple[FleetSchedule, ...] = ()

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

    schedules = parse_schedules(values.get("schedules"), fail)

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
        schedules=schedules,
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
