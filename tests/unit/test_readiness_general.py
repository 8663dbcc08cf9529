"""The general pack (any N -> N+1) and the engine: facts as the EKS API returns them, objects as API JSON.

Every rule has a case that fires and a neighbouring case that must not; missing facts must show up
as "not evaluated", never as a pass.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from upgrader.errors import UnsupportedVersionStep
from upgrader.readiness import REGISTRY, Inventory, PackRegistry, Rule, RulePack, ScanResult, evaluate
from upgrader.readiness.engine import DuplicateRuleId, Evidence, Hit
from upgrader.readiness.general import max_kubelet_skew
from upgrader.versions import KubeVersion


def scan(
    objects: list[dict[str, Any]] | None = None, step: tuple[str, str] = ("1.23", "1.24"), **facts: Any
) -> ScanResult:
    return evaluate(Inventory(objects=objects or [], **facts), *step)


def severities(result: ScanResult, rule: str) -> list[str]:
    return [f.severity for f in result.by_rule(rule)]


def deployment(
    name: str, replicas: int | None = 3, labels: dict[str, str] | None = None, **pod_spec: Any
) -> dict[str, Any]:
    labels = labels or {"app": name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "app", "image": "app:1"}], **pod_spec},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    }


def nodegroup(name: str, version: str, ami_type: str = "AL2_x86_64") -> dict[str, Any]:
    """The shape of DescribeNodegroup's `nodegroup`."""
    return {
        "nodegroupName": name,
        "clusterName": "payments-prod",
        "version": version,
        "releaseVersion": f"{version}.17-20230816",
        "status": "ACTIVE",
        "capacityType": "ON_DEMAND",
        "amiType": ami_type,
        "scalingConfig": {"minSize": 1, "maxSize": 3, "desiredSize": 2},
    }


def node(
    name: str, kubelet: str, labels: dict[str, str] | None = None, os_image: str = "Amazon Linux 2"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "status": {
            "nodeInfo": {
                "kubeletVersion": kubelet,
                "containerRuntimeVersion": "containerd://1.6.6",
                "osImage": os_image,
            }
        },
    }


# --- GN001 / GN002: the cluster -----------------------------------------------------------------------
CLUSTER = {"name": "payments-prod", "status": "ACTIVE", "version": "1.23", "platformVersion": "eks.7"}


class TestCluster:
    def test_active_cluster_on_the_source_version_passes_both_rules(self):
        result = scan(cluster=CLUSTER)
        assert {"GN001", "GN002"} <= set(result.evaluated)
        assert result.by_rule("GN001") == result.by_rule("GN002") == []

    def test_a_cluster_that_is_updating_blocks(self):
        assert severities(scan(cluster={**CLUSTER, "status": "UPDATING"}), "GN001") == ["blocking"]

    def test_a_cluster_on_another_version_blocks_and_one_at_target_is_info(self):
        assert severities(scan(cluster={**CLUSTER, "version": "1.22"}), "GN002") == ["blocking"]
        assert severities(scan(cluster={**CLUSTER, "version": "1.24"}), "GN002") == ["info"]

    def test_without_the_cluster_fact_both_are_not_evaluated(self):
        missing = {n.rule: n.missing for n in scan().not_evaluated}
        assert missing["GN001"] == missing["GN002"] == ("cluster",)


