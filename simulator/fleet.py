"""The fleet workflow on the simulator: ``statemachines/fleet_upgrade.asl.json`` over a scenario's fleet.

The world comes from a scenario file (the usual format, docs/scenarios.md); the fleet input (waves,
tolerance, approvals, windows) is the workflow's own input (docs/fleet.md), built here from the
scenario's clusters or given whole. The fleet execution starts the cluster workflow once per cluster as
child executions; they run side by side on the discrete-event clock (simulator/clock.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.engine import RUN_TABLE_NAME, EngineError, ExecutionResult, Invocation
from simulator.migration_report import cluster_nodes, nodegroup_migrations
from simulator.simulation import ClusterRun, Simulation

FLEET_MACHINE = "fleet_upgrade"
EVENT_SOURCE = "eks-fleet-upgrader"
CLUSTER_STATE_CHANGE = "EKS Fleet Upgrade Cluster State Change"
EVENTS_QUEUE = "fleet-events"  # where the driver's rule delivers the workflow's events (local engine only)
# The stack's notifications topic, as the fleet ASL names it from its own ARN (infra/constructs/notifications.py).
NOTIFICATIONS_TOPIC = f"{FLEET_MACHINE}-notifications"
NOTIFICATIONS_QUEUE = "fleet-notifications"


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
    # The EventBridge events this execution emitted (docs/events.md), in the order they were put.
    events: list[dict[str, Any]] = field(default_factory=list)
    # The SNS notifications it published ({"subject", "message"}), in order.
    notifications: list[dict[str, str]] = field(default_factory=list)
    html: str | None = None

    def cluster_events(self, key: str) -> list[str]:
        """The statuses the cluster went through, as its state-change events told them."""
        return [
            e["detail"]["status"]
            for e in self.events
            if e["detail-type"] == CLUSTER_STATE_CHANGE and e["detail"].get("cluster") == key
        ]

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
        self._events: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._queue_url = self._subscribe()
        self._notifications_url = self._subscribe_to_notifications()

    def _subscribe_to_notifications(self) -> str:
        """The stack's notifications topic (CDK creates it) with a queue subscribed, as an operator's
        mail or chat subscription would be."""
        sqs, sns = self.engine.client("sqs"), self.engine.client("sns")
        url: str = sqs.create_queue(QueueName=NOTIFICATIONS_QUEUE)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        topic = sns.create_topic(Name=NOTIFICATIONS_TOPIC)["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        return url

    def received_notifications(self) -> list[dict[str, str]]:
        sqs = self.engine.client("sqs")
        found = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=self._notifications_url, MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                body = json.loads(message["Body"])
                found.append({"subject": body.get("Subject", ""), "message": body["Message"]})
                sqs.delete_message(QueueUrl=self._notifications_url, ReceiptHandle=message["ReceiptHandle"])

    def _subscribe(self) -> str:
        """An EventBridge rule on the default bus (``source: eks-fleet-upgrader``) delivering to an SQS
        queue: how a consumer of the workflow's events would see them. One per simulation."""
        sqs = self.engine.client("sqs")
        url: str = sqs.create_queue(QueueName=EVENTS_QUEUE)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = self.engine.client("events")
        events.put_rule(Name=EVENTS_QUEUE, EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
        events.put_targets(Rule=EVENTS_QUEUE, Targets=[{"Id": "queue", "Arn": arn}])
        return url

    def received_events(self) -> list[dict[str, Any]]:
        """Every event delivered so far (drains the queue; kept in arrival order)."""
        sqs = self.engine.client("sqs")
        while True:
            # VisibilityTimeout 0: a message moto marks received while the workflow's thread is still
            # adding others, but does not return, is visible again at the next poll (ids de-duplicate).
            messages = sqs.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            if not messages:
                return list(self._events)
            for message in messages:
                if message["MessageId"] not in self._seen:
                    self._seen.add(message["MessageId"])
                    self._events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

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
        run.events = [e for e in self.received_events() if e["detail"].get("fleet") == result.name]
        run.html = self._object(f"reports/{result.name}/fleet-report.html")
        run.notifications = [n for n in self.received_notifications() if f" {result.name}" in n["message"]]
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

    def redrive(self, execution_arn: str) -> FleetRun:
        """RedriveExecution of a failed fleet execution, to its new end."""
        started_at, first_call = self.engine.clock.now(), len(self.sim.faults.calls)
        self.engine.client("stepfunctions").redrive_execution(executionArn=execution_arn)
        return self.finish(execution_arn, started_at, first_call)

    def _object(self, key: str) -> str | None:
        s3 = self.engine.client("s3")
        try:
            return str(s3.get_object(Bucket=self.engine.report_bucket, Key=key)["Body"].read().decode())
        except s3.exceptions.NoSuchKey:
            return None

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


# --- the demo: a scenario's fleet through the fleet workflow, with per-cluster detail ------------------
def child_result(sim: Simulation, describe: dict[str, Any]) -> ExecutionResult:
    """A child execution as the single-cluster runs see theirs (history, virtual start and stop). Lambda
    invocations come from the history (one ``LambdaFunctionScheduled`` per attempt): overlapping
    clusters share the one in-process Lambda runtime, whose own list does not tell them apart."""
    engine = sim.engine
    result = engine.wait(describe["executionArn"], engine.virtual_seconds(describe["startDate"]))
    result.invocations = [
        Invocation(
            function=str(e["lambdaFunctionScheduledEventDetails"]["resource"]).rsplit(":", 1)[-1],
            started_at=engine.virtual_seconds(e["timestamp"]),
            wall_seconds=0.0,  # not attributable per execution while clusters overlap
            error=None,
        )
        for e in result.history
        if e["type"] == "LambdaFunctionScheduled"
    ]
    return result


def cluster_runs(sim: Simulation, run: FleetRun, before: dict[str, dict[str, Any]]) -> list[ClusterRun]:
    """One :class:`ClusterRun` per scenario cluster the fleet started (scenario order), built as
    ``Simulation.run_cluster`` builds its own. AWS calls are attributed by account, region and the
    child's virtual time window (two clusters of one account and region side by side share theirs)."""
    runs = []
    for account, cluster in sim.scenario.clusters():
        key = f"{account.id}/{cluster.region}/{cluster.name}"
        describe = run.children.get(key)
        if describe is None:
            continue
        result = child_result(sim, describe)
        cluster_run = ClusterRun(account, cluster, json.loads(describe["input"]), result, before[key])
        cluster_run.after = sim.cluster_state(account, cluster)
        cluster_run.invariants = {
            **sim.world(account, cluster).invariants(),
            "mutatingCalls": [
                {"step": c.step, "call": f"{c.service}:{c.operation}", "at": round(c.at, 3)}
                for c in sim.faults.calls
                if sim.faults.changes_the_fleet(c)
                and (c.account, c.region) == (account.id, cluster.region)
                and result.started_at <= c.at <= result.stopped_at
            ],
        }
        cluster_run.readiness = sim.readiness_report(account, cluster, result)
        cluster_run.nodegroups = nodegroup_migrations(result)
        cluster_run.nodes = cluster_nodes(sim.world(account, cluster))
        cluster_run.upgrades = sim.upgrade_reports(result)
        runs.append(cluster_run)
    return runs


def run_with_progress(
    driver: FleetDriver, name: str, request: dict[str, Any], progress: Callable[[dict[str, Any]], None]
) -> FleetRun:
    """Start the fleet and hand each event it emits to ``progress`` as it arrives (real-time polling of
    the events queue; the execution runs in moto's threads meanwhile), then finish the run."""
    engine = driver.engine
    started_at, first_call = engine.clock.now(), len(driver.sim.faults.calls)
    arn = driver.start(name, request)
    sfn = engine.client("stepfunctions")
    deadline = time.monotonic() + driver.real_timeout
    shown = 0
    settled = 0
    while True:
        running = sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        events = [e for e in driver.received_events() if e["detail"].get("fleet") == name]
        for event in events[shown:]:
            progress(event)
        settled = settled + 1 if not running and len(events) == shown else 0
        shown = len(events)
        # moto's queue may hide a message for an instant after a receive: after the end, poll until
        # three polls in a row bring nothing new.
        if settled >= 3:
            break
        if time.monotonic() > deadline:
            raise EngineError(f"fleet {name} still RUNNING after {driver.real_timeout}s of real time")
        time.sleep(0.05)
    return driver.finish(arn, started_at, first_call)
