"""The simulation builds what a scenario describes, through the same APIs a platform team uses."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from simulator.scenario import load_scenario
from simulator.seed import account_session
from simulator.simulation import AWS_AUTH, Simulation

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "mixed-node-management.yaml"


@pytest.fixture(scope="module")
def sim():
    scenario = load_scenario(SCENARIO)
    with Simulation(scenario) as simulation:
        yield simulation


@pytest.fixture(scope="module")
def cluster(sim):
    account, spec = sim.scenario.clusters()[0]
    return account, spec


def test_managed_groups_are_active_and_the_broken_one_still_creating(sim, cluster):
    account, spec = cluster
    state = sim.cluster_state(account, spec)
    groups = state["nodegroups"]
    assert {name: g["status"] for name, g in groups.items()} == {
        "al2-docker": "ACTIVE",
        "custom-containerd": "ACTIVE",
        "bottlerocket": "ACTIVE",
        "broken": "CREATING",  # nodes joined but never became Ready
    }
    assert groups["custom-containerd"]["amiType"] == "CUSTOM"


def test_nodes_report_the_runtime_their_ami_and_bootstrap_flags_imply(sim, cluster):
    account, spec = cluster
    by_group = sim.world(account, spec).snapshot()["nodes"]["byNodegroup"]
    assert by_group["al2-docker"]["runtimes"] == {"docker://20.10.25": 2}
    assert set(by_group["custom-containerd"]["runtimes"]) == {"containerd://1.6.19"}
    assert set(by_group["bottlerocket"]["runtimes"]) == {"containerd://1.6.19"}
    assert by_group["broken"]["ready"] == 0


def test_self_managed_group_is_an_auto_scaling_group_whose_nodes_joined(sim, cluster):
    account, spec = cluster
    session: boto3.Session = account_session(account.id)
    groups = session.client("autoscaling", region_name=spec.region).describe_auto_scaling_groups()
    names = [g["AutoScalingGroupName"] for g in groups["AutoScalingGroups"]]
    assert names == ["mixed-legacy-asg"]
    nodes = sim.world(account, spec).list("Node")
    legacy = [
        n for n in nodes if n["metadata"]["labels"].get("alpha.eksctl.io/nodegroup-name") == "legacy-asg"
    ]
    assert len(legacy) == 2
    assert all(n["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("docker://") for n in legacy)


def test_fargate_profile_exists(sim, cluster):
    account, spec = cluster
    eks = account_session(account.id).client("eks", region_name=spec.region)
    assert eks.list_fargate_profiles(clusterName=spec.name)["fargateProfileNames"] == ["batch"]


def test_workloads_run_and_invariants_start_clean(sim, cluster):
    account, spec = cluster
    world = sim.world(account, spec)
    pods = world.snapshot()["pods"]
    assert pods["byPhase"] == {"Running": 5}  # 4 web replicas + the bare debug pod
    assert world.invariants() == {"podsLost": 0, "pdbViolations": 0, "unexpectedDeletions": 0}


def test_deliberately_deleting_a_protected_pod_is_counted_as_a_pdb_violation(sim, cluster):
    # Given web's PDB (minAvailable 3 of 4) already allows exactly one disruption
    account, spec = cluster
    world = sim.world(account, spec)
    web = sorted(
        p["metadata"]["name"] for p in world.list("Pod", "default") if p["metadata"]["name"].startswith("web")
    )
    # When two of its pods are deleted directly (bypassing the eviction API)
    world.delete("Pod", "default", web[0])
    world.delete("Pod", "default", web[1])
    # Then the invariant counter sees the budget broken
    assert world.invariants()["pdbViolations"] >= 1


# -- aws-auth: byte-identical at the end of every simulation (reliability guarantee 1.16) ----------------
def test_every_cluster_starts_with_the_aws_auth_eks_leaves_and_the_simulation_keeps_a_copy(sim, cluster):
    account, spec = cluster
    data = sim.world(account, spec).get(*AWS_AUTH)["data"]["mapRoles"]
    # The node role EKS maps for managed node groups, and the orchestrator's target role (its group)
    assert f"rolearn: arn:aws:iam::{account.id}:role/eks-node-role" in data
    assert f"rolearn: arn:aws:iam::{account.id}:role/{sim.scenario.target_role_name}" in data
    assert "- eks-fleet-upgrader" in data
    # And the copy the end of the simulation compares with covers every cluster, none absent
    assert set(sim.aws_auth_at_start) == set(sim.worlds) and all(sim.aws_auth_at_start.values())
