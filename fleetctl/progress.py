"""A fleet execution's progress, read from what Step Functions records (no table or bucket needed).

The fleet history holds the plan (PlanFleetWaves' output: waves, cluster keys, child execution names), each
cluster iteration's states (their input carries ``target.key``), each wave's approval and evaluation, and
where WriteFleetReport wrote the report. A cluster whose child execution is running gets its current step
from the child's history (newest events first). Nothing here writes anything.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from upgrader.fleet.report import BLOCKING_ERRORS, plan_reason

# The cluster workflow's main steps in the order a runtime-first upgrade takes them
# (statemachines/cluster_upgrade.asl.json; a test checks each one is a state there): the progress bar
# of a running cluster is the share of these it has reached.
CLUSTER_MILESTONES = (
    "ValidateInput",
    "Preflight",
    "ReadinessCheck",
    "PlanNodegroupMigration",
    "PlanVersionUpdate",
    "MigrateNodegroups",
    "StartControlPlaneUpdate",
    "PollControlPlaneUpdate",
    "UpdateAddons",
    "UpdateNodegroupVersions",
    "VerifyUpgrade",
)
# Where a cluster iteration of the fleet workflow is, by the state it entered last.
ITERATION_STATUS = {
    "PlanOnly?": "STARTING",
    "CheckMaintenanceWindow": "STARTING",
    "WindowOpen?": "STARTING",
    "WaitForWindow": "WAITING_FOR_WINDOW",
    "AcquireClusterLock": "LOCKING",
    "UpgradeCluster": "RUNNING",
    "ReleaseClusterLock": "RELEASING_LOCK",
    "ReleaseAfterFailure": "RELEASING_LOCK",
    "PlanCluster": "PLANNING",
}
# The iteration's last state, and the status it records (statemachines/fleet_upgrade.asl.json).
OUTCOME_STATES = {
    "Upgraded": "SUCCEEDED",
    "ClusterFailed": "FAILED",
    "Locked": "SKIPPED",
    "OutsideWindow": "SKIPPED",
    "Planned": "PLANNED",
    "PlanFailed": "FAILED",
}
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "BLOCKED", "SKIPPED", "PLANNED", "NOT_STARTED"})
BAR_WIDTH = 20


@dataclass
class ClusterProgress:
    key: str
    wave: str
    child_name: str | None = None
    status: str = "PENDING"
    step: str | None = None  # the child's current step, while it runs
    detail: str | None = None  # why it was skipped, or its error
    child_arn: str | None = None

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def fraction(self) -> float:
        if self.done:
            return 1.0
        if self.step in CLUSTER_MILESTONES:
            return (CLUSTER_MILESTONES.index(self.step) + 1) / (len(CLUSTER_MILESTONES) + 1)
        return 0.0

    def line(self) -> str:
        """One line of the change log: what a reader of CI logs needs."""
        text = f"{self.key}: {self.status}"
        if self.step and not self.done:
            text += f" ({self.step})"
        if self.detail:
            text += f": {self.detail}"
        return text


@dataclass
class WaveProgress:
    index: int
    name: str
    status: str = "PENDING"  # RUNNING, AWAITING_APPROVAL, then EvaluateWave's outcome or REJECTED
    approval_requested_at: dt.datetime | None = None
    clusters: list[str] = field(default_factory=list)


@dataclass
class FleetProgress:
    execution_arn: str
    name: str
    status: str  # DescribeExecution: RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE
    error: str | None = None
    cause: str | None = None
    mode: str | None = None
    to_version: str | None = None
    cluster_state_machine_arn: str | None = None
    waves: list[WaveProgress] = field(default_factory=list)
    clusters: dict[str, ClusterProgress] = field(default_factory=dict)
    report: dict[str, Any] | None = None  # WriteFleetReport's result: outcome, counts, bucket, keys
    selected: list[str] | None = None  # the clusters a selector resolved to

    @property
    def running(self) -> bool:
        return self.status == "RUNNING"

    def pending_approvals(self) -> list[WaveProgress]:
        return [wave for wave in self.waves if wave.status == "AWAITING_APPROVAL"]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for cluster in self.clusters.values():
            counts[cluster.status] = counts.get(cluster.status, 0) + 1
        return dict(sorted(counts.items()))

    def finish_from_report(self, report: dict[str, Any]) -> None:
        """The fleet report is the last word on every cluster (BLOCKED, NOT_STARTED...)."""
        for entry in report.get("clusters", []):
            cluster = self.clusters.get(entry["key"])
            if cluster is None:
                continue
            cluster.status = entry["status"]
            cluster.step = None
            cluster.detail = entry.get("reason") or _error_text(entry.get("error"), entry.get("message"))


def _error_text(error: str | None, message: str | None) -> str | None:
    if not error:
        return None
    return f"{error}: {message}" if message else error


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _failure(output: dict[str, Any]) -> tuple[str, str | None]:
    """A ClusterFailed/PlanFailed output's error: the child's (its describe output is the sync:2 cause) or the
    Lambda's ({"errorType", "errorMessage"})."""
    failure = output.get("failure") or {}
    error, cause = failure.get("Error", "Failed"), _json(failure.get("Cause"))
    if isinstance(cause, dict):
        error = cause.get("error") or cause.get("errorType") or error
        message = cause.get("cause") or cause.get("errorMessage")
        parsed = _json(message) if isinstance(message, str) else None
        if isinstance(parsed, dict):  # a Lambda failure inside the child: its errorMessage
            message = parsed.get("errorMessage", message)
        return error, (message or "").split(" | ")[0] or None
    return error, failure.get("Cause")


