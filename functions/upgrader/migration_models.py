"""Typed state models of the node group migration (blue/green to containerd).

Every state of the per-group iteration carries :class:`GroupRequest`: the run, the cluster, the
options, the planned group and whichever progress sections the steps so far have written. Each
step's output model has a ``summary`` (:class:`GroupSummary`): the report reads the newest one per
group from the execution's history, so a failed run still shows exactly where it stopped.
Payloads stay small: node names only for the batch being drained, blocking pods capped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from upgrader.models import ClusterRef, LockRef, MigrationOptions, RunRef, StateModel

MAX_LISTED = 50  # blocking pods / owners kept in the state (the totals are always exact)


# -- plan -------------------------------------------------------------------------------------------
class PlannedGroup(StateModel):
    old: str
    new: str
    phase: Literal["replace", "retire"] = "replace"  # retire: a resumed run found the old group DELETING
    nodes: int = 0
    runtime: str = ""


class SkippedNodes(StateModel):
    """Nodes this workflow does not replace, said out loud (never silently skipped)."""

    name: str
    management: Literal["managed", "self-managed", "karpenter", "fargate"]
    reason: str
    runtime: str = ""
    nodes: list[str] = Field(default_factory=list)
    severity: Literal["info", "warning"] = "warning"


class PlannedDeletion(StateModel):
    """Something a step declares it may delete, before it does (the simulator holds runs to it)."""

    kind: Literal["Nodegroup", "Pod"]
    name: str
    namespace: str | None = None


class MigrationPlan(StateModel):
    groups: list[PlannedGroup] = Field(default_factory=list)
    skipped: list[SkippedNodes] = Field(default_factory=list)
    # Node groups this run may delete: each old group once drained, each replacement if it never
    # becomes ready. Declared before any change.
    planned_deletions: list[PlannedDeletion] = Field(default_factory=list)
    # plan mode only: Docker nodes the workflow cannot replace (in upgrade mode UnmigratableDockerNodes)
    blocking: list[dict[str, Any]] = Field(default_factory=list)


# -- per group ----------------------------------------------------------------------------------------
GroupStatus = Literal[
    "planned", "creating", "ready", "draining", "drained", "retiring", "retired", "failed", "abandoned"
]


class GroupSummary(StateModel):
    old: str
    new: str
    status: GroupStatus
    nodes_total: int = 0
    nodes_drained: int = 0
    pods_evicted: int = 0
    pods_forced: int = 0
    pdb_blocked_seconds: int = 0


class ReplacementStatus(StateModel):
    nodegroup: str
    status: Literal["Creating", "Ready"]
    adopted: bool = False
    ami_type: str | None = None
    image_id: str | None = None
    launch_template_id: str | None = None
    launch_template_version: str | None = None
    desired_nodes: int = 0
    ready_nodes: int = 0
    warnings: list[str] = Field(default_factory=list)
    next_wait_seconds: int = Field(default=0, ge=0)
    waited_seconds: int = Field(default=0, ge=0)
    polls: int = Field(default=0, ge=0)
    summary: GroupSummary


class OwnerRef(StateModel):
    namespace: str
    kind: str
    name: str
    uid: str


class BlockingPod(StateModel):
    namespace: str
    name: str
    node: str
    reason: Literal["DisruptionBudget", "MultipleBudgets", "Throttled", "ReplacementNotReady", "Pending"]
    budget: str | None = None
    message: str = ""


DrainStatus = Literal["Cordoned", "Evicting", "Blocked", "WaitingForReplacements", "Drained"]


class DrainProgress(StateModel):
    status: DrainStatus
    nodes_total: int = 0
    nodes_drained: int = 0
    batch: list[str] = Field(default_factory=list)
    batch_waited_seconds: int = Field(default=0, ge=0)
    owners: list[OwnerRef] = Field(default_factory=list)  # controllers of the pods this batch evicted
    pods_evicted: int = 0
    pods_forced: int = 0
    pdb_blocked_seconds: int = 0
    blocking: list[BlockingPod] = Field(default_factory=list)
    blocking_total: int = 0
    blocked_polls: int = 0  # consecutive polls that found the batch blocked (the backoff's exponent)
    # Pacing (drain.py): the drain's clock (seconds waited since the drain began) at the newest
    # eviction whose replacements are not yet seen Ready, and how long the last wave's replacements
    # took to be Ready (0 until observed): the next wave's wait.
    in_flight_since: int | None = Field(default=None, ge=0)
    replacement_ready_seconds: int = Field(default=0, ge=0)
    # Pods without a controller the input opted to evict (evictPodsWithoutController): they will not
    # come back, and PrepareDrain says so before the first eviction.
    planned_deletions: list[PlannedDeletion] = Field(default_factory=list)
    next_wait_seconds: int = Field(default=0, ge=0)
    waited_seconds: int = Field(default=0, ge=0)
    polls: int = Field(default=0, ge=0)
    summary: GroupSummary


class DeletionProgress(StateModel):
    nodegroup: str
    status: Literal["NotEmpty", "Deleting", "Deleted"]
    next_wait_seconds: int = Field(default=0, ge=0)
    waited_seconds: int = Field(default=0, ge=0)
    polls: int = Field(default=0, ge=0)
    summary: GroupSummary


class CaughtError(StateModel):
    """What a Catch puts at its ResultPath (``Error``/``Cause``, capitalised as Step Functions writes)."""

    error: str = Field(alias="Error")
    cause: str = Field(default="", alias="Cause")


class GroupRequest(StateModel):
    """The state of one group's iteration (the Map's ItemSelector plus what the steps added)."""

    run: RunRef
    cluster: ClusterRef
    options: MigrationOptions = Field(default_factory=MigrationOptions)
    lock: LockRef = Field(default_factory=LockRef)
    group: PlannedGroup
    replacement: ReplacementStatus | None = None
    drain: DrainProgress | None = None
    deletion: DeletionProgress | None = None
    error: CaughtError | None = None


class MigrationFailure(StateModel):
    """The rollback's output, written over ``$.error``: the original error name, and a cause that
    says exactly where the migration stopped and what was rolled back."""

    error: str = Field(alias="Error")
    cause: str = Field(alias="Cause")
    summary: GroupSummary

    def dump(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
