"""What a wave ended with (tolerance, approval) and the fleet report built from the waves' records.

Each wave's record is kept in the run table as the wave ends (EvaluateWave), so the fleet report can
be written even when the waves Map stops half-way (tolerance exceeded, approval rejected): the report
reads the records, not the Map's output, which a failed Map does not have.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Protocol

from upgrader.errors import AwsAccessDenied, FleetApprovalRejected, FleetToleranceExceeded, UpgradeError
from upgrader.fleet.html import cluster_phases, phase_seconds, render_html
from upgrader.fleet.models import (
    Approval,
    ClusterOutcome,
    FleetPlan,
    PlannedWave,
    ReportRequest,
    WaveRecord,
    WaveRequest,
)

# Errors with which the cluster workflow stops before changing anything: blocked, not failed.
BLOCKING_ERRORS = frozenset({"ReadinessBlocked", "UnmigratableDockerNodes", "NodegroupUpdateUnsupported"})
MAX_MESSAGE = 1000


class WaveRecords(Protocol):
    def put_wave(self, fleet: str, record: WaveRecord) -> None: ...

    def waves(self, fleet: str) -> list[WaveRecord]: ...


class ChildHistories(Protocol):
    """The child executions' histories (GetExecutionHistory events), for the report's timeline."""

    def history(self, execution_arn: str) -> list[dict[str, Any]]: ...


class ReportWriter(Protocol):
    @property
    def bucket(self) -> str: ...

    def put(self, key: str, body: bytes, content_type: str) -> None: ...


def _millis(value: Any) -> str | None:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC).isoformat().replace("+00:00", "Z")
    return None


def _lambda_message(cause: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """A Lambda failure's cause is ``{"errorMessage": "message | {details}", ...}``."""
    if not cause:
        return None, None
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause[:MAX_MESSAGE], None
    text = parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
    message, details = UpgradeError.parse_message(str(text))
    return message[:MAX_MESSAGE], details or None


def plan_reason(plan: dict[str, Any]) -> str:
    """One line for a planned cluster: what would stop it, else what the upgrade would do."""
    stops = list(plan.get("unacknowledgedRules") or [])
    unmigratable = plan.get("unmigratable") or []
    if stops or unmigratable:
        parts = [f"blocked by {', '.join(stops)}"] if stops else []
        if unmigratable:
            parts.append(f"{len(unmigratable)} Docker node group(s) the workflow cannot replace")
        return "; ".join(parts)
    twins = [g.get("new") for g in plan.get("replacements") or []]
    updates = [a.get("name") for a in plan.get("addons") or [] if a.get("action") == "update"]
    return (
        ("control plane already at target; " if plan.get("controlPlaneAtTarget") else "")
        + f"{len(twins)} containerd twin(s), {len(updates)} add-on update(s), "
        + f"{len(plan.get('nodegroupsToUpdate') or [])} node group(s) updated in place"
    )


def cluster_outcome(raw: dict[str, Any], wave: PlannedWave) -> ClusterOutcome:
    """One cluster iteration's result (the ASL's Pass states) as the report shows it."""
    target = next(c for c in wave.clusters if c.key == raw["key"])
    base: dict[str, Any] = {
        "key": target.key,
        "account_id": target.cluster.account_id,
        "region": target.cluster.region,
        "name": target.cluster.name,
        "wave": wave.name,
        "status": raw["status"],
        "reason": raw.get("reason"),
    }
    child = raw.get("child") or {}
    failure = raw.get("failure") or {}
    if failure.get("Error") == "States.TaskFailed":
        # startExecution.sync:2: the cause is the child's DescribeExecution output.
        try:
            child = json.loads(failure.get("Cause") or "{}")
        except ValueError:
            child = {}
        error = child.get("Error") or "States.TaskFailed"
        message, details = _lambda_message(child.get("Cause"))
        base.update(error=error, message=message, details=details)
        if error in BLOCKING_ERRORS:
            base["status"] = "BLOCKED"
    elif failure:
        message, details = _lambda_message(failure.get("Cause"))
        base.update(error=failure.get("Error"), message=message, details=details)
    if raw.get("status") == "PLANNED":
        plan = (raw.get("child") or {}).get("Plan") or {}
        base["details"] = plan
        base["reason"] = plan_reason(plan)
    if child:
        base.update(
            child_execution_arn=child.get("ExecutionArn"),
            started_at=_millis(child.get("StartDate")),
            finished_at=_millis(child.get("StopDate")),
        )
    return ClusterOutcome.model_validate(base)


