"""The general pack: readiness checks for every one-minor step that need only an inventory.

EKS facts are read as the API returns them (DescribeCluster, DescribeNodegroup, DescribeSubnets,
DescribeAddon, DescribeAddonVersions, ListInsights); Kubernetes objects as API JSON. A rule that
needs a fact the inventory lacks is reported as not evaluated by the engine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

from upgrader.readiness.engine import (
    FACT_ADDON_VERSIONS,
    FACT_ADDONS,
    FACT_CLUSTER,
    FACT_INSIGHTS,
    FACT_NODEGROUPS,
    FACT_SUBNETS,
    Context,
    Evidence,
    Hit,
    Rule,
    RulePack,
    Severity,
    kind_fact,
    object_evidence,
    register_pack,
)
from upgrader.readiness.objects import (
    PodTemplate,
    as_dict,
    as_list,
    as_str,
    controller_owner,
    dig,
    is_mirror_pod,
    labels_of,
    namespace_of,
    object_ref,
    selector_matches,
    template_labels,
)
from upgrader.versions import KubeVersion, max_kubelet_skew

EKS_UPDATE_CLUSTER = "https://docs.aws.amazon.com/eks/latest/userguide/update-cluster.html"
SKEW_POLICY = "https://kubernetes.io/releases/version-skew-policy/#kubelet"
EKS_ADDONS = "https://docs.aws.amazon.com/eks/latest/userguide/updating-an-add-on.html"
EKS_INSIGHTS = "https://docs.aws.amazon.com/eks/latest/userguide/cluster-insights.html"
PDB_DOCS = "https://kubernetes.io/docs/tasks/run-application/configure-pdb/"
DRAIN_DOCS = "https://kubernetes.io/docs/tasks/administer-cluster/safely-drain-node/"
SA_TOKENS = "https://kubernetes.io/docs/concepts/configuration/secret/#serviceaccount-token-secrets"
EKS_BEST_PRACTICES_UPGRADES = "https://docs.aws.amazon.com/eks/latest/best-practices/cluster-upgrades.html"

MIN_FREE_IPS = 5  # "Amazon EKS requires up to five available IP addresses from the subnets"
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def minor_version(text: Any) -> KubeVersion | None:
    """``"1.23"``, ``"v1.23.17-eks-a59e1f0"`` -> 1.23; anything else -> None."""
    match = _VERSION.match(as_str(text))
    return KubeVersion(int(match.group(1)), int(match.group(2))) if match else None


def _behind(newer: KubeVersion, older: KubeVersion) -> int:
    return (newer.major - older.major) * 100 + newer.minor - older.minor


def _cluster_evidence(ctx: Context, path: tuple[str, ...], value: str | None) -> Evidence:
    return Evidence(
        kind="Cluster", name=as_str((ctx.inventory.cluster or {}).get("name")), path=path, value=value
    )


# --- GN001 / GN002: the cluster itself ----------------------------------------------------------------
def check_cluster_active(ctx: Context) -> Iterable[Hit]:
    status = as_str((ctx.inventory.cluster or {}).get("status"))
    if status != "ACTIVE":
        yield Hit(
            severity="blocking",
            evidence=_cluster_evidence(ctx, ("status",), status or None),
            message=f"The cluster is {status or 'of unknown status'}, not ACTIVE; EKS starts a version "
            "update only on an ACTIVE cluster.",
        )


def check_cluster_version(ctx: Context) -> Iterable[Hit]:
    actual = minor_version((ctx.inventory.cluster or {}).get("version"))
    if actual == ctx.target:
        yield Hit(
            severity="info",
            evidence=_cluster_evidence(ctx, ("version",), str(actual)),
            message=f"The control plane already runs {ctx.target}; only the data plane steps remain.",
            remediation="Nothing to do for the control plane.",
        )
    elif actual != ctx.source:
        yield Hit(
            severity="blocking",
            evidence=_cluster_evidence(ctx, ("version",), str(actual) if actual else None),
            message=f"The control plane runs {actual or 'an unknown version'}, not {ctx.source}: this step "
            f"({ctx.source} -> {ctx.target}) does not apply.",
        )


# --- GN003: kubelet skew -----------------------------------------------------------------------------
def _skew_hit(ctx: Context, kubelet: KubeVersion, what: str, evidence: Evidence, fargate: bool) -> Hit | None:
    behind = _behind(ctx.target, kubelet)
    allowed = max_kubelet_skew(ctx.target, kubelet)
    if behind > allowed:
        fix = (
            "Delete (restart) these Fargate pods before the upgrade so they come back on the current version."
            if fargate
            else f"Update {what} to {ctx.source} before the control plane moves."
        )
        return Hit(
            severity="blocking",
            evidence=evidence,
            message=f"{what} runs kubelet {kubelet}: {behind} minor versions behind {ctx.target}, more than "
            f"the {allowed} the version skew policy allows.",
            remediation=fix,
        )
    if _behind(ctx.source, kubelet) > 0:
        return Hit(
            severity="warning",
            evidence=evidence,
            message=f"{what} runs kubelet {kubelet}, behind the control plane ({ctx.source}); after the "
            f"upgrade it trails {ctx.target} by {behind} (allowed: {allowed}). EKS recommends nodes on the "
            "control plane's version before an update.",
            remediation=f"Update {what} to {ctx.source} first, or make sure it follows right after.",
        )
    return None


def check_kubelet_skew(ctx: Context) -> Iterable[Hit]:
    managed = set()
    for group in ctx.inventory.nodegroups or []:
        name = as_str(group.get("nodegroupName"))
        managed.add(name)
        version = minor_version(group.get("version"))
        if version is None:
            continue
        hit = _skew_hit(
            ctx,
            version,
            f"managed node group {name!r}",
            Evidence(kind="Nodegroup", name=name, path=("version",), value=as_str(group.get("version"))),
            fargate=False,
        )
        if hit:
            yield hit
    # Nodes not covered by a managed node group fact: self-managed, Karpenter, Fargate.
    groups: dict[tuple[str, KubeVersion], list[tuple[int, dict[str, Any]]]] = {}
    for index, node in ctx.index.of_kind("Node"):
        labels = labels_of(node)
        if labels.get("eks.amazonaws.com/nodegroup") in managed:
            continue
        kubelet = minor_version(dig(node, "status", "nodeInfo", "kubeletVersion"))
        if kubelet is not None:
            groups.setdefault((_management(node)[0], kubelet), []).append((index, node))
    for (management, version), nodes in sorted(groups.items()):
        names = [as_str(dig(n, "metadata", "name")) for _, n in nodes]
        hit = _skew_hit(
            ctx,
            version,
            f"{len(nodes)} {management} node(s) ({', '.join(names[:3])}{'...' if len(names) > 3 else ''})",
            Evidence(
                kind="Node",
                name=names[0],
                path=("status", "nodeInfo", "kubeletVersion"),
                value=as_str(dig(nodes[0][1], "status", "nodeInfo", "kubeletVersion")),
                object_index=nodes[0][0],
            ),
            fargate=management == "Fargate",
        )
        if hit:
            yield hit


# --- GN004: free IPs ------------------------------------------------------------------------------------
def check_free_ips(ctx: Context) -> Iterable[Hit]:
    subnets = ctx.inventory.subnets or []
    counts = {as_str(s.get("SubnetId")): s.get("AvailableIpAddressCount") for s in subnets}
    total = sum(c for c in counts.values() if isinstance(c, int))
    if total < MIN_FREE_IPS:
        shown = ", ".join(f"{subnet}: {count}" for subnet, count in sorted(counts.items())) or "no subnets"
        yield Hit(
            severity="blocking",
            evidence=_cluster_evidence(ctx, ("resourcesVpcConfig", "subnetIds"), shown),
            message=f"The cluster's subnets have {total} free IP address(es); EKS needs up to "
            f"{MIN_FREE_IPS} to create the new control plane network interfaces, or the update fails.",
        )


# --- GN005: add-ons ---------------------------------------------------------------------------------------
def _compatible_versions(info: dict[str, Any], target: KubeVersion) -> list[dict[str, Any]]:
    return [
        version
        for version in as_list(info.get("addonVersions"))
        if any(
            as_str(c.get("clusterVersion")) == str(target) for c in as_list(version.get("compatibilities"))
        )
    ]


def check_addon_compatibility(ctx: Context) -> Iterable[Hit]:
    catalog = {as_str(a.get("addonName")): a for a in ctx.inventory.addon_versions or []}
    for addon in ctx.inventory.addons or []:
        name, installed = as_str(addon.get("addonName")), as_str(addon.get("addonVersion"))
        evidence = Evidence(kind="Addon", name=name, path=("addonVersion",), value=installed)
        compatible = _compatible_versions(as_dict(catalog.get(name)), ctx.target)
        if not compatible:
            yield Hit(
                severity="blocking",
                evidence=evidence,
                message=f"No version of the {name} add-on is compatible with {ctx.target} "
                "(DescribeAddonVersions lists none).",
                remediation=f"Remove the add-on (or replace it with a self-managed install that supports "
                f"{ctx.target}) before the upgrade, or wait for a compatible release.",
            )
            continue
        versions = [as_str(v.get("addonVersion")) for v in compatible]
        if installed in versions:
            continue
        default = next(
            (
                as_str(v.get("addonVersion"))
                for v in compatible
                for c in as_list(v.get("compatibilities"))
                if as_str(c.get("clusterVersion")) == str(ctx.target) and c.get("defaultVersion") is True
            ),
            versions[0],
        )
        yield Hit(
            severity="warning",
            evidence=evidence,
            message=f"The {name} add-on runs {installed}, which is not listed as compatible with "
            f"{ctx.target}; {default} is (the default for {ctx.target}).",
            remediation=f"Update {name} to {default} as part of the upgrade.",
        )


# --- GN006: EKS upgrade insights ---------------------------------------------------------------------
_INSIGHT_SEVERITY: dict[str, Severity] = {"ERROR": "blocking", "WARNING": "warning", "UNKNOWN": "info"}


def check_insights(ctx: Context) -> Iterable[Hit]:
    for insight in ctx.inventory.insights or []:
        if as_str(insight.get("category")) not in ("", "UPGRADE_READINESS"):
            continue
        version = as_str(insight.get("kubernetesVersion"))
        if version and version != str(ctx.target):
            continue
        status = as_str(dig(insight, "insightStatus", "status"))
        severity = _INSIGHT_SEVERITY.get(status)
        if severity is None:
            continue
        reason = as_str(dig(insight, "insightStatus", "reason"))
        links = [str(v) for v in as_dict(insight.get("additionalInfo")).values()]
        yield Hit(
            severity=severity,
            evidence=Evidence(
                kind="Insight",
                name=as_str(insight.get("id")),
                path=("insightStatus", "status"),
                value=as_str(insight.get("name")) or status,
            ),
            message=f"EKS upgrade insight {insight.get('name')!r} is {status}"
            + (f": {reason}" if reason else "."),
            remediation=as_str(insight.get("recommendation")) or None,
            reference=links[0] if links else None,
        )


# --- GN007 / GN008 / GN009 / GN010: draining ------------------------------------------------------------
def _hpa_min_replicas(ctx: Context, template: PodTemplate) -> int | None:
    for _, hpa in ctx.index.of_kind("HorizontalPodAutoscaler"):
        target = as_dict(dig(hpa, "spec", "scaleTargetRef"))
        if (
            target.get("kind") == template.ref.kind
            and target.get("name") == template.ref.name
            and namespace_of(hpa) == namespace_of(template.obj)
        ):
            value = dig(hpa, "spec", "minReplicas")
            return value if isinstance(value, int) else 1
    return None


def _scaled(value: Any, total: int) -> int | None:
    """An IntOrString budget against ``total`` pods, rounded up as the disruption controller does."""
    if isinstance(value, int):
        return value
    text = as_str(value).strip()
    if text.endswith("%") and text[:-1].isdigit():
        return math.ceil(int(text[:-1]) * total / 100)
    return int(text) if text.isdigit() else None


def check_blocking_pdbs(ctx: Context) -> Iterable[Hit]:
    # Budgets select within their namespace: group the templates once (a budget compared with every
    # template of the cluster made this rule quadratic, seconds on a 10,000-pod cluster).
    by_namespace: dict[str, list[Any]] = {}
    for template in ctx.index.pod_templates():
        if template.ref.kind != "DaemonSet":
            by_namespace.setdefault(namespace_of(template.obj), []).append(template)
    for index, pdb in ctx.index.of_kind("PodDisruptionBudget"):
        ref = object_ref(index, pdb)
        spec = as_dict(pdb.get("spec"))
        selector = spec.get("selector")
        selected = [
            t
            for t in by_namespace.get(namespace_of(pdb), [])
            if selector_matches(selector, template_labels(t))
        ]
        total = sum((t.replicas if t.replicas is not None else 1) for t in selected)
        if "maxUnavailable" in spec and _scaled(spec["maxUnavailable"], max(total, 1)) == 0:
            yield Hit(
                severity="blocking",
                evidence=object_evidence(ref, ("spec", "maxUnavailable"), str(spec["maxUnavailable"])),
                message=f"PodDisruptionBudget {ref.namespace}/{ref.name} allows no disruption "
                f"(maxUnavailable: {spec['maxUnavailable']}): every eviction of its pods is refused, "
                "so node drains stall and managed node group updates fail (PodEvictionFailure).",
            )
        elif "minAvailable" in spec and total > 0:
            needed = _scaled(spec["minAvailable"], total)
            if needed is not None and needed >= total:
                names = ", ".join(f"{t.ref.kind} {t.ref.name}" for t in selected)
                yield Hit(
                    severity="blocking",
                    evidence=object_evidence(ref, ("spec", "minAvailable"), str(spec["minAvailable"])),
                    message=f"PodDisruptionBudget {ref.namespace}/{ref.name} requires {needed} available pods "
                    f"of the {total} its selector covers ({names}): no pod can ever be evicted, so node "
                    "drains stall and managed node group updates fail (PodEvictionFailure).",
                )


def check_single_replica(ctx: Context) -> Iterable[Hit]:
    for template in ctx.index.pod_templates():
        if template.replicas != 1:
            continue
        minimum = _hpa_min_replicas(ctx, template)
        if minimum is not None and minimum > 1:
            continue
        yield Hit(
            severity="warning",
            evidence=object_evidence(template.ref, ("spec", "replicas"), "1"),
            message=f"{template.ref.display} runs a single replica: it is down while its node is drained, "
            "until the replacement pod is ready elsewhere.",
        )


def check_controllerless_pods(ctx: Context) -> Iterable[Hit]:
    for index, pod in ctx.index.of_kind("Pod"):
        if controller_owner(pod) is not None or is_mirror_pod(pod):
            continue
        if as_str(dig(pod, "status", "phase")) in ("Succeeded", "Failed"):
            continue
        ref = object_ref(index, pod)
        yield Hit(
            severity="warning",
            evidence=object_evidence(ref, ("metadata", "ownerReferences"), None),
            message=f"Pod {ref.namespace}/{ref.name} has no controller: draining its node deletes it and "
            "nothing recreates it. The drain refuses such pods unless told to force.",
        )


def check_empty_dir(ctx: Context) -> Iterable[Hit]:
    for template in ctx.index.pod_templates():
        if template.ref.kind == "DaemonSet":  # DaemonSet pods are not evicted by a drain
            continue
        for volume, path in template.volumes():
            if "emptyDir" in volume:
                yield Hit(
                    severity="warning",
                    evidence=object_evidence(template.ref, (*path, "emptyDir"), as_str(volume.get("name"))),
                    message=f"{template.ref.display} keeps data in emptyDir volume {volume.get('name')!r}, "
                    "which is deleted when the pod is evicted; the drain needs explicit opt-in to evict it.",
                )
                break


# --- GN011: node management the orchestrator does not upgrade ---------------------------------------
_WHAT_HAPPENS: dict[str, tuple[Severity, str]] = {
    "self-managed": (
        "warning",
        "The orchestrator upgrades managed node groups only. These nodes keep their kubelet (and "
        "runtime) until you replace them with the target's AMI; they keep working while within the "
        "kubelet skew (see GN003).",
    ),
    "Karpenter": (
        "info",
        "Karpenter, not the orchestrator, replaces these nodes: drift replaces them once their "
        "EC2NodeClass resolves to the target's AMI (an alias or SSM-resolved AMI follows the control "
        "plane; a pinned AMI id must be updated by you).",
    ),
    "Fargate": (
        "info",
        "Fargate pods keep the kubelet they started with; pods started after the upgrade run the "
        "target version. Restart (roll out) these workloads after the control plane update.",
    ),
    "EKS Auto Mode": (
        "info",
        "EKS Auto Mode updates these nodes itself after the control plane update, respecting "
        "PodDisruptionBudgets; the orchestrator does not touch them.",
    ),
    "hybrid": (
        "warning",
        "Hybrid nodes are upgraded by you (nodeadm) after the control plane; they keep working "
        "while within the kubelet skew (see GN003).",
    ),
    "Windows": (
        "warning",
        "The orchestrator does not migrate Windows node groups (their runtime move to containerd is "
        "part of the Windows AMIs for 1.24+); update them yourself after the control plane.",
    ),
    "Bottlerocket": (
        "info",
        "Bottlerocket already runs containerd; the orchestrator leaves its node group's update to you "
        "(UpdateNodegroupVersion, or Bottlerocket's update operator).",
    ),
}


def _management(node: dict[str, Any]) -> tuple[str, str]:
    """(management, group) for a Node: Fargate, Karpenter, managed, Windows, Bottlerocket or self-managed."""
    labels = labels_of(node)
    compute_type = labels.get("eks.amazonaws.com/compute-type")
    if compute_type == "fargate":
        return "Fargate", as_str(dig(node, "metadata", "name"))
    if compute_type == "auto":  # Auto Mode nodes carry karpenter.sh/nodepool too: check first
        return "EKS Auto Mode", labels.get("karpenter.sh/nodepool", "")
    if compute_type == "hybrid":
        return "hybrid", ""
    for label in ("karpenter.sh/nodepool", "karpenter.sh/provisioner-name"):
        if label in labels:
            return "Karpenter", f"{label}={labels[label]}"
    if "eks.amazonaws.com/nodegroup" in labels:
        return "managed", labels["eks.amazonaws.com/nodegroup"]
    group = labels.get("alpha.eksctl.io/nodegroup-name", "")
    return "self-managed", group


def _os_flavour(node: dict[str, Any]) -> str | None:
    labels = labels_of(node)
    if labels.get("kubernetes.io/os") == "windows":
        return "Windows"
    if "bottlerocket" in as_str(dig(node, "status", "nodeInfo", "osImage")).lower():
        return "Bottlerocket"
    return None


def check_unmanaged_nodes(ctx: Context) -> Iterable[Hit]:
    reported: set[tuple[str, str]] = set()
    for group in ctx.inventory.nodegroups or []:
        ami = as_str(group.get("amiType"))
        flavour = (
            "Windows"
            if ami.startswith("WINDOWS")
            else "Bottlerocket"
            if ami.startswith("BOTTLEROCKET")
            else None
        )
        if flavour:
            name = as_str(group.get("nodegroupName"))
            reported.add(("managed", name))
            yield _management_hit(
                flavour,
                Evidence(kind="Nodegroup", name=name, path=("amiType",), value=ami),
                f"Managed node group {name!r} ({ami})",
            )
    buckets: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for index, node in ctx.index.of_kind("Node"):
        management, group = _management(node)
        if management == "managed":
            if ("managed", group) in reported or ctx.inventory.nodegroups is not None:
                continue
            flavour = _os_flavour(node)
            if flavour is None:
                continue
            management = flavour
        elif management == "self-managed" and _os_flavour(node):
            management = _os_flavour(node) or management
        key = (management, group if management != "Fargate" else "")
        buckets.setdefault(key, []).append((index, node))
    for (management, group), nodes in sorted(buckets.items()):
        names = [as_str(dig(n, "metadata", "name")) for _, n in nodes]
        label = f"{len(nodes)} {management} node(s)" + (f" in {group}" if group else "")
        yield _management_hit(
            management,
            Evidence(
                kind="Node",
                name=group or names[0],
                path=("metadata", "labels"),
                value=", ".join(names[:5]),
                object_index=nodes[0][0],
            ),
            label,
        )


def _management_hit(management: str, evidence: Evidence, what: str) -> Hit:
    severity, happens = _WHAT_HAPPENS[management]
    return Hit(severity=severity, evidence=evidence, message=f"{what}: {happens}")


# --- GN012: auto-generated service-account token secrets (1.24+) --------------------------------------
_AUTO_TOKEN_NAME = re.compile(r"^(?P<sa>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)-token-[a-z0-9]{5}$")


def _auto_generated_tokens(ctx: Context) -> dict[tuple[str, str], str]:
    """(namespace, secret) -> service account, for token secrets the token controller generated."""
    listed: dict[tuple[str, str], str] = {}
    for _, account in ctx.index.of_kind("ServiceAccount"):
        for entry in as_list(account.get("secrets")):
            name = as_str(as_dict(entry).get("name"))
            if name:
                listed[(namespace_of(account), name)] = as_str(dig(account, "metadata", "name"))
    return listed


def _secret_references(template: PodTemplate) -> Iterator[tuple[str, tuple[str | int, ...]]]:
    for volume, path in template.volumes():
        name = dig(volume, "secret", "secretName")
        if isinstance(name, str):
            yield name, (*path, "secret", "secretName")
        for s, source in enumerate(as_list(dig(volume, "projected", "sources"))):
            name = dig(source, "secret", "name")
            if isinstance(name, str):
                yield name, (*path, "projected", "sources", s, "secret", "name")
    for container in template.containers():
        for e, entry in enumerate(as_list(container.container.get("env"))):
            name = dig(entry, "valueFrom", "secretKeyRef", "name")
            if isinstance(name, str):
                yield name, (*container.path, "env", e, "valueFrom", "secretKeyRef", "name")
        for e, entry in enumerate(as_list(container.container.get("envFrom"))):
            name = dig(entry, "secretRef", "name")
            if isinstance(name, str):
                yield name, (*container.path, "envFrom", e, "secretRef", "name")


def check_service_account_tokens(ctx: Context) -> Iterable[Hit]:
    listed = _auto_generated_tokens(ctx)
    for template in ctx.index.pod_templates():
        namespace = namespace_of(template.obj)
        for secret_name, path in _secret_references(template):
            secret = ctx.index.find("Secret", namespace, secret_name)
            if secret is not None and as_str(secret.get("type")) != SA_TOKEN_TYPE:
                continue
            account = listed.get((namespace, secret_name))
            if account is None and secret is not None:
                annotated = as_str(
                    dig(secret, "metadata", "annotations", "kubernetes.io/service-account.name")
                )
                match = _AUTO_TOKEN_NAME.match(secret_name)
                account = annotated if match and match.group("sa") == annotated else None
            if account is None and secret is None:
                match = _AUTO_TOKEN_NAME.match(secret_name)
                account = match.group("sa") if match else None
            if account is None:
                continue  # a token Secret created on purpose keeps being populated
            yield Hit(
                severity="warning",
                evidence=object_evidence(template.ref, path, secret_name),
                message=f"{template.ref.display} uses Secret {secret_name!r}, the token Kubernetes generated for "
                f"service account {account!r}. From 1.24 no such Secret is generated: the existing one keeps "
                "working, but a recreated service account (a reinstall, a new cluster) gets none and these "
                "pods fail to start.",
            )
    if ctx.inventory.collected_kinds is None:
        # In manifests, a ServiceAccount listing secrets is an explicit dependency on the link. (In a
        # live inventory every pre-1.24 account lists its generated token, so the list proves nothing.)
        for index, account in ctx.index.of_kind("ServiceAccount"):
            secrets = [as_str(as_dict(e).get("name")) for e in as_list(account.get("secrets"))]
            if secrets:
                ref = object_ref(index, account)
                yield Hit(
                    severity="warning",
                    evidence=object_evidence(ref, ("secrets",), ", ".join(secrets)),
                    message=f"ServiceAccount {ref.namespace}/{ref.name} lists token secrets ({', '.join(secrets)}); "
                    "tools that read a token through this list (serviceaccount.secrets[0]) find nothing for "
                    "accounts created on 1.24 or later.",
                )


GENERAL_RULES = (
    Rule(
        id="GN001",
        title="Cluster is not ACTIVE",
        detects="DescribeCluster status other than ACTIVE.",
        severity="blocking",
        remediation="Wait for the running operation to finish, or repair the cluster, then retry.",
        reference=EKS_UPDATE_CLUSTER,
        check=check_cluster_active,
        needs=(FACT_CLUSTER,),
    ),
    Rule(
        id="GN002",
        title="Control plane is not on the source version",
        detects="DescribeCluster version different from the step's source (blocking), or already on the "
        "target (info).",
        severity="blocking; info when already at the target",
        remediation="Plan the step from the cluster's actual version.",
        reference=EKS_UPDATE_CLUSTER,
        check=check_cluster_version,
        needs=(FACT_CLUSTER,),
    ),
    Rule(
        id="GN003",
        title="Kubelet version skew",
        detects="Managed node groups (DescribeNodegroup version) and other nodes (kubeletVersion) that "
        "would trail the target by more than the skew policy allows: 2 minors for targets up to 1.27, "
        "3 from 1.28 (kubelets >= 1.25). Nodes already behind the control plane warn.",
        severity="blocking beyond the skew; warning when behind the control plane",
        remediation="Update the nodes to the control plane's version before the upgrade.",
        reference=SKEW_POLICY,
        check=check_kubelet_skew,
        needs=((FACT_NODEGROUPS, kind_fact("Node")),),
    ),
    Rule(
        id="GN004",
        title="Too few free IP addresses",
        detects=f"Fewer than {MIN_FREE_IPS} available IP addresses in the cluster's subnets.",
        severity="blocking",
        remediation="Free addresses in the cluster subnets, or add subnets to the cluster "
        "(UpdateClusterConfig) before the upgrade.",
        reference=EKS_UPDATE_CLUSTER,
        check=check_free_ips,
        needs=(FACT_SUBNETS,),
    ),
    Rule(
        id="GN005",
        title="Add-on without a version for the target",
        detects="An installed EKS add-on with no version compatible with the target (blocking), or whose "
        "installed version is not compatible (warning), from DescribeAddonVersions.",
        severity="blocking; warning when only the installed version is incompatible",
        remediation="Update the add-on to a version compatible with the target.",
        reference=EKS_ADDONS,
        check=check_addon_compatibility,
        needs=(FACT_ADDONS, FACT_ADDON_VERSIONS),
    ),
    Rule(
        id="GN006",
        title="EKS upgrade insight not passing",
        detects="Upgrade-readiness insights for the target: ERROR (blocking), WARNING (warning), UNKNOWN "
        "(info).",
        severity="blocking for ERROR",
        remediation="Follow the insight's recommendation.",
        reference=EKS_INSIGHTS,
        check=check_insights,
        needs=(FACT_INSIGHTS,),
    ),
    Rule(
        id="GN007",
        title="PodDisruptionBudget that never allows a disruption",
        detects="maxUnavailable 0 or 0%, or minAvailable (number or percentage, rounded up) >= the "
        "replicas of the workloads its selector matches.",
        severity="blocking",
        remediation="Allow at least one disruption (maxUnavailable: 1, or minAvailable below the "
        "replicas), or scale the workload up before the upgrade.",
        reference=PDB_DOCS,
        check=check_blocking_pdbs,
    ),
    Rule(
        id="GN008",
        title="Single-replica workload",
        detects="Deployments, StatefulSets, ReplicationControllers and ReplicaSets without a controller at "
        "1 replica (and no HorizontalPodAutoscaler keeping more).",
        severity="warning",
        remediation="Run at least two replicas (with a PodDisruptionBudget) or accept the downtime.",
        reference=DRAIN_DOCS,
        check=check_single_replica,
    ),
    Rule(
        id="GN009",
        title="Pod without a controller",
        detects="Running Pods with no controller owner (mirror and finished pods excluded).",
        severity="warning",
        remediation="Run it under a controller (Deployment, Job) or accept that the drain deletes it.",
        reference=DRAIN_DOCS,
        check=check_controllerless_pods,
    ),
    Rule(
        id="GN010",
        title="Pod data in emptyDir",
        detects="Workloads (not DaemonSets) with an emptyDir volume: lost on eviction.",
        severity="warning",
        remediation="Move data that must survive to a persistent volume, and opt in to evicting pods "
        "with emptyDir data when the loss is acceptable.",
        reference=DRAIN_DOCS,
        check=check_empty_dir,
    ),
    Rule(
        id="GN011",
        title="Nodes the orchestrator does not upgrade",
        detects="Self-managed nodes, Karpenter nodes (karpenter.sh/nodepool or provisioner-name), Fargate, "
        "EKS Auto Mode and hybrid nodes, Windows and Bottlerocket node groups, each with what will "
        "happen to them.",
        severity="warning (self-managed, hybrid, Windows), info (Karpenter, Fargate, Auto Mode, Bottlerocket)",
        remediation="Plan these nodes' replacement as the finding describes.",
        reference=EKS_BEST_PRACTICES_UPGRADES,
        check=check_unmanaged_nodes,
        needs=((FACT_NODEGROUPS, kind_fact("Node")),),
    ),
    Rule(
        id="GN012",
        title="Auto-generated service-account token in use",
        detects="Pods referencing a token Secret the token controller generated (listed in its "
        "ServiceAccount's secrets, or named <account>-token-xxxxx), and, in manifests, ServiceAccounts "
        "that list token secrets.",
        severity="warning",
        remediation="Use projected service-account tokens (the default volume), the TokenRequest API, or "
        "a token Secret you create yourself with the kubernetes.io/service-account.name annotation.",
        reference=SA_TOKENS,
        check=check_service_account_tokens,
        min_target="1.24",
    ),
)

GENERAL_PACK = register_pack(
    RulePack(name="general", description="Readiness for any one-minor step.", rules=GENERAL_RULES)
)
