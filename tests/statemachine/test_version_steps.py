"""The version step after the control plane, through the real ASL on the simulator: strategies, add-ons,
node versions, the post-upgrade verification, chains and any N -> N+1 (issue 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from upgrader.models import ClusterUpgradeRequest

from simulator.engine import RUN_TABLE_NAME
from simulator.scenario import Scenario
from simulator.seed import account_session
from simulator.simulation import ClusterRun, Simulation

ACCOUNT, REGION, NAME = "111111111111", "eu-west-1", "payments-prod"
ASL = Path(__file__).resolve().parents[2] / "statemachines" / "cluster_upgrade.asl.json"
PAYMENTS = {
    "kind": "Deployment",
    "name": "api",
    "namespace": "payments",
    "replicas": 4,
    "pdb": {"minAvailable": 3},
}


def scenario(
    version: str,
    to_version: str,
    *,
    upgrade: dict[str, Any] | None = None,
    faults: dict[str, Any] | None = None,
    **cluster: Any,
) -> Scenario:
    spec = {
        "name": "vs",
        "faults": faults or {},
        "upgrade": {"toVersion": to_version} | (upgrade or {}),
        "accounts": [
            {
                "id": ACCOUNT,
                "clusters": [
                    {
                        "name": NAME,
                        "region": REGION,
                        "version": version,
                        "nodegroups": [{"name": "general", "desiredSize": 2}],
                        "addons": [{"name": "vpc-cni"}, {"name": "coredns"}, {"name": "kube-proxy"}],
                        "workloads": [PAYMENTS],
                    }
                    | cluster
                ],
            }
        ],
    }
    return Scenario.model_validate(spec)


def run(spec: Scenario) -> tuple[Simulation, ClusterRun]:
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        return sim, sim.run_cluster(account, cluster)


def calls(sim: Simulation) -> list[tuple[str, str]]:
    return [(c.step, f"{c.service}:{c.operation}") for c in sim.faults.mutating_calls()]


def assert_safe(run_: ClusterRun) -> None:
    invariants = run_.invariants
    assert (invariants["podsLost"], invariants["pdbViolations"], invariants["unexpectedDeletions"]) == (
        0,
        0,
        0,
    )


def assert_all_nodes(run_: ClusterRun, version: str) -> None:
    assert run_.nodes and all(n["kubeletVersion"].startswith(f"v{version}.") for n in run_.nodes), run_.nodes
    assert all(n["containerRuntimeVersion"].startswith("containerd://") for n in run_.nodes)


# -- 1.23 -> 1.24, both strategies ------------------------------------------------------------------------
def test_runtime_first_migrates_on_1_23_then_moves_the_twin_to_1_24_in_place():
    sim, result = run(scenario("1.23", "1.24"))
    assert result.result.status == "SUCCEEDED", result.failure()
    # Twin on 1.23 before the control plane, then a launch template version with the 1.24 AMI
    steps = [step for step, _ in calls(sim)]
    assert steps.index("CreateReplacementNodegroup") < steps.index("StartControlPlaneUpdate")
    assert steps.index("StartControlPlaneUpdate") < steps.index("UpdateNodegroupVersions")
    assert ("UpdateNodegroupVersions", "ec2:CreateLaunchTemplateVersion") in calls(sim)
    assert_all_nodes(result, "1.24")
    assert_safe(result)
    [report] = result.upgrades
    assert report["outcome"] == "verified" and report["strategy"] == "runtime-first"
    assert report["controlPlane"] == {"from": "1.23", "to": "1.24"}
    [group] = report["nodegroups"]
    assert (group["name"], group["replacedBy"], group["before"]["version"], group["after"]["version"]) == (
        "general",
        "general-containerd",
        "1.23",
        "1.24",
    )
    addons = {a["name"]: (a["from"], a["to"]) for a in report["addons"]}
    assert addons["coredns"] == ("v1.8.7-eksbuild.4", "v1.9.3-eksbuild.3")  # the 1.24 default
    assert addons["kube-proxy"][1].startswith("v1.24.")
    # And the plan compared both strategies for this cluster
    rotations = {s["strategy"]: s["nodeRotations"] for s in report["strategies"]}
    assert rotations == {"runtime-first": 2, "version-first": 1}


def test_version_first_moves_the_control_plane_first_and_creates_the_twin_on_1_24():
    sim, result = run(scenario("1.23", "1.24", upgrade={"strategy": "version-first"}))
    assert result.result.status == "SUCCEEDED", result.failure()
    steps = [step for step, _ in calls(sim)]
    assert steps.index("StartControlPlaneUpdate") < steps.index("CreateReplacementNodegroup")
    # One rotation: the twin is born on 1.24 (native AMI, no launch template, no in-place update)
    assert "UpdateNodegroupVersions" not in steps
    assert ("CreateReplacementNodegroup", "ec2:CreateLaunchTemplate") not in calls(sim)
    assert_all_nodes(result, "1.24")
    assert_safe(result)
    assert result.upgrades[-1]["strategy"] == "version-first"


# -- any N -> N+1, and chains -------------------------------------------------------------------------------
def test_1_29_to_1_30_uses_the_same_machinery_and_steps_the_vpc_cni_one_minor_at_a_time():
    # Given a 1.29 cluster whose VPC CNI is on the 1.28 default (v1.15)
    spec = scenario(
        "1.29",
        "1.30",
        addons=[
            {"name": "vpc-cni", "version": "v1.15.5-eksbuild.1"},
            {"name": "coredns"},
            {"name": "kube-proxy"},
        ],
    )
    sim, result = run(spec)
    assert result.result.status == "SUCCEEDED", result.failure()
    # Then the CNI went v1.16 -> v1.17 -> v1.18 (the 1.30 default), one UpdateAddon per minor
    cni = [c for c in sim.faults.mutating_calls() if c.operation == "UpdateAddon"]
    assert len(cni) >= 3
    report = result.upgrades[-1]
    assert {a["name"]: a["to"] for a in report["addons"]}["vpc-cni"] == "v1.18.1-eksbuild.3"
    # And the native node group moved to 1.30 in place (no migration: nodes already run containerd)
    assert [step for step, _ in calls(sim)].count("CreateReplacementNodegroup") == 0
    assert_all_nodes(result, "1.30")
    assert_safe(result)


def test_1_23_to_1_25_runs_as_two_verified_steps():
    sim, result = run(scenario("1.23", "1.25"))
    assert result.result.status == "SUCCEEDED", result.failure()
    assert [u["toVersion"] for u in result.upgrades] == ["1.24", "1.25"]
    assert all(u["outcome"] == "verified" for u in result.upgrades)
    updates = [c for c in sim.faults.mutating_calls() if c.operation == "UpdateClusterVersion"]
    assert len(updates) == 2
    # Each step has its own gate
    states = [name for _, name in result.result.states()]
    assert states.count("ReadinessCheck") == 2 and states.count("NextVersionStep") == 1
    assert result.after["version"] == "1.25"
    assert_all_nodes(result, "1.25")
    assert_safe(result)


def test_next_version_step_carries_every_field_of_the_request():
    # NextVersionStep rebuilds the state field by field: a field added to the request must be added there
    parameters = json.loads(ASL.read_text())["States"]["NextVersionStep"]["Parameters"]
    carried = {key.removesuffix(".$") for key in parameters}
    assert carried == {field.alias or name for name, field in ClusterUpgradeRequest.model_fields.items()} | {
        "run"
    } - {""}


# -- add-ons ------------------------------------------------------------------------------------------------
def test_an_addon_with_custom_configuration_keeps_it():
    values = json.dumps({"replicaCount": 3})
    spec = scenario(
        "1.23", "1.24", addons=[{"name": "coredns", "configurationValues": values}, {"name": "kube-proxy"}]
    )
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        result = sim.run_cluster(account, cluster)
        assert result.result.status == "SUCCEEDED", result.failure()
        coredns = next(a for a in result.upgrades[-1]["addons"] if a["name"] == "coredns")
        assert coredns["to"] == "v1.9.3-eksbuild.3" and coredns["configurationKept"] is True
        # And the add-on still has its configuration, updated with resolveConflicts PRESERVE
        eks = account_session(ACCOUNT).client("eks", region_name=REGION)
        assert (
            eks.describe_addon(clusterName=NAME, addonName="coredns")["addon"]["configurationValues"]
            == values
        )
        [update_id] = eks.list_updates(name=NAME, addonName="coredns")["updateIds"]
        params = eks.describe_update(name=NAME, updateId=update_id, addonName="coredns")["update"]["params"]
        assert {"type": "ResolveConflicts", "value": "PRESERVE"} in params


def test_an_addon_without_a_compatible_version_blocks_before_any_change():
    spec = scenario(
        "1.23", "1.24", faults={"addonWithoutCompatibleVersion": [{"addon": "coredns", "version": "1.24"}]}
    )
    sim, result = run(spec)
    assert (result.result.status, result.result.error) == ("FAILED", "ReadinessBlocked")
    assert "GN005" in result.failure()["details"]["blockingRules"]
    assert sim.faults.mutating_calls() == []


# -- node versions --------------------------------------------------------------------------------------------
def test_a_node_group_whose_update_cannot_evict_fails_with_eks_errors_after_the_control_plane():
    # Given a budget that never allows a disruption: EKS's own drain gives up after 15 minutes
    blocked = PAYMENTS | {"pdb": {"maxUnavailable": 0}}
    spec = scenario("1.29", "1.30", workloads=[blocked])
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        # (the readiness gate flags the budget; the owner accepts it for this test's sake)
        ack = [{"rule": "GN007", "reason": "the budget is relaxed by hand during the window"}]
        result = sim.run_cluster(account, cluster, acknowledge=ack)
    assert (result.result.status, result.result.error) == ("FAILED", "NodegroupVersionUpdateFailed")
    details = result.failure()["details"]
    assert [e["errorCode"] for e in details["errors"]] == ["PodEvictionFailure"]
    # The control plane moved, the group kept serving (old nodes cordoned, nothing lost)
    assert result.after["version"] == "1.30"
    assert_safe(result)


def test_a_foreign_update_of_an_addon_is_waited_for_not_fought(monkeypatch):
    # Given someone else's update of coredns running when the workflow reaches the add-ons (an update
    # would get ResourceInUseException): the loop waits for it and then finds coredns on its target
    spec = scenario("1.23", "1.24")
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        original = sim.engine.runtime.invoke
        started: list[str] = []

        def invoke(function: dict[str, Any], event: Any):
            if function["FunctionName"] == "UpdateAddons" and not started:
                eks = account_session(ACCOUNT).client("eks", region_name=REGION)
                started.append(
                    eks.update_addon(clusterName=NAME, addonName="coredns", addonVersion="v1.9.3-eksbuild.3")[
                        "update"
                    ]["id"]
                )
            return original(function, event)

        monkeypatch.setattr(sim.engine.runtime, "invoke", invoke)
        result = sim.run_cluster(account, cluster)
        assert result.result.status == "SUCCEEDED", result.failure()
        assert started
        states = [name for _, name in result.result.states()]
        assert states.count("UpdateAddons") >= 2  # busy (waited), then done
        coredns = next(a for a in result.upgrades[-1]["addons"] if a["name"] == "coredns")
        assert coredns["to"] == "v1.9.3-eksbuild.3"
        ours = [
            c
            for c in sim.faults.mutating_calls()
            if c.operation == "UpdateAddon" and c.step == "UpdateAddons"
        ]
        assert len(ours) == 1  # kube-proxy only: coredns was never updated over the running update


@pytest.mark.parametrize("strategy", ["runtime-first", "version-first"])
def test_a_failed_control_plane_update_leaves_node_groups_and_addons_untouched(strategy):
    spec = scenario(
        "1.23",
        "1.24",
        upgrade={"strategy": strategy},
        faults={"failControlPlaneUpdate": [{"cluster": NAME, "errorCode": "IpNotAvailable"}]},
    )
    sim, result = run(spec)
    assert (result.result.status, result.result.error) == ("FAILED", "ControlPlaneUpdateFailed")
    steps = {step for step, _ in calls(sim)}
    assert not steps & {"UpdateAddons", "UpdateNodegroupVersions"}
    if strategy == "version-first":  # the twins come after the control plane: nothing touched at all
        assert steps == {"StartControlPlaneUpdate"}
    assert_safe(result)


def test_a_self_managed_core_addon_is_reported_with_the_change_it_needs():
    # Given kube-proxy installed as a plain DaemonSet (no EKS add-on)
    kube_proxy = {
        "kind": "DaemonSet",
        "name": "kube-proxy",
        "namespace": "kube-system",
        "image": "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/kube-proxy:v1.23.16-eksbuild.2",
    }
    spec = scenario(
        "1.23", "1.24", addons=[{"name": "vpc-cni"}, {"name": "coredns"}], workloads=[PAYMENTS, kube_proxy]
    )
    sim, result = run(spec)
    assert result.result.status == "SUCCEEDED", result.failure()
    # Then the workflow leaves it alone and the report says exactly what to change
    [self_managed] = result.upgrades[-1]["selfManagedAddons"]
    assert (self_managed["name"], self_managed["kind"], self_managed["objectName"]) == (
        "kube-proxy",
        "DaemonSet",
        "kube-proxy",
    )
    assert self_managed["recommendedVersion"].startswith("v1.24.")
    assert self_managed["recommendedVersion"] in self_managed["change"]
    # (coredns is the one add-on updated: the VPC CNI's 1.23 default is already the 1.24 one)
    assert [c.operation for c in sim.faults.mutating_calls()].count("UpdateAddon") == 1
    assert_safe(result)


# -- plan mode ----------------------------------------------------------------------------------------------
def test_plan_mode_runs_every_read_only_check_and_changes_nothing():
    # Given a cluster whose DaemonSet mounts the Docker socket (the gate would stop an upgrade)
    socket = {
        "kind": "DaemonSet",
        "name": "log-agent",
        "namespace": "logging",
        "hostPaths": ["/var/run/docker.sock"],
    }
    spec = scenario("1.23", "1.24", workloads=[PAYMENTS, socket])
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        request = sim.execution_input(account, cluster) | {"mode": "plan"}
        result = sim.engine.run("cluster_upgrade", "plan-only", request)
        # Then the plan succeeds, with the gate's verdict, the twins and both strategies' estimates
        assert result.status == "SUCCEEDED", result.cause
        plan = result.output
        assert plan["mode"] == "plan"
        assert "DS001" in plan["readiness"]["unacknowledgedRules"]
        assert [g["new"] for g in plan["nodegroupPlan"]["groups"]] == ["general-containerd"]
        assert {s["strategy"] for s in plan["versionPlan"]["strategies"]} == {
            "runtime-first",
            "version-first",
        }
        assert [a["name"] for a in plan["versionPlan"]["addons"]] == ["vpc-cni", "kube-proxy", "coredns"]
        # And not one call changed the fleet (the call recorder proves it)
        assert sim.faults.mutating_calls() == []
        assert [name for _, name in result.states()][-2:] == ["PlanReady", "Planned"]


# -- the fleet lease ----------------------------------------------------------------------------------------
def test_a_run_whose_fleet_lease_was_taken_over_stops_before_its_first_change():
    # Given a cluster workflow started by fleet run "fleet-a", whose lease "fleet-b" has since taken over
    spec = scenario("1.23", "1.24")
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        table = sim.engine.client("dynamodb")
        key = {"pk": {"S": f"LOCK#{ACCOUNT}#{REGION}#{NAME}"}, "sk": {"S": "LOCK"}}
        table.put_item(
            TableName=RUN_TABLE_NAME,
            Item=key
            | {"owner": {"S": "fleet-b"}, "acquiredAt": {"N": "0"}, "expiresAt": {"N": "99999999999"}},
        )
        request = sim.execution_input(account, cluster) | {"lock": {"owner": "fleet-a"}}
        result = sim.engine.run("cluster_upgrade", "lease-lost", request)
        # Then the first step that would change the cluster stops, naming the holder, and nothing changed
        assert (result.status, result.error) == ("FAILED", "ClusterLockLost")
        assert "fleet-b" in result.cause
        assert sim.faults.mutating_calls() == []
        # And with the lease its own, the same input upgrades the cluster
        table.put_item(
            TableName=RUN_TABLE_NAME,
            Item=key
            | {"owner": {"S": "fleet-a"}, "acquiredAt": {"N": "0"}, "expiresAt": {"N": "99999999999"}},
        )
        again = sim.engine.run("cluster_upgrade", "lease-held", request)
        assert again.status == "SUCCEEDED", again.cause


def test_an_update_answered_resource_in_use_is_retried_by_the_loop():
    # Given EKS answering the first UpdateAddon with ResourceInUseException (another update running)
    spec = scenario(
        "1.23",
        "1.24",
        faults={
            "throttle": [
                {
                    "service": "eks",
                    "operation": "UpdateAddon",
                    "first": 1,
                    "errorCode": "ResourceInUseException",
                }
            ]
        },
    )
    sim, result = run(spec)
    # Then the loop waits and asks again: the run completes with every add-on on its target
    assert result.result.status == "SUCCEEDED", result.failure()
    refused = [c for c in sim.faults.calls if c.operation == "UpdateAddon" and c.throttled]
    assert len(refused) == 1
    report = result.upgrades[-1]
    assert {a["name"]: a["to"] for a in report["addons"]}["coredns"] == "v1.9.3-eksbuild.3"
    assert_safe(result)