def evaluate_wave(request: WaveRequest, records: WaveRecords) -> WaveRecord:
    """Record the wave; raise when the fleet must stop (rejected approval, tolerance exceeded)."""
    wave = request.wave
    if not wave.approval:
        approval = Approval(required=False, status="NOT_REQUIRED")
    elif request.settings.mode == "plan":
        approval = Approval(required=True, status="SKIPPED_IN_PLAN")
    elif request.rejection is not None:
        reason, _ = _lambda_message(request.rejection.get("Cause"))
        approval = Approval(required=True, status="REJECTED", reason=reason or request.rejection.get("Error"))
    else:
        answer = request.approval or {}
        approval = Approval(
            required=True, status="APPROVED", by=answer.get("approvedBy"), reason=answer.get("reason")
        )

    outcomes = tuple(cluster_outcome(raw, wave) for raw in request.outcomes)
    failed = sum(1 for outcome in outcomes if outcome.status in ("FAILED", "BLOCKED"))
    if approval.status == "REJECTED":
        verdict = "REJECTED"
        outcomes = tuple(_not_started(wave))
    elif request.settings.mode == "plan":
        verdict = "PLANNED"
    elif failed > wave.failure_tolerance:
        verdict = "STOPPED"
    else:
        verdict = "TOLERATED" if failed else "SUCCEEDED"
    record = WaveRecord(
        index=wave.index,
        name=wave.name,
        canary=wave.canary,
        clusters=tuple(c.key for c in wave.clusters),
        started_at=request.started_at,
        finished_at=request.finished_at,
        outcome=verdict,
        approval=approval,
        failed=failed,
        failure_tolerance=wave.failure_tolerance,
        cluster_outcomes=outcomes,
    )
    records.put_wave(request.run.execution_name, record)
    if verdict == "REJECTED":
        raise FleetApprovalRejected(
            f"wave {wave.name} was not approved: the fleet stops before it",
            wave=wave.name,
            reason=approval.reason,
        )
    if verdict == "STOPPED":
        raise FleetToleranceExceeded(
            f"wave {wave.name}: {failed} clusters failed or were blocked, {wave.failure_tolerance} tolerated"
            + (" (canary: none tolerated)" if wave.canary else ""),
            wave=wave.name,
            failed=failed,
            failureTolerance=wave.failure_tolerance,
            clusters=[o.key for o in outcomes if o.status in ("FAILED", "BLOCKED")],
        )
    return record


def _not_started(wave: PlannedWave) -> list[ClusterOutcome]:
    return [
        ClusterOutcome(
            key=c.key,
            account_id=c.cluster.account_id,
            region=c.cluster.region,
            name=c.cluster.name,
            wave=wave.name,
            status="NOT_STARTED",
        )
        for c in wave.clusters
    ]


def fleet_report(request: ReportRequest, records: list[WaveRecord]) -> dict[str, Any]:
    plan: FleetPlan = request.plan
    by_index = {record.index: record for record in records}
    waves: list[WaveRecord] = []
    for wave in plan.waves:
        waves.append(
            by_index.get(wave.index)
            or WaveRecord(
                index=wave.index,
                name=wave.name,
                canary=wave.canary,
                clusters=tuple(c.key for c in wave.clusters),
                outcome="NOT_STARTED",
                approval=Approval(
                    required=wave.approval, status="NOT_REQUIRED" if not wave.approval else "SKIPPED_IN_PLAN"
                )
                if plan.settings.mode == "plan"
                else Approval(required=wave.approval, status="NOT_REQUIRED"),
                failure_tolerance=wave.failure_tolerance,
                cluster_outcomes=tuple(_not_started(wave)),
            )
        )
    clusters = [outcome for record in waves for outcome in record.cluster_outcomes]
    counts: dict[str, int] = {}
    for outcome in clusters:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    stopped_by = None
    if request.stopped:
        stopped_by = request.stopped.get("Error")
        outcome = "STOPPED"
    elif plan.settings.mode == "plan":
        outcome = "PLANNED"
    elif counts.get("FAILED") or counts.get("BLOCKED"):
        outcome = "SUCCEEDED_WITH_FAILURES"
    else:
        outcome = "SUCCEEDED"
    stop_message = _lambda_message(request.stopped.get("Cause"))[0] if request.stopped else None
    return {
        "fleet": request.run.execution_name,
        "executionId": request.run.execution_id,
        "mode": plan.settings.mode,
        "toVersion": plan.settings.to_version,
        "outcome": outcome,
        **({"stoppedBy": {"error": stopped_by, "message": stop_message}} if stopped_by else {}),
        "counts": counts,
        "waves": [
            {
                "name": w.name,
                "index": w.index,
                "canary": w.canary,
                "clusters": list(w.clusters),
                "startedAt": w.started_at,
                "finishedAt": w.finished_at,
                "outcome": w.outcome,
                "approval": w.approval.dump(),
                "failed": w.failed,
                "failureTolerance": w.failure_tolerance,
            }
            for w in waves
        ],
        "clusters": [c.dump() for c in clusters],
    }