# --- GN003: kubelet skew ---------------------------------------------------------------------------------
class TestKubeletSkew:
    @pytest.mark.parametrize(
        ("api_server", "kubelet", "allowed"),
        [
            ("1.24", "1.22", 2),
            ("1.27", "1.25", 2),
            ("1.28", "1.25", 3),
            ("1.28", "1.24", 2),
            ("1.30", "1.27", 3),
        ],
    )
    def test_skew_policy(self, api_server, kubelet, allowed):
        assert max_kubelet_skew(KubeVersion.parse(api_server), KubeVersion.parse(kubelet)) == allowed

    @pytest.mark.parametrize(
        ("step", "group_version", "expected"),
        [
            (("1.23", "1.24"), "1.23", []),
            (("1.23", "1.24"), "1.22", ["warning"]),  # 2 behind the target: allowed, but already behind
            (("1.23", "1.24"), "1.21", ["blocking"]),  # 3 behind 1.24: beyond the 2 allowed
            (("1.27", "1.28"), "1.25", ["warning"]),  # 3 behind 1.28 is allowed from 1.28
            (("1.27", "1.28"), "1.24", ["blocking"]),
        ],
    )
    def test_managed_node_groups(self, step, group_version, expected):
        result = scan(step=step, nodegroups=[nodegroup("general", group_version)])
        assert severities(result, "GN003") == expected

    def test_nodes_outside_managed_groups_are_checked_from_their_kubelet(self):
        result = scan(
            [
                node("managed-1", "v1.21.14-eks", {"eks.amazonaws.com/nodegroup": "general"}),
                node("self-1", "v1.21.14-eks-ba74326", {"alpha.eksctl.io/nodegroup-name": "legacy"}),
                node("fargate-ip-10-0-0-1", "v1.21.14-eks", {"eks.amazonaws.com/compute-type": "fargate"}),
            ],
            nodegroups=[nodegroup("general", "1.23")],
        )
        findings = result.by_rule("GN003")
        assert [(f.severity, f.evidence.name) for f in findings] == [
            ("blocking", "fargate-ip-10-0-0-1"),
            ("blocking", "self-1"),
        ]
        assert "Fargate" in findings[0].remediation

    def test_nodes_alone_are_enough_to_evaluate(self):
        assert "GN003" in scan([node("n", "v1.23.17")]).evaluated
        assert "GN003" not in scan().evaluated


# --- GN004: free IPs -----------------------------------------------------------------------------------------
def subnets(*counts: int) -> list[dict[str, Any]]:
    return [
        {
            "SubnetId": f"subnet-0{i}",
            "AvailabilityZone": f"eu-west-1{'abc'[i]}",
            "AvailableIpAddressCount": count,
        }
        for i, count in enumerate(counts)
    ]


class TestFreeIps:
    def test_fewer_than_five_free_addresses_block(self):
        (finding,) = scan(cluster=CLUSTER, subnets=subnets(1, 2, 0)).by_rule("GN004")
        assert finding.severity == "blocking"
        assert finding.evidence.value == "subnet-00: 1, subnet-01: 2, subnet-02: 0"

    def test_five_across_the_subnets_are_enough(self):
        assert scan(subnets=subnets(2, 3, 0)).by_rule("GN004") == []


# --- GN005: add-ons ---------------------------------------------------------------------------------------------
def addon(name: str, version: str) -> dict[str, Any]:
    return {"addonName": name, "clusterName": "payments-prod", "status": "ACTIVE", "addonVersion": version}


def addon_info(
    name: str, versions: dict[str, list[str]], default_for: dict[str, str] | None = None
) -> dict[str, Any]:
    """The shape of DescribeAddonVersions' `addons` entries."""
    default_for = default_for or {}
    return {
        "addonName": name,
        "type": "networking",
        "owner": "aws",
        "addonVersions": [
            {
                "addonVersion": version,
                "architecture": ["amd64", "arm64"],
                "compatibilities": [
                    {
                        "clusterVersion": cluster,
                        "platformVersions": ["*"],
                        "defaultVersion": default_for.get(cluster) == version,
                    }
                    for cluster in clusters
                ],
            }
            for version, clusters in versions.items()
        ],
    }


VPC_CNI = addon_info(
    "vpc-cni",
    {
        "v1.15.1-eksbuild.1": ["1.24", "1.25"],
        "v1.12.6-eksbuild.2": ["1.23", "1.24"],
        "v1.10.4-eksbuild.1": ["1.22", "1.23"],
    },
    default_for={"1.24": "v1.15.1-eksbuild.1"},
)


