"""Typed state models: every state's input and output. JSON uses camelCase (the ASL's JSONPaths)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from upgrader.errors import InvalidInput


class StateModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ClusterRef(StateModel):
    account_id: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
    name: str = Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")
    role_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}$"
    )
    external_id: str | None = Field(default=None, min_length=2, max_length=1224)

    @model_validator(mode="after")
    def _role_in_the_clusters_account(self) -> ClusterRef:
        # The assumed role decides which account every call reaches: a roleArn in another account would
        # act there while the run, its logs and its report name accountId. Raised as InvalidInput (not a
        # ValueError, which pydantic would wrap) so the execution stops with that name wherever it is parsed.
        if self.role_arn is not None and self.role_arn.split(":")[4] != self.account_id:
            raise InvalidInput(
                "execution input rejected: cluster.roleArn must be a role in cluster.accountId",
                path=["data", "cluster", "roleArn"],
                rule="roleArn account = accountId",
            )
        return self

    @property
    def key(self) -> str:
        return f"{self.account_id}/{self.region}/{self.name}"


class RunRef(StateModel):
    execution_id: str
    execution_name: str


class Invocation(StateModel):
    """Which state entry invokes a step that changes something (catalog ``idempotent``): the ASL passes
    ``{"state": <the state's input>, "invocation": {...}}``, with these from the context object. Retries of
    one entry keep ``enteredTime``; a loop or a redrive enters the state anew. The idempotency key's scope."""

    execution_id: str = Field(min_length=1)
    state_name: str = Field(min_length=1)
    entered_time: str = Field(min_length=1)


class Acknowledgment(StateModel):
    """An operator's decision to go ahead despite every blocking finding of one readiness rule."""

    rule: str = Field(pattern=r"^[A-Z]{2}\d{3}$")
    reason: str = Field(min_length=1, max_length=1024)


_PERCENT = re.compile(r"^(100|[1-9][0-9]?)%$")


class MigrationOptions(StateModel):
    """The ``nodegroupMigration`` block of the execution input (docs/input-schema.md)."""

    batch_size: int | str = Field(default=1, description="nodes drained at a time, or a percentage")
    node_timeout_seconds: int = Field(default=900, ge=60, le=86_400)
    on_timeout: Literal["fail", "force"] = "fail"
    force_acknowledged: bool = False
    delete_emptydir_data: bool = Field(default=False, alias="deleteEmptyDirData")
    evict_pods_without_controller: bool = False
    on_failure: Literal["uncordon", "keep-cordoned"] = "uncordon"
    replacement_ready_timeout_seconds: int = Field(default=1800, ge=300, le=7200)

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if value < 1:
                raise ValueError("batchSize must be at least 1 node")
            return value
        if not _PERCENT.match(value):
            raise ValueError("batchSize must be a number of nodes or a percentage like '25%'")
        return value

    @model_validator(mode="after")
    def _force_needs_acknowledgment(self) -> MigrationOptions:
        if self.on_timeout == "force" and not self.force_acknowledged:
            raise ValueError(
                "onTimeout 'force' deletes pods their disruption budgets protect: it needs "
                "forceAcknowledged: true"
            )
        return self


class LockRef(StateModel):
    """The fleet lease this run holds on the cluster (set by the fleet workflow; empty when run alone).
    Every step that changes the cluster re-checks it first."""

    owner: str | None = Field(default=None, min_length=1, max_length=80)


class AddonOptions(StateModel):
    """The ``addons`` block of the execution input."""

    resolve_conflicts: Literal["PRESERVE", "OVERWRITE", "NONE"] = "PRESERVE"
    skip: tuple[str, ...] = ()


Strategy = Literal["runtime-first", "version-first"]


class ClusterUpgradeRequest(StateModel):
    """The validated execution input, as every later step sees it.

    ``from_version``/``to_version`` are the current single-minor step; ``target_version`` is where the
    chain ends and ``version_chain`` lists every step's target (``NextVersionStep`` in the ASL moves
    along it, rebuilding this object field by field: a field added here must be added there too,
    tests/statemachine/test_version_steps.py checks it)."""

    run: RunRef
    cluster: ClusterRef
    from_version: str
    to_version: str
    target_version: str | None = None
    version_chain: tuple[str, ...] = ()
    version_step: int = Field(default=0, ge=0)
    strategy: Strategy = "runtime-first"
    # "plan": every read-only check (gate, migration plan, version plan), no change; blocking findings
    # are reported in the output instead of stopping the execution.
    mode: Literal["upgrade", "plan"] = "upgrade"
    acknowledge: tuple[Acknowledgment, ...] = ()
    nodegroup_migration: MigrationOptions = Field(default_factory=MigrationOptions)
    addons: AddonOptions = Field(default_factory=AddonOptions)
    lock: LockRef = Field(default_factory=LockRef)


class PreflightResult(StateModel):
    cluster_status: str
    cluster_version: str
    platform_version: str | None = None
    control_plane_at_target: bool
    adoptable_update_id: str | None = None  # an update to toVersion already running (ours, earlier)


UpdateStatus = Literal["InProgress", "Successful", "Failed", "Cancelled"]


class ControlPlaneUpdate(StateModel):
    update_id: str
    status: UpdateStatus
    to_version: str
    adopted: bool = False  # True when an update already in progress was taken over
    next_wait_seconds: int = Field(ge=0)
    waited_seconds: int = Field(default=0, ge=0)
    polls: int = Field(default=0, ge=0)


class PollRequest(StateModel):
    run: RunRef
    cluster: ClusterRef
    to_version: str
    update: ControlPlaneUpdate


class SeverityCounts(StateModel):
    blocking: int = Field(default=0, ge=0)
    warning: int = Field(default=0, ge=0)
    info: int = Field(default=0, ge=0)


class ReportLocation(StateModel):
    """Where a step wrote its full report (the state carries only this pointer)."""

    bucket: str
    json_key: str
    markdown_key: str


class ReadinessResult(StateModel):
    """ReadinessCheck's output when the gate lets the cluster through (a blocked gate raises
    ReadinessBlocked instead). Small on purpose: the findings are in the S3 report."""

    counts: SeverityCounts
    blocking_rules: tuple[str, ...] = ()  # rules with blocking findings: all acknowledged, or the gate stops
    acknowledged_rules: tuple[str, ...] = ()  # acknowledged rules that had findings
    unmatched_acknowledgments: tuple[str, ...] = ()  # acknowledged rules without any finding
    not_evaluated: int = Field(default=0, ge=0)  # rules that did not run for lack of a fact
    unreadable_kinds: tuple[str, ...] = ()  # Kubernetes kinds the scan could not list (SC001)
    objects_scanned: int = Field(default=0, ge=0)
    report: ReportLocation
    # plan mode only: the gate would stop the cluster for these rules (in upgrade mode it raises instead)
    unacknowledged_rules: tuple[str, ...] = ()
