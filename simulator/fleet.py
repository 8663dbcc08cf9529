"""The fleet workflow on the simulator: ``statemachines/fleet_upgrade.asl.json`` over a scenario's fleet.

The world comes from a scenario file (the usual format, docs/scenarios.md); the fleet input (waves,
tolerance, approvals, windows) is the workflow's own input (docs/fleet.md), built here from the
scenario's clusters or given whole. The fleet execution starts the cluster workflow once per cluster as
child executions; they run side by side on the discrete-event clock (simulator/clock.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from simulator.engine import RUN_TABLE_NAME, EngineError, ExecutionResult
from simulator.simulation import Simulation

FLEET_MACHINE = "fleet_upgrade"


def fleet_input(sim: Simulation, **fields: Any) -> dict[str, Any]:
    """Every cluster of the scenario, in scenario order, plus ``fields`` (canary, waves, mode...)."""
    clusters = [
        {
            "accountId": account.id,
            "region": cluster.region,
            "name": cluster.name,
            "fromVersion": cluster.version,
        }
        for account, cluster in sim.scenario.clusters()
    ]
    options = {}
    if sim.scenario.upgrade.nodegroup_migration:
        options["nodegroupMigration"] = dict(sim.scenario.upgrade.nodegroup_migration)
    request: dict[str, Any] = {"toVersion": sim.scenario.upgrade.to_version, "clusters": clusters}
    if options:
        request["clusterOptions"] = options
    return request | fields


@dataclass
class FleetRun:
    result: ExecutionResult
    report: dict[str, Any] | None
    markdown: str | None
    children: dict[str, dict[str, Any]] = field(default_factory=dict)  # cluster key -> DescribeExecution
    mutating_calls: list[dict[str, Any]] = field(default_factory=list)

    def cluster(self, key: str) -> dict[str, Any]:
        assert self.report is not None
        return next(c for c in self.report["clusters"] if c["key"] == key)

    def statuses(self) -> dict[str, str]:
        assert self.report is not None
        return {c["key"]: c["status"] for c in self.report["clusters"]}


class FleetDriver:
    """Starts fleet executions on a :class:`Simulation` and answers their approval gates."""

    def __init__(self, sim: Simulation, real_timeout: float = 180.0) -> None:
        self.sim = sim
        self.engine = sim.engine
        self.real_timeout = real_timeout

    def start(self, name: str, request: dict[str, Any]) -> str:
        return self.engine.start(FLEET_MACHINE, name, request)

    def start_together(self, runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
        """Several fleet executions at the same virtual instant (the clock waits until all have started)."""
        with self.engine.clock.hold():
            return [self.start(name, request) for name, request in runs]

    def pending_approval(self, fleet: str, wave: str) -> str:
        """The task token RequestWaveApproval stored for ``wave`` (waits, in real time, until it is there)."""
        table = self.engine.client("dynamodb")
        deadline = time.monotonic() + self.real_timeout
        while True:
            item = table.get_item(
                TableName=RUN_TABLE_NAME,
                Key={"pk": {"S": f"APPROVAL#{fleet}"}, "sk": {"S": f"WAVE#{wave}"}},
                ConsistentRead=True,
            ).get("Item")
            if item:
                return str(item["taskToken"]["S"])
            if time.monotonic() > deadline:
                raise EngineError(f"fleet {fleet} never asked for approval of wave {wave}")
            time.sleep(0.01)

    def approve(self, fleet: str, wave: str, by: str = "operator", reason: str = "") -> None:
        token = self.pending_approval(fleet, wave)
        self.engine.client("stepfunctions").send_task_success(
            taskToken=token, output=json.dumps({"approvedBy": by, "reason": reason})
        )

    def reject(self, fleet: str, wave: str, reason: str) -> None:
        token = self.pending_approval(fleet, wave)
        self.engine.client("stepfunctions").send_task_failure(
            taskToken=token, error="FleetApprovalRejected", cause=reason
        )

    def finish(self, execution_arn: str, started_at: float = 0.0, first_call: int = 0) -> FleetRun:
        result = self.engine.wait(execution_arn, started_at, self.real_timeout)
        report, markdown = self._report(result.name)
        run = FleetRun(result=result, report=report, markdown=markdown)
        for cluster in (report or {}).get("clusters", []):
            if cluster.get("childExecutionArn"):
                run.children[cluster["key"]] = self.engine.client("stepfunctions").describe_execution(
                    executionArn=cluster["childExecutionArn"]
                )
        run.mutating_calls = [
            {"step": c.step, "call": f"{c.service}:{c.operation}", "at": round(c.at, 3)}
            for c in self.sim.faults.calls[first_call:]
            if self.sim.faults.changes_the_fleet(c)
        ]
        return run

    def run(self, name: str, request: dict[str, Any]) -> FleetRun:
        started_at, first_call = self.engine.clock.now(), len(self.sim.faults.calls)
        return self.finish(self.start(name, request), started_at, first_call)

    def _report(self, fleet: str) -> tuple[dict[str, Any] | None, str | None]:
        s3 = self.engine.client("s3")
        try:
            body = s3.get_object(Bucket=self.engine.report_bucket, Key=f"reports/{fleet}/fleet-report.json")[
                "Body"
            ]
            markdown = s3.get_object(
                Bucket=self.engine.report_bucket, Key=f"reports/{fleet}/fleet-report.md"
            )["Body"]
        except s3.exceptions.NoSuchKey:
            return None, None
        return json.loads(body.read()), markdown.read().decode()


def run_fleet(sim: Simulation, name: str, request: dict[str, Any]) -> FleetRun:
    """One fleet execution to its end (no approval gates: use :class:`FleetDriver` for those)."""
    return FleetDriver(sim).run(name, request)