def read(
    execution_arn: str,
    described: dict[str, Any],
    events: Iterable[dict[str, Any]],
    child_step: Callable[[str], str | None] | None = None,
) -> FleetProgress:
    """The fleet's progress from DescribeExecution, the history (oldest first) and, for each running child
    execution, ``child_step(arn)`` (its current step)."""
    progress = FleetProgress(
        execution_arn=execution_arn,
        name=described["name"],
        status=described["status"],
        error=described.get("error"),
        cause=described.get("cause"),
    )
    waves_by_name: dict[str, WaveProgress] = {}
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            _entered(progress, waves_by_name, details["name"], _json(details.get("input")) or {}, event)
        elif kind.endswith("StateExited"):
            details = event["stateExitedEventDetails"]
            _exited(progress, waves_by_name, details["name"], _json(details.get("output")) or {})
    if child_step is not None and progress.cluster_state_machine_arn:
        executions = progress.cluster_state_machine_arn.replace(":stateMachine:", ":execution:", 1)
        for cluster in progress.clusters.values():
            if cluster.status == "RUNNING" and cluster.child_name:
                cluster.child_arn = f"{executions}:{cluster.child_name}"
                cluster.step = child_step(cluster.child_arn)
    return progress


def _entered(
    progress: FleetProgress,
    waves: dict[str, WaveProgress],
    name: str,
    state_input: dict[str, Any],
    event: dict[str, Any],
) -> None:
    target = state_input.get("target") if isinstance(state_input, dict) else None
    if isinstance(target, dict) and target.get("key") in progress.clusters:
        cluster = progress.clusters[target["key"]]
        if name in ITERATION_STATUS:
            cluster.status = ITERATION_STATUS[name]
        return
    wave_name = (state_input.get("wave") or {}).get("name") if isinstance(state_input, dict) else None
    wave = waves.get(wave_name or "")
    if wave is None:
        return
    if name == "WaveStarted":
        wave.status = "RUNNING"
    elif name == "RequestWaveApproval":
        wave.status = "AWAITING_APPROVAL"
        wave.approval_requested_at = event.get("timestamp")
    elif name == "RecordRejection":
        wave.status = "REJECTED"