class TestAddons:
    def test_installed_version_compatible_with_the_target_passes(self):
        assert (
            scan(addons=[addon("vpc-cni", "v1.12.6-eksbuild.2")], addon_versions=[VPC_CNI]).by_rule("GN005")
            == []
        )

    def test_installed_version_not_compatible_warns_with_the_default(self):
        (finding,) = scan(addons=[addon("vpc-cni", "v1.10.4-eksbuild.1")], addon_versions=[VPC_CNI]).by_rule(
            "GN005"
        )
        assert finding.severity == "warning"
        assert "v1.15.1-eksbuild.1" in finding.remediation

    def test_no_version_for_the_target_blocks(self):
        legacy = addon_info("legacy-addon", {"v1.0.0": ["1.22", "1.23"]})
        result = scan(
            addons=[addon("legacy-addon", "v1.0.0"), addon("unknown", "v1")], addon_versions=[legacy]
        )
        assert [(f.severity, f.evidence.name) for f in result.by_rule("GN005")] == [
            ("blocking", "legacy-addon"),
            ("blocking", "unknown"),
        ]

    def test_both_facts_are_needed(self):
        (item,) = [n for n in scan(addons=[addon("vpc-cni", "v1")]).not_evaluated if n.rule == "GN005"]
        assert item.missing == ("addonVersions",)


# --- GN006: insights -------------------------------------------------------------------------------------------
def insight(status: str, version: str = "1.24", category: str = "UPGRADE_READINESS") -> dict[str, Any]:
    """The shape of ListInsights' `insights` entries."""
    return {
        "id": f"id-{status.lower()}-{version}",
        "name": f"Deprecated APIs removed in Kubernetes v{version}",
        "category": category,
        "kubernetesVersion": version,
        "insightStatus": {"status": status, "reason": "Deprecated API usage detected."},
        "recommendation": "Update manifests to the replacement APIs.",
        "additionalInfo": {
            "Kubernetes deprecation guide": "https://kubernetes.io/docs/reference/using-api/deprecation-guide/"
        },
    }


class TestInsights:
    def test_status_maps_to_severity_for_the_target_only(self):
        result = scan(
            insights=[
                insight("ERROR"),
                insight("WARNING"),
                insight("UNKNOWN"),
                insight("PASSING"),
                insight("ERROR", version="1.25"),
                insight("ERROR", category="MISCONFIGURATION"),
            ]
        )
        assert severities(result, "GN006") == ["blocking", "warning", "info"]
        blocking = result.by_rule("GN006")[0]
        assert blocking.remediation == "Update manifests to the replacement APIs."
        assert blocking.reference == "https://kubernetes.io/docs/reference/using-api/deprecation-guide/"

    def test_no_insights_fact_is_not_evaluated_but_an_empty_list_is_evaluated(self):
        assert "GN006" not in scan().evaluated
        assert "GN006" in scan(insights=[]).evaluated


# --- GN007: PodDisruptionBudgets ------------------------------------------------------------------------------
def pdb(name: str, selector: dict[str, Any] | None = None, **budget: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"selector": selector if selector is not None else {"matchLabels": {"app": "web"}}, **budget},
    }


class TestDisruptionBudgets:
    @pytest.mark.parametrize(
        ("budget", "expected"),
        [
            ({"minAvailable": 3}, ["blocking"]),
            ({"minAvailable": 2}, []),
            ({"maxUnavailable": 0}, ["blocking"]),
            ({"maxUnavailable": "0%"}, ["blocking"]),
            ({"maxUnavailable": 1}, []),
            ({"maxUnavailable": "10%"}, []),  # rounds up to 1
            ({"minAvailable": "100%"}, ["blocking"]),
            ({"minAvailable": "90%"}, ["blocking"]),  # ceil(2.7) = 3 of 3
            ({"minAvailable": "50%"}, []),
        ],
    )
    def test_budgets_against_three_replicas(self, budget, expected):
        assert severities(scan([deployment("web"), pdb("web", **budget)]), "GN007") == expected

    def test_selector_expressions_and_namespaces_are_honoured(self):
        expression = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}
        assert severities(scan([deployment("web"), pdb("web", expression, minAvailable=3)]), "GN007") == [
            "blocking"
        ]
        elsewhere = deployment("web")
        elsewhere["metadata"]["namespace"] = "other"
        assert scan([elsewhere, pdb("web", minAvailable=3)]).by_rule("GN007") == []

    def test_a_budget_selecting_nothing_or_a_scaled_down_workload_is_not_reported(self):
        assert scan([pdb("orphan", minAvailable=1)]).by_rule("GN007") == []
        assert scan([deployment("web", replicas=0), pdb("web", minAvailable=1)]).by_rule("GN007") == []

    def test_budget_over_several_workloads_counts_all_their_replicas(self):
        blue, green = (
            deployment("blue", labels={"app": "web", "slot": "blue"}),
            deployment("green", labels={"app": "web", "slot": "green"}),
        )
        assert scan([blue, green, pdb("web", minAvailable=5)]).by_rule("GN007") == []
        assert severities(scan([blue, green, pdb("web", minAvailable=6)]), "GN007") == ["blocking"]


