"""State models of the version step after the node group migration: the plan (before snapshot, add-on
targets, node group updates, strategy estimates), the add-on and node group update loops, and the
post-upgrade verification. JSON uses camelCase like every state model (``models.py``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from upgrader.models import ClusterUpgradeRequest, ReportLocation, StateModel, Strategy


# -- the plan -------------------------------------------------------------------------------------------
class AddonState(StateModel):
    name: str
    version: str
    status: str = ""
    configured: bool = False  # configurationValues set on the add-on (kept by PRESERVE)


class NodegroupState(StateModel):
    name: str
    version: str
    ami_type: str = ""
    release_version: str | None = None
    launch_template: str | None = None  # "<id>:<version>"
    image_id: str | None = None
    status: str = ""
    desired: int = 0


class ClusterSnapshot(StateModel):
    """What the cluster runs, taken before the step changes anything (and again after it)."""

    control_plane: str
    addons: list[AddonState] = Field(default_factory=list)
    nodegroups: list[NodegroupState] = Field(default_factory=list)


AddonAction = Literal["update", "current", "skipped"]


class AddonPlan(StateModel):
    name: str
    current: str  # the installed version when planned
    target: str  # the default version for the target Kubernetes version (or the installed one)
    hops: list[str] = Field(default_factory=list)  # versions to apply in order, the last one == target
    action: AddonAction
    reason: str = ""


class SelfManagedAddon(StateModel):
    """A core add-on installed without EKS (its Kubernetes objects exist, the EKS add-on does not)."""

    name: str
    kind: str
    namespace: str
    object_name: str
    image: str
    recommended_version: str | None = None
    change: str  # the exact change a cluster owner has to make


class StrategyEstimate(StateModel):
    strategy: Strategy
    steps: list[str]
    expected_seconds: int
    node_rotations: int  # how many times a migrated workload moves to a new node
    extra_instance_hours: float  # instance-hours of replacement capacity running beside the old
    state_transitions: int  # expected Step Functions transitions (the bill: $0.025 per 1,000)
    lambda_invocations: int


class VersionPlan(StateModel):
    """PlanVersionUpdate's output (``$.versionPlan``). Small: the full plan is in the upgrade report."""

    from_version: str
    to_version: str
    strategy: Strategy
    control_plane_at_target: bool  # the control plane already runs toVersion (a rerun or an adopted update)
    before: ClusterSnapshot
    addons: list[AddonPlan] = Field(default_factory=list)
    self_managed_addons: list[SelfManagedAddon] = Field(default_factory=list)
    nodegroups_to_update: list[str] = Field(default_factory=list)  # in place, after the control plane
    strategies: list[StrategyEstimate] = Field(default_factory=list)


class VersionStepState(ClusterUpgradeRequest):
    """The whole execution state as the steps after the migration read it (unknown keys ignored)."""

    version_plan: VersionPlan
    nodegroup_plan: dict[str, Any] | None = None
    addon_updates: AddonUpdates | None = None
    nodegroup_updates: NodegroupUpdates | None = None
    verification: Verification | None = None


# -- the loops ------------------------------------------------------------------------------------------
LoopStatus = Literal["InProgress", "Done"]


class AddonProgress(StateModel):
    name: str
    from_version: str = Field(alias="from")
    to_version: str = Field(alias="to")
    current: str
    status: Literal["pending", "updating", "done", "skipped"]
    update_id: str | None = None
    hops_applied: int = 0


class AddonUpdates(StateModel):
    status: LoopStatus
    addons: list[AddonProgress] = Field(default_factory=list)
    next_wait_seconds: int = Field(default=0, ge=0)
    waited_seconds: int = Field(default=0, ge=0)
    polls: int = Field(default=0, ge=0)


class NodegroupProgress(StateModel):
    name: str
    from_version: str = Field(alias="from")
    to_version: str = Field(alias="to")
    update_id: str
    launch_template_version: str | None = None


class NodegroupUpdates(StateModel):
    status: LoopStatus
    current: NodegroupProgress | None = None  # the group being updated (one at a time)
    done: list[NodegroupProgress] = Field(default_factory=list)
    next_wait_seconds: int = Field(default=0, ge=0)
    waited_seconds: int = Field(default=0, ge=0)  # on the current group
    polls: int = Field(default=0, ge=0)


# -- verification ---------------------------------------------------------------------------------------
class Verification(StateModel):
    status: Literal["Settling", "Verified"]
    problems: list[str] = Field(default_factory=list)  # what is not yet as it must be (while settling)
    next_wait_seconds: int = Field(default=0, ge=0)
    waited_seconds: int = Field(default=0, ge=0)
    nodes: int = 0
    workloads: int = 0
    report: ReportLocation | None = None


VersionStepState.model_rebuild()
