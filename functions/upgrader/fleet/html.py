"""The fleet report as one self-contained HTML page: a Gantt-style timeline, the outcomes, the findings.

No script, no font, no URL: inline CSS and an inline SVG, so the page opens from S3, a mail attachment
or a laptop with no network. Every value is escaped (cluster names, messages and findings come from the
fleet and are hostile input). Written by hand: the page is one string template and an SVG of rectangles,
which no templating library would make shorter, and the Lambda layer stays free of another dependency.

The timeline's bars are phases of each cluster's child execution, read from its history
(:func:`cluster_phases`): every state entered lasts until the next one, consecutive states of one phase
are merged. The same phases give the step and drain durations the report's metrics publish.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping
from typing import Any

# Phases of the cluster workflow, in the order a run goes through them, with their bar colours.
PHASE_COLOURS: dict[str, str] = {
    "checks": "#4e79a7",
    "node group migration": "#f28e2b",
    "drain": "#e15759",
    "control plane": "#76b7b2",
    "add-ons": "#b07aa1",
    "node versions": "#edc948",
    "verification": "#59a14f",
}
WAVE_COLOUR = "#5b5b5b"
STATUS_CLASSES = {
    "SUCCEEDED": "ok",
    "PLANNED": "ok",
    "FAILED": "bad",
    "BLOCKED": "warn",
    "SKIPPED": "muted",
    "NOT_STARTED": "muted",
    "RUNNING": "muted",
    "TOLERATED": "warn",
    "SUCCEEDED_WITH_FAILURES": "warn",
    "STOPPED": "bad",
    "REJECTED": "bad",
}


def phase_of(state: str) -> str:
    """The phase a state of statemachines/cluster_upgrade.asl.json belongs to (by its name)."""
    if "Drain" in state:
        return "drain"
    if "NodegroupVersions" in state or "NodegroupsUpdated" in state:
        return "node versions"
    if any(word in state for word in ("Nodegroup", "Replacement", "Retir", "Migrat")):
        return "node group migration"
    if "ControlPlane" in state:
        return "control plane"
    if "Addon" in state:
        return "add-ons"
    if any(word in state for word in ("Verif", "Workloads", "VersionStep", "Upgraded")):
        return "verification"
    return "checks"


def _iso(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def cluster_phases(history: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[{phase, states, startedAt, finishedAt, seconds}]`` from a child execution's history events
    (GetExecutionHistory's shape: ``type``, ``timestamp``, ``stateEnteredEventDetails.name``)."""
    entered: list[tuple[dt.datetime, str]] = []
    end: dt.datetime | None = None
    for event in history:
        moment = _parse(event.get("timestamp"))
        if moment is None:
            continue
        end = moment if end is None or moment > end else end
        if str(event.get("type", "")).endswith("StateEntered"):
            name = str((event.get("stateEnteredEventDetails") or {}).get("name", ""))
            entered.append((moment, name))
    phases: list[dict[str, Any]] = []
    for index, (moment, name) in enumerate(entered):
        finish = entered[index + 1][0] if index + 1 < len(entered) else (end or moment)
        if finish <= moment:
            continue  # a Task of milliseconds or a Choice: nothing to draw, and it would split a phase
        phase = phase_of(name)
        if phases and phases[-1]["phase"] == phase:
            phases[-1]["_end"] = max(finish, phases[-1]["_end"])
            if name not in phases[-1]["states"]:
                phases[-1]["states"].append(name)
            continue
        phases.append({"phase": phase, "states": [name], "_start": moment, "_end": finish})
    return [
        {
            "phase": p["phase"],
            "states": p["states"],
            "startedAt": _iso(p["_start"]),
            "finishedAt": _iso(p["_end"]),
            "seconds": round((p["_end"] - p["_start"]).total_seconds(), 3),
        }
        for p in phases
    ]