def _exited(
    progress: FleetProgress, waves: dict[str, WaveProgress], name: str, output: dict[str, Any]
) -> None:
    if name == "ValidateFleetInput" and (output.get("fleet") or {}).get("selector"):
        progress.selected = [
            f"{c['accountId']}/{c['region']}/{c['name']}" for c in output["fleet"].get("clusters", [])
        ]
    elif name == "PlanFleetWaves":
        settings = output.get("settings", {})
        progress.mode, progress.to_version = settings.get("mode"), settings.get("toVersion")
        progress.cluster_state_machine_arn = settings.get("clusterStateMachineArn")
        for wave in output.get("waves", []):
            keys = [c["key"] for c in wave["clusters"]]
            waves[wave["name"]] = WaveProgress(index=wave["index"], name=wave["name"], clusters=keys)
            progress.waves.append(waves[wave["name"]])
            for planned in wave["clusters"]:
                progress.clusters[planned["key"]] = ClusterProgress(
                    key=planned["key"], wave=wave["name"], child_name=planned.get("childName")
                )
    elif name in OUTCOME_STATES and output.get("key") in progress.clusters:
        cluster = progress.clusters[output["key"]]
        cluster.status, cluster.step = OUTCOME_STATES[name], None
        if name in ("Locked", "OutsideWindow"):
            cluster.detail = output.get("reason")
        elif name in ("ClusterFailed", "PlanFailed"):
            error, message = _failure(output)
            cluster.status = "BLOCKED" if error in BLOCKING_ERRORS else "FAILED"
            cluster.detail = _error_text(error, message)
        elif name == "Planned":
            cluster.detail = plan_reason((output.get("child") or {}).get("Plan") or {})
    elif name == "RequestWaveApproval":
        wave = waves.get((output.get("wave") or {}).get("name", ""))
        if wave is not None:
            wave.status = "RUNNING"
    elif name == "EvaluateWave":
        evaluation = output.get("evaluation") or {}
        wave = waves.get(evaluation.get("name", ""))
        if wave is not None:
            wave.status = evaluation.get("outcome", wave.status)
    elif name == "WriteFleetReport":
        progress.report = output.get("report")


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def render(progress: FleetProgress) -> str:
    """One frame of ``fleetctl watch``: the fleet, each wave, each cluster with its bar."""
    head = f"fleet {progress.name}"
    if progress.mode:
        head += f" ({progress.mode} to {progress.to_version})"
    head += f": {progress.status}"
    if progress.error:
        head += f" ({progress.error})"
    lines = [head]
    if progress.selected is not None:
        lines.append(f"selector chose {len(progress.selected)} cluster(s)")
    width = max((len(key) for key in progress.clusters), default=0)
    for wave in progress.waves:
        label = f"wave {wave.name}: {wave.status}"
        if wave.status == "AWAITING_APPROVAL":
            label += f" -- fleetctl approve {progress.name} --wave {wave.name}"
        lines.append(label)
        for key in wave.clusters:
            cluster = progress.clusters[key]
            text = f"  {key.ljust(width)} {bar(cluster.fraction)} {round(cluster.fraction * 100):3d}% {cluster.status}"
            if cluster.step and not cluster.done:
                text += f" {cluster.step}"
            if cluster.detail:
                text += f" ({cluster.detail})"
            lines.append(text)
    total = len(progress.clusters)
    if total:
        done = sum(1 for c in progress.clusters.values() if c.done)
        summary = ", ".join(f"{n} {status.lower()}" for status, n in progress.counts().items())
        lines.append(f"{done} of {total} cluster(s) done: {summary}")
    return "\n".join(lines)


def summary(progress: FleetProgress) -> dict[str, Any]:
    """``fleetctl status --json``."""
    return {
        "executionArn": progress.execution_arn,
        "name": progress.name,
        "status": progress.status,
        "error": progress.error,
        "mode": progress.mode,
        "toVersion": progress.to_version,
        "waves": [{"name": w.name, "status": w.status, "clusters": list(w.clusters)} for w in progress.waves],
        "clusters": [
            {"key": c.key, "wave": c.wave, "status": c.status, "step": c.step, "detail": c.detail}
            for c in progress.clusters.values()
        ],
        "counts": progress.counts(),
        "report": progress.report,
    }