# --- GN008 / GN009 / GN010: draining -----------------------------------------------------------------------------
def hpa(target: str, min_replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target, "namespace": "shop"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": min_replicas,
            "maxReplicas": 5,
        },
    }


def bare_pod(name: str, phase: str = "Running", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", **metadata},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": phase},
    }


class TestDraining:
    def test_single_replica_workloads_warn(self):
        result = scan(
            [
                deployment("one", replicas=1),
                deployment("default", replicas=None),
                deployment("three", replicas=3),
            ]
        )
        assert sorted(f.evidence.name for f in result.by_rule("GN008")) == ["default", "one"]

    def test_an_autoscaler_keeping_two_replicas_or_zero_replicas_is_fine(self):
        assert scan([deployment("scaled", replicas=1), hpa("scaled", 2)]).by_rule("GN008") == []
        assert severities(scan([deployment("scaled", replicas=1), hpa("scaled", 1)]), "GN008") == ["warning"]
        assert scan([deployment("off", replicas=0)]).by_rule("GN008") == []

    def test_pods_without_a_controller_warn(self):
        owned = bare_pod(
            "owned", ownerReferences=[{"kind": "ReplicaSet", "name": "web-1", "controller": True}]
        )
        mirror = bare_pod("kube-proxy-node1", annotations={"kubernetes.io/config.mirror": "abc"})
        done = bare_pod("finished", phase="Succeeded")
        result = scan([bare_pod("adhoc"), owned, mirror, done])
        assert [f.evidence.name for f in result.by_rule("GN009")] == ["adhoc"]
        assert scan([owned, mirror, done]).by_rule("GN009") == []

    def test_empty_dir_warns_except_on_daemonsets(self):
        volumes = [{"name": "cache", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}]
        daemon = deployment("agent", volumes=volumes) | {"kind": "DaemonSet"}
        result = scan([deployment("web", volumes=volumes), daemon, deployment("plain")])
        assert [(f.evidence.name, f.evidence.value) for f in result.by_rule("GN010")] == [("web", "cache")]
        assert scan([daemon, deployment("plain")]).by_rule("GN010") == []


# --- GN011: node management the orchestrator leaves alone ---------------------------------------------------------
class TestUnmanagedNodes:
    def test_each_kind_of_node_management_is_reported_with_what_happens(self):
        result = scan(
            [
                node("self-1", "v1.23.17", {"alpha.eksctl.io/nodegroup-name": "legacy"}),
                node("self-2", "v1.23.17", {"alpha.eksctl.io/nodegroup-name": "legacy"}),
                node("karp-1", "v1.23.17", {"karpenter.sh/provisioner-name": "default"}),
                node("fargate-ip-1", "v1.23.17", {"eks.amazonaws.com/compute-type": "fargate"}),
                node("managed-1", "v1.23.17", {"eks.amazonaws.com/nodegroup": "general"}),
                node(
                    "auto-1",
                    "v1.23.17",
                    {"eks.amazonaws.com/compute-type": "auto", "karpenter.sh/nodepool": "general-purpose"},
                ),
                node("mi-0123", "v1.23.17", {"eks.amazonaws.com/compute-type": "hybrid"}),
            ],
            nodegroups=[
                nodegroup("general", "1.23"),
                nodegroup("bottlerocket", "1.23", "BOTTLEROCKET_x86_64"),
                nodegroup("windows", "1.23", "WINDOWS_CORE_2019_x86_64"),
            ],
        )
        found = {(f.severity, f.evidence.kind, f.evidence.name) for f in result.by_rule("GN011")}
        assert found == {
            ("warning", "Node", "legacy"),
            ("info", "Node", "karpenter.sh/provisioner-name=default"),
            ("info", "Node", "fargate-ip-1"),
            ("info", "Node", "general-purpose"),
            ("warning", "Node", "mi-0123"),
            ("info", "Nodegroup", "bottlerocket"),
            ("warning", "Nodegroup", "windows"),
        }
        assert any("drift" in f.message for f in result.by_rule("GN011"))

    def test_only_managed_linux_node_groups_report_nothing(self):
        result = scan(
            [node("managed-1", "v1.23.17", {"eks.amazonaws.com/nodegroup": "general"})],
            nodegroups=[nodegroup("general", "1.23")],
        )
        assert result.by_rule("GN011") == []

    def test_windows_and_bottlerocket_nodes_are_recognised_without_node_group_facts(self):
        result = scan(
            [
                node(
                    "win-1", "v1.23.17", {"kubernetes.io/os": "windows", "eks.amazonaws.com/nodegroup": "win"}
                ),
                node(
                    "br-1",
                    "v1.23.17",
                    {"eks.amazonaws.com/nodegroup": "br"},
                    os_image="Bottlerocket OS 1.14.3",
                ),
                node("al2-1", "v1.23.17", {"eks.amazonaws.com/nodegroup": "general"}),
            ]
        )
        assert sorted(f.severity for f in result.by_rule("GN011")) == ["info", "warning"]


