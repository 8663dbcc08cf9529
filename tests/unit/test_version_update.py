"""The version step's domain (functions/upgrader/version_update.py) with in-memory fakes."""

from __future__ import annotations

from typing import Any

import pytest
from upgrader import version_update
from upgrader.errors import (
    AddonUpdateFailed,
    AddonUpdateTimedOut,
    NodegroupVersionUpdateFailed,
    NodegroupVersionUpdateTimedOut,
)
from upgrader.models import ClusterUpgradeRequest
from upgrader.polling import WaitPlan
from upgrader.version_models import VersionStepState
from upgrader.versions import ADDON_UPDATE, NODEGROUP_UPDATE, version_chain

from tests.fakes import FakeEksGateway

CLUSTER = "payments-prod"


def request(**overrides: Any) -> dict[str, Any]:
    return {
        "run": {"executionId": "arn:aws:states:::execution:x:run-1", "executionName": "run-1"},
        "cluster": {"accountId": "111111111111", "region": "eu-west-1", "name": CLUSTER},
        "fromVersion": "1.23",
        "toVersion": "1.24",
    } | overrides


def catalog(*versions: tuple[str, bool], k8s: str = "1.24") -> list[dict[str, Any]]:
    return [
        {
            "addonName": "x",
            "addonVersions": [
                {"addonVersion": v, "compatibilities": [{"clusterVersion": k8s, "defaultVersion": d}]}
                for v, d in versions
            ],
        }
    ]


# -- the policy and the plan ------------------------------------------------------------------------------
def test_version_chain_is_single_minor_steps():
    assert version_chain("1.23", "1.24") == ("1.24",)
    assert version_chain("1.27", "1.30") == ("1.28", "1.29", "1.30")


def test_addon_target_is_the_default_for_the_target_version():
    plan = version_update.plan_addon(
        "coredns",
        "v1.8.7-eksbuild.4",
        catalog(("v1.9.3-eksbuild.3", True), ("v1.9.3-eksbuild.15", False)),
        "1.24",
        (),
    )
    assert (plan.action, plan.target, plan.hops) == ("update", "v1.9.3-eksbuild.3", ["v1.9.3-eksbuild.3"])


def test_the_vpc_cni_moves_one_minor_version_per_update():
    versions = catalog(
        ("v1.16.4-eksbuild.2", False),
        ("v1.17.1-eksbuild.1", False),
        ("v1.18.1-eksbuild.3", True),
        ("v1.17.0-eksbuild.1", False),
        k8s="1.30",
    )
    plan = version_update.plan_addon("vpc-cni", "v1.15.5-eksbuild.1", versions, "1.30", ())
    assert plan.hops == ["v1.16.4-eksbuild.2", "v1.17.1-eksbuild.1", "v1.18.1-eksbuild.3"]


@pytest.mark.parametrize(
    ("installed", "versions", "skip", "action"),
    [
        ("v1.9.3-eksbuild.15", [("v1.9.3-eksbuild.3", True)], (), "current"),  # newer than the default
        ("v1.8.7-eksbuild.4", [], (), "skipped"),  # nothing compatible (GN005)
        ("v1.8.7-eksbuild.4", [("v1.9.3-eksbuild.3", True)], ("coredns",), "skipped"),
    ],
)
def test_addons_left_alone_say_why(installed, versions, skip, action):
    plan = version_update.plan_addon("coredns", installed, catalog(*versions), "1.24", skip)
    assert plan.action == action and plan.reason and plan.target == installed


def test_the_runtime_first_estimate_rotates_migrated_nodes_twice_and_version_first_once():
    state = VersionStepState.model_validate(request() | {"versionPlan": _plan_with_groups()})
    estimates = {
        e.strategy: e
        for e in version_update.estimate_strategies(state, state.version_plan.before, ["general"], 2)
    }
    assert (estimates["runtime-first"].node_rotations, estimates["version-first"].node_rotations) == (2, 1)
    assert estimates["runtime-first"].expected_seconds > estimates["version-first"].expected_seconds


def _plan_with_groups() -> dict[str, Any]:
    return {
        "fromVersion": "1.23",
        "toVersion": "1.24",
        "strategy": "runtime-first",
        "controlPlaneAtTarget": False,
        "before": {
            "controlPlane": "1.23",
            "nodegroups": [
                {"name": "general", "version": "1.23", "desired": 3},
                {"name": "bottlerocket", "version": "1.23", "amiType": "BOTTLEROCKET_x86_64", "desired": 2},
            ],
        },
    }