def phase_seconds(phases: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Seconds spent in each phase (a phase may come back, e.g. drain between two groups)."""
    totals: dict[str, float] = {}
    for phase in phases:
        totals[phase["phase"]] = round(totals.get(phase["phase"], 0.0) + float(phase["seconds"]), 3)
    return totals


# --- rendering ----------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _status(value: Any) -> str:
    status = str(value or "")
    return f'<span class="st {STATUS_CLASSES.get(status, "muted")}">{_e(status)}</span>'


def _key(cluster: Mapping[str, Any]) -> str:
    if cluster.get("key"):
        return str(cluster["key"])
    return (
        f"{cluster.get('accountId') or cluster.get('account')}/{cluster.get('region')}/{cluster.get('name')}"
    )


def _failure(cluster: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(cluster.get("failure"), Mapping):
        return dict(cluster["failure"])
    if cluster.get("error"):
        return {
            "error": cluster.get("error"),
            "message": cluster.get("message"),
            "details": cluster.get("details"),
        }
    return {}


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


LABEL_WIDTH = 300
CHART_WIDTH = 860
ROW_HEIGHT = 22
AXIS_HEIGHT = 28


def timeline_svg(report: Mapping[str, Any]) -> str:
    """The Gantt chart: per wave a dark bar, under it one row per cluster with its phases."""
    waves = list(report.get("waves") or [])
    clusters = list(report.get("clusters") or [])
    by_wave: dict[str, list[Mapping[str, Any]]] = {}
    for cluster in clusters:
        by_wave.setdefault(str(cluster.get("wave") or ""), []).append(cluster)
    if not waves:
        waves = [{"name": name, "clusters": [_key(c) for c in members]} for name, members in by_wave.items()]
    moments: list[dt.datetime] = []
    for item in [*waves, *clusters]:
        moments += [m for m in (_parse(item.get("startedAt")), _parse(item.get("finishedAt"))) if m]
        for phase in item.get("timeline") or []:
            moments += [m for m in (_parse(phase["startedAt"]), _parse(phase["finishedAt"])) if m]
    rows = sum(1 + len(by_wave.get(str(w.get("name")), [])) for w in waves)
    height = AXIS_HEIGHT + rows * ROW_HEIGHT + 8
    width = LABEL_WIDTH + CHART_WIDTH + 20
    parts = [
        f'<svg id="timeline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Timeline of the fleet run">'
    ]
    if not moments:
        parts.append(f'<text x="10" y="20">{_e("No cluster started: nothing to draw.")}</text></svg>')
        return "".join(parts)
    origin, last = min(moments), max(moments)
    span = max((last - origin).total_seconds(), 1.0)

    def x(moment: dt.datetime | None) -> float:
        seconds = 0.0 if moment is None else (moment - origin).total_seconds()
        return round(LABEL_WIDTH + CHART_WIDTH * seconds / span, 2)

    step = next((s for s in (60, 300, 600, 900, 1800, 3600, 7200, 21600, 86400) if span / s <= 10), 86400 * 7)
    tick = 0
    while tick <= span:
        tx = round(LABEL_WIDTH + CHART_WIDTH * tick / span, 2)
        label = (origin + dt.timedelta(seconds=tick)).strftime("%H:%M")
        parts.append(f'<line x1="{tx}" y1="{AXIS_HEIGHT - 6}" x2="{tx}" y2="{height}" class="grid"/>')
        parts.append(f'<text x="{tx}" y="{AXIS_HEIGHT - 10}" class="tick">{_e(label)}</text>')
        tick += step
    y = AXIS_HEIGHT
    for wave in waves:
        start, finish = _parse(wave.get("startedAt")), _parse(wave.get("finishedAt"))
        title = f"wave {wave.get('name')}: {wave.get('outcome') or ''}"
        parts.append(f'<text x="4" y="{y + 15}" class="wave-label">{_e(title[:48])}</text>')
        if start and finish:
            parts.append(
                f'<rect class="wave" x="{x(start)}" y="{y + 5}" width="{max(x(finish) - x(start), 2)}" '
                f'height="{ROW_HEIGHT - 10}" fill="{WAVE_COLOUR}"><title>{_e(title)}</title></rect>'
            )
        y += ROW_HEIGHT
        for cluster in by_wave.get(str(wave.get("name")), []):
            name = str(cluster.get("name") or _key(cluster))
            parts.append(
                f'<text x="16" y="{y + 15}" class="cluster-label">{_e(name[:40])}'
                f"<title>{_e(_key(cluster))}</title></text>"
            )
            c_start, c_finish = _parse(cluster.get("startedAt")), _parse(cluster.get("finishedAt"))
            if c_start and c_finish:
                parts.append(
                    f'<rect class="span {STATUS_CLASSES.get(str(cluster.get("status")), "muted")}" x="{x(c_start)}" '
                    f'y="{y + 2}" width="{max(x(c_finish) - x(c_start), 2)}" height="{ROW_HEIGHT - 4}"/>'
                )
            for phase in cluster.get("timeline") or []:
                p_start, p_finish = _parse(phase["startedAt"]), _parse(phase["finishedAt"])
                if not p_start or not p_finish or p_finish <= p_start:
                    continue
                colour = PHASE_COLOURS.get(str(phase["phase"]), "#999999")
                tip = f"{name}: {phase['phase']} {_duration(float(phase['seconds']))} ({', '.join(phase['states'])})"
                parts.append(
                    f'<rect class="phase" x="{x(p_start)}" y="{y + 5}" width="{max(x(p_finish) - x(p_start), 1.5)}" '
                    f'height="{ROW_HEIGHT - 10}" fill="{colour}"><title>{_e(tip)}</title></rect>'
                )
            y += ROW_HEIGHT
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _findings(cluster: Mapping[str, Any]) -> list[dict[str, Any]]:
    readiness = cluster.get("readiness") or {}
    found = readiness.get("blockingFindings")
    if not found:
        found = (_failure(cluster).get("details") or {}).get("blocking") or []
    return [f for f in found if isinstance(f, Mapping) and f.get("rule")]


def render_html(report: Mapping[str, Any]) -> str:
    title = str(report.get("fleet") or report.get("scenario") or "fleet")
    clusters = list(report.get("clusters") or [])
    counts = report.get("counts") or {
        k.upper(): v for k, v in (report.get("summary") or {}).items() if k != "total" and v
    }
    outcome = report.get("outcome") or ""
    stopped = report.get("stoppedBy") or {}

    waves_rows = [
        [
            _e(w.get("index")),
            _e(w.get("name")),
            _e(len(w.get("clusters") or [])),
            _e(w.get("startedAt") or "-"),
            _e(w.get("finishedAt") or "-"),
            _status(w.get("outcome")),
            _e(f"{w.get('failed', 0)} / {w.get('failureTolerance', 0)}"),
            _e(
                ((w.get("approval") or {}).get("status") or "-")
                + (f" by {w['approval']['by']}" if (w.get("approval") or {}).get("by") else "")
            ),
        ]
        for w in report.get("waves") or []
    ]
    outcome_rows = []
    for c in clusters:
        failure = _failure(c)
        start, finish = _parse(c.get("startedAt")), _parse(c.get("finishedAt"))
        outcome_rows.append(
            [
                f"<code>{_e(_key(c))}</code>",
                _e(c.get("wave") or "-"),
                _status(c.get("status")),
                _e(c.get("startedAt") or "-"),
                _e(_duration((finish - start).total_seconds()) if start and finish else "-"),
                _e(
                    " ".join(
                        str(v) for v in (failure.get("error"), failure.get("message") or c.get("reason")) if v
                    )
                ),
            ]
        )
    finding_rows = []
    for c in clusters:
        for f in _findings(c):
            where = "/".join(str(v) for v in (f.get("namespace"), f.get("name")) if v)
            field = f"{f.get('path') or ''}" + (f" = {f['value']}" if f.get("value") is not None else "")
            finding_rows.append(
                [
                    _e(c.get("name")),
                    f"<code>{_e(f.get('rule'))}</code>",
                    _e(f.get("severity") or "blocking"),
                    _e(f"{f.get('kind', '')} {where}".strip()),
                    f"<code>{_e(field)}</code>",
                    _e("acknowledged" if f.get("acknowledged") else "blocking"),
                ]
            )
        for ack in (c.get("readiness") or {}).get("acknowledged") or []:
            finding_rows.append(
                [
                    _e(c.get("name")),
                    f"<code>{_e(ack.get('rule'))}</code>",
                    "",
                    "",
                    "",
                    _e(f"acknowledged: {ack.get('reason')}"),
                ]
            )
    addon_rows = [
        [_e(c.get("name")), _e(a.get("name")), _e(a.get("from")), _e(a.get("to")), _e(a.get("action"))]
        for c in clusters
        for a in (c.get("upgrade") or {}).get("addons") or []
    ]
    group_rows = [
        [
            _e(c.get("name")),
            _e(g.get("old")),
            _e(g.get("new")),
            _e(g.get("status")),
            _e(f"{g.get('nodesDrained')} of {g.get('nodesTotal')}"),
            _e(g.get("podsEvicted")),
            _e(f"{g.get('pdbBlockedSeconds')} s"),
        ]
        for c in clusters
        for g in c.get("nodegroups") or []
    ]
    version_rows = [
        [
            _e(c.get("name")),
            _e(g.get("replacedBy") or g.get("name")),
            _e((g.get("before") or {}).get("version") or "-"),
            _e((g.get("after") or {}).get("version") or "-"),
            _e(g.get("how")),
        ]
        for c in clusters
        for g in (c.get("upgrade") or {}).get("nodegroups") or []
    ]
    legend = "".join(
        f'<span class="key"><svg width="14" height="10"><rect width="14" height="10" fill="{colour}"/></svg>{_e(name)}</span>'
        for name, colour in [("wave", WAVE_COLOUR), *PHASE_COLOURS.items()]
    )
    count_text = ", ".join(f"{_e(v)} {_e(k.lower().replace('_', ' '))}" for k, v in sorted(counts.items()))
    stop_text = (
        f" Stopped by <code>{_e(stopped.get('error'))}</code>: {_e(stopped.get('message'))}."
        if stopped
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fleet upgrade {_e(title)}</title>
<style>{CSS}</style></head>
<body>
<h1>Fleet upgrade <code>{_e(title)}</code></h1>
<p class="summary">{_e(len(clusters))} cluster(s){", target Kubernetes " + _e(report["toVersion"]) if report.get("toVersion") else ""}.
Outcome: {_status(outcome) if outcome else "-"} {count_text}.{stop_text}</p>
<h2>Timeline</h2>
<div class="legend">{legend}</div>
<div class="chart">{timeline_svg(report)}</div>
<h2>Waves</h2>
{_table(["#", "Wave", "Clusters", "Started", "Finished", "Outcome", "Failed / tolerated", "Approval"], waves_rows, "No wave recorded.")}
<h2>Clusters</h2>
{_table(["Cluster", "Wave", "Status", "Started", "Duration", "Detail"], outcome_rows, "No cluster.")}
<h2>Findings</h2>
<h3>Readiness: blocking and acknowledged findings</h3>
{_table(["Cluster", "Rule", "Severity", "Object", "Field = value", "Verdict"], finding_rows, "No blocking finding.")}
<h3>Add-ons before and after</h3>
{_table(["Cluster", "Add-on", "Before", "After", "Action"], addon_rows, "No add-on change recorded.")}
<h3>Node groups migrated to containerd</h3>
{_table(["Cluster", "Old group", "New group", "Status", "Nodes drained", "Pods evicted", "Blocked on budgets"], group_rows, "No node group migrated.")}
<h3>Node group versions</h3>
{_table(["Cluster", "Node group", "Before", "After", "How"], version_rows, "No node group version recorded.")}
</body></html>
"""


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d1d1f;background:#fff}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:24px 0 8px}h3{font-size:15px;margin:16px 0 6px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;max-width:1300px}th,td{border:1px solid #d0d0d0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}.muted{color:#777}.st{font-weight:600}.st.ok{color:#1b7a2b}.st.bad{color:#b3261e}.st.warn{color:#9a6700}
.legend{margin:4px 0 8px}.key{margin-right:14px;white-space:nowrap}.key svg{margin-right:4px;vertical-align:-1px}
.chart{overflow-x:auto;border:1px solid #e0e0e0}svg text{font:12px system-ui,sans-serif;fill:#1d1d1f}
svg .tick{font-size:11px;fill:#555}svg .grid{stroke:#e6e6e6;stroke-width:1}svg .wave-label{font-weight:600}
svg rect.span{fill:#f4f4f4;stroke:#bbb;stroke-width:1}svg rect.span.bad{stroke:#b3261e}svg rect.span.warn{stroke:#9a6700}
"""
