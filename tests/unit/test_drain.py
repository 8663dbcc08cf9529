"""The drain (functions/upgrader/drain.py) against the simulator's in-memory Kubernetes world: kubectl's
filters, capacity before cordoning, batches, budgets, deadlines, force and rollback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from upgrader import drain
from upgrader.errors import DrainRefused, DrainTimedOut, InsufficientReplacementCapacity
from upgrader.gateways.cluster_nodes import CORDONED_BY_ANNOTATION
from upgrader.migration_models import CaughtError, DrainProgress, GroupRequest, PlannedGroup
from upgrader.models import ClusterRef, MigrationOptions, RunRef
from upgrader.polling import WaitPlan
from upgrader.versions import DRAIN, DRAIN_PACING_POLL_SECONDS

from simulator.clock import VirtualClock
from simulator.kube.world import KubeWorld
from simulator.scenario import WorkloadSpec
from simulator.workloads import manifests
from tests.fakes import WorldClusterNodes

DOCKER = "docker://20.10.25"
CONTAINERD = "containerd://1.6.19"
OLD, NEW = "general", "general-containerd"
PLAN = WaitPlan(DRAIN)


class Cluster:
    """A world with an old Docker group and (optionally) its containerd twin, Ready."""

    def __init__(self, old_nodes: int = 3, new_nodes: int = 3, pods_per_node: int = 17) -> None:
        self.clock = VirtualClock()
        self.world = KubeWorld("payments-prod", self.clock, "1.23", pod_ready_seconds=15)
        self.kube = WorldClusterNodes(self.world)
        self._add(OLD, old_nodes, DOCKER, pods_per_node)
        self.clock.sleep(1)

    def _add(self, group: str, count: int, runtime: str, pods_per_node: int) -> None:
        self.world.register_nodes(
            group,
            [f"i-{group}-{i}" for i in range(count)],
            kubelet_version="v1.23.17-eks-a59e1f0",
            container_runtime=runtime,
            instance_type="m5.large",
            labels={"eks.amazonaws.com/nodegroup": group},
            taints=[],
            pods_per_node=pods_per_node,
            ready_at=self.clock.now(),
        )

    def workload(self, **spec: Any) -> None:
        for manifest in manifests(WorkloadSpec.model_validate({"namespace": "shop", **spec})):
            self.world.apply(manifest)

    def settle(self, seconds: float = 16) -> None:
        self.clock.sleep(seconds)
        self.world.advance()

    def add_replacement(self, count: int = 3, pods_per_node: int = 17) -> None:
        self._add(NEW, count, CONTAINERD, pods_per_node)
        self.settle(1)

    def request(self, progress: DrainProgress | None = None, **options: Any) -> GroupRequest:
        return GroupRequest(
            run=RunRef(execution_id="arn:exec", execution_name="exec"),
            cluster=ClusterRef(account_id="111111111111", region="eu-west-1", name="payments-prod"),
            options=MigrationOptions.model_validate(options),
            group=PlannedGroup(old=OLD, new=NEW),
            drain=progress,
        )

    def run_drain(self, max_rounds: int = 200, **options: Any) -> DrainProgress:
        """prepare, then drain rounds with the waits they ask for, until Drained."""
        progress = drain.prepare(self.kube, self.request(**options), PLAN)
        for _ in range(max_rounds):
            progress = drain.drain_step(self.kube, self.request(progress, **options), PLAN)
            if progress.status == "Drained":
                return progress
            self.settle(progress.next_wait_seconds)
        raise AssertionError(f"not drained after {max_rounds} rounds: {progress}")

    def pods_on(self, group: str) -> list[dict[str, Any]]:
        nodes = {n.name for n in self.kube.list_nodes(f"eks.amazonaws.com/nodegroup={group}")}
        return [p for p in self.world.list("Pod") if p["spec"].get("nodeName") in nodes]

    def cordoned(self, group: str) -> list[str]:
        return [
            n.name for n in self.kube.list_nodes(f"eks.amazonaws.com/nodegroup={group}") if n.unschedulable
        ]


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster()
    c.workload(kind="Deployment", name="api", replicas=6, pdb={"minAvailable": 4})
    c.workload(kind="StatefulSet", name="ledger", replicas=3, pdb={"maxUnavailable": 1})
    c.workload(kind="DaemonSet", name="fluentd")
    c.settle(60)  # the StatefulSet starts its pods one after the other
    return c


def test_happy_path_moves_every_pod_one_node_at_a_time_without_breaking_a_budget(cluster):
    # Given 9 pods on three Docker nodes and a Ready twin
    cluster.add_replacement()
    # When the group is drained with the default batch of one node
    done = cluster.run_drain()
    # Then every workload pod left the old nodes through evictions, the DaemonSet's stayed
    left = cluster.pods_on(OLD)
    assert {p["metadata"]["ownerReferences"][0]["kind"] for p in left} == {"DaemonSet"}
    assert (done.nodes_total, done.nodes_drained, done.pods_evicted) == (3, 3, 9)
    assert done.summary.status == "drained"
    invariants = cluster.world.invariants()
    assert (invariants["podsLost"], invariants["pdbViolations"], invariants["unexpectedDeletions"]) == (
        0,
        0,
        0,
    )
    # And every old node is cordoned, with our mark
    assert sorted(cluster.cordoned(OLD)) == [f"i-{OLD}-{i}" for i in range(3)]


def test_batches_never_overlap_and_wait_for_the_replacements(cluster):
    cluster.add_replacement()
    progress = drain.prepare(cluster.kube, cluster.request(), PLAN)
    assert progress.status == "Cordoned" and cluster.world.invariants()["pdbViolations"] == 0
    # First round: the first node's pods are evicted, its replacements are starting
    progress = drain.drain_step(cluster.kube, cluster.request(progress), PLAN)
    assert progress.status == "Evicting"
    assert progress.batch == [f"i-{OLD}-0"]
    # Next round, before the replacements are Ready: the batch waits, the next node is not touched
    cluster.settle(5)
    progress = drain.drain_step(cluster.kube, cluster.request(progress), PLAN)
    assert progress.status == "WaitingForReplacements"
    assert progress.batch == [f"i-{OLD}-0"]
    evicted_before = progress.pods_evicted
    # Once they are Ready, the next node starts
    cluster.settle(16)
    progress = drain.drain_step(cluster.kube, cluster.request(progress), PLAN)
    assert progress.batch == [f"i-{OLD}-1"]
    assert progress.pods_evicted > evicted_before


def test_percentage_batches_take_that_share_of_the_nodes():
    c = Cluster(old_nodes=4)
    c.workload(kind="Deployment", name="web", replicas=4)
    c.settle()
    c.add_replacement(4)
    progress = drain.prepare(c.kube, c.request(batchSize="50%"), PLAN)
    progress = drain.drain_step(c.kube, c.request(progress, batchSize="50%"), PLAN)
    assert len(progress.batch) == 2
    assert drain.batch_size("25%", 10) == 3 and drain.batch_size(2, 10) == 2


def test_a_budget_that_allows_one_at_a_time_completes_without_a_violation():
    c = Cluster(old_nodes=1)
    c.workload(kind="Deployment", name="api", replicas=3, pdb={"maxUnavailable": 1})
    c.settle()
    c.add_replacement(1)
    done = c.run_drain()
    assert done.pods_evicted == 3
    assert done.pdb_blocked_seconds > 0  # the budget said no in between
    assert c.world.invariants()["pdbViolations"] == 0


def test_a_budget_blocking_forever_fails_at_the_deadline_naming_each_pod_and_its_budget():
    c = Cluster(old_nodes=1)
    c.workload(kind="Deployment", name="api", replicas=2, pdb={"minAvailable": 2})
    c.settle()
    c.add_replacement(1)
    with pytest.raises(DrainTimedOut) as caught:
        c.run_drain(nodeTimeoutSeconds=120)
    error = caught.value
    names = sorted(p["metadata"]["name"] for p in c.pods_on(OLD))
    assert all(f"shop/{name} on i-{OLD}-0 (budget api)" in error.message for name in names)
    assert sorted(b["name"] for b in error.details["blocking"]) == names
    assert {b["budget"] for b in error.details["blocking"]} == {"api"}
    assert error.details["waitedSeconds"] >= 120
    assert c.world.invariants() == {"podsLost": 0, "pdbViolations": 0, "unexpectedDeletions": 0}


def test_blocked_waits_back_off_and_never_overshoot_the_deadline():
    c = Cluster(old_nodes=1)
    c.workload(kind="Deployment", name="api", replicas=2, pdb={"minAvailable": 2})
    c.settle()
    c.add_replacement(1)
    progress = drain.prepare(c.kube, c.request(nodeTimeoutSeconds=100), PLAN)
    waits = []
    for _ in range(6):
        progress = drain.drain_step(c.kube, c.request(progress, nodeTimeoutSeconds=100), PLAN)
        waits.append(progress.next_wait_seconds)
        if progress.batch_waited_seconds + progress.next_wait_seconds >= 100:
            break
    assert waits[:4] == [10, 20, 40, 30]  # backoff, then only what is left until the deadline
    assert progress.status == "Blocked" and progress.blocking_total == 2


def test_force_after_the_deadline_deletes_only_the_blocking_pods():
    c = Cluster(old_nodes=1)
    c.workload(kind="Deployment", name="api", replicas=2, pdb={"minAvailable": 2})
    c.settle()
    c.add_replacement(1)
    done = c.run_drain(nodeTimeoutSeconds=60, onTimeout="force", forceAcknowledged=True)
    assert done.pods_forced == 2
    assert c.pods_on(OLD) == []


def test_force_needs_its_acknowledgment():
    with pytest.raises(ValueError, match="forceAcknowledged"):
        MigrationOptions.model_validate({"onTimeout": "force"})


@pytest.mark.parametrize(
    ("workload", "option", "reason"),
    [
        ({"kind": "Pod", "name": "debug"}, "evictPodsWithoutController", "no controller"),
        (None, "deleteEmptyDirData", "emptyDir data"),
    ],
)
def test_kubectl_refusals_stop_before_cordoning_then_pass_with_the_opt_in(workload, option, reason):
    c = Cluster(old_nodes=1)
    if workload:
        c.workload(**workload)
    else:
        c.world.apply(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "cache", "namespace": "shop"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "cache"}},
                    "template": {
                        "metadata": {"labels": {"app": "cache"}},
                        "spec": {
                            "containers": [{"name": "c", "image": "redis"}],
                            "volumes": [{"name": "scratch", "emptyDir": {}}],
                        },
                    },
                },
            }
        )
    c.settle()
    c.add_replacement(1)
    with pytest.raises(DrainRefused) as caught:
        drain.prepare(c.kube, c.request(), PLAN)
    assert reason in caught.value.message and option in json.dumps(caught.value.details)
    assert c.cordoned(OLD) == []  # nothing was touched
    done = c.run_drain(**{option: True})
    assert done.pods_evicted == 1


def test_daemonset_mirror_and_finished_pods_are_left_alone():
    c = Cluster(old_nodes=1)
    c.workload(kind="DaemonSet", name="agent")
    c.world.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "kube-proxy-static",
                "namespace": "kube-system",
                "annotations": {"kubernetes.io/config.mirror": "abc"},
            },
            "spec": {"nodeName": f"i-{OLD}-0", "containers": [{"name": "p", "image": "kube-proxy"}]},
        }
    )
    c.settle()
    c.add_replacement(1)
    done = c.run_drain()
    assert done.pods_evicted == 0
    assert {p["metadata"]["name"] for p in c.pods_on(OLD)} >= {"kube-proxy-static"}


def test_capacity_too_small_stops_before_cordoning_anything():
    c = Cluster(old_nodes=2)
    c.workload(kind="Deployment", name="web", replicas=20)
    c.settle()
    c.add_replacement(1, pods_per_node=11)
    with pytest.raises(InsufficientReplacementCapacity) as caught:
        drain.prepare(c.kube, c.request(), PLAN)
    assert caught.value.details["need"]["pods"] == 20
    assert c.cordoned(OLD) == []


def test_a_retried_round_continues_from_what_is_there(cluster):
    # Given a round whose output was lost (the Lambda crashed after evicting)
    cluster.add_replacement()
    progress = drain.prepare(cluster.kube, cluster.request(), PLAN)
    lost = drain.drain_step(cluster.kube, cluster.request(progress), PLAN)
    assert lost.pods_evicted > 0
    # When the state machine retries with the input it had
    cluster.settle(16)
    retried = drain.drain_step(cluster.kube, cluster.request(progress), PLAN)
    # Then the retry works on what is actually left: the first node is empty, the next one starts
    assert retried.batch == [f"i-{OLD}-1"]
    assert cluster.world.invariants()["pdbViolations"] == 0


def test_throttled_evictions_return_to_the_state_machine():
    c = Cluster(old_nodes=1)
    c.workload(kind="Deployment", name="web", replicas=2)
    c.settle()
    c.add_replacement(1)
    progress = drain.prepare(c.kube, c.request(), PLAN)
    c.kube.throttle_evictions = 2
    progress = drain.drain_step(c.kube, c.request(progress), PLAN)
    assert progress.status == "Blocked"
    assert {b.reason for b in progress.blocking} == {"Throttled"}
    c.settle(progress.next_wait_seconds)
    progress = drain.drain_step(c.kube, c.request(progress), PLAN)
    assert progress.pdb_blocked_seconds == 0  # throttling is not time blocked on budgets
    assert progress.pods_evicted == 2


def test_rollback_uncordons_only_what_we_cordoned_and_says_where_it_stopped():
    c = Cluster(old_nodes=2)
    c.workload(kind="Deployment", name="web", replicas=2)
    c.settle()
    c.add_replacement(2)
    c.kube.cordon(f"i-{OLD}-1", mark=False)  # an operator had cordoned this one
    progress = drain.prepare(c.kube, c.request(), PLAN)
    progress = drain.drain_step(c.kube, c.request(progress), PLAN)
    cause = json.dumps({"errorType": "DrainTimedOut", "errorMessage": 'stuck | {"nodes": ["x"]}'})
    request = c.request(progress).model_copy(
        update={"error": CaughtError(Error="DrainTimedOut", Cause=cause)}
    )
    failure = drain.rollback(c.kube, request)
    assert failure.error == "DrainTimedOut"
    assert c.cordoned(OLD) == [f"i-{OLD}-1"]  # the operator's cordon stays
    nodes = {n.name: n for n in c.kube.list_nodes()}
    assert CORDONED_BY_ANNOTATION not in nodes[f"i-{OLD}-0"].annotations
    message = json.loads(failure.cause)["errorMessage"]
    text, details = message.split(" | ", 1)
    details = json.loads(details)
    assert text == "stuck" and details["nodes"] == ["x"]
    assert details["stoppedAt"]["phase"] == "Evicting" and details["stoppedAt"]["nodesTotal"] == 2
    assert details["rollback"]["uncordoned"] == [f"i-{OLD}-0"]
    assert details["rollback"]["replacementKept"] == NEW


def test_rollback_can_keep_the_nodes_cordoned():
    c = Cluster(old_nodes=1)
    c.settle()
    c.add_replacement(1)
    progress = drain.prepare(c.kube, c.request(onFailure="keep-cordoned"), PLAN)
    request = c.request(progress, onFailure="keep-cordoned").model_copy(
        update={"error": CaughtError(Error="DrainRefused", Cause="plain text")}
    )
    failure = drain.rollback(c.kube, request)
    assert c.cordoned(OLD) == [f"i-{OLD}-0"]
    assert json.loads(failure.cause)["errorMessage"].startswith("plain text | ")


def test_pods_without_a_controller_are_declared_before_they_are_evicted():
    # Given a bare pod the input opts to evict (it will not come back)
    c = Cluster(old_nodes=1)
    c.workload(kind="Pod", name="debug")
    c.settle()
    c.add_replacement(1)
    # When the drain is prepared
    progress = drain.prepare(c.kube, c.request(evictPodsWithoutController=True), PLAN)
    # Then the loss is declared before any eviction
    assert [(d.kind, d.namespace, d.name) for d in progress.planned_deletions] == [("Pod", "shop", "debug")]
    assert c.kube.evictions == []


# -- pacing: a whole-group batch drains at the rhythm its budgets allow -------------------------------
def _paced_cluster(ready_seconds: float = 18) -> Cluster:
    c = Cluster(old_nodes=4, new_nodes=4, pods_per_node=30)
    c.world.pod_ready_seconds = ready_seconds
    c.workload(kind="Deployment", name="web", replicas=12, pdb={"maxUnavailable": "25%"})
    c.workload(kind="Deployment", name="api", replicas=8, pdb={"maxUnavailable": 2})
    c.settle(ready_seconds + 1)
    c.add_replacement(4, pods_per_node=30)
    return c


def test_a_budget_refusing_while_our_replacements_start_is_paced_not_backed_off():
    # Given budgets that let 3 web and 2 api pods go at a time, and replacements Ready 18 s after eviction
    c = _paced_cluster()
    progress = drain.prepare(c.kube, c.request(batchSize="100%"), PLAN)
    # When the whole group is one batch
    progress = drain.drain_step(c.kube, c.request(progress, batchSize="100%"), PLAN)
    # Then the first wave takes what the budgets allow, from every node at once
    assert progress.status == "Blocked" and progress.pods_evicted == 5
    assert progress.blocked_polls == 0  # our own replacements are starting: no backoff
    assert (
        progress.next_wait_seconds == DRAIN.first_wait_seconds
    )  # expected start time, before any observation
    # And once the replacements are overdue, short polls, until they are Ready: then the next wave
    c.settle(progress.next_wait_seconds)
    progress = drain.drain_step(c.kube, c.request(progress, batchSize="100%"), PLAN)
    assert progress.pods_evicted == 5 and progress.next_wait_seconds == DRAIN_PACING_POLL_SECONDS
    c.settle(progress.next_wait_seconds)
    progress = drain.drain_step(c.kube, c.request(progress, batchSize="100%"), PLAN)
    assert progress.pods_evicted == 10
    # And the start time it observed (20 s: 15 + one 5 s poll) is the next wave's wait
    assert progress.replacement_ready_seconds == 20 and progress.next_wait_seconds == 20


def test_a_paced_drain_takes_the_rounds_its_budgets_force_and_breaks_none():
    c = _paced_cluster()
    done = c.run_drain(batchSize="100%")
    # web: 12 pods / 3 at a time = 4 waves; api: 8 / 2 = 4 waves; at most one extra poll per wave
    assert done.pods_evicted == 20
    assert done.polls <= 2 + 4 + 1  # first wave, the 15 s guess + one poll, then one round per wave
    assert c.world.invariants() == {"podsLost": 0, "pdbViolations": 0, "unexpectedDeletions": 0}
    assert done.blocked_polls == 0


def test_a_refusing_budget_is_asked_once_per_round_not_once_per_pod():
    # Given a budget that allows nothing and 6 of its pods on the node
    c = Cluster(old_nodes=1)
    c.workload(kind="Deployment", name="api", replicas=6, pdb={"minAvailable": 6})
    c.settle()
    c.add_replacement(1)
    progress = drain.prepare(c.kube, c.request(), PLAN)
    # When a round runs
    progress = drain.drain_step(c.kube, c.request(progress), PLAN)
    # Then one eviction request was refused and every pod is named as blocked by that budget
    assert [outcome for *_, outcome in c.kube.evictions] == ["blocked"]
    assert progress.blocking_total == 6 and {b.budget for b in progress.blocking} == {"api"}
    # And with nothing of ours in flight, that is a stuck budget: backoff
    assert progress.blocked_polls == 1 and progress.next_wait_seconds == DRAIN.poll_seconds


def test_paced_waits_are_due_times_then_short_polls():
    assert drain.paced_wait(now=100, in_flight_since=None, expected=15) is None
    assert drain.paced_wait(now=100, in_flight_since=100, expected=15) == 15
    assert drain.paced_wait(now=110, in_flight_since=100, expected=15) == 5
    assert drain.paced_wait(now=115, in_flight_since=100, expected=15) == DRAIN_PACING_POLL_SECONDS