# --- GN012: auto-generated service-account tokens ------------------------------------------------------------------
def service_account(name: str, secrets: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": "shop"},
        "secrets": [{"name": s} for s in secrets],
    }


def token_secret(name: str, account: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "annotations": {"kubernetes.io/service-account.name": account},
        },
    }


def uses_secret(name: str, secret: str, how: str = "volume") -> dict[str, Any]:
    if how == "volume":
        return deployment(name, volumes=[{"name": "token", "secret": {"secretName": secret}}])
    workload = deployment(name)
    workload["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": secret, "key": "token"}}}
    ]
    return workload


LIVE = {"collected_kinds": ["Deployment", "ServiceAccount", "Secret", "Pod"]}


class TestServiceAccountTokens:
    def test_a_workload_using_a_generated_token_warns(self):
        objects = [
            service_account("builder", ["builder-token-x7k2p"]),
            token_secret("builder-token-x7k2p", "builder"),
            uses_secret("ci", "builder-token-x7k2p"),
        ]
        (finding,) = scan(objects, **LIVE).by_rule("GN012")
        assert (finding.severity, finding.evidence.field_path) == (
            "warning",
            "spec.template.spec.volumes[0].secret.secretName",
        )

    def test_a_token_secret_created_on_purpose_is_fine(self):
        objects = [
            service_account("builder", []),
            token_secret("builder-long-lived", "builder"),
            uses_secret("ci", "builder-long-lived"),
        ]
        assert scan(objects, **LIVE).by_rule("GN012") == []

    def test_a_generated_name_is_enough_when_the_secret_is_not_in_the_manifests(self):
        assert [
            f.evidence.value
            for f in scan([uses_secret("ci", "deployer-token-ab12c", how="env")]).by_rule("GN012")
        ] == ["deployer-token-ab12c"]
        assert scan([uses_secret("ci", "database-credentials", how="env")]).by_rule("GN012") == []

    def test_a_service_account_listing_secrets_warns_in_manifests_only(self):
        account = service_account("builder", ["builder-token-x7k2p"])
        assert severities(scan([account]), "GN012") == ["warning"]
        assert scan([account], **LIVE).by_rule("GN012") == []

    def test_the_rule_starts_with_1_24(self):
        assert (
            "GN012" not in scan([uses_secret("ci", "deployer-token-ab12c")], step=("1.22", "1.23")).evaluated
        )
        assert "GN012" in scan([], step=("1.24", "1.25")).evaluated


