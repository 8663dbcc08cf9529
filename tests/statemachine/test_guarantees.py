"""Guarantees of issue 9 that need a fault no scenario file can express (real ASL, simulator)."""

from __future__ import annotations

import contextlib
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from upgrader.models import MigrationOptions
from upgrader.settings import Settings
from upgrader.versions import DRAIN_PACING_POLL_SECONDS, NODEGROUP_CREATE

from simulator.kube.world import NODEGROUP_LABEL, KubeWorld
from simulator.scenario import Scenario
from simulator.simulation import ClusterRun, Simulation
from tests.statemachine.cluster_runs import (
    ACCOUNT,
    ACK_BLOCKING_PDB,
    NAME,
    REGION,
    cordoned,
    deployment,
    failure_details,
    lambda_outputs,
)

TARGET_ROLE_STEPS_EXCLUDED = {"ValidateInput"}


AWS_AUTH = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "aws-auth", "namespace": "kube-system"},
    "data": {
        "mapRoles": "- rolearn: arn:aws:iam::111111111111:role/eks-node-role\n  username: system:node:x\n"
    },
}


def scenario(faults: dict[str, Any] | None = None, **cluster: Any) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "guarantees",
            "faults": faults or {},
            "upgrade": {"toVersion": "1.24"},
            "accounts": [
                {
                    "id": ACCOUNT,
                    "clusters": [
                        {
                            "name": NAME,
                            "region": REGION,
                            "version": "1.23",
                            "nodegroups": [{"name": "general", "desiredSize": 2}],
                            "addons": [{"name": "kube-proxy"}],
                            "workloads": [
                                {"kind": "Deployment", "name": "api", "namespace": "payments", "replicas": 3}
                            ],
                        }
                        | cluster
                    ],
                }
            ],
        }
    )


def test_a_node_left_on_docker_after_the_run_fails_the_cluster_at_verification():
    # Given a run during which a Docker node joins the cluster behind the workflow's back (a
    # self-managed instance someone started) just before the verification
    spec = scenario()
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        world = sim.world(account, cluster)

        @contextlib.contextmanager
        def rogue_node_before_verification(function: str) -> Iterator[None]:
            if function == "VerifyUpgrade" and not world.node_names("rogue"):
                world.register_nodes(
                    "rogue",
                    ["i-0rogue0docker0node"],
                    kubelet_version="v1.24.17-eks-8cb36c9",
                    container_runtime="docker://20.10.25",
                    instance_type="m5.large",
                    labels={NODEGROUP_LABEL: "rogue"},
                    taints=[],
                    pods_per_node=29,
                    ready_at=sim.clock.now(),
                )
            yield

        sim.engine.runtime.around_invoke.append(rogue_node_before_verification)
        run = sim.run_cluster(account, cluster)

        # Then the verification fails the cluster, naming the node and its runtime
        assert (run.result.status, run.result.error) == ("FAILED", "PostUpgradeVerificationFailed")
        problems = run.failure()["details"]["problems"]
        assert "node i-0rogue0docker0node runs docker://20.10.25, not containerd" in problems
        # And the upgrade report says so too (written whether or not the verification passed)
        [report] = run.upgrades
        assert report["outcome"] == "verification-failed"


def test_every_target_account_step_assumes_the_role_afresh_so_expiring_credentials_never_matter():
    # Given a full run (migration, control plane, add-ons, node versions, verification)
    spec = scenario()
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        run = sim.run_cluster(account, cluster)
        assert run.result.status == "SUCCEEDED", run.failure()
        # Then each invocation of a step that works in the fleet account assumed the role itself: no
        # credentials outlive an invocation (a Lambda lives at most 15 minutes; the session lasts 1 hour)
        invocations = [i for i in run.result.invocations if i.function not in TARGET_ROLE_STEPS_EXCLUDED]
        assume = [c for c in sim.faults.calls if c.operation == "AssumeRole"]
        assert len(assume) == len(invocations)
        # And the whole history stays far from Step Functions' 25,000-event limit
        assert len(run.result.history) < 2_000


