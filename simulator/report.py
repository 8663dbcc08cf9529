"""The fleet report: ``fleet-report.json`` (schema in docs/report-schema.md), its Markdown rendering and
its HTML page (upgrader.fleet.html: the timeline, outcomes and findings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upgrader.fleet.html import cluster_phases, render_html

from simulator.simulation import ClusterRun, Simulation

if TYPE_CHECKING:
    from simulator.fleet import FleetRun

SCHEMA_VERSION = 1
# Public prices (us-east-1): Step Functions Standard $0.025 per 1,000 state transitions,
# Lambda $0.20 per million requests (compute time is reported separately, not priced here).
USD_PER_TRANSITION = 0.025 / 1000
USD_PER_INVOCATION = 0.20 / 1_000_000


def _cluster_entry(run: ClusterRun) -> dict[str, Any]:
    result = run.result
    entry: dict[str, Any] = {
        "account": run.account.id,
        "region": run.cluster.region,
        "name": run.cluster.name,
        "status": run.status,
        "fromVersion": run.execution_input["fromVersion"],
        "toVersion": run.execution_input["toVersion"],
        "executionName": result.name,
        "virtualDurationSeconds": round(result.virtual_duration_seconds, 3),
        "stateTransitions": result.state_transitions,
        "lambdaInvocations": result.lambda_invocations,
        "retries": result.retries,
        "before": run.before,
        "after": run.after,
        "invariants": run.invariants,
        "nodegroups": run.nodegroups,
        "nodes": run.nodes,
    }
    failure = run.failure()
    if failure:
        entry["failure"] = failure
    if run.readiness is not None:
        entry["readiness"] = readiness_entry(run.readiness)
    if run.upgrades:
        last = run.upgrades[-1]
        entry["upgrade"] = {
            "steps": [f"{u['fromVersion']} -> {u['toVersion']}" for u in run.upgrades],
            "strategy": last["strategy"],
            "controlPlane": {
                "from": run.upgrades[0]["controlPlane"]["from"],
                "to": last["controlPlane"]["to"],
            },
            "addons": [
                {"name": a["name"], "from": a["from"], "to": a["to"], "action": a["action"]}
                for a in _chain_addons(run.upgrades)
            ],
            "nodegroups": last["nodegroups"],
            "selfManagedAddons": last["selfManagedAddons"],
            "verification": last["verification"],
        }
    return entry


def _chain_addons(upgrades: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each add-on from its version before the first step to its version after the last."""
    first = {a["name"]: a for a in upgrades[0]["addons"]}
    return [{**a, "from": first.get(a["name"], a)["from"]} for a in upgrades[-1]["addons"]]


def readiness_entry(document: dict[str, Any]) -> dict[str, Any]:
    """The readiness gate's verdict for one cluster, from ReadinessCheck's readiness.json."""
    gate = document["gate"]
    return {
        "passed": gate["passed"],
        "counts": document["counts"],
        "blockingRules": gate["blockingRules"],
        "unacknowledgedBlockingRules": gate["unacknowledgedBlockingRules"],
        "acknowledged": [{"rule": a["rule"], "reason": a["reason"]} for a in gate["acknowledged"]],
        "unmatchedAcknowledgments": [a["rule"] for a in gate["unmatchedAcknowledgments"]],
        "notEvaluated": len(document["notEvaluated"]),
        "unreadableKinds": sorted(document["inventory"]["unreadable"]),
        "blockingFindings": document["blockingFindings"],
        "report": document["report"],
    }


def finding_line(finding: dict[str, Any]) -> str:
    """``DS001 DaemonSet logging/fluentd: spec.template.spec.volumes[0].hostPath.path = /var/run/docker.sock``"""
    where = (
        f"{finding['namespace']}/{finding.get('name', '')}"
        if finding.get("namespace")
        else finding.get("name", "")
    )
    line = f"{finding['rule']} {finding['kind']} {where}".rstrip()
    if finding.get("path"):
        line += f": {finding['path']}"
        if finding.get("value") is not None:
            line += f" = {finding['value']}"
    elif finding.get("value") is not None:
        line += f": {finding['value']}"
    return line


