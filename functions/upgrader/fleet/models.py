"""Typed state models of the fleet workflow (statemachines/fleet_upgrade.asl.json). JSON is camelCase."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from upgrader.models import Acknowledgment, ClusterRef, RunRef, StateModel

_PERCENT = re.compile(r"^(100|[1-9]?[0-9])%$")
_VERSION = r"^1\.\d{2}$"
Weekday = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
WEEKDAYS: tuple[Weekday, ...] = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
# The per-cluster workflow options a fleet passes on to every cluster (checked again by the cluster
# workflow's own ValidateInput).
CLUSTER_OPTIONS = ("strategy", "addons", "acknowledge", "nodegroupMigration")


def _count_or_percent(value: int | str, what: str, minimum: int) -> int | str:
    if isinstance(value, int):
        if value < minimum:
            raise ValueError(f"{what} must be at least {minimum}")
        return value
    if not _PERCENT.match(value) or int(value[:-1]) < minimum:
        raise ValueError(f"{what} must be a number or a percentage like '25%'")
    return value


class MaintenanceWindow(StateModel):
    """When a cluster may start its upgrade: ``start`` (HH:MM, local to ``timezone``) on ``days``, for
    ``durationMinutes``. The window governs the start; an upgrade that started inside it runs to the end."""

    days: tuple[Weekday, ...] = WEEKDAYS
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    duration_minutes: int = Field(ge=15, le=1440)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value


class FleetCluster(ClusterRef):
    """One cluster of the fleet: where it is, its current version, and when it may be upgraded."""

    from_version: str | None = Field(default=None, pattern=_VERSION)
    maintenance_window: MaintenanceWindow | None = None


_TAG_KEY = r"^[\w.:/=+@ -]{1,128}$"


class RegisteredCluster(ClusterRef):
    """A cluster in the fleet registry (run table, ``pk = CLUSTER#<account>#<region>#<name>``): where it is,
    how to reach it (optional role/external id overrides), its tags and its maintenance window."""

    tags: dict[str, str] = Field(default_factory=dict, max_length=50)
    maintenance_window: MaintenanceWindow | None = None

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key, tag in value.items():
            if not re.match(_TAG_KEY, key) or len(tag) > 256:
                raise ValueError(
                    f"tag {key!r}: keys are 1-128 characters (letters, digits, spaces, _.:/=+@-), values 256 at most"
                )
        return value

    def fleet_cluster(self) -> FleetCluster:
        return FleetCluster.model_validate(self.model_dump(exclude={"tags"}))


class FleetSelector(StateModel):
    """Selects clusters from the fleet registry instead of listing them: every criterion given must hold
    (each tag equal, the account among ``accounts``, the region among ``regions``). At least one is required,
    so an empty selector never means "the whole registry" by accident."""

    tags: dict[str, str] = Field(default_factory=dict)
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _some_criterion(self) -> FleetSelector:
        if not (self.tags or self.accounts or self.regions):
            raise ValueError("a selector needs tags, accounts or regions")
        return self

    def matches(self, cluster: RegisteredCluster) -> bool:
        return (
            all(cluster.tags.get(key) == value for key, value in self.tags.items())
            and (not self.accounts or cluster.account_id in self.accounts)
            and (not self.regions or cluster.region in self.regions)
        )

    def select(self, registered: list[RegisteredCluster]) -> tuple[FleetCluster, ...]:
        """The matching clusters, ordered by key (account/region/name) so a plan is reproducible."""
        chosen = sorted((c for c in registered if self.matches(c)), key=lambda c: c.key)
        return tuple(c.fleet_cluster() for c in chosen)


class CanarySpec(StateModel):
    """The first wave. Any failure in it stops the fleet (its tolerance is always zero)."""

    clusters: tuple[str, ...] = Field(default=(), description="cluster keys account/region/name")
    size: int = Field(default=1, ge=1, le=40, description="used when ``clusters`` is empty: the first N")
    max_concurrency: int = Field(default=1, ge=1, le=40)
    soak_seconds: int = Field(default=0, ge=0, le=604_800)
    approval: bool = False


class WaveSpec(StateModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    size: int | str | None = Field(
        default=None, description="clusters or a percentage of the fleet; the last wave takes the rest"
    )
    max_concurrency: int = Field(default=1, ge=1, le=40)
    failure_tolerance: int | str = Field(
        default=0, description="failed or blocked clusters tolerated: a count or a percentage"
    )
    soak_seconds: int = Field(default=0, ge=0, le=604_800)
    approval: bool = False

    @field_validator("size")
    @classmethod
    def _size(cls, value: int | str | None) -> int | str | None:
        return None if value is None else _count_or_percent(value, "size", 1)

    @field_validator("failure_tolerance")
    @classmethod
    def _tolerance(cls, value: int | str) -> int | str:
        return _count_or_percent(value, "failureTolerance", 0)


class FleetUpgradeInput(StateModel):
    """The fleet workflow's execution input (functions/upgrader/schemas/fleet_upgrade_input.schema.json)."""

    mode: Literal["upgrade", "plan"] = "upgrade"
    from_version: str | None = Field(default=None, pattern=_VERSION)
    to_version: str = Field(pattern=_VERSION)
    # Either ``clusters`` or a ``selector`` over the fleet registry; ValidateFleetInput resolves a selector
    # into ``clusters`` (and keeps the selector, so the state output records what was asked and chosen).
    clusters: tuple[FleetCluster, ...] = Field(default=(), max_length=500)
    selector: FleetSelector | None = None
    canary: CanarySpec = Field(default_factory=CanarySpec)
    waves: tuple[WaveSpec, ...] = Field(default=(), max_length=20)
    outside_window: Literal["wait", "skip"] = "wait"
    lock_lease_seconds: int = Field(default=43_200, ge=900, le=604_800)
    cluster_options: dict[str, Any] = Field(default_factory=dict)
    acknowledge: tuple[Acknowledgment, ...] = ()

    @model_validator(mode="after")
    def _options(self) -> FleetUpgradeInput:
        if not self.clusters and self.selector is None:
            raise ValueError("give clusters[] or a selector")
        unknown = sorted(set(self.cluster_options) - set(CLUSTER_OPTIONS))
        if unknown:
            raise ValueError(f"clusterOptions does not take {', '.join(unknown)}")
        return self


class FleetRequest(StateModel):
    """ValidateFleetInput's output: the validated input and the fleet execution's identity."""

    run: RunRef
    fleet: FleetUpgradeInput


class FleetSettings(StateModel):
    """What every wave and cluster iteration needs from the fleet input."""

    mode: Literal["upgrade", "plan"]
    to_version: str
    outside_window: Literal["wait", "skip"]
    lock_lease_seconds: int
    cluster_state_machine_arn: str


class PlannedCluster(StateModel):
    key: str
    cluster: ClusterRef
    from_version: str
    to_version: str
    child_name: str = Field(max_length=80, pattern=r"^[A-Za-z0-9_-]+$")
    child_input: dict[str, Any]
    maintenance_window: MaintenanceWindow | None = None


class PlannedWave(StateModel):
    index: int = Field(ge=0)
    name: str
    canary: bool
    clusters: tuple[PlannedCluster, ...]
    max_concurrency: int = Field(ge=1, le=40)
    failure_tolerance: int = Field(ge=0)  # resolved to a count of clusters
    soak_seconds: int = Field(ge=0)  # after this wave; 0 for the last one
    approval: bool


class FleetPlan(StateModel):
    run: RunRef
    settings: FleetSettings
    waves: tuple[PlannedWave, ...]


# --- per cluster, as the cluster iterations end -------------------------------------------------------
ClusterStatus = Literal["SUCCEEDED", "FAILED", "BLOCKED", "SKIPPED", "PLANNED", "NOT_STARTED"]


class WindowRequest(StateModel):
    target: PlannedCluster
    settings: FleetSettings
    now: str  # $$.State.EnteredTime (ISO 8601)


class WindowDecision(StateModel):
    action: Literal["proceed", "wait", "skip"]
    wait_seconds: int = Field(default=0, ge=0)
    opens_at: str | None = None


class LockRequest(StateModel):
    run: RunRef
    target: PlannedCluster
    settings: FleetSettings | None = None
    now: str | None = None


class LeaseResult(StateModel):
    key: str
    owner: str
    acquired_at: int
    expires_at: int


class ReleaseResult(StateModel):
    key: str
    released: bool


class ClusterOutcome(StateModel):
    """One cluster's end in a wave, as the report shows it."""

    key: str
    account_id: str
    region: str
    name: str
    wave: str
    status: ClusterStatus
    reason: str | None = None  # SKIPPED: locked | outsideWindow; PLANNED: what the read-only checks found
    error: str | None = None
    message: str | None = None
    details: dict[str, Any] | None = None
    child_execution_arn: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class Approval(StateModel):
    required: bool
    status: Literal["NOT_REQUIRED", "APPROVED", "REJECTED", "SKIPPED_IN_PLAN"]
    by: str | None = None
    reason: str | None = None


class WaveRequest(StateModel):
    """EvaluateWave's input: the wave, what each cluster iteration ended with, the approval's answer."""

    run: RunRef
    settings: FleetSettings
    wave: PlannedWave
    started_at: str
    finished_at: str
    outcomes: tuple[dict[str, Any], ...] = ()
    approval: dict[str, Any] | None = None  # SendTaskSuccess's output: {"approvedBy", "reason"}
    rejection: dict[str, Any] | None = None  # the approval task's Catch: {"Error", "Cause"}


WaveOutcome = Literal["SUCCEEDED", "TOLERATED", "STOPPED", "REJECTED", "PLANNED", "NOT_STARTED"]


class WaveRecord(StateModel):
    index: int
    name: str
    canary: bool
    clusters: tuple[str, ...]
    started_at: str | None = None
    finished_at: str | None = None
    outcome: WaveOutcome
    approval: Approval
    failed: int = 0
    failure_tolerance: int = 0
    cluster_outcomes: tuple[ClusterOutcome, ...] = ()


class WaveSummary(StateModel):
    index: int
    name: str
    outcome: WaveOutcome
    failed: int
    failure_tolerance: int


class ApprovalRequest(StateModel):
    run: RunRef
    wave: PlannedWave
    task_token: str
    requested_at: str


class ApprovalRequested(StateModel):
    key: str
    wave: str


class ReportRequest(StateModel):
    run: RunRef
    plan: FleetPlan
    stopped: dict[str, Any] | None = None  # the waves Map's Catch: {"Error", "Cause"}


class ReportResult(StateModel):
    outcome: Literal["SUCCEEDED", "SUCCEEDED_WITH_FAILURES", "STOPPED", "PLANNED"]
    stopped_by: str | None = None
    counts: dict[str, int]
    bucket: str
    json_key: str
    markdown_key: str
