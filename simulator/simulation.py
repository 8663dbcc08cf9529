"""One simulated run: the world from a scenario, the local engine, and the cluster workflow per cluster.

Until the fleet workflow lands, the fleet is driven here one cluster at a time, each cluster
its own ``cluster_upgrade`` execution with a deterministic name.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from upgrader.errors import UpgradeError
from upgrader.models import ClusterRef, RunRef
from upgrader.readiness_check import report_location

from simulator.clock import VirtualClock
from simulator.eks import EksSimulation, EksTimings, eks_extension
from simulator.engine import ORCHESTRATOR_ACCOUNT, ExecutionResult, LocalEngine
from simulator.faults import AwsFaults, CrashRule, LoseResponseRule, ThrottleRule, aws_faults
from simulator.kube.apiserver import KubeApiServer, serve
from simulator.kube.rbac import ClusterAuthorizer
from simulator.kube.tokens import token_checker
from simulator.kube.world import KubeError, KubeWorld
from simulator.migration_report import cluster_nodes, nodegroup_migrations
from simulator.scenario import AccountSpec, ClusterSpec, Scenario
from simulator.seed import ClusterKey, FleetSeeder, account_session

BLOCKING_ERRORS = frozenset({"ReadinessBlocked", "UnmigratableDockerNodes"})
OUTAGE_CALLS = 1_000_000  # calls an outage refuses: more than every retry policy makes
AWS_AUTH = ("ConfigMap", "kube-system", "aws-auth")


class AwsAuthChanged(AssertionError):
    """A cluster's aws-auth ConfigMap is not byte-identical at the end of a simulation to what it was
    once the fleet was seeded: the upgrade must never write it (reliability guarantee 1.16)."""


def aws_auth_bytes(world: KubeWorld) -> bytes | None:
    """kube-system/aws-auth as stored, metadata included (a write of the same data still changes its
    resourceVersion); None when the cluster has none."""
    try:
        found = world.get(*AWS_AUTH)
    except KubeError as error:
        if error.status.code == 404:
            return None
        raise
    return json.dumps(found, sort_keys=True).encode()


@dataclass
class ClusterRun:
    account: AccountSpec
    cluster: ClusterSpec
    execution_input: dict[str, Any]
    result: ExecutionResult
    before: dict[str, Any]
    after: dict[str, Any] = field(default_factory=dict)
    invariants: dict[str, Any] = field(default_factory=dict)
    # ReadinessCheck's full report (readiness.json from the reports bucket), when the scan ran.
    readiness: dict[str, Any] | None = None
    # The node group migration as the execution did it (simulator/migration_report.py), and the nodes
    # as the cluster stands after the run.
    nodegroups: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    # VerifyUpgrade's upgrade report(s) (upgrade-<version>.json), one per version step that finished.
    upgrades: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.result.status == "SUCCEEDED":
            return "SUCCEEDED"
        # The readiness gate (or the migration's plan: Docker nodes it cannot replace) stopped the
        # cluster before anything changed: blocked, not failed.
        return "BLOCKED" if self.result.error in BLOCKING_ERRORS else "FAILED"

    def failure(self) -> dict[str, Any] | None:
        if self.result.status == "SUCCEEDED":
            return None
        message, details = UpgradeError.parse_message(_error_message(self.result.cause))
        return {"error": self.result.error, "message": message, "details": details}


def _error_message(cause: str | None) -> str:
    if not cause:
        return ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    return parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause


def _difference(before: bytes | None, after: bytes | None) -> str:
    """What changed in an aws-auth, in words (never its whole text)."""
    if before is None or after is None:
        return "created" if before is None else "deleted"
    old, new = json.loads(before), json.loads(after)
    said = []
    old_data, new_data = old.get("data") or {}, new.get("data") or {}
    for key in sorted(set(old_data) | set(new_data)):
        if key not in new_data:
            said.append(f"data.{key} removed")
        elif key not in old_data:
            said.append(f"data.{key} added")
        elif old_data[key] != new_data[key]:
            said.append(f"data.{key} changed")
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    for key in sorted(set(old_meta) | set(new_meta)):
        if old_meta.get(key) != new_meta.get(key):
            said.append(f"metadata.{key} {old_meta.get(key)!r} -> {new_meta.get(key)!r}")
    said += [
        f"{key} changed"
        for key in sorted(set(old) | set(new))
        if key not in ("data", "metadata") and old.get(key) != new.get(key)
    ]
    return ", ".join(said) or "changed"


def execution_name(scenario: Scenario, account: AccountSpec, cluster: ClusterSpec) -> str:
    """Deterministic: the same run of the same cluster always has the same name (max 80 chars)."""
    raw = f"{scenario.name}-{account.id}-{cluster.region}-{cluster.name}-{scenario.upgrade.to_version}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", raw)[:80]


class Simulation(contextlib.AbstractContextManager["Simulation"]):
    def __init__(
        self,
        scenario: Scenario,
        aws_max_attempts: int = 1,
        function_environment: dict[str, str] | None = None,
    ) -> None:
        """``function_environment``: more variables for every function (e.g. a lowered
        HISTORY_EVENT_BUDGET), over the simulator's own."""
        self.scenario = scenario
        self.clock = VirtualClock()
        self.lambda_log = io.StringIO()
        timings = scenario.timings
        self.eks = EksSimulation(
            self.clock,
            EksTimings(
                control_plane_update=timings.control_plane_update_seconds,
                nodegroup_create=timings.nodegroup_create_seconds,
                nodegroup_delete=timings.nodegroup_delete_seconds,
                nodegroup_update=timings.nodegroup_update_seconds,
                addon_update=timings.addon_update_seconds,
            ),
        )
        self.kube_server: KubeApiServer | None = None
        self.faults = AwsFaults(
            clock=self.clock,
            throttles=[ThrottleRule(**t.model_dump()) for t in scenario.faults.throttle],
            lost_responses=[LoseResponseRule(**r.model_dump()) for r in scenario.faults.lose_response],
            crashes=[CrashRule(**c.model_dump()) for c in scenario.faults.crash_step],
            orchestrator_account=ORCHESTRATOR_ACCOUNT,
        )
        self.engine = LocalEngine(
            clock=self.clock,
            log=self.lambda_log,
            function_environment={
                "TARGET_ROLE_NAME": scenario.target_role_name,
                "EXTERNAL_ID": scenario.external_id,
                # In the simulator every throttle reaches the state machine's Retry (on the virtual
                # clock) instead of botocore sleeping in real time; in AWS the SDK absorbs bursts first.
                "AWS_MAX_ATTEMPTS": str(aws_max_attempts),
                # Likewise for Kubernetes: a 429 or 5xx reaches the state machine's Retry at once.
                "KUBERNETES_MAX_RETRIES": "0",
                "POLL_STRATEGY": scenario.poll_strategy,
                "POWERTOOLS_SERVICE_NAME": "eks-fleet-upgrader",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_NAMESPACE": "EksFleetUpgrader",
                "LOG_LEVEL": "INFO",
            }
            | (function_environment or {}),
        )
        self.engine.runtime.around_invoke.append(self.faults.step)
        self.engine.runtime.after_invoke.append(self._announce_planned_deletions)
        self.worlds: dict[ClusterKey, KubeWorld] = {}
        self._stack = contextlib.ExitStack()
        # Every cluster's aws-auth once seeded, compared when the simulation ends (check_aws_auth).
        self.aws_auth_at_start: dict[ClusterKey, bytes | None] = {}
        self.aws_auth_checked: list[ClusterKey] = []

    def __enter__(self) -> Simulation:
        self._stack.enter_context(self.engine)
        self._stack.enter_context(eks_extension(self.eks))
        self._stack.enter_context(aws_faults(self.faults))
        self._start_kubernetes()
        self._seed()
        self.aws_auth_at_start = {key: aws_auth_bytes(world) for key, world in self.worlds.items()}
        return self

    def _start_kubernetes(self) -> None:
        """One Kubernetes world per cluster, served on loopback; EKS reports its URL as the endpoint."""
        ids: dict[ClusterKey, str] = {}
        by_id: dict[str, KubeWorld] = {}
        for account, cluster in self.scenario.clusters():
            key = (account.id, cluster.region, cluster.name)
            ids[key] = f"{account.id}-{cluster.region}-{cluster.name}"
            self.worlds[key] = by_id[ids[key]] = KubeWorld(
                cluster.name, self.clock, cluster.version, pod_ready_seconds=cluster.pods_ready_seconds
            )
        check = token_checker({ids[key]: (key[2], key[0]) for key in ids})

        def settled_check(cluster_id: str, token: str) -> bool | str:
            # EKS lifecycles settle lazily on EKS calls; a Kubernetes request must see them too
            # (a node group that finished creating has registered its nodes).
            self.eks.settle_all()
            return check(cluster_id, token)

        # RBAC: the orchestrator's ClusterRole (infra/kubernetes/), as the target role holds it in EKS.
        server = self._stack.enter_context(serve(by_id, settled_check, ClusterAuthorizer()))
        self.kube_server = server
        self.eks.worlds = lambda account, region, name: self.worlds.get((account, region, name))
        self.eks.endpoints = lambda account, region, name: (
            server.url_for(ids[(account, region, name)]) if (account, region, name) in ids else None
        )

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        """Ends the simulation; unless the block already failed, first checks that every cluster's
        aws-auth is byte-identical to what it was once seeded (:class:`AwsAuthChanged` otherwise), so
        every scenario run through a ``Simulation`` proves guarantee 1.16 without a line of its own."""
        try:
            if exc_type is None:
                self.check_aws_auth()
        finally:
            self._stack.close()

    def check_aws_auth(self) -> list[ClusterKey]:
        """Compares every cluster's aws-auth with its copy from the start; returns the clusters checked."""
        changed = []
        for key, before in self.aws_auth_at_start.items():
            after = aws_auth_bytes(self.worlds[key])
            if after != before:
                changed.append(f"{'/'.join(key)}: {_difference(before, after)}")
        self.aws_auth_checked = list(self.aws_auth_at_start)
        if changed:
            raise AwsAuthChanged("aws-auth is not byte-identical to what it was: " + "; ".join(changed))
        return self.aws_auth_checked

    # -- the world ------------------------------------------------------------------------------
    def _seed(self) -> None:
        FleetSeeder(self.scenario, self.clock, self.eks, self.faults, self.worlds).seed()

    def outage(self, service: str, during: Callable[[str], bool], operation: str | None = None) -> None:
        """An outage longer than any retry policy: every call to ``service`` (``operation``) is throttled
        in each Lambda invocation for which ``during(function name)`` is true when it starts."""

        @contextlib.contextmanager
        def around(function: str) -> Iterator[None]:
            rule = ThrottleRule(service=service, operation=operation, first=OUTAGE_CALLS)
            active = during(function)
            if active:
                self.faults.throttles.append(rule)
            try:
                yield
            finally:
                if active:
                    self.faults.throttles.remove(rule)

        self.engine.runtime.around_invoke.append(around)

    def world(self, account: AccountSpec, cluster: ClusterSpec) -> KubeWorld:
        return self.worlds[(account.id, cluster.region, cluster.name)]

    def cluster_state(self, account: AccountSpec, cluster: ClusterSpec) -> dict[str, Any]:
        self.eks.settle_all()
        eks = account_session(account.id).client("eks", region_name=cluster.region)
        described = eks.describe_cluster(name=cluster.name)["cluster"]
        nodegroups = {}
        for name in eks.list_nodegroups(clusterName=cluster.name)["nodegroups"]:
            group = eks.describe_nodegroup(clusterName=cluster.name, nodegroupName=name)["nodegroup"]
            nodegroups[name] = {
                "status": group["status"],
                "version": group.get("version"),
                "amiType": group.get("amiType"),
                "desiredSize": group.get("scalingConfig", {}).get("desiredSize"),
            }
        return {
            "version": described["version"],
            "status": described["status"],
            "nodegroups": nodegroups,
            "kubernetes": self.world(account, cluster).snapshot(),
        }

    def _announce_planned_deletions(self, function: str, event: Any, result: Any) -> None:
        """A step that declares what it may delete (``plannedDeletions``: the migration's plan, the bare
        pods an opted-in drain will evict) tells the cluster's world before it acts. Only declared
        deletions are expected: anything else the workflow deletes still counts as unexpected."""
        if not isinstance(result, dict) or not isinstance(event, dict):
            return
        declared = result.get("plannedDeletions") or []
        if "invocation" in event:  # a step that changes something gets its state in the invocation envelope
            event = event.get("state") or {}
        cluster = event.get("cluster") or {}
        world = self.worlds.get((cluster.get("accountId"), cluster.get("region"), cluster.get("name")))
        if world is None:
            return
        for entry in declared:
            world.expect_deletion(entry["kind"], entry["name"], entry.get("namespace"))

    # -- running --------------------------------------------------------------------------------
    def execution_input(
        self,
        account: AccountSpec,
        cluster: ClusterSpec,
        acknowledge: list[dict[str, str]] | None = None,
        migration: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "cluster": {"accountId": account.id, "region": cluster.region, "name": cluster.name},
            "fromVersion": cluster.version,
            "toVersion": self.scenario.upgrade.to_version,
        }
        if acknowledge:
            request["acknowledge"] = list(acknowledge)
        options = migration if migration is not None else self.scenario.upgrade.nodegroup_migration
        if options:
            request["nodegroupMigration"] = dict(options)
        if self.scenario.upgrade.strategy:
            request["strategy"] = self.scenario.upgrade.strategy
        if self.scenario.upgrade.addons:
            request["addons"] = dict(self.scenario.upgrade.addons)
        return request

    def run_cluster(
        self,
        account: AccountSpec,
        cluster: ClusterSpec,
        acknowledge: list[dict[str, str]] | None = None,
        *,
        migration: dict[str, Any] | None = None,
        name_suffix: str = "",
    ) -> ClusterRun:
        """One execution of the cluster workflow; ``acknowledge`` goes into the input as an operator
        would put it (``[{"rule": "DS001", "reason": "..."}]``), ``migration`` as its
        ``nodegroupMigration`` (default: the scenario's). ``name_suffix`` names a second run of the same
        cluster (an operator running it again)."""
        before = self.cluster_state(account, cluster)
        execution_input = self.execution_input(account, cluster, acknowledge, migration)
        first_call = len(self.faults.calls)
        name = execution_name(self.scenario, account, cluster)
        if name_suffix:
            name = f"{name[: 79 - len(name_suffix)]}-{name_suffix}"
        result = self.engine.run("cluster_upgrade", name, execution_input)
        return self._cluster_run(account, cluster, execution_input, result, before, first_call)

    def redrive_cluster(self, run: ClusterRun) -> ClusterRun:
        """RedriveExecution of ``run``'s failed execution, as an operator would after fixing the cause.
        The returned run's history covers every attempt; its invocations, calls and invariants are the
        redriven attempt's (the world's invariants are cumulative)."""
        before = self.cluster_state(run.account, run.cluster)
        first_call = len(self.faults.calls)
        result = self.engine.redrive(run.result.arn)
        return self._cluster_run(run.account, run.cluster, run.execution_input, result, before, first_call)

    def _cluster_run(
        self,
        account: AccountSpec,
        cluster: ClusterSpec,
        execution_input: dict[str, Any],
        result: ExecutionResult,
        before: dict[str, Any],
        first_call: int,
    ) -> ClusterRun:
        run = ClusterRun(account, cluster, execution_input, result, before)
        run.after = self.cluster_state(account, cluster)
        calls = self.faults.calls[first_call:]
        run.invariants = {
            **self.world(account, cluster).invariants(),
            "mutatingCalls": [
                {"step": c.step, "call": f"{c.service}:{c.operation}", "at": round(c.at, 3)}
                for c in calls
                if self.faults.changes_the_fleet(c)
            ],
        }
        run.readiness = self.readiness_report(account, cluster, result)
        run.nodegroups = nodegroup_migrations(result)
        run.nodes = cluster_nodes(self.world(account, cluster))
        run.upgrades = self.upgrade_reports(result)
        return run

    def upgrade_reports(self, result: ExecutionResult) -> list[dict[str, Any]]:
        """Every upgrade report VerifyUpgrade wrote for this execution (one per version step), in order."""
        s3 = self.engine.client("s3")
        found = s3.list_objects_v2(Bucket=self.engine.report_bucket, Prefix=f"reports/{result.name}/")
        keys = sorted(
            (
                o["Key"]
                for o in found.get("Contents", [])
                if "/upgrade-" in o["Key"] and o["Key"].endswith(".json")
            ),
            key=lambda k: tuple(int(x) for x in k.rsplit("upgrade-", 1)[1].removesuffix(".json").split(".")),
        )
        return [
            json.loads(s3.get_object(Bucket=self.engine.report_bucket, Key=k)["Body"].read()) for k in keys
        ]

    def readiness_report(
        self, account: AccountSpec, cluster: ClusterSpec, result: ExecutionResult
    ) -> dict[str, Any] | None:
        """The readiness.json ReadinessCheck wrote for this execution, or None if the scan did not run."""
        location = report_location(
            self.engine.report_bucket,
            RunRef(execution_id=result.arn, execution_name=result.name),
            ClusterRef(account_id=account.id, region=cluster.region, name=cluster.name),
        )
        try:
            body = self.engine.client("s3").get_object(Bucket=location.bucket, Key=location.json_key)["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        document: dict[str, Any] = json.loads(body.read())
        return document
