"""The readiness gate (upgrader/readiness_check.py) with in-memory fakes: inventory, decision, report."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from upgrader.errors import AwsResourceNotFound, KubernetesAccessDenied, ReadinessBlocked
from upgrader.models import Acknowledgment, ClusterUpgradeRequest
from upgrader.readiness_check import SCAN_KINDS, check_readiness, collect_inventory, report_location

from tests.events import load_event
from tests.fakes import FakeEc2Gateway, FakeEksGateway, FakeKubernetesGateway, FakeReportStore

CLUSTER = "payments-prod"
DOCKER_SOCKET_DS = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {"name": "log-agent", "namespace": "logging", "uid": "ds-1"},
    "spec": {
        "selector": {"matchLabels": {"app": "log-agent"}},
        "template": {
            "metadata": {"labels": {"app": "log-agent"}},
            "spec": {
                "containers": [
                    {
                        "name": "agent",
                        "image": "example/agent:1",
                        "volumeMounts": [{"name": "sock", "mountPath": "/var/run/docker.sock"}],
                    }
                ],
                "volumes": [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}],
            },
        },
    },
}
STRICT_PDB = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": {"name": "api", "namespace": "shop"},
    "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "api"}}},
}


def deployment(name: str, namespace: str = "shop", replicas: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "uid": f"deploy-{name}"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": f"example/{name}:1"}]},
            },
        },
    }


class Cluster:
    """A 1.23 cluster ready for 1.24, as the three fakes see it; tests add what they need."""

    def __init__(self) -> None:
        self.eks = FakeEksGateway()
        self.eks.add_cluster(CLUSTER, "1.23")
        self.eks.add_nodegroup(CLUSTER, "general")
        for addon in ("vpc-cni", "coredns", "kube-proxy"):
            self.eks.add_addon(CLUSTER, addon)
        self.eks.add_insight(CLUSTER, "Kubelet version skew", "PASSING", "1.24")
        self.ec2 = FakeEc2Gateway()
        self.ec2.add_subnet("subnet-1", 120)
        self.ec2.add_subnet("subnet-2", 130)
        self.kube = FakeKubernetesGateway()
        self.kube.add(deployment("api"))
        self.store = FakeReportStore()
        self.seen_clusters: list[Any] = []

    def kubernetes(self, info: Any) -> FakeKubernetesGateway:
        self.seen_clusters.append(info)
        return self.kube

    def check(self, *acknowledge: tuple[str, str]):
        request = ClusterUpgradeRequest.model_validate(
            load_event("cluster_upgrade_request")
            | {"acknowledge": [{"rule": rule, "reason": reason} for rule, reason in acknowledge]}
        )
        return check_readiness(
            request, eks=self.eks, ec2=self.ec2, kubernetes=self.kubernetes, store=self.store
        )

    def collect(self):
        return collect_inventory(CLUSTER, "1.24", eks=self.eks, ec2=self.ec2, kubernetes=self.kubernetes)

    def report(self) -> dict[str, Any]:
        [key] = [k for k in self.store.objects if k.endswith(".json")]
        return json.loads(self.store.text(key))

    def markdown(self) -> str:
        [key] = [k for k in self.store.objects if k.endswith(".md")]
        return self.store.text(key)


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


# -- the gate -----------------------------------------------------------------------------------------
def test_a_clean_cluster_passes_with_a_small_output_pointing_at_the_report(cluster):
    # Given a cluster without blocking problems
    # When the gate runs
    result = cluster.check()
    # Then it passes, and its output is counts and keys only
    assert result.counts.blocking == 0
    assert result.blocking_rules == () and result.acknowledged_rules == ()
    location = report_location("reports-bucket", load_request().run, load_request().cluster)
    assert result.report == location
    assert len(json.dumps(result.dump())) < 1024
    # And the full report was written, JSON and Markdown, at the deterministic keys
    assert set(cluster.store.objects) == {location.json_key, location.markdown_key}
    assert cluster.store.objects[location.json_key][1] == "application/json"
    assert location.json_key == (
        "reports/payments-prod-1-24/111111111111/eu-west-1/payments-prod/readiness.json"
    )
    assert cluster.report()["gate"]["passed"] is True
    assert "**Passed**" in cluster.markdown()


def test_blocking_findings_stop_the_cluster_with_the_rules_objects_and_report_keys(cluster):
    # Given a DaemonSet mounting the node's Docker socket, on a 1.23 -> 1.24 step
    cluster.kube.add(DOCKER_SOCKET_DS)
    # When the gate runs
    with pytest.raises(ReadinessBlocked) as caught:
        cluster.check()
    # Then the cluster is stopped with the blocking rule, the object and where the report is
    details = caught.value.details
    assert details["blockingRules"] == ["DS001"]
    assert details["blocking"] == [
        {
            "rule": "DS001",
            "severity": "blocking",
            "kind": "DaemonSet",
            "namespace": "logging",
            "name": "log-agent",
            "path": "spec.template.spec.volumes[0].hostPath.path",
            "value": "/var/run/docker.sock",
        }
    ]
    assert details["counts"]["blocking"] == 1
    assert details["report"]["jsonKey"].endswith("/readiness.json")
    # And the report was written before stopping, saying so
    report = cluster.report()
    assert report["gate"] == {
        "passed": False,
        "blockingRules": ["DS001"],
        "unacknowledgedBlockingRules": ["DS001"],
        "acknowledged": [],
        "unmatchedAcknowledgments": [],
    }
    markdown = cluster.markdown()
    assert "**Blocked**" in markdown
    assert (
        "| DS001 | DaemonSet logging/log-agent | `spec.template.spec.volumes[0].hostPath.path` |" in markdown
    )


def test_an_acknowledgment_lets_through_exactly_the_acknowledged_rules(cluster):
    # Given two blocking problems: the Docker socket (DS001) and a budget allowing no eviction (GN007)
    cluster.kube.add(DOCKER_SOCKET_DS, STRICT_PDB)
    # When only DS001 is acknowledged
    with pytest.raises(ReadinessBlocked) as caught:
        cluster.check(("DS001", "log agent moves to containerd next sprint"))
    # Then the cluster still stops, for GN007 alone
    assert caught.value.details["blockingRules"] == ["GN007"]
    assert caught.value.details["acknowledgedRules"] == ["DS001"]
    assert [b["rule"] for b in caught.value.details["blocking"]] == ["GN007"]

    # When both are acknowledged
    result = cluster.check(("DS001", "log agent moves next sprint"), ("GN007", "budget lifted by the team"))
    # Then the gate lets the cluster through, and says which blocking rules it let through
    assert result.blocking_rules == ("DS001", "GN007")
    assert result.acknowledged_rules == ("DS001", "GN007")
    assert result.counts.blocking == 2
    # And the report keeps each acknowledged finding with its reason
    report = cluster.report()
    reasons = {f["rule"]: f["acknowledgment"]["reason"] for f in report["findings"] if "acknowledgment" in f}
    assert reasons == {"DS001": "log agent moves next sprint", "GN007": "budget lifted by the team"}
    assert "**Passed with acknowledgments**" in cluster.markdown()


def test_an_acknowledgment_of_a_rule_without_findings_is_reported(cluster):
    result = cluster.check(("GN004", "subnets are being extended"), ("ZZ999", "typo"))
    assert result.unmatched_acknowledgments == ("GN004", "ZZ999")
    assert cluster.report()["gate"]["unmatchedAcknowledgments"] == [
        {"rule": "GN004", "reason": "subnets are being extended", "knownRule": True},
        {"rule": "ZZ999", "reason": "typo", "knownRule": False},
    ]
    assert "ZZ999 (no such rule): typo" in cluster.markdown()


# -- the inventory --------------------------------------------------------------------------------------
def test_each_kind_is_listed_once_from_the_cluster_describe_cluster_gave(cluster):
    cluster.collect()
    assert cluster.kube.calls == list(SCAN_KINDS)
    [info] = cluster.seen_clusters
    assert info.endpoint and info.certificate_authority  # what kubernetes_for builds the client from


def test_a_kind_the_cluster_refuses_is_not_scanned_sc001_and_the_rest_still_is(cluster):
    # Given RBAC that does not let the role list Secrets (AmazonEKSViewPolicy, for instance)
    cluster.kube.forbid("Secret")
    # When the gate runs
    result = cluster.check()
    # Then the gate still decides on everything else, and says Secrets were not scanned
    assert result.unreadable_kinds == ("Secret",)
    [sc001] = [f for f in cluster.report()["findings"] if f["rule"] == "SC001"]
    assert sc001["severity"] == "warning"
    assert sc001["evidence"]["kind"] == "Secret"
    assert "is forbidden" in sc001["evidence"]["value"]
    assert "Secret" not in cluster.report()["inventory"]["collectedKinds"]
    assert "## Kinds not scanned" in cluster.markdown()


def test_a_kind_the_cluster_does_not_serve_is_not_scanned_either(cluster):
    cluster.kube.stop_serving("HorizontalPodAutoscaler")
    result = cluster.check()
    assert result.unreadable_kinds == ("HorizontalPodAutoscaler",)


def test_a_refused_token_stops_the_step(cluster):
    cluster.kube.refuse_token()
    with pytest.raises(KubernetesAccessDenied):
        cluster.check()


def test_resources_gone_between_list_and_describe_are_skipped_and_recorded(cluster):
    # Given a node group, an add-on and a launch template that are listed but gone when described
    class Vanishing(FakeEksGateway):
        def list_nodegroups(self, name: str) -> list[str]:
            return [*super().list_nodegroups(name), "deleted-meanwhile"]

        def list_addons(self, name: str) -> list[str]:
            return [*super().list_addons(name), "removed-meanwhile"]

    eks = Vanishing()
    eks.add_cluster(CLUSTER, "1.23")
    eks.add_nodegroup(CLUSTER, "general", launch_template={"id": "lt-gone", "version": "1"})
    cluster.eks = eks
    # When the inventory is collected
    collected = cluster.collect()
    # Then the scan goes on without them, and says what it skipped
    assert [g["nodegroupName"] for g in collected.inventory.nodegroups] == ["general"]
    assert collected.inventory.launch_template_user_data == {}
    assert [(s["kind"], s["name"]) for s in collected.skipped] == [
        ("Nodegroup", "deleted-meanwhile"),
        ("LaunchTemplate", "lt-gone"),
        ("Addon", "removed-meanwhile"),
    ]
    # And the gate still decides
    assert cluster.check().counts.blocking == 0
    assert len(cluster.report()["inventory"]["skipped"]) == 3


def test_missing_subnets_leave_the_free_ip_rule_not_evaluated(cluster):
    cluster.ec2.subnets.pop("subnet-2")
    collected = cluster.collect()
    assert collected.inventory.subnets is None
    result = cluster.check()
    assert result.not_evaluated >= 1
    assert "GN004" in [n["rule"] for n in cluster.report()["notEvaluated"]]


def test_secret_values_never_reach_the_inventory_or_the_report(cluster):
    # Given a gateway careless enough to hand Secrets over with their values
    careless = FakeKubernetesGateway(keep_secret_values=True)
    password = "correct-horse-battery-staple"
    careless.add(
        {
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": "db",
                "namespace": "shop",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": f'{{"p":"{password}"}}'},
            },
            "data": {"password": base64.b64encode(password.encode()).decode()},
            "stringData": {"password": password},
        }
    )
    cluster.kube = careless
    # When the inventory is collected and the report written
    collected = cluster.collect()
    cluster.check()
    # Then the Secret is there with its type, and without any of its values
    [secret] = [o for o in collected.inventory.objects if o["kind"] == "Secret"]
    assert secret["type"] == "Opaque" and secret["metadata"]["name"] == "db"
    assert set(secret) == {"apiVersion", "kind", "type", "metadata"}
    everything = json.dumps(collected.inventory.dump()) + "".join(
        b.decode() for b, _ in cluster.store.objects.values()
    )
    assert password not in everything
    assert base64.b64encode(password.encode()).decode() not in everything


def test_only_failing_insights_are_described_for_their_details(cluster):
    failing = cluster.eks.add_insight(
        CLUSTER, "Deprecated APIs", "ERROR", "1.24", recommendation="Move off v1beta1."
    )
    cluster.eks.add_insight(CLUSTER, "Insight for another version", "ERROR", "1.25")
    collected = cluster.collect()
    described = [arg for call, arg in cluster.eks.calls if call == "describe_insight"]
    assert described == [failing]
    by_name = {i["name"]: i for i in collected.inventory.insights}
    assert set(by_name) == {"Kubelet version skew", "Deprecated APIs"}
    assert by_name["Deprecated APIs"]["recommendation"] == "Move off v1beta1."
    # And the failing insight blocks (GN006), with the recommendation as the fix
    with pytest.raises(ReadinessBlocked) as caught:
        cluster.check()
    assert caught.value.details["blockingRules"] == ["GN006"]


def test_addon_versions_are_asked_for_the_target_of_each_installed_addon(cluster):
    collected = cluster.collect()
    asked = [arg for call, arg in cluster.eks.calls if call == "describe_addon_versions"]
    assert asked == [("coredns", "1.24"), ("kube-proxy", "1.24"), ("vpc-cni", "1.24")]
    assert {a["addonName"] for a in collected.inventory.addon_versions} == {
        "coredns",
        "kube-proxy",
        "vpc-cni",
    }


def test_an_addon_without_a_version_for_the_target_blocks(cluster):
    cluster.eks.addon_catalog["kube-proxy"] = [("v1.23.16-eksbuild.2", ("1.23",), True)]
    with pytest.raises(ReadinessBlocked) as caught:
        cluster.check()
    assert caught.value.details["blockingRules"] == ["GN005"]


def test_launch_template_user_data_reaches_the_bootstrap_rules(cluster):
    template = cluster.ec2.add_launch_template(
        "docker-bootstrap", "#!/bin/bash\n/etc/eks/bootstrap.sh payments-prod --container-runtime dockerd\n"
    )
    cluster.eks.add_nodegroup(CLUSTER, "legacy", launch_template=template)
    with pytest.raises(ReadinessBlocked) as caught:
        cluster.check()
    assert caught.value.details["blockingRules"] == ["DS011"]
    assert caught.value.details["blocking"][0]["name"] == "legacy"


def test_a_deleted_cluster_is_not_a_skippable_resource():
    eks = FakeEksGateway()
    with pytest.raises(Exception) as caught:
        collect_inventory(
            "gone", "1.24", eks=eks, ec2=FakeEc2Gateway(), kubernetes=lambda _: FakeKubernetesGateway()
        )
    assert not isinstance(caught.value, AwsResourceNotFound)


def test_acknowledgments_are_validated_in_the_model():
    with pytest.raises(ValueError):
        Acknowledgment(rule="DS1", reason="x")
    with pytest.raises(ValueError):
        Acknowledgment(rule="DS001", reason="")


def load_request() -> ClusterUpgradeRequest:
    return ClusterUpgradeRequest.model_validate(load_event("cluster_upgrade_request"))
