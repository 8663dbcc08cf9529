"""The live readiness scan: the workflow's gate before anything in a cluster changes.

1. :func:`collect_inventory` fills the rule engine's :class:`~upgrader.readiness.Inventory` from the
   gateways: DescribeCluster, node groups (and their launch templates' user data), the cluster's
   subnets, add-ons and their versions for the target, upgrade insights, and every object of
   :data:`SCAN_KINDS` (one paginated list per kind). Objects that vanish between a list and a describe
   are skipped and recorded; a kind the cluster will not let us list is recorded as unreadable (the
   engine turns it into an SC001 warning). Secret values never enter the inventory.
2. :func:`~upgrader.readiness.evaluate` runs the rule packs for ``fromVersion -> toVersion``.
3. :func:`decide` is the gate: every rule with a blocking finding must be acknowledged in the execution
   input (``acknowledge: [{rule, reason}]``), or the cluster stops.
4. :func:`check_readiness` writes the full report (JSON and Markdown) to the reports bucket, then
   returns a small :class:`~upgrader.models.ReadinessResult` or raises
   :class:`~upgrader.errors.ReadinessBlocked` (whose details carry the blocking rules and objects and
   the report's keys).

No boto3 or kubernetes import: this module talks to the gateway interfaces only.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from upgrader.errors import AwsResourceNotFound, ReadinessBlocked
from upgrader.gateways.ec2 import Ec2Gateway
from upgrader.gateways.eks import ClusterInfo, EksGateway
from upgrader.gateways.kubernetes import KubernetesGateway
from upgrader.gateways.reports import ReportStore
from upgrader.models import (
    Acknowledgment,
    ClusterRef,
    ClusterUpgradeRequest,
    ReadinessResult,
    ReportLocation,
    RunRef,
    SeverityCounts,
)
from upgrader.readiness import REGISTRY, SEVERITIES, Finding, Inventory, PackRegistry, ScanResult, evaluate
from upgrader.readiness.dockershim import DOCKERSHIM_PACK
from upgrader.readiness.objects import render_path
from upgrader.redaction import without_secret_values

# Every kind a rule reads (pods and their controllers, budgets, autoscalers, configuration that log
# collectors and service accounts keep), plus namespaces and nodes.
SCAN_KINDS: tuple[str, ...] = (
    "Namespace",
    "Node",
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicationController",
    "ConfigMap",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "HorizontalPodAutoscaler",
)
REPORT_SCHEMA_VERSION = 1
NOT_PASSING_INSIGHTS = frozenset({"ERROR", "WARNING", "UNKNOWN"})  # described for their details
MAX_FINDINGS_IN_ERROR = 20  # a Step Functions cause holds 32 KiB; the report holds everything
MAX_VALUE_CHARS = 200


def report_location(bucket: str, run: RunRef, cluster: ClusterRef) -> ReportLocation:
    """Deterministic per execution and cluster: a retried step overwrites its own report."""
    prefix = f"reports/{run.execution_name}/{cluster.account_id}/{cluster.region}/{cluster.name}/readiness"
    return ReportLocation(bucket=bucket, json_key=f"{prefix}.json", markdown_key=f"{prefix}.md")


# --- 1. the inventory ------------------------------------------------------------------------------
@dataclass
class CollectedInventory:
    inventory: Inventory
    skipped: list[dict[str, str]] = field(default_factory=list)  # vanished mid-scan: kind, name, reason
    restarted_kinds: list[str] = field(default_factory=list)  # lists started over after a 410


def collect_inventory(
    cluster_name: str,
    to_version: str,
    *,
    eks: EksGateway,
    ec2: Ec2Gateway,
    kubernetes: Callable[[ClusterInfo], KubernetesGateway],
) -> CollectedInventory:
    info = eks.describe_cluster(cluster_name)
    skipped: list[dict[str, str]] = []

    def gone(kind: str, name: str, error: AwsResourceNotFound) -> None:
        skipped.append({"kind": kind, "name": name, "reason": error.message})

    nodegroups: list[dict[str, Any]] = []
    for name in eks.list_nodegroups(cluster_name):
        try:
            nodegroups.append(eks.describe_nodegroup(cluster_name, name))
        except AwsResourceNotFound as error:  # deleted since the list: nothing left to upgrade
            gone("Nodegroup", name, error)

    user_data: dict[str, str] = {}
    for group in nodegroups:
        template = group.get("launchTemplate") or {}
        if not template:
            continue
        name = str(group.get("nodegroupName", ""))
        try:
            text = ec2.launch_template_user_data(
                template_id=template.get("id"),
                template_name=template.get("name"),
                version=template.get("version"),
            )
        except AwsResourceNotFound as error:
            gone("LaunchTemplate", str(template.get("id") or template.get("name")), error)
            continue
        if text is not None:
            user_data[name] = text

    subnets: list[dict[str, Any]] | None
    try:
        subnets = ec2.describe_subnets(info.subnet_ids)
    except AwsResourceNotFound as error:  # GN004 is then listed as not evaluated
        subnets = None
        gone("Subnet", ",".join(info.subnet_ids), error)

    addons: list[dict[str, Any]] = []
    for name in eks.list_addons(cluster_name):
        try:
            addons.append(eks.describe_addon(cluster_name, name))
        except AwsResourceNotFound as error:
            gone("Addon", name, error)
    addon_versions: list[dict[str, Any]] = []
    for addon in addons:
        # AwsResourceNotFound: EKS knows no version of it at all; GN005 reports the add-on as having none.
        with contextlib.suppress(AwsResourceNotFound):
            addon_versions.extend(eks.describe_addon_versions(str(addon.get("addonName")), to_version))

    insights: list[dict[str, Any]] = []
    for summary in eks.list_insights(cluster_name, to_version):
        status = str((summary.get("insightStatus") or {}).get("status", ""))
        if status not in NOT_PASSING_INSIGHTS:
            insights.append(summary)
            continue
        try:  # the recommendation and links are only in DescribeInsight
            insights.append(eks.describe_insight(cluster_name, str(summary.get("id"))))
        except AwsResourceNotFound:
            insights.append(summary)

    kube = kubernetes(info)
    objects: list[dict[str, Any]] = []
    collected: list[str] = []
    unreadable: dict[str, str] = {}
    restarted: list[str] = []
    for kind in SCAN_KINDS:
        outcome = kube.list_objects(kind)
        if outcome.restarted:
            restarted.append(kind)
        if not outcome.complete:
            unreadable[kind] = outcome.unreadable or "not readable"
            continue
        collected.append(kind)
        # The gateway already drops secret values; dropping them here too keeps the guarantee a
        # property of the domain, whatever gateway is plugged in.
        objects.extend(without_secret_values(obj) for obj in outcome.objects)

    inventory = Inventory(
        objects=objects,
        collected_kinds=collected,
        unreadable=unreadable,
        cluster=info.raw or {"name": info.name, "version": info.version, "status": info.status},
        nodegroups=nodegroups,
        launch_template_user_data=user_data,
        subnets=subnets,
        addons=addons,
        addon_versions=addon_versions,
        insights=insights,
    )
    return CollectedInventory(inventory, skipped, restarted)


# --- 2./3. the gate --------------------------------------------------------------------------------
@dataclass(frozen=True)
class GateDecision:
    blocking_rules: tuple[str, ...]  # rules with at least one blocking finding
    unacknowledged: tuple[str, ...]  # of those, the ones the input did not acknowledge
    acknowledged: tuple[Acknowledgment, ...]  # acknowledgments of rules that have findings
    unmatched: tuple[Acknowledgment, ...]  # acknowledgments of rules without any finding

    @property
    def passed(self) -> bool:
        return not self.unacknowledged


def decide(result: ScanResult, acknowledgments: Sequence[Acknowledgment]) -> GateDecision:
    """Blocking findings stop the cluster unless their rule is acknowledged (all of that rule's findings:
    an acknowledgment names a rule, not an object)."""
    by_rule = {ack.rule: ack for ack in acknowledgments}
    found = {finding.rule for finding in result.findings}
    blocking = sorted({f.rule for f in result.findings if f.severity == "blocking"})
    return GateDecision(
        blocking_rules=tuple(blocking),
        unacknowledged=tuple(rule for rule in blocking if rule not in by_rule),
        acknowledged=tuple(ack for ack in acknowledgments if ack.rule in found),
        unmatched=tuple(ack for ack in acknowledgments if ack.rule not in found),
    )


# --- 4. the report -----------------------------------------------------------------------------------
def _short(value: str | None, limit: int = MAX_VALUE_CHARS) -> str | None:
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


def finding_summary(finding: Finding) -> dict[str, Any]:
    """Rule, object, field path and value of a finding: what a reader needs to find it."""
    e = finding.evidence
    summary: dict[str, Any] = {
        "rule": finding.rule,
        "severity": finding.severity,
        "kind": e.kind,
        "namespace": e.namespace,
        "name": e.name,
        "path": e.field_path,
        "value": _short(e.value),
    }
    return {k: v for k, v in summary.items() if v not in (None, "")}


def counts_of(result: ScanResult) -> SeverityCounts:
    return SeverityCounts(**{severity: result.count(severity) for severity in SEVERITIES})


def report_document(
    request: ClusterUpgradeRequest,
    collected: CollectedInventory,
    result: ScanResult,
    decision: GateDecision,
    location: ReportLocation,
) -> dict[str, Any]:
    """The full report (``readiness.json``); :func:`render_markdown` renders the same document."""
    reasons = {ack.rule: ack.reason for ack in decision.acknowledged}
    findings = []
    for finding in result.findings:
        entry = finding.dump()
        if finding.rule in reasons:
            entry["acknowledgment"] = {"reason": reasons[finding.rule]}
        findings.append(entry)
    known_rules = {rule.id for rule in REGISTRY.rules()}
    inventory = collected.inventory
    return {
        "schemaVersion": REPORT_SCHEMA_VERSION,
        "cluster": {
            "accountId": request.cluster.account_id,
            "region": request.cluster.region,
            "name": request.cluster.name,
        },
        "run": request.run.dump(),
        "fromVersion": result.from_version,
        "toVersion": result.to_version,
        "report": location.dump(),
        "gate": {
            "passed": decision.passed,
            "blockingRules": list(decision.blocking_rules),
            "unacknowledgedBlockingRules": list(decision.unacknowledged),
            "acknowledged": [
                {"rule": ack.rule, "reason": ack.reason, "findings": len(result.by_rule(ack.rule))}
                for ack in decision.acknowledged
            ],
            "unmatchedAcknowledgments": [
                {"rule": ack.rule, "reason": ack.reason, "knownRule": ack.rule in known_rules}
                for ack in decision.unmatched
            ],
        },
        "counts": counts_of(result).dump(),
        "blockingFindings": [
            finding_summary(f) | ({"acknowledged": True} if f.rule in reasons else {})
            for f in result.findings
            if f.severity == "blocking"
        ],
        "findings": findings,
        "notEvaluated": [item.dump() for item in result.not_evaluated],
        "evaluated": list(result.evaluated),
        "inventory": {
            "objects": len(inventory.objects),
            "collectedKinds": list(inventory.collected_kinds or []),
            "unreadable": dict(inventory.unreadable),
            "restartedLists": list(collected.restarted_kinds),
            "nodegroups": len(inventory.nodegroups or []),
            "launchTemplates": len(inventory.launch_template_user_data or {}),
            "subnets": None if inventory.subnets is None else len(inventory.subnets),
            "addons": len(inventory.addons or []),
            "insights": len(inventory.insights or []),
            "skipped": list(collected.skipped),
        },
    }


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()
    return f"`{_short(text, 120)}`" if text else "-"


def _finding_table(findings: Iterable[dict[str, Any]], *, with_acknowledged: bool = False) -> list[str]:
    header = "| Rule | Object | Field | Value |" + (" Acknowledged |" if with_acknowledged else "")
    lines = [header, "|---|---|---|---|" + ("---|" if with_acknowledged else "")]
    for f in findings:
        e = f["evidence"]
        row = f"| {f['rule']} | {_where(e)} | {_cell(_path_of(e))} | {_cell(e.get('value'))} |"
        if with_acknowledged:
            row += " yes |" if "acknowledgment" in f else " no |"
        lines.append(row)
    return lines


def _path_of(evidence: dict[str, Any]) -> str:
    return render_path(evidence.get("path") or ())


def _where(evidence: dict[str, Any]) -> str:
    name = (
        f"{evidence['namespace']}/{evidence.get('name', '')}"
        if evidence.get("namespace")
        else evidence.get("name", "")
    )
    return f"{evidence['kind']} {name}".strip()


def render_markdown(document: dict[str, Any]) -> str:
    """``readiness.md``: the verdict first, then the blocking findings with their fixes."""
    cluster, gate, counts = document["cluster"], document["gate"], document["counts"]
    inventory = document["inventory"]
    title = f"{cluster['accountId']}/{cluster['region']}/{cluster['name']}"
    lines = [f"# Readiness: {title}, {document['fromVersion']} -> {document['toVersion']}", ""]
    if gate["passed"]:
        acknowledged = [a["rule"] for a in gate["acknowledged"] if a["rule"] in gate["blockingRules"]]
        verdict = "**Passed**: no blocking finding"
        if acknowledged:
            verdict = f"**Passed with acknowledgments**: blocking findings of {', '.join(acknowledged)} acknowledged"
        lines.append(verdict + ". The upgrade goes ahead.")
    else:
        rules = ", ".join(gate["unacknowledgedBlockingRules"])
        lines.append(
            f"**Blocked**: blocking findings of {rules} are not acknowledged. Nothing in the cluster was "
            "changed. Fix them (see below), or acknowledge a rule with a reason in the execution input "
            '(`"acknowledge": [{"rule": "...", "reason": "..."}]`), and run again.'
        )
    lines += [
        "",
        f"Execution `{document['run']['executionName']}`. {counts['blocking']} blocking, {counts['warning']} "
        f"warning, {counts['info']} info; {inventory['objects']} objects scanned; "
        f"{len(document['notEvaluated'])} rule(s) not evaluated.",
    ]
    findings = document["findings"]
    blocking = [f for f in findings if f["severity"] == "blocking"]
    if blocking:
        lines += ["", "## Blocking findings", "", *_finding_table(blocking, with_acknowledged=True), ""]
        for f in blocking:
            e = f["evidence"]
            lines += [
                f"- **{f['rule']} {f['title']}**: {_where(e)}, {_cell(_path_of(e))} = {_cell(e.get('value'))}",
                f"  - {f['message']}",
                f"  - Fix: {f['remediation']} ([reference]({f['reference']}))",
            ]
            if "acknowledgment" in f:
                lines.append(f"  - Acknowledged: {f['acknowledgment']['reason']}")
    if gate["acknowledged"]:
        lines += ["", "## Acknowledged rules", ""]
        lines += [f"- {a['rule']} ({a['findings']} finding(s)): {a['reason']}" for a in gate["acknowledged"]]
    if gate["unmatchedAcknowledgments"]:
        lines += ["", "## Acknowledgments without a finding", ""]
        for a in gate["unmatchedAcknowledgments"]:
            known = "" if a["knownRule"] else " (no such rule)"
            lines.append(f"- {a['rule']}{known}: {a['reason']}")
    for severity, heading in (("warning", "Warnings"), ("info", "Information")):
        chosen = [f for f in findings if f["severity"] == severity]
        if chosen:
            lines += ["", f"## {heading}", "", *_finding_table(chosen)]
    if inventory["unreadable"]:
        lines += ["", "## Kinds not scanned", ""]
        lines += [f"- {kind}: {reason}" for kind, reason in sorted(inventory["unreadable"].items())]
    if document["notEvaluated"]:
        lines += ["", "## Rules not evaluated", ""]
        lines += [
            f"- {item['rule']} {item['title']}: missing {', '.join(item['missing'])}"
            for item in document["notEvaluated"]
        ]
    if inventory["skipped"]:
        lines += ["", "## Gone during the scan", ""]
        lines += [f"- {s['kind']} {s['name']}: {s['reason']}" for s in inventory["skipped"]]
    return "\n".join(lines) + "\n"


# --- the step ------------------------------------------------------------------------------------------
def check_readiness(
    request: ClusterUpgradeRequest,
    *,
    eks: EksGateway,
    ec2: Ec2Gateway,
    kubernetes: Callable[[ClusterInfo], KubernetesGateway],
    store: ReportStore,
) -> ReadinessResult:
    location = report_location(store.bucket, request.run, request.cluster)
    collected = collect_inventory(
        request.cluster.name, request.to_version, eks=eks, ec2=ec2, kubernetes=kubernetes
    )
    result = evaluate(collected.inventory, request.from_version, request.to_version)
    decision = decide(result, request.acknowledge)
    document = report_document(request, collected, result, decision, location)
    store.put(location.json_key, json.dumps(document, indent=2).encode(), "application/json")
    store.put(location.markdown_key, render_markdown(document).encode(), "text/markdown; charset=utf-8")

    counts = counts_of(result)
    if not decision.passed and request.mode != "plan":
        unacknowledged = [
            f for f in result.findings if f.severity == "blocking" and f.rule in decision.unacknowledged
        ]
        raise ReadinessBlocked(
            f"cluster {request.cluster.name} is not ready for {request.to_version}: "
            f"{len(unacknowledged)} blocking finding(s) of {', '.join(decision.unacknowledged)} not acknowledged; "
            "nothing was changed",
            cluster=request.cluster.name,
            counts=counts.dump(),
            blockingRules=list(decision.unacknowledged),
            acknowledgedRules=[ack.rule for ack in decision.acknowledged],
            unmatchedAcknowledgments=[ack.rule for ack in decision.unmatched],
            blocking=[finding_summary(f) for f in unacknowledged[:MAX_FINDINGS_IN_ERROR]],
            blockingTotal=len(unacknowledged),
            notEvaluated=len(result.not_evaluated),
            unreadableKinds=sorted(collected.inventory.unreadable),
            report=location.dump(),
        )
    return ReadinessResult(
        counts=counts,
        blocking_rules=decision.blocking_rules,
        acknowledged_rules=tuple(ack.rule for ack in decision.acknowledged),
        unmatched_acknowledgments=tuple(ack.rule for ack in decision.unmatched),
        not_evaluated=len(result.not_evaluated),
        unreadable_kinds=tuple(sorted(collected.inventory.unreadable)),
        objects_scanned=result.objects_scanned,
        report=location,
        unacknowledged_rules=decision.unacknowledged,
    )


def dockershim_findings(inventory: Inventory, from_version: str, to_version: str) -> list[Finding]:
    """The dockershim pack alone, on a fresh inventory: what the post-upgrade verification re-checks."""
    registry = PackRegistry()
    registry.register(DOCKERSHIM_PACK)
    return list(evaluate(inventory, from_version, to_version, registry=registry).findings)