def test_throttling_from_ec2_sts_and_ssm_is_retried_and_the_run_completes_later():
    # Given EC2, STS and SSM throttling the first calls of the migration and the node version step
    throttles = [
        {"service": "sts", "operation": "AssumeRole", "first": 2},
        {"service": "ec2", "operation": "DescribeLaunchTemplateVersions", "first": 1},
        {"service": "ec2", "operation": "CreateLaunchTemplateVersion", "first": 1},
        {"service": "ec2", "operation": "DescribeImages", "first": 1},
        {"service": "ssm", "operation": "GetParameter", "first": 1},
    ]
    spec = scenario(faults={"throttle": throttles}, manifests=[AWS_AUTH])
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        world = sim.world(account, cluster)
        aws_auth = json.dumps(world.get("ConfigMap", "kube-system", "aws-auth"), sort_keys=True)
        run = sim.run_cluster(account, cluster)
        # Then every throttle reached the state machine's Retry and the run still completed
        assert run.result.status == "SUCCEEDED", run.failure()
        throttled = {(c.service, c.operation) for c in sim.faults.calls if c.throttled}
        assert {
            ("sts", "AssumeRole"),
            ("ec2", "CreateLaunchTemplateVersion"),
            ("ssm", "GetParameter"),
        } <= throttled
        assert run.result.retries >= len([c for c in sim.faults.calls if c.throttled])
        # And exactly one launch template version was made for the twin's in-place update
        assert [c.operation for c in sim.faults.mutating_calls()].count("CreateLaunchTemplateVersion") == 1
        # And nothing was lost, and aws-auth is byte-identical
        invariants = run.invariants
        assert (invariants["podsLost"], invariants["pdbViolations"], invariants["unexpectedDeletions"]) == (
            0,
            0,
            0,
        )
        assert json.dumps(world.get("ConfigMap", "kube-system", "aws-auth"), sort_keys=True) == aws_auth


def test_lambda_service_errors_and_timeouts_on_every_step_kind_are_retried_and_the_run_completes():
    # Given every step kind failing its first invocation, alternately with Lambda's service error and a
    # sandbox timeout (the names Step Functions matches in each Task's Retry)
    spec = scenario()
    failed: dict[str, str] = {}
    kinds = ("Lambda.ServiceException", "Sandbox.Timedout")
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]

        @contextlib.contextmanager
        def first_invocation_fails(function: str) -> Iterator[None]:
            if function not in failed and function != "ValidateInput":
                failed[function] = kinds[len(failed) % 2]
                error = RuntimeError(f"{failed[function]} injected before {function} ran")
                error.lambda_error_type = failed[function]  # type: ignore[attr-defined]
                raise error
            yield

        sim.engine.runtime.around_invoke.append(first_invocation_fails)
        run = sim.run_cluster(account, cluster)

    # Then each was retried per its policy and the run completed, with each change made exactly once
    assert run.result.status == "SUCCEEDED", run.failure()
    invoked = {i.function for i in run.result.invocations} - {"ValidateInput"}
    assert set(failed) == invoked and len(invoked) >= 12  # every step kind of the run
    assert run.result.retries >= len(failed)
    changes = [c.operation for c in sim.faults.mutating_calls()]
    for once in ("CreateNodegroup", "DeleteNodegroup", "UpdateClusterVersion", "UpdateNodegroupVersion"):
        assert changes.count(once) == 1, (once, changes)
    assert (run.invariants["podsLost"], run.invariants["pdbViolations"]) == (0, 0)


# -- 1.4: capacity that vanishes mid-drain --------------------------------------------------------------
@dataclass
class CapacityGone:
    run: ClusterRun
    world: KubeWorld
    first_node: str  # the first batch's node, drained before the capacity went
    pods_elsewhere: dict[str, str]  # uid -> node: the pods on the other old nodes before the run
    cordoned_when_it_went: list[str]
    pending_at_stop: list[dict[str, Any]]  # the world's Pending pods when the rollback began
    pods_ready_seconds: float


def run_with_capacity_gone_mid_drain(deadline: int = 60) -> CapacityGone:
    """Three Docker nodes running six api replicas, no budget; the capacity check passes and the old
    nodes are cordoned; then, as the drain starts, every node of the twin reports memory pressure (Ready,
    uncordoned, but tainted NoSchedule by the node lifecycle controller): what the drain evicts stays
    Pending."""
    spec = scenario(nodegroups=[{"name": "general", "desiredSize": 3}], workloads=[deployment(6)])
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        world = sim.world(account, cluster)
        old = world.node_names("general")
        seen: dict[str, Any] = {}

        @contextlib.contextmanager
        def capacity_goes_then_watch_the_stop(function: str) -> Iterator[None]:
            if function == "DrainNodes" and "cordoned" not in seen:
                seen["cordoned"] = cordoned(sim, "general")
                for node in world.node_names("general-containerd"):
                    world.set_node_pressure(node, "MemoryPressure")
            if function == "RollbackDrain":
                seen["pending"] = world.snapshot()["pods"]["pending"]
            yield

        sim.engine.runtime.around_invoke.append(capacity_goes_then_watch_the_stop)
        pods = {p["metadata"]["uid"]: p["spec"]["nodeName"] for p in world.list("Pod", "payments")}
        run = sim.run_cluster(account, cluster, migration={"nodeTimeoutSeconds": deadline})
    first = failure_details(run)["nodes"][0]
    return CapacityGone(
        run=run,
        world=world,
        first_node=first,
        pods_elsewhere={uid: node for uid, node in pods.items() if node in old and node != first},
        cordoned_when_it_went=seen.get("cordoned", []),
        pending_at_stop=seen.get("pending", []),
        pods_ready_seconds=cluster.pods_ready_seconds,
    )


