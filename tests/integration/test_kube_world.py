"""The simulated cluster (simulator/kube/world.py): nodes, scheduler, controllers, eviction and
disruption budgets on the virtual clock, and the invariants a fleet upgrade must keep."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.clock import VirtualClock
from simulator.kube.world import KubeError, KubeWorld

KUBELET_123 = "v1.23.17-eks-a59e1f0"
KUBELET_124 = "v1.24.17-eks-8cb36c9"
DOCKER = "docker://20.10.25"
CONTAINERD = "containerd://1.6.19"
READY_AFTER = 60.0  # virtual seconds a node takes to become Ready
POD_READY = 15.0
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"


def add_nodes(
    world: KubeWorld,
    group: str,
    count: int,
    *,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    pods_per_node: int = 17,
    kubelet: str = KUBELET_123,
    runtime: str = DOCKER,
    ready_at: float | None = 0.0,
) -> list[str]:
    names = [f"i-{group}-{i}" for i in range(count)]
    world.register_nodes(
        group,
        names,
        kubelet_version=kubelet,
        container_runtime=runtime,
        instance_type="m5.large",
        labels={"eks.amazonaws.com/nodegroup": group, **(labels or {})},
        taints=taints or [],
        pods_per_node=pods_per_node,
        ready_at=ready_at,
    )
    return names


def deployment(name: str, replicas: int, namespace: str = "shop", **pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": f"registry.example/{name}:1"}], **pod_spec},
            },
        },
    }


def pdb(name: str, app: str, namespace: str = "shop", **budget: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": app}}, **budget},
    }


def bare_pod(name: str, namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }


def pods_of(world: KubeWorld, app: str, namespace: str = "shop") -> list[dict[str, Any]]:
    return [p for p in world.list("Pod", namespace) if p["metadata"].get("labels", {}).get("app") == app]


def ready(pod: dict[str, Any]) -> bool:
    return pod["status"]["phase"] == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"]
    )


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def world(clock: VirtualClock) -> KubeWorld:
    return KubeWorld("payments-prod", clock, "1.23", pod_ready_seconds=POD_READY)


def settle(clock: VirtualClock) -> None:
    clock.sleep(POD_READY, "pods start")


# -- nodes --------------------------------------------------------------------------------------


def test_nodes_join_not_ready_then_become_ready_after_the_virtual_delay(world, clock):
    # Given a node group registering at t=0 whose nodes are Ready at t=60
    add_nodes(world, "ng-1", 2, ready_at=READY_AFTER, runtime=CONTAINERD, kubelet=KUBELET_124)
    # Then at once they exist, NotReady, tainted not-ready, reporting what they were given
    node = world.get("Node", None, "i-ng-1-0")
    assert [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"] == ["False"]
    assert {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"} in node["spec"]["taints"]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == KUBELET_124
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == CONTAINERD
    assert node["status"]["nodeInfo"]["osImage"] == "Amazon Linux 2"
    assert node["status"]["allocatable"]["pods"] == "17"
    labels = node["metadata"]["labels"]
    assert labels["eks.amazonaws.com/nodegroup"] == "ng-1"
    assert labels["kubernetes.io/hostname"] == "i-ng-1-0"
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["node.kubernetes.io/instance-type"] == "m5.large"
    # When virtual time passes just short of the delay, then still not Ready
    clock.sleep(READY_AFTER - 1)
    assert world.snapshot()["nodes"]["ready"] == 0
    # When it reaches the delay, then Ready, and the not-ready taint is gone
    clock.sleep(1)
    node = world.get("Node", None, "i-ng-1-0")
    assert [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"] == ["True"]
    assert "taints" not in node["spec"]
    snapshot = world.snapshot()["nodes"]
    assert snapshot["ready"] == 2
    assert snapshot["byNodegroup"]["ng-1"]["kubeletVersions"] == {KUBELET_124: 2}
    assert snapshot["byContainerRuntime"] == {CONTAINERD: 2}


def test_nodes_that_never_become_ready_keep_pods_pending(world, clock):
    add_nodes(world, "ng-broken", 2, ready_at=None)
    world.apply(deployment("web", 2))
    clock.sleep(3600)
    pods = pods_of(world, "web")
    assert [p["status"]["phase"] for p in pods] == ["Pending", "Pending"]
    assert (
        "untolerated taint {node.kubernetes.io/not-ready: }" in pods[0]["status"]["conditions"][0]["message"]
    )
    assert world.invariants()["podsLost"] == 2


# -- scheduler ----------------------------------------------------------------------------------


def test_pods_spread_least_loaded_first_and_become_ready_after_pod_ready_seconds(world, clock):
    add_nodes(world, "ng-1", 3)
    world.apply(deployment("web", 6))
    pods = pods_of(world, "web")
    # Bound at once, least loaded first: two per node; not Ready yet
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(["i-ng-1-0", "i-ng-1-1", "i-ng-1-2"] * 2)
    assert not any(ready(p) for p in pods)
    clock.sleep(POD_READY)
    assert all(ready(p) for p in pods_of(world, "web"))
    assert world.invariants() == {"podsLost": 0, "pdbViolations": 0, "unexpectedDeletions": 0}


def test_node_selector_and_taints_decide_where_pods_go(world, clock):
    add_nodes(world, "general", 2)
    add_nodes(
        world,
        "gpu",
        1,
        labels={"accelerator": "nvidia"},
        taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}],
    )
    # A pod with the selector and the toleration lands on the GPU node
    world.apply(
        deployment(
            "trainer",
            2,
            nodeSelector={"accelerator": "nvidia"},
            tolerations=[{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
        )
    )
    assert {p["spec"]["nodeName"] for p in pods_of(world, "trainer")} == {"i-gpu-0"}
    # A pod without the toleration never lands there, whatever the load
    world.apply(deployment("web", 6))
    assert {p["spec"]["nodeName"] for p in pods_of(world, "web")} == {"i-general-0", "i-general-1"}
    # A pod with the selector but no toleration fits nowhere: Pending, with the scheduler's reasons
    world.apply(deployment("picky", 1, nodeSelector={"accelerator": "nvidia"}))
    [pending] = pods_of(world, "picky")
    assert pending["status"]["phase"] == "Pending" and "nodeName" not in pending["spec"]
    [condition] = pending["status"]["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "PodScheduled",
        "False",
        "Unschedulable",
    )
    assert "1 node(s) had untolerated taint {gpu: true}" in condition["message"]
    assert "2 node(s) didn't match Pod's node affinity/selector" in condition["message"]


def test_capacity_and_cordon_leave_pods_pending_until_room_appears(world, clock):
    add_nodes(world, "small", 2, pods_per_node=2)
    world.patch_node("i-small-1", {"spec": {"unschedulable": True}}, MERGE)
    world.apply(deployment("web", 3))
    pods = pods_of(world, "web")
    assert sorted(p["spec"].get("nodeName", "-") for p in pods) == ["-", "i-small-0", "i-small-0"]
    pending = next(p for p in pods if "nodeName" not in p["spec"])
    message = pending["status"]["conditions"][0]["message"]
    assert "1 Too many pods" in message and "1 node(s) were unschedulable" in message
    # When the node is uncordoned, the scheduler places the pending pod at once
    world.patch_node("i-small-1", {"spec": {"unschedulable": None}}, MERGE)
    assert [p["spec"].get("nodeName") for p in pods_of(world, "web")].count("i-small-1") == 1
    settle(clock)
    assert world.invariants()["podsLost"] == 0


def test_a_node_under_pressure_keeps_its_pods_but_takes_no_new_ones_until_it_recovers(world, clock):
    # Given two Ready nodes running web, and a log agent on each
    add_nodes(world, "ng-1", 2)
    world.apply(deployment("web", 2))
    world.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "log-agent", "namespace": "kube-system"},
            "spec": {"template": {"spec": {"containers": [{"name": "agent", "image": "fluent-bit"}]}}},
        }
    )
    settle(clock)
    # When both report memory pressure
    for name in ("i-ng-1-0", "i-ng-1-1"):
        world.set_node_pressure(name, "MemoryPressure")
    node = world.get("Node", None, "i-ng-1-0")
    # Then each is still Ready and schedulable, with the condition and the lifecycle controller's taint
    assert [c["status"] for c in node["status"]["conditions"] if c["type"] == "MemoryPressure"] == ["True"]
    assert {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"} in node["spec"]["taints"]
    assert not node["spec"].get("unschedulable") and world.snapshot()["nodes"]["ready"] == 2
    # And what runs there keeps running, but a pod that leaves is replaced by one that stays Pending
    assert world.invariants()["podsLost"] == 0
    victim = pods_of(world, "web")[0]
    assert world.evict("shop", victim["metadata"]["name"]).code == 201
    [pending] = [p for p in pods_of(world, "web") if not p["spec"].get("nodeName")]
    message = pending["status"]["conditions"][0]["message"]
    assert "2 node(s) had untolerated taint {node.kubernetes.io/memory-pressure: }" in message
    clock.sleep(POD_READY * 4)
    assert world.invariants()["podsLost"] == 1
    assert len([p for p in pods_of(world, "log-agent", "kube-system") if ready(p)]) == 2  # tolerated
    # When one recovers, the scheduler places the pending pod there and the taint is gone
    world.set_node_pressure("i-ng-1-1", "MemoryPressure", under=False)
    assert "taints" not in world.get("Node", None, "i-ng-1-1")["spec"]
    assert [p["spec"].get("nodeName") for p in pods_of(world, "web")].count("i-ng-1-1") == 2
    settle(clock)
    assert world.invariants()["podsLost"] == 0
    with pytest.raises(ValueError, match="unknown pressure condition"):
        world.set_node_pressure("i-ng-1-0", "NetworkUnavailable")


def test_daemonset_runs_one_pod_on_every_eligible_node(world, clock):
    add_nodes(world, "general", 2)
    add_nodes(world, "tainted", 1, taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    add_nodes(world, "late", 1, ready_at=READY_AFTER)
    world.patch_node("i-general-1", {"spec": {"unschedulable": True}}, MERGE)
    world.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "log-agent", "namespace": "kube-system"},
            "spec": {"template": {"spec": {"containers": [{"name": "agent", "image": "fluent-bit"}]}}},
        }
    )
    pods = pods_of(world, "log-agent", "kube-system")
    # Cordoned nodes too (DaemonSet pods tolerate unschedulable); not the tainted node; not yet the late one
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["i-general-0", "i-general-1"]
    assert {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"} in pods[
        0
    ]["spec"]["tolerations"]
    clock.sleep(READY_AFTER)
    settle(clock)
    pods = pods_of(world, "log-agent", "kube-system")
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["i-general-0", "i-general-1", "i-late-0"]
    assert all(ready(p) for p in pods)
    status = world.get("DaemonSet", "kube-system", "log-agent")["status"]
    assert (status["desiredNumberScheduled"], status["numberReady"]) == (3, 3)
    assert world.invariants()["podsLost"] == 0


# -- controllers ----------------------------------------------------------------------------------


def test_an_evicted_pod_is_replaced_by_a_new_pod_on_another_node(world, clock):
    add_nodes(world, "ng-1", 2)
    world.apply(deployment("web", 2))
    settle(clock)
    victim = next(p for p in pods_of(world, "web") if p["spec"]["nodeName"] == "i-ng-1-0")
    world.patch_node("i-ng-1-0", {"spec": {"unschedulable": True}}, SMP)
    # When the pod is evicted
    assert world.evict("shop", victim["metadata"]["name"]).code == 201
    # Then a new pod (new name and uid) replaces it, Pending on the other node until it starts
    pods = pods_of(world, "web")
    assert victim["metadata"]["name"] not in [p["metadata"]["name"] for p in pods]
    replacement = next(p for p in pods if p["metadata"]["uid"] != victim["metadata"]["uid"] and not ready(p))
    assert replacement["spec"]["nodeName"] == "i-ng-1-1"
    assert replacement["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert world.invariants()["podsLost"] == 1  # wanted but not Ready yet
    settle(clock)
    assert world.invariants() == {"podsLost": 0, "pdbViolations": 0, "unexpectedDeletions": 0}


def test_statefulset_pods_come_back_with_the_same_name_and_a_new_uid(world, clock):
    add_nodes(world, "ng-1", 2)
    world.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "db", "image": "pg"}]},
                },
            },
        }
    )
    # OrderedReady: db-1 only once db-0 is Ready
    assert [p["metadata"]["name"] for p in pods_of(world, "db")] == ["db-0"]
    settle(clock)
    settle(clock)
    old = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods_of(world, "db")}
    assert sorted(old) == ["db-0", "db-1"]
    world.evict("shop", "db-1")
    new = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods_of(world, "db")}
    assert sorted(new) == ["db-0", "db-1"] and new["db-1"] != old["db-1"]


def test_other_controllers_keep_their_pods_and_cronjobs_and_empty_deployments_have_none(world, clock):
    add_nodes(world, "ng-1", 2)
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    world.apply({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "legacy"},
                 "spec": {"replicas": 2, "selector": {"app": "legacy"},
                          "template": {**template, "metadata": {"labels": {"app": "legacy"}}}}})  # fmt: skip
    world.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "report"},
                 "spec": {"parallelism": 2, "completions": 2,
                          "template": {"metadata": {"labels": {"app": "report"},
                                                    "annotations": {"simulator.eks-fleet-upgrader/run-seconds": "30"}},
                                       "spec": {"containers": [{"name": "r", "image": "r"}]}}}})  # fmt: skip
    world.apply({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
                 "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": template}}}})  # fmt: skip
    world.apply(deployment("idle", 0, namespace="default"))
    assert len(pods_of(world, "legacy", "default")) == 2
    assert len(pods_of(world, "report", "default")) == 2
    assert pods_of(world, "x", "default") == [] and pods_of(world, "idle", "default") == []
    # The Job's pods finish 30 s after they are Ready; the Job is then complete and has no more pods to run
    settle(clock)
    clock.sleep(30)
    job = world.get("Job", "default", "report")
    assert job["status"]["succeeded"] == 2 and job["status"]["conditions"][0]["type"] == "Complete"
    assert {p["status"]["phase"] for p in pods_of(world, "report", "default")} == {"Succeeded"}
    assert world.invariants()["podsLost"] == 0


# -- eviction and disruption budgets --------------------------------------------------------------


@pytest.fixture
def web(world, clock) -> list[str]:
    """Three Ready web pods on three nodes; returns their names."""
    add_nodes(world, "ng-1", 3)
    world.apply(deployment("web", 3))
    settle(clock)
    return [p["metadata"]["name"] for p in pods_of(world, "web")]


def test_eviction_is_allowed_while_the_budget_allows_a_disruption_then_refused_with_429(world, clock, web):
    world.apply(pdb("web", "web", minAvailable=2))
    status = world.get("PodDisruptionBudget", "shop", "web")["status"]
    assert (
        status["expectedPods"],
        status["currentHealthy"],
        status["desiredHealthy"],
        status["disruptionsAllowed"],
    ) == (3, 3, 2, 1)
    assert world.evict("shop", web[0]).code == 201
    assert world.get("PodDisruptionBudget", "shop", "web")["status"]["disruptionsAllowed"] == 0
    refused = world.evict("shop", web[1])
    assert (refused.code, refused.reason) == (429, "TooManyRequests")
    assert refused.message == "Cannot evict pod as it would violate the pod's disruption budget."
    assert refused.details["causes"][0]["reason"] == "DisruptionBudget"
    assert web[1] in [p["metadata"]["name"] for p in pods_of(world, "web")]
    # Once the replacement is Ready the budget allows one more disruption
    settle(clock)
    assert world.evict("shop", web[1]).code == 201
    assert world.invariants()["pdbViolations"] == 0


def test_percentages_and_max_unavailable_follow_the_disruption_controller(world, clock, web):
    world.apply(pdb("web", "web", maxUnavailable="34%"))  # ceil(0.34 * 3) = 2 unavailable allowed
    status = world.get("PodDisruptionBudget", "shop", "web")["status"]
    assert (status["desiredHealthy"], status["disruptionsAllowed"]) == (1, 2)
    world.apply(pdb("web", "web", minAvailable="50%"))  # ceil(1.5) = 2
    status = world.get("PodDisruptionBudget", "shop", "web")["status"]
    assert (status["expectedPods"], status["desiredHealthy"], status["disruptionsAllowed"]) == (3, 2, 1)


def test_two_budgets_selecting_a_pod_make_its_eviction_a_500(world, clock, web):
    world.apply(pdb("web-a", "web", minAvailable=1))
    world.apply(pdb("web-b", "web", maxUnavailable=1))
    outcome = world.evict("shop", web[0])
    assert outcome.code == 500
    assert (
        outcome.message
        == "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    )
    assert len(pods_of(world, "web")) == 3


def test_pods_that_are_not_ready_are_evicted_without_spending_the_budget(world, clock):
    add_nodes(world, "ng-1", 2)
    world.apply(deployment("web", 2))
    world.apply(pdb("web", "web", maxUnavailable=0))
    # Pending (starting) pods bypass the budget entirely, as in the API server
    starting = pods_of(world, "web")[0]["metadata"]["name"]
    assert world.evict("shop", starting).code == 201
    assert world.invariants()["pdbViolations"] == 0
    settle(clock)
    # Ready pods with maxUnavailable 0: never
    assert world.evict("shop", pods_of(world, "web")[0]["metadata"]["name"]).code == 429


def test_a_bare_pod_evicted_is_a_lost_pod(world, clock):
    add_nodes(world, "ng-1", 1)
    world.apply(bare_pod("debug"))
    settle(clock)
    assert world.evict("shop", "debug").code == 201
    assert pods_of(world, "debug") == []
    assert world.invariants()["podsLost"] == 1


def test_an_announced_delete_of_a_bare_pod_loses_nothing(world, clock):
    add_nodes(world, "ng-1", 1)
    world.apply(bare_pod("debug"))
    world.expect_deletion("Pod", "debug", "shop")
    world.delete("Pod", "shop", "debug")
    assert world.invariants() == {"podsLost": 0, "pdbViolations": 0, "unexpectedDeletions": 0}


def test_evicting_an_unknown_pod_is_404(world):
    outcome = world.evict("shop", "nope")
    assert (outcome.code, outcome.reason, outcome.message) == (404, "NotFound", 'pods "nope" not found')


def test_a_direct_delete_of_a_protected_pod_violates_its_budget_and_is_unexpected(world, clock, web):
    world.apply(pdb("web", "web", minAvailable=3))
    assert world.evict("shop", web[0]).code == 429
    # When the drain deletes the pod instead of evicting it
    world.delete("Pod", "shop", web[0])
    # Then the budget was broken by that change, and the deletion was not announced
    invariants = world.invariants()
    assert invariants["pdbViolations"] == 1
    assert invariants["unexpectedDeletions"] == 1
    [violation] = world.violations()
    assert violation["pdb"] == "shop/web" and violation["change"] == f"delete Pod shop/{web[0]}"
    assert (violation["currentHealthy"], violation["desiredHealthy"]) == (2, 3)


def test_announced_deletions_are_expected(world, clock, web):
    world.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "shop"},
            "data": {"a": "1"},
        }
    )
    world.expect_deletion("ConfigMap", "cfg", "shop")
    world.delete("ConfigMap", "shop", "cfg")
    with pytest.raises(KubeError) as missing:
        world.get("ConfigMap", "shop", "cfg")
    assert missing.value.status.code == 404
    assert world.invariants()["unexpectedDeletions"] == 0
    assert [(d.kind, d.name, d.expected) for d in world.deletions()] == [("ConfigMap", "cfg", True)]


# -- node groups ----------------------------------------------------------------------------------


def test_removing_a_node_group_moves_pods_or_leaves_them_pending_and_is_unexpected_unless_announced(
    world, clock
):
    old = add_nodes(world, "old", 2)
    add_nodes(world, "new", 1, pods_per_node=2)
    world.apply(deployment("web", 4))
    settle(clock)
    on_old = [p for p in pods_of(world, "web") if p["spec"]["nodeName"] in old]
    assert on_old
    # When the old group is removed without warning
    assert world.remove_nodes("old") == old
    # Then its pods are recreated: two fit on the new node, the rest stay Pending
    pods = pods_of(world, "web")
    assert len(pods) == 4
    assert sum(1 for p in pods if p["spec"].get("nodeName") == "i-new-0") == 2
    assert any(p["status"]["phase"] == "Pending" and "nodeName" not in p["spec"] for p in pods)
    assert world.invariants()["unexpectedDeletions"] == 1
    assert world.snapshot()["nodes"]["byNodegroup"].keys() == {"new"}


def test_an_announced_node_group_removal_is_expected(world, clock):
    add_nodes(world, "old", 1)
    world.expect_deletion("Nodegroup", "old")
    world.remove_nodes("old")
    assert world.invariants()["unexpectedDeletions"] == 0
    assert world.remove_nodes("old") == []


def test_removing_nodes_under_a_tight_budget_counts_a_violation(world, clock):
    add_nodes(world, "old", 1)
    add_nodes(world, "new", 1)
    world.apply(deployment("web", 2, nodeSelector={"eks.amazonaws.com/nodegroup": "old"}))
    world.apply(pdb("web", "web", minAvailable=2))
    settle(clock)
    world.expect_deletion("Nodegroup", "old")
    world.remove_nodes("old")
    assert world.invariants() == {"podsLost": 2, "pdbViolations": 1, "unexpectedDeletions": 0}


# -- node patches -------------------------------------------------------------------------------


def test_strategic_merge_patch_adds_and_removes_taints_by_key(world):
    add_nodes(world, "ng-1", 1, taints=[{"key": "team", "value": "a", "effect": "NoSchedule"}])
    taint = {"key": "eks-fleet-upgrader/draining", "value": "true", "effect": "NoSchedule"}
    node = world.patch_node("i-ng-1-0", {"spec": {"taints": [taint]}}, SMP)
    assert node["spec"]["taints"] == [{"key": "team", "value": "a", "effect": "NoSchedule"}, taint]
    node = world.patch_node("i-ng-1-0", {"spec": {"taints": [{"key": "team", "$patch": "delete"}]}}, SMP)
    assert node["spec"]["taints"] == [taint]
    # A JSON merge patch replaces the whole list
    node = world.patch_node("i-ng-1-0", {"spec": {"taints": [], "unschedulable": True}}, MERGE)
    assert node["spec"]["unschedulable"] is True
    assert [t["key"] for t in node["spec"]["taints"]] == ["node.kubernetes.io/unschedulable"]


def test_invalid_node_patches_are_refused(world):
    add_nodes(world, "ng-1", 1)
    with pytest.raises(KubeError) as caught:
        world.patch_node("i-ng-1-0", {"spec": {"taints": [{"key": "x", "effect": "Sometimes"}]}}, SMP)
    assert caught.value.status.code == 422
    with pytest.raises(KubeError) as caught:
        world.patch_node("i-ng-1-0", {"spec": {"unschedulable": True}}, "application/apply-patch+yaml")
    assert caught.value.status.code == 415
    with pytest.raises(KubeError) as caught:
        world.patch_node(
            "i-ng-1-0", {"metadata": {"resourceVersion": "1"}, "spec": {"unschedulable": True}}, MERGE
        )
    assert caught.value.status.reason == "Conflict"


# -- version ---------------------------------------------------------------------------------------


def test_control_plane_version_is_what_version_reports(world):
    info = world.version_info()
    assert (info["major"], info["minor"]) == ("1", "23+")  # EKS reports the minor with a "+"
    assert info["gitVersion"].startswith("v1.23.17-eks-")
    world.set_control_plane_version("1.24")
    assert world.version == "1.24"
    assert world.version_info()["gitVersion"].startswith("v1.24.")
    assert world.version_info()["minor"] == "24+"