def build_report(
    simulation: Simulation, runs: list[ClusterRun], fleet: FleetRun | None = None
) -> dict[str, Any]:
    """``fleet``: the runs are the children of this fleet execution (``fleetctl demo``); the report then
    has the fleet's ``waves[]`` and outcome, and each cluster its wave, times and ``timeline``."""
    clusters = [_cluster_entry(run) for run in runs]
    if fleet is not None and fleet.report is not None:
        by_key = {c["key"]: c for c in fleet.report["clusters"]}
        for entry, run in zip(clusters, runs, strict=True):
            key = f"{entry['account']}/{entry['region']}/{entry['name']}"
            recorded = by_key.get(key, {})
            entry.update(
                key=key,
                wave=recorded.get("wave"),
                startedAt=recorded.get("startedAt"),
                finishedAt=recorded.get("finishedAt"),
                childExecutionArn=run.result.arn,
                timeline=cluster_phases(run.result.history),
            )
    transitions = sum(c["stateTransitions"] for c in clusters)
    invocations = sum(c["lambdaInvocations"] for c in clusters)
    statuses = [c["status"] for c in clusters]
    calls = simulation.faults.calls
    fleet_part: dict[str, Any] = {}
    if fleet is not None and fleet.report is not None:
        fleet_part = {
            "fleetExecution": {
                "name": fleet.result.name,
                "arn": fleet.result.arn,
                "status": fleet.result.status,
                "virtualDurationSeconds": round(fleet.result.virtual_duration_seconds, 3),
            },
            "outcome": fleet.report["outcome"],
            **({"stoppedBy": fleet.report["stoppedBy"]} if "stoppedBy" in fleet.report else {}),
            "waves": fleet.report["waves"],
            "events": len(fleet.events),
        }
    return {
        "schemaVersion": SCHEMA_VERSION,
        "scenario": simulation.scenario.name,
        "startedAt": simulation.clock.to_datetime(0).isoformat(),
        "finishedAt": simulation.clock.datetime().isoformat(),
        "summary": {
            status.lower(): statuses.count(status)
            for status in ("SUCCEEDED", "FAILED", "BLOCKED", "SKIPPED", "PLANNED")
        }
        | {"total": len(clusters)},
        "clusters": clusters,
        "cost": {
            "stateTransitions": transitions,
            "lambdaInvocations": invocations,
            "estimatedUsd": round(transitions * USD_PER_TRANSITION + invocations * USD_PER_INVOCATION, 6),
        },
        **fleet_part,
        # The run's virtual time: the fleet execution's (waves, soaks, clusters side by side), or the sum of
        # the clusters' when they ran one after another (fleetctl simulate).
        "virtualDurationSeconds": fleet_part["fleetExecution"]["virtualDurationSeconds"]
        if fleet_part
        else round(sum(c["virtualDurationSeconds"] for c in clusters), 3),
        "invariants": {
            key: sum(c["invariants"][key] for c in clusters)
            for key in ("podsLost", "pdbViolations", "unexpectedDeletions")
        }
        | {"mutatingCalls": [m for c in clusters for m in c["invariants"]["mutatingCalls"]]},
        "awsCalls": {
            "total": len(calls),
            "throttled": sum(1 for c in calls if c.throttled),
            "mutatingCalls": [
                {
                    "step": c.step,
                    "call": f"{c.service}:{c.operation}",
                    "account": c.account,
                    "region": c.region,
                    "at": round(c.at, 3),
                }
                for c in simulation.faults.mutating_calls()
            ],
        },
    }


