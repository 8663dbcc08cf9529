"""Blue/green node group migration to containerd through the real statemachines/cluster_upgrade.asl.json
on the local engine, against the simulated fleet (EKS on moto + the Kubernetes worlds).

Every test ends by asserting the simulator's invariants: no pod lost, no disruption budget violated,
no deletion that was not planned.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from upgrader.gateways.cluster_nodes import ApiClusterNodesGateway

from simulator.faults import SimulatedLambdaCrash
from simulator.scenario import Scenario
from simulator.seed import account_session
from simulator.simulation import ClusterRun, Simulation
from tests.statemachine.cluster_runs import (
    ACCOUNT,
    ACK_BLOCKING_PDB,
    NAME,
    REGION,
    assert_nothing_lost,
    cordoned,
    deployment,
    failure_details,
    lambda_outputs,
)

AWS_AUTH = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "aws-auth", "namespace": "kube-system"},
    "data": {
        "mapRoles": "- rolearn: arn:aws:iam::111111111111:role/eks-node-role\n"
        "  username: system:node:{{EC2PrivateDNSName}}\n  groups:\n  - system:bootstrappers\n  - system:nodes\n"
    },
}


def scenario(
    nodegroups: list[dict[str, Any]] | None = None,
    workloads: list[dict[str, Any]] | None = None,
    *,
    migration: dict[str, Any] | None = None,
    faults: dict[str, Any] | None = None,
    manifests: list[dict[str, Any]] | None = None,
) -> Scenario:
    cluster = {
        "name": NAME,
        "region": REGION,
        "version": "1.23",
        "nodegroups": nodegroups if nodegroups is not None else [{"name": "general", "desiredSize": 2}],
        "workloads": workloads or [],
        "manifests": [AWS_AUTH, *(manifests or [])],
    }
    upgrade: dict[str, Any] = {"toVersion": "1.24"}
    if migration:
        upgrade["nodegroupMigration"] = migration
    return Scenario.model_validate(
        {
            "name": "ng-test",
            "upgrade": upgrade,
            "accounts": [{"id": ACCOUNT, "clusters": [cluster]}],
            "timings": {"controlPlaneUpdateSeconds": 420},
            "faults": faults or {},
        }
    )


def entered(run: ClusterRun) -> list[str]:
    return [name for _, name in run.result.states()]


def nodegroups_after(run: ClusterRun) -> dict[str, Any]:
    return run.after["nodegroups"]


def runtimes(run: ClusterRun) -> dict[str, dict[str, int]]:
    return {g: e["runtimes"] for g, e in run.after["kubernetes"]["nodes"]["byNodegroup"].items()}


# -- the happy path --------------------------------------------------------------------------------------
def test_every_docker_group_is_replaced_by_a_containerd_twin_and_retired():
    spec = scenario(
        nodegroups=[
            {"name": "general", "desiredSize": 3, "labels": {"workload": "general"}},
            {
                "name": "batch",
                "desiredSize": 2,
                "capacityType": "SPOT",
                "labels": {"role": "batch"},
                "taints": [{"key": "dedicated", "value": "batch", "effect": "NO_SCHEDULE"}],
            },
            {"name": "bottlerocket", "amiType": "BOTTLEROCKET_x86_64", "desiredSize": 1},
        ],
        workloads=[
            deployment(6, pdb={"minAvailable": 4}),
            {
                "kind": "StatefulSet",
                "name": "ledger",
                "namespace": "payments",
                "replicas": 3,
                "pdb": {"maxUnavailable": 1},
            },
            {
                "kind": "Deployment",
                "name": "runner",
                "namespace": "batch",
                "replicas": 2,
                "nodeSelector": {"role": "batch"},
                "tolerations": [
                    {"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}
                ],
            },
            {"kind": "DaemonSet", "name": "agent", "namespace": "logging"},
        ],
    )
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        world = sim.world(account, cluster)
        aws_auth_before = json.dumps(world.get("ConfigMap", "kube-system", "aws-auth"), sort_keys=True)
        run = sim.run_cluster(account, cluster)
        assert run.result.status == "SUCCEEDED", run.failure()
        # Then each Docker group has a containerd twin of the same shape, and is gone
        groups = nodegroups_after(run)
        assert sorted(groups) == ["batch-containerd", "bottlerocket", "general-containerd"]
        assert (
            groups["general-containerd"]["amiType"] == "CUSTOM"
            and groups["general-containerd"]["desiredSize"] == 3
        )
        assert all("containerd://" in r for rs in runtimes(run).values() for r in rs)
        batch_nodes = [
            n
            for n in world.list("Node")
            if n["metadata"]["labels"]["eks.amazonaws.com/nodegroup"] == "batch-containerd"
        ]
        assert all(n["metadata"]["labels"]["role"] == "batch" for n in batch_nodes)
        assert all(n["spec"]["taints"][0]["key"] == "dedicated" for n in batch_nodes)
        # And the control plane moved afterwards
        assert run.after["version"] == "1.24"
        states = entered(run)
        assert states.index("MigrateNodegroups") < states.index("StartControlPlaneUpdate")
        # And the report shows the migration and the nodes as they stand
        report = {g["old"]: g for g in run.nodegroups}
        assert set(report) == {"general", "batch"}
        assert report["general"]["new"] == "general-containerd" and report["general"]["nodesDrained"] == 3
        assert report["general"]["podsEvicted"] > 0 and report["batch"]["podsEvicted"] == 2
        assert {n["nodegroup"] for n in run.nodes} == {
            "general-containerd",
            "batch-containerd",
            "bottlerocket",
        }
        # And aws-auth is byte-identical
        assert (
            json.dumps(world.get("ConfigMap", "kube-system", "aws-auth"), sort_keys=True) == aws_auth_before
        )
        assert_nothing_lost(run)
        # And the history stays far from the 25,000-event limit
        assert len(run.result.history) < 2_000


def test_a_budget_that_allows_one_at_a_time_completes_without_a_violation():
    spec = scenario(
        nodegroups=[{"name": "general", "desiredSize": 2}],
        workloads=[deployment(4, pdb={"maxUnavailable": 1})],
    )
    with Simulation(spec) as sim:
        run = sim.run_cluster(*spec.clusters()[0])
    assert run.result.status == "SUCCEEDED", run.failure()
    assert run.nodegroups[0]["pdbBlockedSeconds"] > 0
    assert "Blocked" in {o.get("status") for o in lambda_outputs(run)}
    assert_nothing_lost(run)


# -- failures: where it stops, and what it leaves --------------------------------------------------------
def test_a_budget_blocking_forever_fails_naming_the_pods_and_uncordons():
    spec = scenario(
        workloads=[deployment(2, pdb={"minAvailable": 2})],
        migration={"nodeTimeoutSeconds": 120},
    )
    with Simulation(spec) as sim:
        run = sim.run_cluster(*spec.clusters()[0], ACK_BLOCKING_PDB)
        assert (run.result.status, run.result.error) == ("FAILED", "DrainTimedOut")
        details = failure_details(run)
        blocked = {b["name"] for b in details["blocking"]}
        assert blocked and {b["budget"] for b in details["blocking"]} == {"api"}
        assert all(name in run.failure()["message"] for name in blocked)
        assert details["rollback"]["onFailure"] == "uncordon" and details["stoppedAt"]["phase"] == "Blocked"
        assert cordoned(sim, "general") == []
        assert sorted(nodegroups_after(run)) == ["general", "general-containerd"]  # the twin is kept
        assert run.after["version"] == "1.23"  # the control plane was not touched
        assert run.nodegroups[0]["status"] == "failed"
        assert_nothing_lost(run)


def test_keep_cordoned_leaves_the_old_nodes_cordoned():
    spec = scenario(
        workloads=[deployment(2, pdb={"minAvailable": 2})],
        migration={"nodeTimeoutSeconds": 60, "onFailure": "keep-cordoned"},
    )
    with Simulation(spec) as sim:
        run = sim.run_cluster(*spec.clusters()[0], ACK_BLOCKING_PDB)
        assert run.result.error == "DrainTimedOut"
        assert len(cordoned(sim, "general")) == 2
        assert_nothing_lost(run)


def test_controllerless_and_emptydir_pods_are_refused_then_accepted_with_the_opt_in():
    cache = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "cache", "namespace": "payments"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "cache"}},
            "template": {
                "metadata": {"labels": {"app": "cache"}},
                "spec": {
                    "containers": [{"name": "c", "image": "redis"}],
                    "volumes": [{"name": "s", "emptyDir": {}}],
                },
            },
        },
    }
    spec = scenario(workloads=[{"kind": "Pod", "name": "debug", "namespace": "payments"}], manifests=[cache])
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        refused = sim.run_cluster(account, cluster)
        assert (refused.result.status, refused.result.error) == ("FAILED", "DrainRefused")
        reasons = {
            r["pod"].split("/")[1].split("-")[0]: r["reason"] for r in failure_details(refused)["refused"]
        }
        assert reasons["debug"].startswith("no controller") and reasons["cache"].startswith("emptyDir")
        assert cordoned(sim, "general") == []
        # When the operator opts in and runs again, the twin is adopted and the drain completes
        accepted = sim.run_cluster(
            account,
            cluster,
            migration={"deleteEmptyDirData": True, "evictPodsWithoutController": True},
            name_suffix="opt-in",
        )
        assert accepted.result.status == "SUCCEEDED", accepted.failure()
        creates = [c for c in sim.faults.mutating_calls() if c.operation == "CreateNodegroup"]
        assert len(creates) == 1
        # The bare pod is gone for good: that is what the opt-in accepted, and it was planned
        world = sim.world(account, cluster)
        assert not [p for p in world.list("Pod", "payments") if p["metadata"]["name"] == "debug"]
        # The opt-in announced the bare pod's eviction, so its loss is planned, not counted
        assert (
            accepted.invariants["podsLost"],
            accepted.invariants["pdbViolations"],
            accepted.invariants["unexpectedDeletions"],
        ) == (0, 0, 0)


def test_a_twin_whose_nodes_never_become_ready_is_deleted_and_the_old_group_untouched():
    spec = scenario(workloads=[deployment(2)])
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        sim.eks.cluster_sim(
            account.id, cluster.region, cluster.name
        ).nodes_never_ready = True  # new groups only
        run = sim.run_cluster(account, cluster)
        assert (run.result.status, run.result.error) == ("FAILED", "ReplacementNodegroupNotReady")
        assert sorted(nodegroups_after(run)) == ["general"]
        assert cordoned(sim, "general") == []
        assert "AbandonReplacementNodegroup" in entered(run) and "PrepareDrain" not in entered(run)
        assert run.nodegroups[0]["status"] == "abandoned"
        assert_nothing_lost(run)


def test_capacity_too_small_stops_before_cordoning():
    spec = scenario(
        nodegroups=[{"name": "general", "desiredSize": 2, "instanceTypes": ["t3.medium"]}],
        workloads=[deployment(20, name="web")],
    )
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        sim.eks.cluster_sim(account.id, cluster.region, cluster.name).capacity_shortage = 1
        run = sim.run_cluster(account, cluster)
        assert (run.result.status, run.result.error) == ("FAILED", "InsufficientReplacementCapacity")
        details = failure_details(run)
        assert details["need"]["pods"] == 20 and details["free"]["pods"] < 20
        assert cordoned(sim, "general") == []
        assert_nothing_lost(run)


def test_a_name_taken_by_a_foreign_group_stops_before_any_change():
    spec = scenario(
        nodegroups=[
            {"name": "general", "desiredSize": 1},
            {"name": "general-containerd", "desiredSize": 1, "amiType": "BOTTLEROCKET_x86_64"},
        ]
    )
    with Simulation(spec) as sim:
        run = sim.run_cluster(*spec.clusters()[0])
    assert (run.result.status, run.result.error) == ("FAILED", "NodegroupNameTaken")
    assert [c for c in run.invariants["mutatingCalls"]] == []
    assert_nothing_lost(run)


# -- faults ----------------------------------------------------------------------------------------------
def test_a_response_lost_after_create_nodegroup_leaves_exactly_one_twin():
    spec = scenario(
        workloads=[deployment(2)],
        faults={"loseResponse": [{"service": "eks", "operation": "CreateNodegroup"}]},
    )
    with Simulation(spec) as sim:
        run = sim.run_cluster(*spec.clusters()[0])
    assert run.result.status == "SUCCEEDED", run.failure()
    assert len(sim.faults.lost) == 1
    assert [c.operation for c in sim.faults.mutating_calls()].count("CreateNodegroup") == 1
    assert sorted(nodegroups_after(run)) == ["general-containerd"]
    assert_nothing_lost(run)


def test_a_lambda_crash_mid_drain_is_retried_and_continues(monkeypatch):
    spec = scenario(
        nodegroups=[{"name": "general", "desiredSize": 2}],
        workloads=[deployment(4, pdb={"maxUnavailable": 1})],
    )
    real_evict = ApiClusterNodesGateway.evict
    crashes: list[str] = []

    def evict_then_die(self, namespace: str, name: str):
        outcome = real_evict(self, namespace, name)
        if outcome.outcome == "evicted" and not crashes:
            crashes.append(name)  # the eviction took effect; the process dies before returning
            raise SimulatedLambdaCrash("DrainNodes died after an eviction (injected)")
        return outcome

    monkeypatch.setattr(ApiClusterNodesGateway, "evict", evict_then_die)
    with Simulation(spec) as sim:
        run = sim.run_cluster(*spec.clusters()[0])
    assert run.result.status == "SUCCEEDED", run.failure()
    assert crashes and any(
        i.error == "Runtime.ExitError" and i.function == "DrainNodes" for i in run.result.invocations
    )
    assert_nothing_lost(run)


def test_throttling_on_eks_and_kubernetes_is_retried_by_the_state_machine():
    # Given EKS throttling the migration's node group calls
    spec = scenario(
        workloads=[deployment(2)],
        faults={
            "throttle": [
                {"service": "eks", "operation": "DescribeNodegroup", "first": 3},
                {"service": "eks", "operation": "CreateNodegroup", "first": 1},
            ]
        },
    )
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        cluster_id = f"{account.id}-{cluster.region}-{cluster.name}"
        first_drain: list[str] = []

        @contextlib.contextmanager
        def throttle_the_first_drain(function: str) -> Iterator[None]:
            # And the API server answering the first drain round's pod list, then its first eviction,
            # with 429 (priority and fairness: no disruption budget involved)
            if function == "DrainNodes" and not first_drain:
                first_drain.append(function)
                sim.kube_server.inject_failure(
                    cluster_id, 429, method="GET", path_contains="/pods", retry_after=0
                )
                sim.kube_server.inject_failure(cluster_id, 429, method="POST", path_contains="/eviction")
            yield

        sim.engine.runtime.around_invoke.append(throttle_the_first_drain)
        run = sim.run_cluster(account, cluster)
    # Then every throttle came back to the state machine, which retried or waited, and the run completed
    assert run.result.status == "SUCCEEDED", run.failure()
    drains = [i for i in run.result.invocations if i.function == "DrainNodes"]
    assert drains[0].error == "KubernetesThrottled"  # the list: the step's Retry
    throttled = [o for o in lambda_outputs(run) if o.get("status") == "Blocked"]
    assert throttled and {b["reason"] for b in throttled[0]["blocking"]} == {
        "Throttled"
    }  # the eviction: a Wait
    assert run.nodegroups[0]["pdbBlockedSeconds"] == 0
    assert sum(1 for c in sim.faults.calls if c.throttled) == 4
    assert [c.operation for c in sim.faults.mutating_calls()].count("CreateNodegroup") == 1
    assert_nothing_lost(run)


def test_docker_nodes_it_does_not_replace_block_the_cluster_before_any_change():
    # Given a managed Docker group, and a self-managed Auto Scaling group whose nodes run Docker too
    spec = scenario(
        nodegroups=[
            {"name": "general", "desiredSize": 1},
            {"name": "legacy-asg", "kind": "self-managed", "desiredSize": 1},
            {"name": "bottlerocket", "amiType": "BOTTLEROCKET_x86_64", "desiredSize": 1},
        ]
    )
    with Simulation(spec) as sim:
        run = sim.run_cluster(*spec.clusters()[0])
    # Then the plan stops the cluster, naming them, before anything is created or cordoned
    assert (run.status, run.result.error) == ("BLOCKED", "UnmigratableDockerNodes")
    [blocking] = failure_details(run)["blocking"]
    assert (blocking["nodegroup"], blocking["management"]) == ("legacy-asg", "self-managed")
    assert run.invariants["mutatingCalls"] == []
    assert sorted(nodegroups_after(run)) == ["bottlerocket", "general"]
    assert_nothing_lost(run)


def test_the_migration_states_are_sequential_loops_with_computed_waits_and_rollback():
    definition = json.loads(
        (Path(__file__).resolve().parents[2] / "statemachines/cluster_upgrade.asl.json").read_text()
    )
    states = definition["States"]
    assert states["ReadinessCheck"]["Next"] == "PlanNodegroupMigration"
    migrate = states["MigrateNodegroups"]
    # One group at a time; runtime-first then moves the control plane (version-first already did)
    assert (migrate["Type"], migrate["MaxConcurrency"], migrate["Next"]) == ("Map", 1, "AfterMigration?")
    after = states["AfterMigration?"]
    assert after["Choices"][0]["Next"] == "StartControlPlaneUpdate"
    assert {"Variable": "$.strategy", "StringEquals": "runtime-first"} in after["Choices"][0]["And"]
    inner = migrate["ItemProcessor"]["States"]
    # Every wait is computed by the step before it (never a fixed sleep)
    assert all("SecondsPath" in s for s in inner.values() if s["Type"] == "Wait")
    # Everything after the twin is ready rolls back on any failure, then fails with the original error
    for name in ("PrepareDrain", "DrainNodes", "RetireNodegroup"):
        assert inner[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RollbackDrain"}
        ]
    assert inner["RollbackDrain"]["Next"] == "MigrationFailed"
    assert (inner["MigrationFailed"]["ErrorPath"], inner["MigrationFailed"]["CausePath"]) == (
        "$.error.Error",
        "$.error.Cause",
    )
    # A twin that never becomes ready is deleted before the failure
    [catch] = inner["PollReplacementNodegroup"]["Catch"]
    assert (
        catch["ErrorEquals"] == ["ReplacementNodegroupNotReady"]
        and catch["Next"] == "AbandonReplacementNodegroup"
    )
    # And every Kubernetes-facing step retries Kubernetes throttling
    for name in (
        "PollReplacementNodegroup",
        "PrepareDrain",
        "DrainNodes",
        "RetireNodegroup",
        "RollbackDrain",
    ):
        assert "KubernetesThrottled" in inner[name]["Retry"][0]["ErrorEquals"], name


def test_only_the_planned_deletions_are_expected():
    # Given a run that migrated the Docker group (its retirement was planned, so it is not counted)
    spec = scenario(
        nodegroups=[
            {"name": "general", "desiredSize": 1},
            {"name": "bottlerocket", "amiType": "BOTTLEROCKET_x86_64", "desiredSize": 1},
        ]
    )
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        run = sim.run_cluster(account, cluster)
        assert run.result.status == "SUCCEEDED", run.failure()
        assert_nothing_lost(run)
        declared = run.result.output["nodegroupPlan"]["plannedDeletions"]
        assert {d["name"] for d in declared} == {"general", "general-containerd"}
        # When a group outside the plan is deleted
        eks = account_session(account.id).client("eks", region_name=cluster.region)
        eks.delete_nodegroup(clusterName=cluster.name, nodegroupName="bottlerocket")
        sim.clock.sleep(sim.eks.timings.nodegroup_delete + 1)
        sim.eks.settle_all()
        # Then it counts
        assert sim.world(account, cluster).invariants()["unexpectedDeletions"] == 1


def test_two_budgets_on_one_pod_stop_the_drain_at_once_as_a_misconfiguration():
    # Given the api Deployment selected by its own budget and by a second, catch-all one
    second = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "payments-all", "namespace": "payments"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "api"}}},
    }
    spec = scenario(
        workloads=[deployment(3, pdb={"maxUnavailable": 1})],
        manifests=[second],
        migration={"nodeTimeoutSeconds": 900},
    )
    with Simulation(spec) as sim:
        run = sim.run_cluster(*spec.clusters()[0])
        # Then the first refusal (500) stops the drain, long before its deadline, naming the pods
        assert (run.result.status, run.result.error) == ("FAILED", "PodDisruptionBudgetMisconfigured")
        details = failure_details(run)
        assert details["blocking"] and {b["reason"] for b in details["blocking"]} == {"MultipleBudgets"}
        assert "more than one PodDisruptionBudget" in run.failure()["message"]
        assert details["rollback"]["onFailure"] == "uncordon" and cordoned(sim, "general") == []
        drains = [i for i in run.result.invocations if i.function == "DrainNodes"]
        assert len(drains) == 1  # not retried, not waited on
        assert run.after["version"] == "1.23"
        assert_nothing_lost(run)