def test_capacity_vanishing_mid_drain_stops_it_before_another_node_and_loses_nothing():
    # Given the twin's capacity gone once the first node's pods are evicted / When the migration runs
    gone = run_with_capacity_gone_mid_drain(deadline=60)
    run, details = gone.run, failure_details(gone.run)
    # Then the check before cordoning had passed (every old node cordoned when the capacity went)
    assert len(gone.cordoned_when_it_went) == 3
    # And the drain stopped at the first batch's deadline, waiting for replacements that never came
    assert (run.result.status, run.result.error) == ("FAILED", "DrainTimedOut")
    assert details["stoppedAt"]["phase"] == "WaitingForReplacements" and details["waitedSeconds"] == 60
    assert (details["stoppedAt"]["nodesDrained"], details["stoppedAt"]["nodesTotal"]) == (1, 3)
    assert details["podsEvicted"] == 2 and details["nodes"] == [gone.first_node]
    # And the report names what it waited for: the api ReplicaSet, its replacements not Ready
    blocking = details["blocking"][0]
    assert (blocking["reason"], blocking["name"].split("/")[0]) == ("ReplacementNotReady", "ReplicaSet")
    assert f"{blocking['name']} on {gone.first_node} (replacement not Ready)" in run.failure()["message"]
    # And no other node was drained: every round worked on the first batch; the other nodes' pods stayed
    batches = {
        tuple(o["batch"]) for o in lambda_outputs(run) if o.get("status") != "Cordoned" and "batch" in o
    }
    assert batches == {(gone.first_node,)}
    remaining = {p["metadata"]["uid"] for p in gone.world.list("Pod", "payments")}
    assert len(gone.pods_elsewhere) == 4 and set(gone.pods_elsewhere) <= remaining
    # And the two evicted replicas were Pending, unschedulable, when it stopped
    assert len(gone.pending_at_stop) == 2
    assert all(
        "untolerated taint {node.kubernetes.io/memory-pressure" in p["message"] for p in gone.pending_at_stop
    )
    # And the rollback uncordoned the old nodes; the twin is kept; the control plane untouched
    assert sorted(details["rollback"]["uncordoned"]) == sorted(gone.cordoned_when_it_went)
    assert sorted(run.after["nodegroups"]) == ["general", "general-containerd"]
    assert run.after["version"] == "1.23"
    # And the drain polled within the cap of one batch (overdue replacements: 5 s, lengthening)
    rounds = sum(1 for i in run.result.invocations if i.function == "DrainNodes")
    assert rounds <= drain_rounds_cap(60, evicting_rounds=1)
    # And nothing was lost: no budget violated, no unexpected deletion; the two evicted replicas, bound to
    # the uncordoned node by the rollback, are still starting when the execution ends, then Ready
    assert {k: run.invariants[k] for k in ("podsLost", "pdbViolations", "unexpectedDeletions")} == {
        "podsLost": 2,
        "pdbViolations": 0,
        "unexpectedDeletions": 0,
    }
    assert run.after["kubernetes"]["pods"]["pending"] and all(
        p["node"] == gone.first_node for p in run.after["kubernetes"]["pods"]["pending"]
    )
    gone.world.clock.sleep(gone.pods_ready_seconds)
    assert gone.world.invariants() == {"podsLost": 0, "pdbViolations": 0, "unexpectedDeletions": 0}


def test_capacity_vanishing_mid_drain_is_reported_with_the_pending_pods_and_why():
    # Given the same run / Then the failure names each pod left Pending, and why it cannot be scheduled
    gone = run_with_capacity_gone_mid_drain(deadline=60)
    reported = json.dumps(gone.run.failure())
    assert gone.pending_at_stop
    for pod in gone.pending_at_stop:
        assert pod["name"] in reported
    assert "Unschedulable" in reported and "untolerated taint" in reported
    pending = [b for b in failure_details(gone.run)["blocking"] if b["reason"] == "Pending"]
    assert sorted(b["name"] for b in pending) == sorted(p["name"] for p in gone.pending_at_stop)
    # And the overdue replacements were polled less and less often (5, 5, 10, 20 s...), not every 5 s
    waits = [
        o["nextWaitSeconds"] for o in lambda_outputs(gone.run) if o.get("status") == "WaitingForReplacements"
    ]
    assert waits[:3] == sorted(waits[:3]) and max(waits) > DRAIN_PACING_POLL_SECONDS, waits