def render_markdown(report: dict[str, Any]) -> str:
    summary = report["summary"]
    lines = [
        f"# Fleet report: {report['scenario']}",
        "",
        f"{summary['total']} cluster(s): {summary['succeeded']} succeeded, {summary['failed']} failed, "
        f"{summary['blocked']} blocked, {summary['skipped']} skipped, {summary['planned']} planned.",
        f"Virtual time {report['virtualDurationSeconds']:.0f} s; {report['cost']['stateTransitions']} state "
        f"transitions, {report['cost']['lambdaInvocations']} Lambda invocations "
        f"(about ${report['cost']['estimatedUsd']:.4f}).",
        "",
    ]
    if report.get("waves"):
        lines += [
            "## Waves",
            "",
            "| # | Wave | Clusters | Started | Finished | Outcome | Failed / tolerated |",
        ]
        lines += ["|---|---|---|---|---|---|---|"]
        lines += [
            f"| {w['index']} | {w['name']} | {len(w['clusters'])} | {w['startedAt'] or '-'} | "
            f"{w['finishedAt'] or '-'} | {w['outcome']} | {w['failed']} / {w['failureTolerance']} |"
            for w in report["waves"]
        ]
        lines += ["", f"Fleet outcome: **{report['outcome']}**.", ""]
    lines += [
        "| Account | Region | Cluster | Status | Version before | Version after | Virtual time | Transitions |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in report["clusters"]:
        lines.append(
            f"| {c['account']} | {c['region']} | {c['name']} | {c['status']} | {c['before']['version']} | "
            f"{c['after']['version']} | {c['virtualDurationSeconds']:.0f} s | {c['stateTransitions']} |"
        )
    lines += ["", "## Nodes before and after", ""]
    lines += [
        "| Cluster | Node group | Nodes (Ready) before | Runtimes before | Nodes (Ready) after | Runtimes after |"
    ]
    lines += ["|---|---|---|---|---|---|"]
    for c in report["clusters"]:
        before = c["before"].get("kubernetes", {}).get("nodes", {}).get("byNodegroup", {})
        after = c["after"].get("kubernetes", {}).get("nodes", {}).get("byNodegroup", {})
        for group in sorted(set(before) | set(after)):
            b, a = before.get(group, {}), after.get(group, {})
            lines.append(
                f"| {c['name']} | {group or '(none)'} | {b.get('nodes', 0)} ({b.get('ready', 0)}) | "
                f"{', '.join(sorted(b.get('runtimes', {}))) or '-'} | {a.get('nodes', 0)} ({a.get('ready', 0)}) | "
                f"{', '.join(sorted(a.get('runtimes', {}))) or '-'} |"
            )
    migrated = [(c, g) for c in report["clusters"] for g in c.get("nodegroups", [])]
    if migrated:
        lines += ["", "## Node groups migrated to containerd", ""]
        lines += [
            "| Cluster | Old group | New group | Status | Nodes drained | Pods evicted | Blocked on budgets |"
        ]
        lines += ["|---|---|---|---|---|---|---|"]
        for c, g in migrated:
            lines.append(
                f"| {c['name']} | {g['old']} | {g['new']} | {g['status']} | {g['nodesDrained']} of "
                f"{g['nodesTotal']} | {g['podsEvicted']} | {g['pdbBlockedSeconds']} s |"
            )
    upgraded = [c for c in report["clusters"] if "upgrade" in c]
    if upgraded:
        lines += ["", "## Add-ons and node versions (verified after the control plane)", ""]
        lines += ["| Cluster | Steps | Add-ons (before -> after) | Node groups on | Nodes verified |"]
        lines += ["|---|---|---|---|---|"]
        for c in upgraded:
            u = c["upgrade"]
            addons = "; ".join(f"{a['name']} {a['from']} -> {a['to']}" for a in u["addons"]) or "-"
            groups = ", ".join(
                f"{g['replacedBy'] or g['name']} {(g['after'] or {}).get('version', '-')}"
                for g in u["nodegroups"]
            )
            lines.append(
                f"| {c['name']} | {', '.join(u['steps'])} ({u['strategy']}) | {addons} | {groups or '-'} | "
                f"{u['verification']['nodes']} |"
            )
    scanned = [c for c in report["clusters"] if "readiness" in c]
    if scanned:
        lines += ["", "## Readiness gate", ""]
        lines += ["| Cluster | Gate | Blocking | Warning | Info | Acknowledged | Not scanned | Report |"]
        lines += ["|---|---|---|---|---|---|---|---|"]
        for c in scanned:
            r = c["readiness"]
            gate = "passed" if r["passed"] else f"BLOCKED ({', '.join(r['unacknowledgedBlockingRules'])})"
            acknowledged = ", ".join(a["rule"] for a in r["acknowledged"]) or "-"
            lines.append(
                f"| {c['name']} | {gate} | {r['counts']['blocking']} | {r['counts']['warning']} | "
                f"{r['counts']['info']} | {acknowledged} | {', '.join(r['unreadableKinds']) or '-'} | "
                f"`s3://{r['report']['bucket']}/{r['report']['markdownKey']}` |"
            )
    unmigratable = [
        c for c in report["clusters"] if c.get("failure", {}).get("error") == "UnmigratableDockerNodes"
    ]
    if unmigratable:
        lines += ["", "## Blocked by Docker nodes the workflow does not replace", ""]
        for c in unmigratable:
            lines.append(f"- **{c['name']}**: nothing was changed. Replace these first:")
            lines += [
                f"  - {b['nodegroup']} ({b['management']}): {b['reason']}"
                for b in c["failure"]["details"].get("blocking", [])
            ]
    blocked = [c for c in report["clusters"] if c["status"] == "BLOCKED" and c not in unmigratable]
    if blocked:
        lines += ["", "## Blocked by the readiness gate", ""]
        for c in blocked:
            r = c.get("readiness") or {}
            lines.append(f"- **{c['name']}**: nothing was changed. Blocking findings:")
            findings = r.get("blockingFindings") or c["failure"]["details"].get("blocking", [])
            lines += [
                f"  - `{finding_line(f)}`" + (" (acknowledged)" if f.get("acknowledged") else "")
                for f in findings
            ]
    failures = [c for c in report["clusters"] if "failure" in c and c["status"] != "BLOCKED"]
    if failures:
        lines += ["", "## Failures", ""]
        for c in failures:
            f = c["failure"]
            lines.append(f"- **{c['name']}**: `{f['error']}`: {f['message']}")
            if f["details"]:
                lines.append(f"  - details: `{json.dumps(f['details'], sort_keys=True)}`")
    inv = report["invariants"]
    lines += [
        "",
        "## Invariants",
        "",
        f"Pods lost: {inv['podsLost']}. PDB violations: {inv['pdbViolations']}. "
        f"Unexpected deletions: {inv['unexpectedDeletions']}. Mutating calls: {len(inv['mutatingCalls'])}.",
    ]
    mutating = report["awsCalls"]["mutatingCalls"]
    lines += ["", f"## Mutating AWS calls ({len(mutating)})", ""]
    lines += [
        f"- t+{m['at']:.0f}s {m['call']} in {m['account']}/{m['region']} ({m['step']})" for m in mutating
    ]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: Path, *, with_html: bool = False) -> tuple[Path, ...]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "fleet-report.json", out_dir / "fleet-report.md"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    md_path.write_text(render_markdown(report))
    if not with_html:
        return json_path, md_path
    html_path = out_dir / "fleet-report.html"
    html_path.write_text(render_html(report))
    return json_path, md_path, html_path
