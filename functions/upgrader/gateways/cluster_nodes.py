"""Nodes, pods, evictions and disruption budgets of one cluster, behind a small interface.

The drain (``upgrader.drain``) talks to :class:`ClusterNodesGateway`; tests use the fake in
``tests/fakes.py`` (``WorldClusterNodes``), and ``tests/integration/test_migration_gateway_contract.py``
runs one contract against the fake and :class:`ApiClusterNodesGateway` (the official client against
the simulator's API server). Kept apart from ``gateways/kubernetes.py`` (token, client, the readiness
scan's listing) because it is the only Kubernetes adapter that changes anything: cordon, evict,
delete.

Responses are read as plain JSON (``_preload_content=False``): the drain needs a handful of fields,
and validating every pod into the client's models costs ~20 ms per 100 pods.

Errors go through the one translation of Kubernetes answers (``kubernetes_error`` in
``gateways/kubernetes.py``): 429 and 5xx left over after the client's own retries become the retryable
``KubernetesThrottled`` / ``TransientKubernetesError``, 401 and 403 ``KubernetesAccessDenied``, anything else
``UnexpectedKubernetesError``. Evictions are the exception: their 429 (a disruption
budget said no, or throttling) and 500 (several budgets) are *outcomes* the workflow waits on, never
retried here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from upgrader.errors import TransientKubernetesError
from upgrader.gateways.kubernetes import kubernetes_error

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
CORDONED_BY_ANNOTATION = "eks-fleet-upgrader/cordoned"
PAGE_SIZE = 500
_BUDGET_IN_MESSAGE = re.compile(r"The disruption budget (?P<name>\S+) needs")


@dataclass(frozen=True)
class Owner:
    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class NodeInfo:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    ready: bool = False
    runtime: str = ""
    kubelet_version: str = ""
    allocatable_pods: int = 0
    allocatable_cpu_milli: int = 0
    allocatable_memory_bytes: int = 0

    @property
    def nodegroup(self) -> str | None:
        return self.labels.get(NODEGROUP_LABEL)

    @property
    def cordoned_by_us(self) -> bool:
        return CORDONED_BY_ANNOTATION in self.annotations


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    uid: str = ""
    node: str = ""
    phase: str = "Running"
    ready: bool = False
    deleting: bool = False
    owner: Owner | None = None  # the controller
    mirror: bool = False
    empty_dir: bool = False
    cpu_request_milli: int = 0
    memory_request_bytes: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    # The scheduler's word on a pod it cannot place (PodScheduled False, reason Unschedulable), e.g.
    # "0/4 nodes are available: 1 node(s) had untolerated taint ..."; empty otherwise.
    unschedulable: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class BudgetInfo:
    namespace: str
    name: str
    selector: Mapping[str, Any] | None


EvictionOutcome = Literal["evicted", "gone", "blocked", "multiple-budgets", "throttled"]


@dataclass(frozen=True)
class Eviction:
    outcome: EvictionOutcome
    budget: str | None = None
    message: str = ""


class ClusterNodesGateway(Protocol):
    def list_nodes(self, label_selector: str | None = None) -> list[NodeInfo]: ...

    def cordon(self, node: str, *, mark: bool = True) -> None:
        """spec.unschedulable=true; ``mark`` adds the annotation that says we did it."""
        ...

    def uncordon(self, node: str) -> None:
        """spec.unschedulable=false and our annotation removed."""
        ...

    def list_pods(self, node: str | None = None) -> list[PodInfo]: ...

    def evict(self, namespace: str, name: str) -> Eviction: ...

    def delete_pod(self, namespace: str, name: str) -> bool:
        """True when deleted, False when it was already gone."""
        ...

    def list_budgets(self, namespace: str) -> list[BudgetInfo]: ...

    def desired_replicas(self, namespace: str, owner: Owner) -> int | None:
        """``spec.replicas`` of a ReplicaSet, ReplicationController or StatefulSet; None for other
        kinds or when the owner is gone."""
        ...


# -- quantities ---------------------------------------------------------------------------------------
_SUFFIX = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


def cpu_milli(quantity: str | None) -> int:
    if not quantity:
        return 0
    text = str(quantity)
    if text.endswith("m"):
        return int(float(text[:-1]))
    return int(float(text) * 1000)


def memory_bytes(quantity: str | None) -> int:
    if not quantity:
        return 0
    text = str(quantity)
    for suffix, factor in _SUFFIX.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(float(text))


# -- parsing ------------------------------------------------------------------------------------------
def _ready(status: Mapping[str, Any]) -> bool:
    """The ``Ready`` condition of a node's or a pod's status is ``True``."""
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def node_info(raw: Mapping[str, Any]) -> NodeInfo:
    meta = raw.get("metadata") or {}
    status = raw.get("status") or {}
    allocatable = status.get("allocatable") or {}
    info = status.get("nodeInfo") or {}
    return NodeInfo(
        name=meta.get("name", ""),
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        unschedulable=bool((raw.get("spec") or {}).get("unschedulable")),
        ready=_ready(status),
        runtime=info.get("containerRuntimeVersion", ""),
        kubelet_version=info.get("kubeletVersion", ""),
        allocatable_pods=int(allocatable.get("pods") or 0),
        allocatable_cpu_milli=cpu_milli(allocatable.get("cpu")),
        allocatable_memory_bytes=memory_bytes(allocatable.get("memory")),
    )


def pod_info(raw: Mapping[str, Any]) -> PodInfo:
    meta = raw.get("metadata") or {}
    spec = raw.get("spec") or {}
    status = raw.get("status") or {}
    controller = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    cpu = memory = 0
    for container in spec.get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += cpu_milli(requests.get("cpu"))
        memory += memory_bytes(requests.get("memory"))
    return PodInfo(
        namespace=meta.get("namespace", "default"),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        node=spec.get("nodeName") or "",
        phase=status.get("phase") or "Pending",
        ready=_ready(status),
        deleting=bool(meta.get("deletionTimestamp")),
        owner=Owner(controller.get("kind", ""), controller.get("name", ""), controller.get("uid", ""))
        if controller
        else None,
        mirror=MIRROR_ANNOTATION in (meta.get("annotations") or {}),
        empty_dir=any("emptyDir" in (v or {}) for v in spec.get("volumes") or []),
        cpu_request_milli=cpu,
        memory_request_bytes=memory,
        labels=dict(meta.get("labels") or {}),
        unschedulable=_unschedulable(status),
    )


def _unschedulable(status: Mapping[str, Any]) -> str:
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return str(condition.get("message") or "Unschedulable")[:300]
    return ""


def eviction_outcome(status: int, body: str | None) -> Eviction:
    """What an eviction's answer means for the drain (the API server's eviction rules)."""
    if 200 <= status < 300:
        return Eviction("evicted")
    try:
        parsed = json.loads(body or "{}")
    except ValueError:
        parsed = {}
    message = str(parsed.get("message", "")) if isinstance(parsed, dict) else ""
    if status == 404:
        return Eviction("gone", message=message)
    if status == 429:
        causes = ((parsed.get("details") or {}).get("causes") or []) if isinstance(parsed, dict) else []
        for cause in causes:
            if cause.get("reason") == "DisruptionBudget":
                found = _BUDGET_IN_MESSAGE.search(cause.get("message", ""))
                return Eviction("blocked", found["name"] if found else None, cause.get("message", message))
        if "disruption budget" in message:
            return Eviction("blocked", None, message)
        return Eviction("throttled", message=message)
    if status == 500 and "more than one PodDisruptionBudget" in message:
        return Eviction("multiple-budgets", message=message)
    raise kubernetes_error(status, body, "evict pod")


# -- the official client --------------------------------------------------------------------------------
class ApiClusterNodesGateway:
    def __init__(self, api_client: ApiClient) -> None:
        from kubernetes import client  # the caller built the ApiClient, so the import is already paid

        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._policy = client.PolicyV1Api(api_client)
        self._client = client

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            yield
        except ApiException as error:
            raise kubernetes_error(error.status, error.body, action) from error
        except HTTPError as error:  # connection errors left over after the client's retries
            raise TransientKubernetesError(
                f"Kubernetes API unreachable: {action}", action=action, error=type(error).__name__
            ) from error

    @staticmethod
    def _json(response: Any) -> dict[str, Any]:
        return json.loads(response.data)  # type: ignore[no-any-return]

    def _paged(self, method: Any, action: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            with self._errors(action):
                page = self._json(method(limit=PAGE_SIZE, _continue=token, _preload_content=False, **kwargs))
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def list_nodes(self, label_selector: str | None = None) -> list[NodeInfo]:
        raw = self._paged(self._core.list_node, "list nodes", label_selector=label_selector)
        return sorted((node_info(n) for n in raw), key=lambda n: n.name)

    def cordon(self, node: str, *, mark: bool = True) -> None:
        patch: dict[str, Any] = {"spec": {"unschedulable": True}}
        if mark:
            patch["metadata"] = {"annotations": {CORDONED_BY_ANNOTATION: "true"}}
        with self._errors(f"cordon node {node}"):
            self._core.patch_node(node, patch, _preload_content=False)

    def uncordon(self, node: str) -> None:
        patch = {"spec": {"unschedulable": None}, "metadata": {"annotations": {CORDONED_BY_ANNOTATION: None}}}
        with self._errors(f"uncordon node {node}"):
            self._core.patch_node(node, patch, _preload_content=False)

    def list_pods(self, node: str | None = None) -> list[PodInfo]:
        selector = f"spec.nodeName={node}" if node else None
        raw = self._paged(self._core.list_pod_for_all_namespaces, "list pods", field_selector=selector)
        return [pod_info(p) for p in raw]

    def evict(self, namespace: str, name: str) -> Eviction:
        from kubernetes.client.exceptions import ApiException

        body = self._client.V1Eviction(
            metadata=self._client.V1ObjectMeta(name=name, namespace=namespace),
        )
        with self._errors(f"evict pod {namespace}/{name}"):
            try:
                response = self._core.create_namespaced_pod_eviction(
                    name, namespace, body, _preload_content=False
                )
            except ApiException as error:
                raw = error.body.decode() if isinstance(error.body, bytes) else error.body
                return eviction_outcome(int(error.status or 0), raw)
        return eviction_outcome(int(response.status), None)

    def delete_pod(self, namespace: str, name: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        with self._errors(f"delete pod {namespace}/{name}"):
            try:
                self._core.delete_namespaced_pod(name, namespace, _preload_content=False)
            except ApiException as error:
                if error.status == 404:
                    return False
                raise
        return True

    def list_budgets(self, namespace: str) -> list[BudgetInfo]:
        raw = self._paged(
            self._policy.list_namespaced_pod_disruption_budget, "list disruption budgets", namespace=namespace
        )
        return [
            BudgetInfo(
                namespace=(b.get("metadata") or {}).get("namespace", namespace),
                name=(b.get("metadata") or {}).get("name", ""),
                selector=(b.get("spec") or {}).get("selector"),
            )
            for b in raw
        ]

    def desired_replicas(self, namespace: str, owner: Owner) -> int | None:
        from kubernetes.client.exceptions import ApiException

        readers = {
            "ReplicaSet": self._apps.read_namespaced_replica_set,
            "StatefulSet": self._apps.read_namespaced_stateful_set,
            "ReplicationController": self._core.read_namespaced_replication_controller,
        }
        reader = readers.get(owner.kind)
        if reader is None:
            return None
        with self._errors(f"read {owner.kind} {namespace}/{owner.name}"):
            try:
                raw = self._json(reader(owner.name, namespace, _preload_content=False))
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
        if (raw.get("metadata") or {}).get("uid") not in (None, "", owner.uid):
            return None  # a different object of the same name: the evicted pods' owner is gone
        replicas = (raw.get("spec") or {}).get("replicas")
        return int(replicas) if replicas is not None else 1
