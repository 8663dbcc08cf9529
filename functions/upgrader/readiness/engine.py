"""The readiness engine: an inventory in, findings out, through rule packs chosen by the version step.

One engine serves both modes. The offline scanner (``fleetctl scan``) fills an :class:`Inventory`
from manifest files; the live scanner fills the same model from the cluster and EKS. Rules never
know which: they read Kubernetes objects as plain dicts (API JSON shape) and EKS facts as the
API returns them. A fact the inventory lacks means the rules needing it do not run, and the result
lists them as *not evaluated*: a missing fact is never a silent pass.

Rule packs are data (:class:`RulePack` of :class:`Rule`); the next version's pack is a new module
that calls :func:`register_pack`. Only the standard library and pydantic are imported here: this
code runs in Lambda too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from upgrader.errors import UnsupportedVersionStep
from upgrader.readiness.objects import FieldPath, ObjectIndex, ObjectRef, render_path
from upgrader.versions import KubeVersion

Severity = Literal["blocking", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("blocking", "warning", "info")
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}

# Facts a rule may need besides the Kubernetes objects themselves. ``kind:<Kind>`` needs objects of
# that kind: listed by the live scanner (``collected_kinds``), or present in the manifests.
FACT_CLUSTER = "cluster"
FACT_NODEGROUPS = "nodegroups"
FACT_USER_DATA = "launchTemplateUserData"
FACT_SUBNETS = "subnets"
FACT_ADDONS = "addons"
FACT_ADDON_VERSIONS = "addonVersions"
FACT_INSIGHTS = "insights"
_EKS_FACTS = {
    FACT_CLUSTER: "cluster",
    FACT_NODEGROUPS: "nodegroups",
    FACT_USER_DATA: "launch_template_user_data",
    FACT_SUBNETS: "subnets",
    FACT_ADDONS: "addons",
    FACT_ADDON_VERSIONS: "addon_versions",
    FACT_INSIGHTS: "insights",
}


def kind_fact(kind: str) -> str:
    return f"kind:{kind}"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Inventory(_Model):
    """Everything the rules may look at. Kubernetes objects are dicts exactly as the API returns them.

    ``collected_kinds`` is set by the live scanner to the kinds it listed completely; ``None`` means
    the objects are a set of manifests (offline), where a kind is known only by its objects.
    ``unreadable`` records kinds the live scanner could not list (``{"Secret": "403 Forbidden"}``);
    each becomes a *not scanned* warning. Every EKS fact is optional: ``None`` means not collected.
    """

    objects: list[dict[str, Any]] = Field(default_factory=list)
    collected_kinds: list[str] | None = None
    unreadable: dict[str, str] = Field(default_factory=dict)
    cluster: dict[str, Any] | None = Field(default=None, description="DescribeCluster's `cluster`")
    nodegroups: list[dict[str, Any]] | None = Field(
        default=None, description="DescribeNodegroup's `nodegroup`, one per managed node group"
    )
    launch_template_user_data: dict[str, str] | None = Field(
        default=None, description="node group name -> its launch template's user data, as text"
    )
    subnets: list[dict[str, Any]] | None = Field(
        default=None, description="DescribeSubnets' `Subnets` for the cluster's subnets"
    )
    addons: list[dict[str, Any]] | None = Field(default=None, description="DescribeAddon's `addon`, each")
    addon_versions: list[dict[str, Any]] | None = Field(
        default=None, description="DescribeAddonVersions' `addons` for the installed add-ons"
    )
    insights: list[dict[str, Any]] | None = Field(
        default=None, description="ListInsights' `insights` (or DescribeInsight's `insight`, each)"
    )

    def has_fact(self, fact: str, index: ObjectIndex | None = None) -> bool:
        if fact.startswith("kind:"):
            kind = fact[len("kind:") :]
            if self.collected_kinds is not None:
                return kind in self.collected_kinds and kind not in self.unreadable
            kinds = index.kinds() if index is not None else {o.get("kind") for o in self.objects}
            return kind in kinds
        return getattr(self, _EKS_FACTS[fact]) is not None


class Evidence(_Model):
    """What a finding points at: an object (or EKS resource), a field path in it, the offending value."""

    kind: str
    namespace: str = ""
    name: str = ""
    path: FieldPath = ()
    value: str | None = None
    value_line: int | None = Field(
        default=None, description="0-based line within a multi-line value (a config file, user data)"
    )
    object_index: int | None = Field(default=None, description="position in Inventory.objects")

    @property
    def field_path(self) -> str:
        return render_path(self.path)


def object_evidence(
    ref: ObjectRef, path: FieldPath, value: str | None, *, value_line: int | None = None
) -> Evidence:
    """Evidence pointing at one inventory object (a pod template's ``ref`` or ``object_ref(...)``)."""
    return Evidence(
        kind=ref.kind,
        namespace=ref.namespace,
        name=ref.name,
        path=path,
        value=value,
        value_line=value_line,
        object_index=ref.index,
    )


class Finding(_Model):
    rule: str
    severity: Severity
    title: str
    message: str
    remediation: str
    reference: str
    evidence: Evidence


class NotEvaluated(_Model):
    rule: str
    title: str
    missing: tuple[str, ...]


class ScanResult(_Model):
    from_version: str
    to_version: str
    findings: tuple[Finding, ...] = ()
    not_evaluated: tuple[NotEvaluated, ...] = ()
    evaluated: tuple[str, ...] = ()
    objects_scanned: int = 0

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def has_blocking(self) -> bool:
        return any(f.severity == "blocking" for f in self.findings)

    def by_rule(self, rule: str) -> list[Finding]:
        return [f for f in self.findings if f.rule == rule]


@dataclass(frozen=True)
class Hit:
    """What a rule's check yields; the engine fills in the rule's id, title and defaults."""

    severity: Severity
    evidence: Evidence
    message: str
    remediation: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Context:
    inventory: Inventory
    source: KubeVersion
    target: KubeVersion
    index: ObjectIndex

    def at_least(self, version: str) -> bool:
        return self.target >= KubeVersion.parse(version)

    def docker_severity(self, definite: bool, removed_in: str = "1.24") -> Severity:
        """A definite Docker dependency blocks once the target has no dockershim; a possible one warns.

        Below that target both are one step milder: nothing breaks yet, but the next step will.
        """
        if self.at_least(removed_in):
            return "blocking" if definite else "warning"
        return "warning" if definite else "info"


Check = Callable[[Context], Iterable[Hit]]
Need = str | tuple[str, ...]  # one fact, or alternatives of which any one will do


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    detects: str  # one or two sentences for docs/readiness-rules.md and SARIF's fullDescription
    severity: str  # the documented severity, e.g. "blocking (target >= 1.24), warning below"
    remediation: str
    reference: str
    check: Check
    needs: tuple[Need, ...] = ()
    min_target: str | None = None  # the rule runs only for targets >= this version

    def applies(self, target: KubeVersion) -> bool:
        return self.min_target is None or target >= KubeVersion.parse(self.min_target)

    def missing(self, inventory: Inventory, index: ObjectIndex) -> tuple[str, ...]:
        missing: list[str] = []
        for need in self.needs:
            alternatives = (need,) if isinstance(need, str) else need
            if not any(inventory.has_fact(fact, index) for fact in alternatives):
                missing.append(" or ".join(alternatives))
        return tuple(missing)

    def finding(self, hit: Hit) -> Finding:
        return Finding(
            rule=self.id,
            severity=hit.severity,
            title=self.title,
            message=hit.message,
            remediation=hit.remediation or self.remediation,
            reference=hit.reference or self.reference,
            evidence=hit.evidence,
        )


@dataclass(frozen=True)
class RulePack:
    """Rules that apply to a range of targets: ``min_target`` and up (every step when None)."""

    name: str
    description: str
    rules: tuple[Rule, ...]
    min_target: str | None = None

    def applies(self, target: KubeVersion) -> bool:
        return self.min_target is None or target >= KubeVersion.parse(self.min_target)


class DuplicateRuleId(ValueError):
    """Two registered rules share an id: ids are stable public names (SARIF, docs, suppressions)."""


class PackRegistry:
    def __init__(self) -> None:
        self._packs: list[RulePack] = []

    def register(self, pack: RulePack) -> RulePack:
        known = {rule.id for rule in self.rules()}
        ids = [rule.id for rule in pack.rules]
        clashes = sorted((known & set(ids)) | {i for i in ids if ids.count(i) > 1})
        if clashes:
            raise DuplicateRuleId(f"rule ids already registered: {', '.join(clashes)}")
        if any(existing.name == pack.name for existing in self._packs):
            raise DuplicateRuleId(f"a pack named {pack.name!r} is already registered")
        self._packs.append(pack)
        return pack

    def packs(self) -> tuple[RulePack, ...]:
        return tuple(self._packs)

    def rules(self) -> tuple[Rule, ...]:
        return tuple(rule for pack in self._packs for rule in pack.rules)

    def applicable(self, target: KubeVersion) -> tuple[RulePack, ...]:
        return tuple(pack for pack in self._packs if pack.applies(target))


REGISTRY = PackRegistry()


def register_pack(pack: RulePack) -> RulePack:
    return REGISTRY.register(pack)


def _sort_key(finding: Finding) -> tuple[Any, ...]:
    e = finding.evidence
    return (SEVERITY_RANK[finding.severity], finding.rule, e.namespace, e.kind, e.name, e.field_path)


def parse_step(from_version: str, to_version: str) -> tuple[KubeVersion, KubeVersion]:
    source, target = KubeVersion.parse(from_version), KubeVersion.parse(to_version)
    if target != source.next_minor():
        raise UnsupportedVersionStep(
            f"readiness is evaluated one minor version at a time: {source} -> {source.next_minor()}, "
            f"not {source} -> {target}",
            fromVersion=from_version,
            toVersion=to_version,
        )
    return source, target


def evaluate(
    inventory: Inventory, from_version: str, to_version: str, *, registry: PackRegistry | None = None
) -> ScanResult:
    """Run every rule of every pack that applies to ``from_version -> to_version``.

    Any one-minor step is accepted (the orchestrator's supported range is narrower, but a manifest
    scan for 1.22 -> 1.23 is still useful); anything else raises
    :class:`~upgrader.errors.UnsupportedVersionStep`.
    """
    source, target = parse_step(from_version, to_version)
    index = ObjectIndex(inventory.objects)
    context = Context(inventory=inventory, source=source, target=target, index=index)
    findings: list[Finding] = []
    not_evaluated: list[NotEvaluated] = []
    evaluated: list[str] = []
    for pack in (registry or REGISTRY).applicable(target):
        for rule in pack.rules:
            if not rule.applies(target):
                continue
            missing = rule.missing(inventory, index)
            if missing:
                not_evaluated.append(NotEvaluated(rule=rule.id, title=rule.title, missing=missing))
                continue
            evaluated.append(rule.id)
            findings.extend(rule.finding(hit) for hit in rule.check(context))
    return ScanResult(
        from_version=str(source),
        to_version=str(target),
        findings=tuple(sorted(findings, key=_sort_key)),
        not_evaluated=tuple(not_evaluated),
        evaluated=tuple(evaluated),
        objects_scanned=len(inventory.objects),
    )


# --- the inventory's own rule: kinds the live scanner could not read ---------------------------------
# Kinds without which the scan is blind to what the upgrade disrupts (workloads and the nodes
# they run on): not being able to read them blocks, since "no finding" would mean "not looked".
ESSENTIAL_KINDS = frozenset(
    {
        "Node",
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
        "ReplicationController",
        "PodDisruptionBudget",
    }
)


def _not_scanned(ctx: Context) -> Iterable[Hit]:
    for kind, reason in sorted(ctx.inventory.unreadable.items()):
        essential = kind in ESSENTIAL_KINDS
        yield Hit(
            severity="blocking" if essential else "warning",
            evidence=Evidence(kind=kind, value=reason),
            message=f"{kind} objects could not be read ({reason}); every rule that looks at them "
            "saw none, so this report may miss problems they would show."
            + (" The upgrade disrupts these objects, so it cannot go ahead blind." if essential else ""),
        )


INVENTORY_PACK = register_pack(
    RulePack(
        name="inventory",
        description="Completeness of the inventory itself.",
        rules=(
            Rule(
                id="SC001",
                title="Kind not scanned",
                detects="A kind the live scanner could not list (permissions, API errors).",
                severity="blocking for nodes, pods, workloads and PDBs; warning for other kinds",
                remediation="Grant the scanner's role list/get on this kind (see the target-account "
                "role) and scan again.",
                reference="https://kubernetes.io/docs/reference/access-authn-authz/rbac/",
                check=_not_scanned,
            ),
        ),
    )
)
