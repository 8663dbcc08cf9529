"""The node group migration in the fleet report: what the workflow did (from its execution history) and
the nodes as the cluster stands after the run (from the simulated world).

* :func:`nodegroup_migrations`: one row per group the plan migrates: ``old``, ``new``, ``status``,
  ``nodesDrained``, ``nodesTotal``, ``podsEvicted``, ``podsForced``, ``pdbBlockedSeconds``. Every
  migration step returns a ``summary`` of its group; the newest one per group wins. A failed execution
  stopped at the first group that was not retired.
* :func:`cluster_nodes`: ``name``, ``nodegroup``, ``kubeletVersion``, ``containerRuntimeVersion``.
"""

from __future__ import annotations

import json
from typing import Any

from simulator.engine import ExecutionResult
from simulator.kube.world import NODEGROUP_LABEL, KubeWorld

FINISHED = ("retired", "failed", "abandoned")


def _outputs(result: ExecutionResult) -> list[dict[str, Any]]:
    outputs = []
    for event in result.history:
        if event["type"] != "LambdaFunctionSucceeded":
            continue
        try:
            output = json.loads(event["lambdaFunctionSucceededEventDetails"].get("output") or "null")
        except ValueError:
            continue
        if isinstance(output, dict):
            outputs.append(output)
    return outputs


def migration_plan(result: ExecutionResult) -> dict[str, Any] | None:
    """PlanNodegroupMigration's output (``groups``, ``skipped``, ``plannedDeletions``), if it ran."""
    plans = [o for o in _outputs(result) if "groups" in o and "plannedDeletions" in o]
    return plans[-1] if plans else None


def nodegroup_migrations(result: ExecutionResult) -> list[dict[str, Any]]:
    plan = migration_plan(result)
    if plan is None:
        return []
    summaries: dict[str, dict[str, Any]] = {}
    for output in _outputs(result):
        summary = output.get("summary")
        if isinstance(summary, dict) and "old" in summary:
            summaries[summary["old"]] = summary
    rows = []
    stopped = False
    for group in plan["groups"]:
        summary = summaries.get(group["old"], {})
        status = summary.get("status", "planned")
        if result.status == "FAILED" and not stopped and status != "retired":
            stopped = True  # the migration runs one group at a time: this is where it stopped
            if status not in FINISHED:
                status = "failed"
        rows.append(
            {
                "old": group["old"],
                "new": group["new"],
                "status": status,
                "nodesTotal": summary.get("nodesTotal", group.get("nodes", 0)),
                "nodesDrained": summary.get("nodesDrained", 0),
                "podsEvicted": summary.get("podsEvicted", 0),
                "podsForced": summary.get("podsForced", 0),
                "pdbBlockedSeconds": summary.get("pdbBlockedSeconds", 0),
            }
        )
    return rows


def cluster_nodes(world: KubeWorld) -> list[dict[str, Any]]:
    return [
        {
            "name": node["metadata"]["name"],
            "nodegroup": (node["metadata"].get("labels") or {}).get(NODEGROUP_LABEL, ""),
            "kubeletVersion": node["status"]["nodeInfo"]["kubeletVersion"],
            "containerRuntimeVersion": node["status"]["nodeInfo"]["containerRuntimeVersion"],
        }
        for node in world.list("Node")
    ]