# --- the engine -----------------------------------------------------------------------------------------------------
class TestEngine:
    def test_unreadable_kinds_become_not_scanned_findings_and_starve_their_rules(self):
        result = scan(
            collected_kinds=["Deployment", "Pod"], unreadable={"Node": "403 Forbidden: nodes is forbidden"}
        )
        (finding,) = result.by_rule("SC001")
        # Nodes are what the upgrade replaces: a scan blind to them blocks
        assert (finding.severity, finding.evidence.kind, finding.evidence.value) == (
            "blocking",
            "Node",
            "403 Forbidden: nodes is forbidden",
        )
        assert {n.rule for n in result.not_evaluated} >= {"DS010", "GN003", "GN011"}
        assert scan(collected_kinds=["Deployment", "Pod", "Node"]).by_rule("SC001") == []

    def test_an_unreadable_kind_the_upgrade_does_not_disrupt_only_warns(self):
        result = scan(
            collected_kinds=["Deployment", "Pod", "Node"], unreadable={"ConfigMap": "403 Forbidden"}
        )
        assert [f.severity for f in result.by_rule("SC001")] == ["warning"]

    def test_a_rule_with_missing_facts_never_passes_silently(self):
        result = scan()
        evaluated, skipped = set(result.evaluated), {n.rule for n in result.not_evaluated}
        assert evaluated.isdisjoint(skipped)
        applicable = {r.id for r in REGISTRY.rules() if r.applies(KubeVersion.parse("1.24"))}
        assert evaluated | skipped == applicable

    @pytest.mark.parametrize(
        "step", [("1.23", "1.25"), ("1.24", "1.23"), ("1.23", "2.0"), ("latest", "1.24")]
    )
    def test_only_one_minor_steps_are_evaluated(self, step):
        with pytest.raises(UnsupportedVersionStep):
            scan(step=step)

    def test_findings_come_blocking_first(self):
        result = scan([deployment("one", replicas=1), pdb("web", maxUnavailable=0), deployment("web")])
        assert [f.severity for f in result.findings] == sorted(
            (f.severity for f in result.findings), key=["blocking", "warning", "info"].index
        )
        assert result.findings[0].rule == "GN007"

    def test_a_new_pack_is_data_and_applies_from_its_target(self):
        # Given a registry with a pack for targets >= 1.25 (what the next version's module does)
        def check(ctx):
            yield Hit(
                severity="blocking", evidence=Evidence(kind="Cluster"), message=f"checked for {ctx.target}"
            )

        registry = PackRegistry()
        registry.register(
            RulePack(
                name="v125",
                description="1.25 removals",
                min_target="1.25",
                rules=(
                    Rule(
                        id="V125",
                        title="t",
                        detects="d",
                        severity="blocking",
                        remediation="r",
                        reference="u",
                        check=check,
                    ),
                ),
            )
        )
        # Then it runs for 1.24 -> 1.25 only
        assert evaluate(Inventory(), "1.23", "1.24", registry=registry).findings == ()
        assert [f.message for f in evaluate(Inventory(), "1.24", "1.25", registry=registry).findings] == [
            "checked for 1.25"
        ]
        # And rule ids stay unique across packs
        with pytest.raises(DuplicateRuleId, match="V125"):
            registry.register(RulePack(name="again", description="", rules=registry.rules()))

    def test_the_inventory_round_trips_as_camel_case_json_and_rejects_unknown_facts(self):
        inventory = Inventory(
            objects=[deployment("web")],
            collected_kinds=["Deployment"],
            launch_template_user_data={"g": "#!/bin/bash"},
        )
        dumped = inventory.dump()
        assert {"objects", "collectedKinds", "launchTemplateUserData"} <= set(dumped)
        assert Inventory.model_validate(dumped) == inventory
        with pytest.raises(ValidationError):
            Inventory.model_validate({"objects": [], "nodeGroups": []})

    def test_every_rule_is_documented(self):
        docs = (Path(__file__).resolve().parents[2] / "docs" / "readiness-rules.md").read_text()
        missing = [rule.id for rule in REGISTRY.rules() if f"| {rule.id} | {rule.title} |" not in docs]
        assert missing == []

    def test_every_rule_is_tested(self):
        # A new rule without tests fails here: each id must appear in the readiness test modules.
        sources = "".join(p.read_text() for p in Path(__file__).parent.glob("test_readiness_*.py"))
        untested = [rule.id for rule in REGISTRY.rules() if len(re.findall(rf'"{rule.id}"', sources)) < 2]
        assert untested == []
