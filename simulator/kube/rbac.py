"""Kubernetes RBAC for the emulated API servers: what the orchestrator's ClusterRole allows, enforced.

The policy is read from the very manifest operators apply (``infra/kubernetes/orchestrator-clusterrole.yaml``):
the ClusterRoles bound to the orchestrator's group by its ClusterRoleBindings. Every request is resolved
to the attributes the API server's authorizer sees (verb, API group, resource, subresource, namespace,
name; or a non-resource path) and checked before it is routed, as the real API server does; a refusal is
the API server's 403 ``Forbidden`` Status, with its message:
``pods "web-1" is forbidden: User "eks-fleet-upgrader" cannot create resource "pods/eviction" in API group
"" in the namespace "shop"``.

Written here rather than taken from a library: no PyPI package evaluates RBAC rules outside a real API
server (the ``kubernetes`` client only sends SubjectAccessReviews to one). Supported: ``rules`` with
``apiGroups``/``resources``/``verbs`` (``*`` wildcards, ``resource/subresource``), ``resourceNames``,
``nonResourceURLs``; ClusterRoleBindings to a Group or User. Not supported: aggregation rules, Roles and
RoleBindings (namespaced). Every authenticated user may GET the discovery paths, as the built-in
``system:discovery`` and ``system:public-info-viewer`` roles allow.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from simulator.kube.world import ApiStatus

ROOT = Path(__file__).resolve().parents[2]
ORCHESTRATOR_MANIFEST = ROOT / "infra" / "kubernetes" / "orchestrator-clusterrole.yaml"
ORCHESTRATOR_GROUP = "eks-fleet-upgrader"  # the group the EKS access entry gives the target role
ORCHESTRATOR_USER = "eks-fleet-upgrader"  # the access entry's username (docs/kubernetes-access.md)
# Granted to every authenticated user by the built-in system:discovery / system:public-info-viewer roles.
DISCOVERY_PATHS = frozenset({"/version", "/api", "/apis", "/healthz", "/livez", "/readyz"})
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_VERBS_BY_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch"}


class RbacManifestError(ValueError):
    """The RBAC manifest is not what this module can enforce; the message names the document."""


@dataclass(frozen=True)
class RequestAttributes:
    """What the authorizer decides on: Kubernetes' ``authorizer.Attributes`` for one request."""

    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # the request path, for non-resource requests

    @property
    def is_resource_request(self) -> bool:
        return bool(self.resource)

    @property
    def resource_path(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def request_attributes(method: str, rest: list[str], query: Mapping[str, str]) -> RequestAttributes:
    """Resolve a request under a cluster (``rest``: the path segments after ``/clusters/<id>``) the way
    the API server's RequestInfoResolver does."""
    method = method.upper()
    path = "/" + "/".join(rest)
    if rest[:1] == ["api"] and len(rest) >= 2:
        group, tail = "", rest[2:]
    elif rest[:1] == ["apis"] and len(rest) >= 3:
        group, tail = rest[1], rest[3:]
    else:
        group, tail = "", []
    if not tail:  # /version, /api, /apis/apps/v1 ...: non-resource requests
        return RequestAttributes(verb=method.lower(), path=path)
    namespace = ""
    if tail[0] == "namespaces" and len(tail) >= 2:
        namespace = tail[1]
        if len(tail) > 2 and tail[2] not in _NAMESPACE_SUBRESOURCES:
            tail = tail[2:]  # .../namespaces/<ns>/<resource>...; otherwise the Namespace object itself
    resource = tail[0]
    name = tail[1] if len(tail) > 1 else ""
    subresource = "/".join(tail[2:])
    if method == "GET":
        verb = ("watch" if query.get("watch") in ("true", "1") else "list") if not name else "get"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _VERBS_BY_METHOD.get(method, method.lower())
    return RequestAttributes(verb, group, resource, subresource, namespace, name, path)


@dataclass(frozen=True)
class PolicyRule:
    api_groups: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset()
    resource_names: frozenset[str] = frozenset()
    non_resource_urls: frozenset[str] = frozenset()

    @classmethod
    def from_manifest(cls, rule: Mapping[str, Any]) -> PolicyRule:
        return cls(
            frozenset(rule.get("apiGroups") or ()),
            frozenset(rule.get("resources") or ()),
            frozenset(rule.get("verbs") or ()),
            frozenset(rule.get("resourceNames") or ()),
            frozenset(rule.get("nonResourceURLs") or ()),
        )

    def allows(self, request: RequestAttributes) -> bool:
        if "*" not in self.verbs and request.verb not in self.verbs:
            return False
        if not request.is_resource_request:
            return any(
                url == request.path or (url.endswith("*") and request.path.startswith(url[:-1]))
                for url in self.non_resource_urls
            )
        if "*" not in self.api_groups and request.api_group not in self.api_groups:
            return False
        wanted = request.resource_path
        if not (
            "*" in self.resources
            or wanted in self.resources
            or (request.subresource and f"*/{request.subresource}" in self.resources)
        ):
            return False
        return not self.resource_names or request.name in self.resource_names


@dataclass(frozen=True)
class Policy:
    """The rules one user holds (through its groups' bindings)."""

    user: str
    rules: tuple[PolicyRule, ...]

    @classmethod
    def from_manifest(
        cls,
        path: Path = ORCHESTRATOR_MANIFEST,
        *,
        group: str = ORCHESTRATOR_GROUP,
        user: str = ORCHESTRATOR_USER,
    ) -> Policy:
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        roles: dict[str, tuple[PolicyRule, ...]] = {}
        bound: list[str] = []
        for document in documents:
            kind, name = document.get("kind"), (document.get("metadata") or {}).get("name")
            if kind == "ClusterRole":
                if document.get("aggregationRule"):
                    raise RbacManifestError(f"{path.name}: ClusterRole {name}: aggregation is not supported")
                roles[name] = tuple(PolicyRule.from_manifest(rule) for rule in document.get("rules") or ())
            elif kind == "ClusterRoleBinding":
                subjects = document.get("subjects") or []
                if any(
                    (s.get("kind") == "Group" and s.get("name") == group)
                    or (s.get("kind") == "User" and s.get("name") == user)
                    for s in subjects
                ):
                    bound.append(document["roleRef"]["name"])
            else:
                raise RbacManifestError(
                    f"{path.name}: {kind} {name}: only ClusterRole(Binding)s are supported"
                )
        missing = [name for name in bound if name not in roles]
        if missing or not bound:
            raise RbacManifestError(
                f"{path.name}: group {group!r} is bound to {bound or 'nothing'}; not defined here: {missing}"
            )
        return cls(user, tuple(rule for name in bound for rule in roles[name]))

    def allows(self, request: RequestAttributes) -> bool:
        if not request.is_resource_request and request.verb == "get" and request.path in DISCOVERY_PATHS:
            return True
        return any(rule.allows(request) for rule in self.rules)

    def without(self, resource: str, *verbs: str, api_group: str = "") -> Policy:
        """The same policy minus ``verbs`` (all, if none given) on ``resource`` (``"pods/eviction"``):
        what a cluster whose operator trimmed the ClusterRole grants."""

        def trimmed(rule: PolicyRule) -> Iterable[PolicyRule]:
            if resource not in rule.resources or api_group not in rule.api_groups:
                yield rule
                return
            others = rule.resources - {resource}
            if others:
                yield replace(rule, resources=others)
            kept = rule.verbs - set(verbs) if verbs else frozenset()
            if kept:
                yield replace(rule, resources=frozenset({resource}), verbs=kept)

        return replace(self, rules=tuple(r for rule in self.rules for r in trimmed(rule)))


def forbidden(request: RequestAttributes, user: str) -> ApiStatus:
    """The API server's 403 for a refused request (``staging/src/k8s.io/apiserver/pkg/endpoints/
    handlers/responsewriters/errors.go``: ``forbiddenMessage``)."""
    if not request.is_resource_request:
        return ApiStatus(
            403, "Forbidden", f'forbidden: User "{user}" cannot {request.verb} path "{request.path}"', {}
        )
    qualified = f"{request.resource}.{request.api_group}" if request.api_group else request.resource
    subject = f'{qualified} "{request.name}"' if request.name else qualified
    scope = f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope"
    details: dict[str, Any] = {"kind": request.resource}
    if request.name:
        details["name"] = request.name
    if request.api_group:
        details["group"] = request.api_group
    return ApiStatus(
        403,
        "Forbidden",
        f'{subject} is forbidden: User "{user}" cannot {request.verb} resource "{request.resource_path}" '
        f'in API group "{request.api_group}" {scope}',
        details,
    )


class ClusterAuthorizer:
    """The API servers' authorizer: one policy for every cluster, unless a cluster has its own (a scenario
    whose operator granted less). ``decisions`` keeps every refusal, for tests and reports."""

    def __init__(self, default: Policy | None = None) -> None:
        self.default = default if default is not None else Policy.from_manifest()
        self._per_cluster: dict[str, Policy] = {}
        self._lock = threading.Lock()
        self.refusals: list[tuple[str, RequestAttributes]] = []

    def restrict(self, cluster_id: str, policy: Policy) -> None:
        with self._lock:
            self._per_cluster[cluster_id] = policy

    def policy_for(self, cluster_id: str) -> Policy:
        with self._lock:
            return self._per_cluster.get(cluster_id, self.default)

    def check(
        self, cluster_id: str, method: str, rest: list[str], query: Mapping[str, str]
    ) -> ApiStatus | None:
        """None when the request may go on; the 403 Status otherwise."""
        request = request_attributes(method, rest, query)
        policy = self.policy_for(cluster_id)
        if policy.allows(request):
            return None
        with self._lock:
            self.refusals.append((cluster_id, request))
        return forbidden(request, policy.user)
