"""The workflow under the orchestrator's ClusterRole (infra/kubernetes/orchestrator-clusterrole.yaml), which
the simulator's API servers enforce: the role is enough for a full migration, every grant in it is used,
and a cluster that withholds the Eviction API stops the drain with a named access error and its fix."""

from __future__ import annotations

from typing import Any

from simulator.kube.rbac import Policy, request_attributes
from simulator.scenario import Scenario
from simulator.simulation import Simulation

ACCOUNT, REGION, NAME = "111111111111", "eu-west-1", "payments-prod"
CLUSTER_ID = f"{ACCOUNT}-{REGION}-{NAME}"
ACK_BLOCKING_PDB = [{"rule": "GN007", "reason": "test: a budget that never allows an eviction, forced"}]


def scenario(workloads: list[dict[str, Any]], migration: dict[str, Any] | None = None) -> Scenario:
    upgrade: dict[str, Any] = {"toVersion": "1.24"}
    if migration:
        upgrade["nodegroupMigration"] = migration
    return Scenario.model_validate(
        {
            "name": "rbac",
            "upgrade": upgrade,
            "accounts": [
                {
                    "id": ACCOUNT,
                    "clusters": [
                        {
                            "name": NAME,
                            "region": REGION,
                            "version": "1.23",
                            "nodegroups": [{"name": "general", "desiredSize": 2}],
                            "workloads": workloads,
                        }
                    ],
                }
            ],
        }
    )


def granted(policy: Policy) -> set[tuple[str, str, str]]:
    """(verb, API group, resource) for every grant of the role."""
    return {
        (verb, group, resource)
        for rule in policy.rules
        for verb in rule.verbs
        for group in rule.api_groups
        for resource in rule.resources
    }


def test_a_forced_migration_needs_every_grant_of_the_role_and_nothing_else():
    # Given a Docker node group running what makes the drain use every kind of call: a Deployment whose
    # budget never allows an eviction (forced at the deadline), a StatefulSet and a ReplicationController
    spec = scenario(
        [
            {
                "kind": "Deployment",
                "name": "api",
                "namespace": "payments",
                "replicas": 2,
                "pdb": {"minAvailable": 2},
            },
            {"kind": "StatefulSet", "name": "ledger", "namespace": "payments", "replicas": 2},
            {"kind": "ReplicationController", "name": "legacy", "namespace": "payments", "replicas": 1},
        ],
        {"nodeTimeoutSeconds": 60, "onTimeout": "force", "forceAcknowledged": True},
    )
    with Simulation(spec) as sim:
        # When the whole workflow runs under the shipped ClusterRole
        run = sim.run_cluster(*spec.clusters()[0], ACK_BLOCKING_PDB)
        assert sim.kube_server is not None and sim.kube_server.authorizer is not None
        authorizer = sim.kube_server.authorizer
        requests = sim.kube_server.requests_to(CLUSTER_ID)
    # Then the migration completes (the forced pods included) and the API server refused nothing. (What
    # follows it may stop on that budget: EKS's own node group update cannot evict past it either.)
    [group] = run.nodegroups
    assert (group["status"], group["podsForced"]) == ("retired", 2), (group, run.failure())
    assert run.result.error != "KubernetesAccessDenied"
    assert authorizer.refusals == []
    assert {r.status for r in requests} <= {200, 201, 429}
    # And every grant of the role was used (a grant nobody uses is a permission to take away)
    used = set()
    for request in requests:
        rest = [s for s in request.path.split("/") if s]
        attributes = request_attributes(request.method, rest, {})
        if attributes.is_resource_request:
            used.add((attributes.verb, attributes.api_group, attributes.resource_path))
    assert used == granted(authorizer.default)


def test_a_drain_without_the_eviction_api_stops_with_the_access_error_and_its_fix_and_changes_nothing():
    spec = scenario([{"kind": "Deployment", "name": "api", "namespace": "payments", "replicas": 3}])
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        world = sim.world(account, cluster)
        assert sim.kube_server is not None and sim.kube_server.authorizer is not None
        # Given a cluster whose operator left pods/eviction out of the ClusterRole
        sim.kube_server.authorizer.restrict(CLUSTER_ID, Policy.from_manifest().without("pods/eviction"))
        pods_before = sorted(p["metadata"]["uid"] for p in world.list("Pod"))
        # When the workflow runs
        run = sim.run_cluster(account, cluster)
        refusals = list(sim.kube_server.authorizer.refusals)
        nodes = world.list("Node")
        pods_after = sorted(p["metadata"]["uid"] for p in world.list("Pod"))
    # Then it stops with the named access error, whose message says what was refused and how to fix it
    assert (run.result.status, run.result.error) == ("FAILED", "KubernetesAccessDenied")
    failure = run.failure()
    assert failure is not None
    assert 'cannot create resource "pods/eviction"' in failure["message"]
    assert "orchestrator-clusterrole.yaml" in failure["message"] and "access entry" in failure["message"]
    assert failure["details"]["httpStatus"] == 403 and "fix" in failure["details"]
    # And the only refusal was that eviction: not retried in a loop
    assert [(r.verb, r.resource_path) for _, r in refusals] == [("create", "pods/eviction")]
    # And nothing changed: every pod still there (same uids), the nodes it cordoned uncordoned again,
    # the control plane untouched, nothing lost or deleted
    assert pods_after == pods_before
    assert [n["metadata"]["name"] for n in nodes if n["spec"].get("unschedulable")] == []
    assert run.after["version"] == "1.23"
    assert (
        run.invariants["podsLost"],
        run.invariants["pdbViolations"],
        run.invariants["unexpectedDeletions"],
    ) == (0, 0, 0)
    assert failure["details"]["rollback"]["onFailure"] == "uncordon"