def report_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Fleet upgrade {report['fleet']}",
        "",
        f"Mode **{report['mode']}**, target Kubernetes {report['toVersion']}: **{report['outcome']}**"
        + (
            f" (stopped by {report['stoppedBy']['error']}: {report['stoppedBy']['message']})"
            if "stoppedBy" in report
            else ""
        )
        + ".",
        "",
        "## Waves",
        "",
        "| # | Wave | Clusters | Started | Finished | Outcome | Failed / tolerated | Approval |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w in report["waves"]:
        approval = w["approval"]["status"] + (f" by {w['approval']['by']}" if w["approval"].get("by") else "")
        lines.append(
            f"| {w['index']} | {w['name']} | {len(w['clusters'])} | {w['startedAt'] or '-'} | {w['finishedAt'] or '-'} "
            f"| {w['outcome']} | {w['failed']} / {w['failureTolerance']} | {approval} |"
        )
    lines += [
        "",
        "## Clusters",
        "",
        "| Cluster | Wave | Status | Started | Finished | Detail |",
        "|---|---|---|---|---|---|",
    ]
    for c in report["clusters"]:
        detail = c.get("error") or c.get("reason") or ""
        if c.get("message"):
            detail += f": {c['message']}"
        lines.append(
            f"| {c['key']} | {c['wave']} | {c['status']} | {c.get('startedAt') or '-'} | {c.get('finishedAt') or '-'} "
            f"| {detail.replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


def report_keys(fleet: str) -> tuple[str, str, str]:
    prefix = f"reports/{fleet}/fleet-report"
    return f"{prefix}.json", f"{prefix}.md", f"{prefix}.html"


def add_timelines(report: dict[str, Any], histories: ChildHistories) -> None:
    """Each started cluster's phases (``timeline``), read from its child execution's history. Where the
    histories cannot be read (the role lacks states:GetExecutionHistory), the report says so in
    ``timelineUnavailable`` and the page draws each cluster's whole span only."""
    for cluster in report["clusters"]:
        if not cluster.get("childExecutionArn"):
            continue
        try:
            cluster["timeline"] = cluster_phases(histories.history(cluster["childExecutionArn"]))
        except AwsAccessDenied as error:
            report["timelineUnavailable"] = error.message
            for other in report["clusters"]:
                other.pop("timeline", None)
            return


def fleet_metrics(report: dict[str, Any]) -> list[tuple[str, str, float, dict[str, str]]]:
    """The report as CloudWatch metrics: ``(name, unit, value, extra dimensions)``. Counts of clusters
    upgraded, failed, blocked and skipped; each started cluster's duration; its seconds per phase of the
    cluster workflow (dimension ``Phase``) and its drain time (docs/events.md lists them)."""
    counts = report["counts"]
    found: list[tuple[str, str, float, dict[str, str]]] = [
        (name, "Count", float(counts.get(status, 0)), {})
        for name, status in (
            ("ClustersUpgraded", "SUCCEEDED"),
            ("ClustersFailed", "FAILED"),
            ("ClustersBlocked", "BLOCKED"),
            ("ClustersSkipped", "SKIPPED"),
        )
    ]
    for cluster in report["clusters"]:
        start, finish = cluster.get("startedAt"), cluster.get("finishedAt")
        if start and finish:
            seconds = (dt.datetime.fromisoformat(finish) - dt.datetime.fromisoformat(start)).total_seconds()
            found.append(("ClusterUpgradeSeconds", "Seconds", seconds, {}))
        if "timeline" in cluster:
            totals = phase_seconds(cluster["timeline"])
            found += [("PhaseSeconds", "Seconds", value, {"Phase": phase}) for phase, value in totals.items()]
            found.append(("DrainSeconds", "Seconds", totals.get("drain", 0.0), {}))
    return found


def write_report(
    request: ReportRequest,
    records: WaveRecords,
    writer: ReportWriter,
    histories: ChildHistories | None = None,
) -> dict[str, Any]:
    report = fleet_report(request, records.waves(request.run.execution_name))
    if histories is not None:
        add_timelines(report, histories)
    json_key, markdown_key, html_key = report_keys(request.run.execution_name)
    writer.put(json_key, json.dumps(report, indent=2, sort_keys=True).encode(), "application/json")
    writer.put(markdown_key, report_markdown(report).encode(), "text/markdown")
    writer.put(html_key, render_html(report).encode(), "text/html; charset=utf-8")
    return {
        "metrics": fleet_metrics(report),
        "htmlKey": html_key,
        "outcome": report["outcome"],
        "stoppedBy": report.get("stoppedBy", {}).get("error"),
        "counts": report["counts"],
        "bucket": writer.bucket,
        "jsonKey": json_key,
        "markdownKey": markdown_key,
    }