# -- the add-on loop ----------------------------------------------------------------------------------------
def addon_state(eks: FakeEksGateway, **progress: Any) -> VersionStepState:
    plans = []
    for name in version_update.ordered_addons(eks.clusters[CLUSTER].addons):  # the snapshot's order
        installed = eks.clusters[CLUSTER].addons[name]["addonVersion"]
        plans.append(
            version_update.plan_addon(
                name, installed, eks.describe_addon_versions(name, "1.24"), "1.24", ()
            ).dump()
        )
    plan = _plan_with_groups() | {"addons": plans}
    return VersionStepState.model_validate(request() | {"versionPlan": plan} | progress)


@pytest.fixture
def eks() -> FakeEksGateway:
    fake = FakeEksGateway()
    fake.add_cluster(CLUSTER, "1.24")
    fake.clusters[CLUSTER].version = "1.24"
    for name, version in (("coredns", "v1.8.7-eksbuild.4"), ("kube-proxy", "v1.23.16-eksbuild.2")):
        fake.add_addon(CLUSTER, name, version)
    return fake


ADDON_WAITS = WaitPlan(ADDON_UPDATE)


def test_addons_update_side_by_side_with_preserve_then_finish(eks):
    state = addon_state(eks)
    first = version_update.update_addons(eks, state, ADDON_WAITS)
    assert first.status == "InProgress" and first.next_wait_seconds == ADDON_UPDATE.first_wait_seconds
    updates = [c[1] for c in eks.calls if c[0] == "update_addon"]
    assert updates == [
        ("kube-proxy", "v1.24.10-eksbuild.2", "PRESERVE"),
        ("coredns", "v1.9.3-eksbuild.7", "PRESERVE"),
    ]
    # When both finish, the next pass reports Done without another update
    for item in first.addons:
        eks.finish_resource(CLUSTER, item.update_id)
    done = version_update.update_addons(eks, state.model_copy(update={"addon_updates": first}), ADDON_WAITS)
    assert done.status == "Done" and {a.current for a in done.addons} == {
        "v1.24.10-eksbuild.2",
        "v1.9.3-eksbuild.7",
    }
    assert len([c for c in eks.calls if c[0] == "update_addon"]) == 2


def test_a_retried_pass_adopts_the_update_its_lost_response_started(eks):
    state = addon_state(eks)
    version_update.update_addons(eks, state, ADDON_WAITS)  # the response is lost: the state never saw it
    for scope in ("addon/coredns", "addon/kube-proxy"):
        eks.clusters[CLUSTER].addons[scope.split("/")[1]]["status"] = "ACTIVE"  # (ours still runs in EKS)
    again = version_update.update_addons(eks, state, ADDON_WAITS)
    assert again.status == "InProgress"
    assert sum(len(u) for u in eks.resource_updates.values()) == 2  # the same token: no second update


def test_an_addon_busy_with_someone_elses_update_is_waited_for(eks):
    eks.busy.add("addon/coredns")
    progress = version_update.update_addons(eks, addon_state(eks), ADDON_WAITS)
    coredns = next(a for a in progress.addons if a.name == "coredns")
    assert (progress.status, coredns.status, coredns.update_id) == ("InProgress", "pending", None)


def test_a_failed_addon_update_stops_with_eks_errors(eks):
    state = addon_state(eks)
    first = version_update.update_addons(eks, state, ADDON_WAITS)
    coredns = next(a for a in first.addons if a.name == "coredns")
    eks.finish_resource(CLUSTER, coredns.update_id, "Failed", ({"errorCode": "ConfigurationConflict"},))
    with pytest.raises(AddonUpdateFailed) as stopped:
        version_update.update_addons(eks, state.model_copy(update={"addon_updates": first}), ADDON_WAITS)
    assert stopped.value.details["errors"] == [{"errorCode": "ConfigurationConflict"}]


def test_the_addon_loop_is_capped(eks):
    state = addon_state(eks)
    first = version_update.update_addons(eks, state, ADDON_WAITS)
    late = first.model_copy(update={"waited_seconds": ADDON_UPDATE.max_wait_seconds})
    with pytest.raises(AddonUpdateTimedOut):
        version_update.update_addons(eks, state.model_copy(update={"addon_updates": late}), ADDON_WAITS)


# -- the node group loop ------------------------------------------------------------------------------------
NODE_WAITS = WaitPlan(NODEGROUP_UPDATE)