# -- 1.18: the longest drain, and its history --------------------------------------------------------------
# The history of an execution that stops at its first drain deadline, from the caps (the ASL's loops, the
# drain's waits in functions/upgrader/drain.py, the timings in functions/upgrader/versions.py):
#   events <= OUTSIDE_THE_LOOPS + EVENTS_PER_ROUND * (twin_rounds(Tr) + drain_rounds(T, P))
#   twin_rounds(Tr)   = ceil((Tr - 180) / 30) + 1   PollReplacementNodegroup: 180 s first, then 30 s polls
#                                                   until replacementReadyTimeoutSeconds Tr
#   drain_rounds(T,P) = P + ceil(T / 5) + 2         DrainNodes: every wait is >= 5 s (the overdue poll;
#                                                   a stuck budget backs off 10, 20, 40, 60 s) except one
#                                                   after each of the P rounds that evicted and the last
#                                                   one, cut at the batch's deadline T (nodeTimeoutSeconds)
#   EVENTS_PER_ROUND  = 9                           Task 5 (entered, Lambda scheduled/started/succeeded,
#                                                   exited) + Choice 2 + Wait 2; a retried attempt adds 3
#   OUTSIDE_THE_LOOPS = 80                          every other state of that path, once (58 counted)
# Defaults (T 900, Tr 1800, P 0): 80 + 9 * (55 + 182) = 2,213 events, under a tenth of 25,000. Each batch
# drained before the one that stops adds at most 9 * drain_rounds(T, P) more; onTimeout force gives a batch
# one more deadline. Waits as computed (POLL_STRATEGY adaptive, the default; "fixed" waits its own seconds).
EVENTS_PER_ROUND = 9
OUTSIDE_THE_LOOPS = 80
DRAIN_LOOP = ("DrainNodes", "Drained?", "WaitForDrain")
TWIN_LOOP = ("WaitForReplacement", "PollReplacementNodegroup", "ReplacementReady?")
HISTORY_LIMIT = 25_000


def drain_rounds_cap(deadline: int, evicting_rounds: int = 0) -> int:
    return evicting_rounds + math.ceil(deadline / DRAIN_PACING_POLL_SECONDS) + 2


def twin_rounds_cap(ready_timeout: int) -> int:
    timing = NODEGROUP_CREATE
    return math.ceil((ready_timeout - timing.first_wait_seconds) / timing.poll_seconds) + 1


def history_bound(deadline: int, ready_timeout: int, evicting_rounds: int = 0) -> int:
    rounds = twin_rounds_cap(ready_timeout) + drain_rounds_cap(deadline, evicting_rounds)
    return OUTSIDE_THE_LOOPS + EVENTS_PER_ROUND * rounds


def events_by_state(run: ClusterRun) -> Counter[str]:
    """Each history event counted under the state entered last before it (the execution's own events
    under "")."""
    counts: Counter[str] = Counter()
    state = ""
    for event in run.result.history:
        if event["type"].endswith("StateEntered"):
            state = next(v for k, v in event.items() if k.endswith("EventDetails"))["name"]
        counts[state] += 1
    return counts