def test_node_groups_are_updated_one_at_a_time_and_a_failure_names_eks_errors(eks):
    for name in ("b-group", "a-group"):
        eks.add_nodegroup(CLUSTER, name, version="1.23")
    state = VersionStepState.model_validate(request() | {"versionPlan": _plan_with_groups()})
    first = version_update.update_nodegroup_versions(eks, None, None, state, NODE_WAITS)  # type: ignore[arg-type]
    assert first.current is not None and first.current.name == "a-group"
    assert [c[1][0] for c in eks.calls if c[0] == "update_nodegroup_version"] == ["a-group"]
    # While it runs: a short poll, no second update
    polling = version_update.update_nodegroup_versions(
        eks,
        None,
        None,
        state.model_copy(update={"nodegroup_updates": first}),
        NODE_WAITS,  # type: ignore[arg-type]
    )
    assert polling.current == first.current and polling.next_wait_seconds == NODEGROUP_UPDATE.poll_seconds
    # When it succeeds the next group starts; when that one fails the loop stops with EKS's errors
    eks.finish_resource(CLUSTER, first.current.update_id)
    second = version_update.update_nodegroup_versions(
        eks,
        None,
        None,
        state.model_copy(update={"nodegroup_updates": polling}),
        NODE_WAITS,  # type: ignore[arg-type]
    )
    assert second.current.name == "b-group" and [d.name for d in second.done] == ["a-group"]
    eks.finish_resource(CLUSTER, second.current.update_id, "Failed", ({"errorCode": "PodEvictionFailure"},))
    with pytest.raises(NodegroupVersionUpdateFailed) as stopped:
        version_update.update_nodegroup_versions(
            eks,
            None,
            None,
            state.model_copy(update={"nodegroup_updates": second}),
            NODE_WAITS,  # type: ignore[arg-type]
        )
    assert stopped.value.details["errors"] == [{"errorCode": "PodEvictionFailure"}]


# -- verification helpers ----------------------------------------------------------------------------------
def node(name: str, kubelet: str, runtime: str, ready: bool = True) -> dict[str, Any]:
    return {
        "kind": "Node",
        "metadata": {"name": name},
        "status": {
            "nodeInfo": {"kubeletVersion": kubelet, "containerRuntimeVersion": runtime},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_nodes_must_be_ready_on_the_target_kubelet_with_containerd():
    count, problems = version_update.node_problems(
        [
            node("ok", "v1.24.17-eks-8cb36c9", "containerd://1.6.19"),
            node("old", "v1.23.17-eks-a59e1f0", "containerd://1.6.19"),
            node("docker", "v1.24.17-eks-8cb36c9", "docker://20.10.25"),
            node("starting", "v1.24.17-eks-8cb36c9", "containerd://1.6.19", ready=False),
        ],
        "1.24",
    )
    assert count == 4
    assert problems == [
        "node old runs kubelet v1.23.17-eks-a59e1f0, not 1.24",
        "node docker runs docker://20.10.25, not containerd",
        "node starting is not Ready",
    ]


def test_workloads_short_of_their_replicas_are_named():
    short = version_update.workload_shortfalls(
        [
            {
                "kind": "Deployment",
                "metadata": {"namespace": "a", "name": "api"},
                "spec": {"replicas": 3},
                "status": {"readyReplicas": 2},
            },
            {
                "kind": "StatefulSet",
                "metadata": {"namespace": "a", "name": "db"},
                "spec": {"replicas": 2},
                "status": {"readyReplicas": 2},
            },
            {
                "kind": "DaemonSet",
                "metadata": {"namespace": "b", "name": "agent"},
                "status": {"desiredNumberScheduled": 4, "numberReady": 3},
            },
        ]
    )
    assert short == ["Deployment a/api: 2/3 ready", "DaemonSet b/agent: 3/4 ready"]


def test_a_request_dump_round_trips_the_chain_fields():
    parsed = ClusterUpgradeRequest.model_validate(
        request(targetVersion="1.25", versionChain=["1.24", "1.25"])
    )
    assert parsed.dump()["versionChain"] == ["1.24", "1.25"] and parsed.strategy == "runtime-first"


def test_a_node_group_busy_with_someone_elses_update_is_waited_for_within_the_cap(eks):
    eks.add_nodegroup(CLUSTER, "a-group", version="1.23")
    eks.busy.add("nodegroup/a-group")
    state = VersionStepState.model_validate(request() | {"versionPlan": _plan_with_groups()})
    waiting = version_update.update_nodegroup_versions(eks, None, None, state, NODE_WAITS)  # type: ignore[arg-type]
    assert (waiting.status, waiting.current) == ("InProgress", None)
    # Still busy at the cap: the loop stops instead of polling forever
    late = waiting.model_copy(
        update={"waited_seconds": NODEGROUP_UPDATE.max_wait_seconds, "next_wait_seconds": 0}
    )
    with pytest.raises(NodegroupVersionUpdateTimedOut):
        version_update.update_nodegroup_versions(
            eks,
            None,
            None,
            state.model_copy(update={"nodegroup_updates": late}),
            NODE_WAITS,  # type: ignore[arg-type]
        )