def test_a_budget_blocking_every_node_of_a_large_group_stops_at_the_deadline_within_the_history_bound():
    # Given twelve Docker nodes drained in one batch (batchSize 100%), the default deadline (900 s), and a
    # budget that never allows a disruption on any of their 24 pods
    nodes, deadline, ready_timeout = 12, 900, 1800
    spec = scenario(
        nodegroups=[{"name": "general", "desiredSize": nodes}],
        workloads=[deployment(2 * nodes, pdb={"minAvailable": "100%"})],
    )
    with Simulation(spec) as sim:
        run = sim.run_cluster(*spec.clusters()[0], ACK_BLOCKING_PDB, migration={"batchSize": "100%"})
        still_cordoned = cordoned(sim, "general")
    details = failure_details(run)
    # Then the drain stops at the deadline, naming every node and every pod the budget holds
    assert (run.result.status, run.result.error) == ("FAILED", "DrainTimedOut")
    assert len(details["nodes"]) == nodes and details["waitedSeconds"] == deadline
    assert details["blockingTotal"] == 2 * nodes and {b["budget"] for b in details["blocking"]} == {"api"}
    assert details["podsEvicted"] == 0 and details["stoppedAt"]["nodesDrained"] == 0
    assert still_cordoned == [] and len(details["rollback"]["uncordoned"]) == nodes
    assert run.after["version"] == "1.23"
    assert {k: run.invariants[k] for k in ("podsLost", "pdbViolations", "unexpectedDeletions")} == {
        "podsLost": 0,
        "pdbViolations": 0,
        "unexpectedDeletions": 0,
    }
    # And it waited on the budget with backoff, 10, 20, 40, then 60 s, the last wait cut at the deadline
    waits = [o["nextWaitSeconds"] for o in lambda_outputs(run) if o.get("status") == "Blocked"]
    assert waits == [10, 20, 40, *[60] * 13, 50] and sum(waits) == deadline
    # And each loop stayed within its cap, nine events a round
    events = events_by_state(run)
    drain_rounds = sum(1 for i in run.result.invocations if i.function == "DrainNodes")
    twin_rounds = sum(1 for i in run.result.invocations if i.function == "PollReplacementNodegroup")
    assert drain_rounds == len(waits) + 1 <= drain_rounds_cap(deadline)
    assert sum(events[s] for s in DRAIN_LOOP) == EVENTS_PER_ROUND * len(waits) + 5  # the last: no wait
    assert twin_rounds <= twin_rounds_cap(ready_timeout)
    assert sum(events[s] for s in TWIN_LOOP) == EVENTS_PER_ROUND * twin_rounds
    outside = len(run.result.history) - sum(events[s] for s in (*DRAIN_LOOP, *TWIN_LOOP))
    assert outside <= OUTSIDE_THE_LOOPS
    # And the whole history is under the bound computed from the caps, itself under a tenth of 25,000
    bound = history_bound(deadline, ready_timeout)
    assert bound == 2_213 and bound < HISTORY_LIMIT / 10
    assert len(run.result.history) <= bound, (len(run.result.history), bound)


def _model_maximum(field: str) -> int:
    return int(next(m.le for m in MigrationOptions.model_fields[field].metadata if hasattr(m, "le")))


# However long the input's deadlines (nodeTimeoutSeconds up to 86,400 s: the caps above would allow
# ~15,000 events for one batch, and they multiply with node groups and version steps), every looping step
# first checks its execution's history (upgrader/gateways/execution_history.py): at the budget it raises
# ExecutionHistoryBudgetExhausted, which the drain's Catch rolls back. After the check that stops it, an
# execution adds at most one round's events plus the rollback and the failure's path (the tail below).
STOP_TAIL = 60


def test_the_longest_drain_the_input_allows_stops_at_the_history_budget_and_rolls_back():
    # Given the longest deadline the input accepts, a budget that never allows a disruption, and the
    # history budget lowered from 20,000 to 400 events (the same check, reached in seconds)
    deadline, budget = _model_maximum("node_timeout_seconds"), 400
    spec = scenario(
        nodegroups=[{"name": "general", "desiredSize": 2}],
        workloads=[deployment(4, pdb={"minAvailable": "100%"})],
    )
    with Simulation(spec, function_environment={"HISTORY_EVENT_BUDGET": str(budget)}) as sim:
        run = sim.run_cluster(
            *spec.clusters()[0], ACK_BLOCKING_PDB, migration={"nodeTimeoutSeconds": deadline}
        )
        still_cordoned = cordoned(sim, "general")
    # Then the execution stops with the named error long before the deadline, and near its budget
    assert (run.result.status, run.result.error) == ("FAILED", "ExecutionHistoryBudgetExhausted")
    details = failure_details(run)
    assert details["budget"] == budget and budget <= details["events"] < budget + EVENTS_PER_ROUND
    assert budget <= len(run.result.history) <= budget + STOP_TAIL
    assert run.result.virtual_duration_seconds < deadline
    # And the drain was rolled back like any drain failure: nothing cordoned, nothing lost, twin kept
    assert still_cordoned == [] and details["rollback"]["uncordoned"]
    assert sorted(run.after["nodegroups"]) == ["general", "general-containerd"]
    assert {k: run.invariants[k] for k in ("podsLost", "pdbViolations", "unexpectedDeletions")} == {
        "podsLost": 0,
        "pdbViolations": 0,
        "unexpectedDeletions": 0,
    }
    # And the production budget leaves the same tail far from Step Functions' quota
    assert Settings().history_event_budget + STOP_TAIL < HISTORY_LIMIT - 4_000
