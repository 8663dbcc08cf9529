"""One simulated Kubernetes cluster: objects in their JSON shape, controllers, a scheduler, eviction
and disruption budgets, all on the simulation's virtual clock.

:class:`KubeWorld` is what the AWS side drives through :class:`~simulator.kube.ClusterNodes` (node
groups register and remove nodes, a control plane update changes ``/version``) and what the
emulated API server (``apiserver.py``) serves to the official ``kubernetes`` client.

Rules, each modelled on the component that owns it in a real cluster:

* **Objects** are plain dicts in the Kubernetes JSON shape (apiVersion, kind, metadata with uid,
  resourceVersion, creationTimestamp, labels, ownerReferences; spec; status), complete enough for
  the validating models of ``kubernetes`` 37.0.1. Every write bumps one resourceVersion counter.
* **Time**: due events (a node becoming Ready, a pod becoming Ready ``pod_ready_seconds`` after it
  was bound, a Job pod finishing) sit in a heap and are applied in time order by :meth:`advance`,
  which every read and write calls first: the world is always current when observed.
* **Controllers** run synchronously after every change: ReplicaSet, ReplicationController,
  StatefulSet (OrderedReady unless ``podManagementPolicy: Parallel``; a lost pod comes back with
  the same ordinal name and a new uid), Job, DaemonSet, Deployment (owns one ReplicaSet),
  CronJob (no pods). A pod that leaves a node is replaced by a new, Pending pod.
* **Scheduler**: Ready node, not cordoned (unless tolerated, as DaemonSet pods do), taints
  tolerated, nodeSelector / required node affinity matched, fewer pods than ``allocatable.pods``;
  least loaded first, ties by name. Nothing fits: Pending with ``PodScheduled=False``.
* **Node lifecycle controller**: ``node.kubernetes.io/not-ready:NoSchedule`` while a node is not
  Ready, ``node.kubernetes.io/unschedulable:NoSchedule`` while it is cordoned.
* **Eviction** follows the API server's eviction subresource (terminal/Pending pods bypass budgets;
  one budget at most, else 500; ``disruptionsAllowed`` 0 -> 429; unready pods may go when the
  budget is healthy). **PDB status** follows the disruption controller.

Invariants (:meth:`invariants`) are what a fleet upgrade must not break: pods lost, disruption
budgets violated by a change, deletions nobody announced (:meth:`expect_deletion`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import heapq
import itertools
import json
import math
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.clock import VirtualClock

JSON = dict[str, Any]

NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
# The node lifecycle controller's NoSchedule taint for each pressure condition the kubelet reports.
PRESSURE_TAINTS = {
    "MemoryPressure": "node.kubernetes.io/memory-pressure",
    "DiskPressure": "node.kubernetes.io/disk-pressure",
    "PIDPressure": "node.kubernetes.io/pid-pressure",
}
SYSTEM_TAINT_KEYS = frozenset({TAINT_NOT_READY, TAINT_UNSCHEDULABLE, *PRESSURE_TAINTS.values()})
# A Job pod's template may carry this annotation: the pod succeeds that many seconds after it is Ready.
RUN_SECONDS_ANNOTATION = "simulator.eks-fleet-upgrader/run-seconds"
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated name suffixes
_TERMINAL = ("Succeeded", "Failed")
# Static pods' mirror objects carry this annotation; drains leave them (the kubelet owns them).
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# How often EKS's managed node group update looks at the nodes it drains (virtual seconds).
ROLLOUT_STEP_SECONDS = 10.0


# -- kinds and errors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KindInfo:
    kind: str
    api_version: str
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def qualified(self) -> str:
        """``pods``, ``deployments.apps``: how the API server names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


KINDS: dict[str, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo("Namespace", "v1", "namespaces", False),
        KindInfo("Node", "v1", "nodes", False),
        KindInfo("Pod", "v1", "pods", True),
        KindInfo("ConfigMap", "v1", "configmaps", True),
        KindInfo("ReplicationController", "v1", "replicationcontrollers", True),
        KindInfo("Deployment", "apps/v1", "deployments", True),
        KindInfo("ReplicaSet", "apps/v1", "replicasets", True),
        KindInfo("StatefulSet", "apps/v1", "statefulsets", True),
        KindInfo("DaemonSet", "apps/v1", "daemonsets", True),
        KindInfo("Job", "batch/v1", "jobs", True),
        KindInfo("CronJob", "batch/v1", "cronjobs", True),
        KindInfo("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets", True),
        # Stored and served as they are (no controller): what readiness scans read.
        KindInfo("ServiceAccount", "v1", "serviceaccounts", True),
        KindInfo("Secret", "v1", "secrets", True),
        KindInfo("HorizontalPodAutoscaler", "autoscaling/v1", "horizontalpodautoscalers", True),
    )
}
# Kinds whose content is top-level fields rather than spec/status, and those fields.
TOP_LEVEL_FIELDS: dict[str, tuple[str, ...]] = {
    "ConfigMap": ("data", "binaryData"),
    "Secret": ("type", "data", "immutable"),
    "ServiceAccount": ("secrets", "imagePullSecrets", "automountServiceAccountToken"),
}


@dataclass(frozen=True)
class ApiStatus:
    """An API outcome: HTTP code plus what goes in a ``Status`` body (reason, message, details)."""

    code: int
    reason: str = ""
    message: str = ""
    details: JSON | None = None
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.code < 400

    def body(self) -> JSON:
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success" if self.ok else "Failure",
        }
        if self.message:
            body["message"] = self.message
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        if not self.ok:  # success Statuses carry no code in their body; the HTTP status says it
            body["code"] = self.code
        return body


class KubeError(Exception):
    """A request the API server answers with an error ``Status``."""

    def __init__(self, status: ApiStatus) -> None:
        super().__init__(f"{status.code} {status.reason}: {status.message}")
        self.status = status


def not_found(info: KindInfo, name: str) -> KubeError:
    details: JSON = {"name": name, "kind": info.plural}
    if info.group:
        details["group"] = info.group
    return KubeError(ApiStatus(404, "NotFound", f'{info.qualified} "{name}" not found', details))


def bad_request(message: str) -> KubeError:
    return KubeError(ApiStatus(400, "BadRequest", message))


def invalid(info: KindInfo, name: str, message: str) -> KubeError:
    details: JSON = {"name": name, "kind": info.kind}
    if info.group:
        details["group"] = info.group
    return KubeError(ApiStatus(422, "Invalid", f'{info.kind} "{name}" is invalid: {message}', details))


def kind_info(kind: str) -> KindInfo:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"kind {kind!r} is not emulated; known kinds: {', '.join(KINDS)}") from None


def _store_secret_values(obj: JSON, manifest: JSON) -> None:
    """As the API server does: ``stringData`` is merged into ``data`` (base64) and never stored;
    ``type`` defaults to Opaque."""
    obj.setdefault("type", "Opaque")
    data = dict(obj.get("data") or {})
    for key, value in (manifest.get("stringData") or {}).items():
        data[str(key)] = base64.b64encode(str(value).encode()).decode()
    if data:
        obj["data"] = data


# -- versions -----------------------------------------------------------------------------------

# Patch level EKS ran for each minor (late in each version's life); others get .0.
_CONTROL_PLANE_PATCH = {
    "1.21": 14, "1.22": 17, "1.23": 17, "1.24": 17, "1.25": 16, "1.26": 15,
    "1.27": 16, "1.28": 15, "1.29": 10, "1.30": 6, "1.31": 2, "1.32": 0,
}  # fmt: skip


def minor_version(version: str) -> str:
    """``"1.24"``, ``"1.24.17"``, ``"v1.24.17-eks-2d5f260"`` -> ``"1.24"``."""
    match = re.match(r"^v?(\d+)\.(\d+)", version.strip())
    if not match:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return f"{int(match[1])}.{int(match[2])}"


def version_info(version: str) -> JSON:
    """What ``GET /version`` answers on EKS for a minor version. Note EKS's ``minor`` is ``"24+"``."""
    minor = minor_version(version)
    major_s, minor_s = minor.split(".")
    digest = hashlib.sha1(f"eks-control-plane-{minor}".encode()).hexdigest()
    return {
        "major": major_s,
        "minor": f"{minor_s}+",
        "gitVersion": f"v{minor}.{_CONTROL_PLANE_PATCH.get(minor, 0)}-eks-{digest[:7]}",
        "gitCommit": hashlib.sha1(f"commit-{minor}".encode()).hexdigest(),
        "gitTreeState": "clean",
        "buildDate": "2024-05-22T18:04:33Z",
        "goVersion": "go1.21.9",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


# Instance type -> (vCPU, memory GiB); anything else is treated as 2 vCPU / 8 GiB.
_INSTANCE_SHAPES = {
    "t3.medium": (2, 4), "t3.large": (2, 8), "t3.xlarge": (4, 16),
    "m5.large": (2, 8), "m5.xlarge": (4, 16), "m5.2xlarge": (8, 32), "m5.4xlarge": (16, 64),
    "m6i.large": (2, 8), "m6i.xlarge": (4, 16), "m6i.2xlarge": (8, 32),
    "m6g.large": (2, 8), "m6g.xlarge": (4, 16), "m7g.large": (2, 8), "m7g.xlarge": (4, 16),
    "c5.large": (2, 4), "c5.xlarge": (4, 8), "c5.2xlarge": (8, 16),
    "r5.large": (2, 16), "r5.xlarge": (4, 32),
}  # fmt: skip


def _architecture(instance_type: str) -> str:
    family = instance_type.split(".", 1)[0]
    return "arm64" if re.match(r"^[a-z]+\d+g[a-z]*$", family) else "amd64"


# -- label selectors, tolerations, affinity -----------------------------------------------------


def match_label_selector(selector: JSON | None, labels: dict[str, str] | None) -> bool:
    """A ``LabelSelector`` (matchLabels + matchExpressions). ``None`` matches nothing; ``{}`` everything."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _match_node_requirement(requirement: JSON, value: str | None) -> bool:
    operator = requirement.get("operator")
    values = requirement.get("values") or []
    if operator == "In":
        return value in values
    if operator == "NotIn":
        return value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and values:
        try:
            left, right = int(value), int(values[0])
        except ValueError:
            return False
        return left > right if operator == "Gt" else left < right
    return False


def tolerates(toleration: JSON, taint: JSON) -> bool:
    """Kubernetes' ``Toleration.ToleratesTaint``."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    key = toleration.get("key") or ""
    if not key:
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taint(tolerations: list[JSON], taints: list[JSON]) -> JSON | None:
    """The first NoSchedule/NoExecute taint no toleration covers (PreferNoSchedule never blocks)."""
    for taint in taints:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def node_matches(pod_spec: JSON, node: JSON) -> bool:
    """nodeSelector and required node affinity (labels and ``metadata.name`` fields)."""
    labels = node["metadata"].get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    affinity = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not affinity:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    for term in affinity.get("nodeSelectorTerms") or []:
        expressions = term.get("matchExpressions") or []
        field_terms = term.get("matchFields") or []
        if not expressions and not field_terms:
            continue  # an empty term matches nothing
        if all(_match_node_requirement(r, labels.get(r.get("key"))) for r in expressions) and all(
            _match_node_requirement(r, fields.get(r.get("key"))) for r in field_terms
        ):
            return True
    return False


def is_pod_ready(pod: JSON) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def is_node_ready(node: JSON) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def controller_of(obj: JSON) -> JSON | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def _scaled(value: int | str, total: int) -> int:
    """``intstr.GetScaledValueFromIntOrPercent`` rounding up, as the disruption controller does."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        return math.ceil(int(text[:-1]) * total / 100)
    return int(text)


# -- strategic merge patch, JSON merge patch, JSON patch ----------------------------------------

# patchMergeKey of the lists this emulator knows (paths without list indexes); "" = set of scalars.
SMP_MERGE_KEYS: dict[tuple[str, ...], str] = {
    ("metadata", "ownerReferences"): "uid",
    ("metadata", "finalizers"): "",
    ("spec", "taints"): "key",
    ("spec", "containers"): "name",
    ("spec", "initContainers"): "name",
    ("spec", "volumes"): "name",
    ("spec", "template", "spec", "containers"): "name",
    ("spec", "template", "spec", "initContainers"): "name",
    ("spec", "template", "spec", "volumes"): "name",
    ("status", "conditions"): "type",
    ("status", "addresses"): "type",
}
_CONTAINER_LISTS = {"env": "name", "ports": "containerPort", "volumeMounts": "mountPath"}


def _merge_key(path: tuple[str, ...]) -> str | None:
    if path in SMP_MERGE_KEYS:
        return SMP_MERGE_KEYS[path]
    if len(path) >= 3 and path[-3:-1] in (("spec", "containers"), ("spec", "initContainers")):
        return _CONTAINER_LISTS.get(path[-1])
    return None


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def strategic_merge(original: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """Apply a strategic merge patch: JSON merge patch, except lists with a patchMergeKey merge by
    that key, and the ``$patch`` (replace/delete), ``$retainKeys``, ``$deleteFromPrimitiveList/``
    and ``$setElementOrder/`` directives."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return None
    result: JSON = copy.deepcopy(original) if isinstance(original, dict) else {}
    if "$retainKeys" in patch:
        keep = set(patch["$retainKeys"] or [])
        result = {k: v for k, v in result.items() if k in keep}
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in (value or [])]
        elif key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = list(value or [])
        elif key.startswith("$"):
            continue
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, (*path, key))
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value, (*path, key))
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    for field, order in orders.items():
        merge_key = _merge_key((*path, field))
        items = result.get(field)
        if not isinstance(items, list):
            continue

        def identity(item: Any, merge_key: str | None = merge_key) -> Any:
            return item.get(merge_key) if merge_key and isinstance(item, dict) else item

        wanted = [identity(o) for o in order]
        ranked = {v: i for i, v in enumerate(wanted)}
        result[field] = sorted(items, key=lambda item: ranked.get(identity(item), len(ranked)))
    return result


def _merge_list(original: Any, patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    merge_key = _merge_key(path)
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_strip_directives(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    if merge_key is None or not isinstance(original, list):
        return [_strip_directives(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    result = copy.deepcopy(original)
    if merge_key == "":  # a set of scalars
        for value in patch:
            if value not in result:
                result.append(value)
        return result
    for item in patch:
        if not isinstance(item, dict):
            raise bad_request(f"strategic merge patch: {'.'.join(path)} expects objects")
        key_value = item.get(merge_key)
        if item.get("$patch") == "delete":
            result = [r for r in result if not (isinstance(r, dict) and r.get(merge_key) == key_value)]
            continue
        for index, existing in enumerate(result):
            if isinstance(existing, dict) and existing.get(merge_key) == key_value:
                result[index] = strategic_merge(existing, item, path)
                break
        else:
            result.append(_strip_directives(item))
    return result


def json_merge(original: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: JSON = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"json patch: invalid pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(document: Any, operations: list[Any]) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, test, move, copy)."""
    doc = copy.deepcopy(document)

    def parent(parts: list[str]) -> tuple[Any, str]:
        target = doc
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        return target, parts[-1]

    def read(parts: list[str]) -> Any:
        target = doc
        for part in parts:
            target = target[int(part)] if isinstance(target, list) else target[part]
        return target

    def add(parts: list[str], value: Any) -> None:
        nonlocal doc
        if not parts:
            doc = value
            return
        container, last = parent(parts)
        if isinstance(container, list):
            container.insert(len(container) if last == "-" else int(last), value)
        else:
            container[last] = value

    def remove(parts: list[str]) -> Any:
        container, last = parent(parts)
        return container.pop(int(last)) if isinstance(container, list) else container.pop(last)

    try:
        for op in operations:
            kind, parts = op["op"], _pointer(op["path"])
            if kind == "add":
                add(parts, copy.deepcopy(op["value"]))
            elif kind == "remove":
                remove(parts)
            elif kind == "replace":
                remove(parts)
                add(parts, copy.deepcopy(op["value"]))
            elif kind == "test":
                if read(parts) != op["value"]:
                    raise bad_request(f"json patch: test failed at {op['path']}")
            elif kind in ("move", "copy"):
                source = _pointer(op["from"])
                value = remove(source) if kind == "move" else copy.deepcopy(read(source))
                add(parts, value)
            else:
                raise bad_request(f"json patch: unknown operation {kind!r}")
    except (KeyError, IndexError, ValueError, TypeError) as error:
        raise KubeError(
            ApiStatus(
                422, "Invalid", f"the server rejected our request due to an error in our request: {error}"
            )
        ) from error
    return doc


PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
}


def apply_patch(document: JSON, patch: Any, content_type: str) -> JSON:
    patch_type = PATCH_TYPES.get(content_type.split(";", 1)[0].strip().lower())
    if patch_type is None:
        raise KubeError(
            ApiStatus(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{', '.join(PATCH_TYPES)} (got {content_type})",
            )
        )
    if patch_type == "json":
        if not isinstance(patch, list):
            raise bad_request("json patch: the body must be a list of operations")
        patched = json_patch(document, patch)
    elif not isinstance(patch, dict):
        raise bad_request(f"{content_type}: the body must be an object")
    elif patch_type == "merge":
        patched = json_merge(document, patch)
    else:
        patched = strategic_merge(document, patch)
    if not isinstance(patched, dict):
        raise bad_request("the patched object is not an object")
    return patched


# -- the world ----------------------------------------------------------------------------------


@dataclass
class _PodState:
    seq: int
    bound_at: float | None = None
    run_seconds: float | None = None  # Job pods: succeed this long after Ready


@dataclass
class _Rollout:
    """A managed node group update EKS is running: the old nodes it still has to drain and terminate."""

    old: list[str]
    max_unavailable: int
    timeout: float
    done: Callable[[bool, float, str | None], None]
    started: float


@dataclass(frozen=True)
class Deletion:
    """A deletion the invariants judge: who/what went, when (virtual), why, and if it was announced."""

    kind: str
    namespace: str
    name: str
    at: float
    cause: str  # "delete" (API DELETE), "eviction", "node-removal", "nodegroup-removal"
    expected: bool

    @property
    def unexpected(self) -> bool:
        return self.cause in ("delete", "nodegroup-removal") and not self.expected


class KubeWorld:
    """One simulated cluster. Thread-safe: every public method holds one re-entrant lock."""

    def __init__(
        self, name: str, clock: VirtualClock, version: str, *, pod_ready_seconds: float = 15.0
    ) -> None:
        self.name = name
        self.clock = clock
        self._version = minor_version(version)
        self.pod_ready_seconds = float(pod_ready_seconds)
        self._lock = threading.RLock()
        self._rng = random.Random(f"kube-world:{name}")
        self._rv = 0
        self._seq = itertools.count(1)
        self._store: dict[str, dict[tuple[str, str], JSON]] = {kind: {} for kind in KINDS}
        self._pods: dict[str, _PodState] = {}  # pod uid -> state the API does not show
        self._pod_keys: dict[str, tuple[str, str]] = {}  # pod uid -> (namespace, name)
        self._owned: dict[str, set[tuple[str, str]]] = {}  # controller uid -> its pods' keys
        self._events: list[tuple[float, int, str, str]] = []  # (at, seq, what, uid/name)
        self._t = clock.now()  # time of the event being applied (timestamps use it)
        self._job_succeeded: Counter[str] = Counter()
        self._expected: set[tuple[str, str, str | None]] = set()
        self._deletions: list[Deletion] = []
        self._bare_pods_lost = 0
        self._pdb_violations = 0
        self._violations: list[JSON] = []
        self._rollouts: dict[str, _Rollout] = {}  # node group -> EKS's rolling update in progress
        self._ip = itertools.count(10)
        self._hashes: dict[tuple[str, int], str] = {}  # (uid, generation) -> template hash
        for namespace in DEFAULT_NAMESPACES:
            self._ensure_namespace(namespace)

    # -- public: versions ---------------------------------------------------------------------
    @property
    def version(self) -> str:
        """The control plane's minor version, e.g. ``"1.24"``."""
        return self._version

    def version_info(self) -> JSON:
        return version_info(self._version)

    def set_control_plane_version(self, version: str) -> None:
        with self._lock:
            self._version = minor_version(version)

    # -- public: time ---------------------------------------------------------------------------
    def advance(self) -> None:
        """Apply every due event up to ``clock.now()``, in time order."""
        with self._lock:
            now = self.clock.now()
            while self._events and self._events[0][0] <= now:
                # Events due at the same instant are applied together, then the controllers run once.
                at = self._events[0][0]
                self._t = max(self._t, at)
                changed = False
                while self._events and self._events[0][0] == at:
                    _, _, what, ref = heapq.heappop(self._events)
                    changed = self._apply_event(what, ref) or changed
                if changed:
                    self._reconcile()
            self._t = max(self._t, now)

    def _schedule(self, at: float, what: str, ref: str) -> None:
        heapq.heappush(self._events, (at, next(self._seq), what, ref))

    # -- public: reads --------------------------------------------------------------------------
    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def get(self, kind: str, namespace: str | None, name: str) -> JSON:
        info = kind_info(kind)
        with self._lock:
            self.advance()
            obj = self._store[kind].get(self._key(info, namespace, name))
            if obj is None:
                raise not_found(info, name)
            return copy.deepcopy(obj)

    def list(self, kind: str, namespace: str | None = None) -> list[JSON]:
        """Every object of a kind (in ``namespace`` if given), ordered by namespace then name."""
        info = kind_info(kind)
        with self._lock:
            self.advance()
            items = self._store[kind].values()
            if namespace is not None and info.namespaced:
                items = [o for o in items if o["metadata"].get("namespace") == namespace]
            ordered = sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            return copy.deepcopy(ordered)

    def list_at(self, kind: str, namespace: str | None = None) -> tuple[str, list[JSON]]:
        """:meth:`list` and the resourceVersion it was read at, atomically."""
        with self._lock:
            items = self.list(kind, namespace)
            return str(self._rv), items

    # -- public: writes -------------------------------------------------------------------------
    def _write(self, manifest: JSON, *, mode: str) -> JSON:
        """Upsert (``apply``, ``create`` or ``replace``), let the controllers act, read it back."""
        with self._lock:
            self.advance()
            obj = self._upsert(manifest, mode=mode)
            self._reconcile()
            self.advance()
            return self.get(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])

    def apply(self, manifest: JSON) -> JSON:
        """Create or replace an object from a manifest (``kubectl apply``, simplified: the manifest
        replaces metadata labels/annotations and spec). Controllers act at once."""
        return self._write(manifest, mode="apply")

    def create(self, manifest: JSON) -> JSON:
        """POST: 409 AlreadyExists if the object exists."""
        return self._write(manifest, mode="create")

    def replace(self, manifest: JSON) -> JSON:
        """PUT: 404 if missing, 409 Conflict if ``metadata.resourceVersion`` is stale."""
        return self._write(manifest, mode="replace")

    def patch(self, kind: str, namespace: str | None, name: str, patch: Any, content_type: str) -> JSON:
        """PATCH with ``application/merge-patch+json``, ``application/strategic-merge-patch+json`` or
        ``application/json-patch+json``. Only metadata labels/annotations and spec (ConfigMap: data)
        change; status is the controllers'. A ``metadata.resourceVersion`` in the patch must match."""
        info = kind_info(kind)
        with self._lock:
            self.advance()
            key = self._key(info, namespace, name)
            current = self._store[kind].get(key)
            if current is None:
                raise not_found(info, name)
            patched = apply_patch(current, patch, content_type)
            wanted_rv = (patched.get("metadata") or {}).get("resourceVersion")
            if wanted_rv not in (None, current["metadata"]["resourceVersion"]):
                raise self._conflict(info, name)
            updated = copy.deepcopy(current)
            meta = patched.get("metadata") or {}
            for field in ("labels", "annotations"):
                if meta.get(field):
                    updated["metadata"][field] = dict(meta[field])
                else:
                    updated["metadata"].pop(field, None)
            if kind in TOP_LEVEL_FIELDS:
                for field in TOP_LEVEL_FIELDS[kind]:
                    if field in patched:
                        updated[field] = patched[field]
                    else:
                        updated.pop(field, None)
            elif kind != "Pod":  # a pod's spec is immutable (but for fields this emulator ignores)
                updated["spec"] = patched.get("spec") or {}
            if kind == "Node":
                self._sync_system_taints(updated)
                self._validate_node(updated)
            if updated.get("spec") != current.get("spec"):
                updated["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
            self._store[kind][key] = updated
            self._touch(updated)
            self._reconcile()
            self.advance()
            return copy.deepcopy(self._store[kind][key])

    def patch_node(self, name: str, patch: Any, content_type: str) -> JSON:
        """Cordon (``spec.unschedulable``) and taint (``spec.taints``, merged by ``key`` in a
        strategic merge patch) a node."""
        return self.patch("Node", None, name, patch, content_type)

    def delete(self, kind: str, namespace: str | None, name: str) -> JSON:
        """DELETE: the object goes at once (no graceful termination), its dependents with it.
        Counts as an unexpected deletion unless announced with :meth:`expect_deletion`; a pod
        deleted this way bypasses its disruption budget (and counts as a violation if it breaks it)."""
        info = kind_info(kind)
        with self._lock:
            self.advance()
            key = self._key(info, namespace, name)
            obj = self._store[kind].get(key)
            if obj is None:
                raise not_found(info, name)
            before = self._pdb_health()
            self._record_deletion(obj, "delete")
            announced = self._is_expected(info.kind, key[0], key[1])
            gone = self._remove_object(obj, cause="delete", announced=announced)
            self._reconcile()
            self._count_violations(before, f"delete {info.kind} {'/'.join(k for k in key if k)}")
            self.advance()
            return gone

    def evict(self, namespace: str, name: str, *, dry_run: bool = False) -> ApiStatus:
        """The eviction subresource (policy/v1 Eviction), with the API server's rules: 201 and the
        pod deleted; 429 when its budget allows no disruption; 500 when several budgets select it;
        404 when there is no such pod."""
        with self._lock:
            self.advance()
            status = self._evict(namespace, name, dry_run=dry_run)
            if status.code == 201 and not dry_run:
                self.advance()
            return status

    def _evict(self, namespace: str, name: str, *, dry_run: bool = False) -> ApiStatus:
        """The eviction without advancing time (also used by EKS's own drain in :meth:`rolling_update`)."""
        pod = self._store["Pod"].get((namespace, name))
        if pod is None:
            return not_found(KINDS["Pod"], name).status
        phase = (pod.get("status") or {}).get("phase")
        if phase not in ("Pending", *_TERMINAL):
            budgets = self._pdbs_for(pod)
            if len(budgets) > 1:
                return ApiStatus(
                    500,
                    message="This pod has more than one PodDisruptionBudget, which the eviction "
                    "subresource does not support.",
                )
            if budgets and not self._eviction_allowed(pod, budgets[0]):
                status = budgets[0].get("status") or {}
                return ApiStatus(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    details={
                        "causes": [
                            {
                                "reason": "DisruptionBudget",
                                "message": f"The disruption budget {budgets[0]['metadata']['name']} "
                                f"needs {status.get('desiredHealthy', 0)} healthy pods and has "
                                f"{status.get('currentHealthy', 0)} currently",
                            }
                        ]
                    },
                )
        if not dry_run:
            before = self._pdb_health()
            self._record_deletion(pod, "eviction")
            # An announced eviction of a pod without a controller (the drain was told to accept the
            # loss, and said so before) does not count it lost; an unannounced one does.
            announced = self._is_expected("Pod", namespace, name)
            self._remove_object(pod, cause="eviction", announced=announced)
            self._reconcile()
            self._count_violations(before, f"evict Pod {namespace}/{name}")
        return ApiStatus(201)

    # -- public: EKS's managed node group rolling update ------------------------------------------
    def node_names(self, nodegroup: str) -> list[str]:
        with self._lock:
            self.advance()
            return sorted(
                n["metadata"]["name"]
                for n in self._store["Node"].values()
                if (n["metadata"].get("labels") or {}).get(NODEGROUP_LABEL) == nodegroup
            )

    def rolling_update(
        self,
        nodegroup: str,
        old_nodes: list[str],
        *,
        max_unavailable: int,
        eviction_timeout: float,
        done: Callable[[bool, float, str | None], None],
        start_at: float,
    ) -> None:
        """What EKS does to a managed node group's old nodes during UpdateNodegroupVersion, once the new
        nodes have joined: cordon them all, then drain ``max_unavailable`` at a time through the Eviction
        API (so PodDisruptionBudgets hold; DaemonSet and mirror pods stay), terminate each node once
        empty, and report ``done(True, at, None)``. Pods a budget keeps on a node past
        ``eviction_timeout`` fail the update: ``done(False, at, "PodEvictionFailure")`` with the old nodes
        left cordoned, as EKS leaves them. Every node removal here is EKS's, announced by the update."""
        with self._lock:
            for name in old_nodes:
                self._expected.add(("Node", name, ""))
            self._rollouts[nodegroup] = _Rollout(
                old=list(old_nodes),
                max_unavailable=max(1, max_unavailable),
                timeout=eviction_timeout,
                done=done,
                started=start_at,
            )
            self._schedule(start_at, "rollout", nodegroup)

    def _rollout_step(self, nodegroup: str) -> bool:
        rollout = self._rollouts.get(nodegroup)
        if rollout is None:
            return False
        nodes = [self._store["Node"].get(("", name)) for name in rollout.old]
        nodes = [n for n in nodes if n is not None]
        for node in nodes:
            if not node["spec"].get("unschedulable"):
                node["spec"]["unschedulable"] = True
                self._sync_system_taints(node)
                self._touch(node)
        blocked = False
        for node in sorted(nodes, key=lambda n: n["metadata"]["name"])[: rollout.max_unavailable]:
            name = node["metadata"]["name"]
            movable = [
                p
                for p in self._store["Pod"].values()
                if p["spec"].get("nodeName") == name
                and (p.get("status") or {}).get("phase") not in _TERMINAL
                and (controller_of(p) or {}).get("kind") != "DaemonSet"
                and MIRROR_ANNOTATION not in (p["metadata"].get("annotations") or {})
            ]
            for pod in movable:
                if self._evict(pod["metadata"]["namespace"], pod["metadata"]["name"]).code != 201:
                    blocked = True
            if all(
                p["spec"].get("nodeName") != name
                or (controller_of(p) or {}).get("kind") == "DaemonSet"
                or MIRROR_ANNOTATION in (p["metadata"].get("annotations") or {})
                for p in self._store["Pod"].values()
            ):
                before = self._pdb_health()
                self._deletions.append(Deletion("Node", "", name, self._t, "nodegroup-update", True))
                self._remove_object(node, cause="node-removal")
                self._count_violations(before, f"terminate Node {name} (node group update)")
                rollout.old.remove(name)
        if not rollout.old:
            del self._rollouts[nodegroup]
            rollout.done(True, self._t, None)
        elif blocked and self._t - rollout.started >= rollout.timeout:
            del self._rollouts[nodegroup]
            rollout.done(False, self._t, "PodEvictionFailure")
        else:
            self._schedule(self._t + ROLLOUT_STEP_SECONDS, "rollout", nodegroup)
        return True

    def expect_deletion(self, kind: str, name: str, namespace: str | None = None) -> None:
        """Announce a deletion the upgrade is about to make on purpose (kind ``"Nodegroup"`` for a
        node group removed through :meth:`remove_nodes`). ``namespace=None`` matches any namespace."""
        with self._lock:
            self._expected.add((kind, name, namespace))

    # -- public: ClusterNodes ---------------------------------------------------------------------
    def register_nodes(
        self,
        nodegroup: str,
        instance_ids: list[str],
        *,
        kubelet_version: str,
        container_runtime: str,
        instance_type: str,
        labels: dict[str, str],
        taints: list[dict[str, str]],
        pods_per_node: int,
        ready_at: float | None,
    ) -> None:
        with self._lock:
            self.advance()
            for instance_id in instance_ids:
                node = self._new_node(
                    nodegroup,
                    instance_id,
                    kubelet_version=kubelet_version,
                    container_runtime=container_runtime,
                    instance_type=instance_type,
                    labels=labels,
                    taints=taints,
                    pods_per_node=pods_per_node,
                )
                self._store["Node"][("", instance_id)] = node
                self._touch(node)
                if ready_at is not None:
                    self._schedule(max(ready_at, self._t), "node-ready", node["metadata"]["uid"])
            self._reconcile()
            self.advance()

    def set_node_pressure(self, name: str, condition: str = "MemoryPressure", *, under: bool = True) -> None:
        """The kubelet of node ``name`` reports ``condition`` (``MemoryPressure``, ``DiskPressure`` or
        ``PIDPressure``) True (``under=False``: False again). The node lifecycle controller taints it
        ``NoSchedule`` meanwhile: the node stays Ready and uncordoned, what runs there keeps running
        (the kubelet's own pressure eviction is not modelled), nothing new is scheduled there (DaemonSet
        pods tolerate it). Capacity that vanishes while a drain runs: evicted pods stay Pending."""
        if condition not in PRESSURE_TAINTS:
            raise ValueError(f"unknown pressure condition {condition!r}; one of {sorted(PRESSURE_TAINTS)}")
        with self._lock:
            self.advance()
            node = self._store["Node"].get(("", name))
            if node is None:
                raise not_found(KINDS["Node"], name)
            reasons = {
                "MemoryPressure": ("KubeletHasInsufficientMemory", "KubeletHasSufficientMemory"),
                "DiskPressure": ("KubeletHasDiskPressure", "KubeletHasNoDiskPressure"),
                "PIDPressure": ("KubeletHasInsufficientPID", "KubeletHasSufficientPID"),
            }[condition]
            conditions = node["status"]["conditions"]
            for index, entry in enumerate(conditions):
                if entry["type"] == condition:
                    conditions[index] = _node_condition(
                        condition, "True" if under else "False", reasons[0 if under else 1], self._timestamp()
                    )
            self._sync_system_taints(node)
            self._touch(node)
            self._reconcile()

    def remove_nodes(self, nodegroup: str) -> list[str]:
        with self._lock:
            self.advance()
            nodes = [
                n
                for n in self._store["Node"].values()
                if (n["metadata"].get("labels") or {}).get(NODEGROUP_LABEL) == nodegroup
            ]
            if not nodes:
                return []
            before = self._pdb_health()
            expected = self._is_expected("Nodegroup", "", nodegroup)
            self._deletions.append(
                Deletion("Nodegroup", "", nodegroup, self._t, "nodegroup-removal", expected)
            )
            names = sorted(n["metadata"]["name"] for n in nodes)
            for node in nodes:
                self._remove_object(node, cause="node-removal")
            self._reconcile()
            self._count_violations(before, f"remove node group {nodegroup}")
            self.advance()
            return names

    # -- public: invariants and reports -----------------------------------------------------------
    def invariants(self) -> dict[str, int]:
        """``podsLost``: replicas controllers want but do not have Running and Ready now, DaemonSet
        nodes without a Ready pod, plus bare pods that disappeared; ``pdbViolations``: changes that
        left a budget's healthy pods below its desired count; ``unexpectedDeletions``: deletions
        (API DELETEs, node group removals) nobody announced."""
        with self._lock:
            self.advance()
            lost = self._bare_pods_lost
            for kind in ("ReplicaSet", "ReplicationController", "StatefulSet", "Job"):
                for owner in self._store[kind].values():
                    want = self._wanted_pods(owner)
                    ready = sum(1 for p in self._owned_pods(owner) if is_pod_ready(p))
                    lost += max(0, want - ready)
            for ds in self._store["DaemonSet"].values():
                pods = self._owned_pods(ds)
                for node in self._daemon_nodes(ds):
                    node_name = node["metadata"]["name"]
                    if not any(is_pod_ready(p) and p["spec"].get("nodeName") == node_name for p in pods):
                        lost += 1
            return {
                "podsLost": lost,
                "pdbViolations": self._pdb_violations,
                "unexpectedDeletions": sum(1 for d in self._deletions if d.unexpected),
            }

    def deletions(self) -> list[Deletion]:
        with self._lock:
            return list(self._deletions)

    def violations(self) -> list[JSON]:
        """Each budget violation: which budget, by what change, when, healthy vs desired."""
        with self._lock:
            return copy.deepcopy(self._violations)

    def snapshot(self) -> JSON:
        """Counts for reports: nodes by node group / kubelet / runtime / Ready / cordoned; pods by
        phase; the Pending pods with the scheduler's message."""
        with self._lock:
            self.advance()
            nodes = sorted(self._store["Node"].values(), key=lambda n: n["metadata"]["name"])
            by_group: dict[str, JSON] = {}
            for node in nodes:
                group = (node["metadata"].get("labels") or {}).get(NODEGROUP_LABEL, "")
                info = node["status"]["nodeInfo"]
                entry = by_group.setdefault(
                    group, {"nodes": 0, "ready": 0, "unschedulable": 0, "kubeletVersions": {}, "runtimes": {}}
                )
                entry["nodes"] += 1
                entry["ready"] += is_node_ready(node)
                entry["unschedulable"] += bool(node["spec"].get("unschedulable"))
                kubelet, runtime = info["kubeletVersion"], info["containerRuntimeVersion"]
                entry["kubeletVersions"][kubelet] = entry["kubeletVersions"].get(kubelet, 0) + 1
                entry["runtimes"][runtime] = entry["runtimes"].get(runtime, 0) + 1
            pods = sorted(
                self._store["Pod"].values(), key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])
            )
            phases = Counter(p["status"].get("phase", "Unknown") for p in pods)
            pending = []
            for pod in pods:
                if pod["status"].get("phase") != "Pending":
                    continue
                scheduled = next(
                    (c for c in pod["status"].get("conditions") or [] if c["type"] == "PodScheduled"), {}
                )
                pending.append(
                    {
                        "namespace": pod["metadata"]["namespace"],
                        "name": pod["metadata"]["name"],
                        "node": pod["spec"].get("nodeName"),
                        "reason": scheduled.get("reason") or "ContainerCreating",
                        "message": scheduled.get("message", ""),
                    }
                )
            return {
                "cluster": self.name,
                "at": self.clock.now(),
                "version": self.version_info()["gitVersion"],
                "nodes": {
                    "total": len(nodes),
                    "ready": sum(is_node_ready(n) for n in nodes),
                    "unschedulable": sum(bool(n["spec"].get("unschedulable")) for n in nodes),
                    "byNodegroup": by_group,
                    "byKubeletVersion": dict(
                        Counter(n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes)
                    ),
                    "byContainerRuntime": dict(
                        Counter(n["status"]["nodeInfo"]["containerRuntimeVersion"] for n in nodes)
                    ),
                },
                "pods": {
                    "total": len(pods),
                    "ready": sum(is_pod_ready(p) for p in pods),
                    "byPhase": dict(sorted(phases.items())),
                    "pending": pending,
                },
                "invariants": self.invariants(),
            }

    # -- internals: storage -------------------------------------------------------------------
    @staticmethod
    def _key(info: KindInfo, namespace: str | None, name: str) -> tuple[str, str]:
        return ((namespace or "default") if info.namespaced else "", name)

    def _touch(self, obj: JSON) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)

    def _uid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _suffix(self, length: int = 5) -> str:
        return "".join(self._rng.choice(_NAME_ALPHABET) for _ in range(length))

    def _timestamp(self, at: float | None = None) -> str:
        return self.clock.to_datetime(self._t if at is None else at).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _conflict(self, info: KindInfo, name: str) -> KubeError:
        details: JSON = {"name": name, "kind": info.plural}
        if info.group:
            details["group"] = info.group
        return KubeError(
            ApiStatus(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {info.qualified} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                details,
            )
        )

    def _ensure_namespace(self, namespace: str) -> None:
        if ("", namespace) in self._store["Namespace"]:
            return
        obj = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "uid": self._uid(),
                "creationTimestamp": self._timestamp(),
                "labels": {"kubernetes.io/metadata.name": namespace},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        self._store["Namespace"][("", namespace)] = obj
        self._touch(obj)

    def _upsert(self, manifest: JSON, *, mode: str) -> JSON:
        if not isinstance(manifest, dict):
            raise bad_request("the manifest must be an object")
        kind = manifest.get("kind")
        if kind not in KINDS:
            raise bad_request(f"kind {kind!r} is not emulated")
        if kind == "Node":
            raise bad_request("nodes join through register_nodes (their node group), not apply")
        info = KINDS[kind]
        api_version = manifest.get("apiVersion") or info.api_version
        if api_version != info.api_version:
            raise bad_request(f"{kind} is served as {info.api_version}, not {api_version}")
        meta = manifest.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise invalid(info, "", "metadata.name: Required value: name is required")
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) or len(name) > 253:
            raise invalid(
                info, name, f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain"
            )
        namespace = (meta.get("namespace") or "default") if info.namespaced else ""
        if info.namespaced:
            self._ensure_namespace(namespace)
        key = (namespace, name)
        existing = self._store[kind].get(key)
        if mode == "create" and existing is not None:
            details: JSON = {"name": name, "kind": info.plural}
            if info.group:
                details["group"] = info.group
            raise KubeError(
                ApiStatus(409, "AlreadyExists", f'{info.qualified} "{name}" already exists', details)
            )
        if mode == "replace":
            if existing is None:
                raise not_found(info, name)
            wanted = meta.get("resourceVersion")
            if wanted and wanted != existing["metadata"]["resourceVersion"]:
                raise self._conflict(info, name)
        if kind == "Pod" and existing is not None:
            existing = copy.deepcopy(existing)
            for field in ("labels", "annotations"):
                existing["metadata"][field] = dict(meta.get(field) or {})
            self._store["Pod"][key] = existing
            self._touch(existing)
            return existing
        spec = copy.deepcopy(manifest.get("spec") or {})
        obj: JSON = {
            "apiVersion": info.api_version,
            "kind": kind,
            "metadata": {
                "name": name,
                "uid": existing["metadata"]["uid"] if existing else self._uid(),
                "creationTimestamp": existing["metadata"]["creationTimestamp"]
                if existing
                else self._timestamp(),
                "generation": 1,
            },
        }
        if info.namespaced:
            obj["metadata"]["namespace"] = namespace
        for field in ("labels", "annotations"):
            if meta.get(field):
                obj["metadata"][field] = {str(k): str(v) for k, v in meta[field].items()}
        if meta.get("ownerReferences"):
            obj["metadata"]["ownerReferences"] = copy.deepcopy(meta["ownerReferences"])
        if kind in TOP_LEVEL_FIELDS:
            for field in TOP_LEVEL_FIELDS[kind]:
                if field in manifest:
                    obj[field] = copy.deepcopy(manifest[field])
            if kind == "Secret":
                _store_secret_values(obj, manifest)
        elif kind == "Namespace":
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        else:
            obj["spec"] = self._default_spec(info, obj, spec)
            obj["status"] = (
                {"currentReplicas": 0, "desiredReplicas": 0} if kind == "HorizontalPodAutoscaler" else {}
            )
        if existing is not None:
            obj["metadata"]["generation"] = existing["metadata"].get("generation", 1) + (
                obj.get("spec") != existing.get("spec")
            )
            if "status" in existing:
                obj["status"] = existing["status"]
        if kind == "Pod":
            self._init_pod(obj)
        self._store[kind][key] = obj
        self._touch(obj)
        return obj

    def _default_spec(self, info: KindInfo, obj: JSON, spec: JSON) -> JSON:
        """Defaults the API server (or this emulator, for convenience) fills in."""
        name = obj["metadata"]["name"]
        if info.kind == "Pod":
            return _default_pod_spec(spec)
        if info.kind == "PodDisruptionBudget":
            return spec  # policy/v1: a null selector selects no pod, an empty one every pod
        if info.kind == "HorizontalPodAutoscaler":
            spec.setdefault("minReplicas", 1)
            return spec
        if info.kind == "CronJob":
            spec.setdefault("schedule", "0 * * * *")
            spec.setdefault("suspend", False)
            job_template = spec.setdefault("jobTemplate", {})
            template = job_template.setdefault("spec", {}).setdefault("template", {})
            template["spec"] = _default_pod_spec(template.get("spec") or {}, restart_policy="OnFailure")
            return spec
        template = spec.setdefault("template", {})
        template_meta = template.setdefault("metadata", {})
        labels = template_meta.setdefault("labels", {})
        if not labels:
            labels["app"] = name
        restart = "OnFailure" if info.kind == "Job" else "Always"
        template["spec"] = _default_pod_spec(template.get("spec") or {}, restart_policy=restart)
        if info.kind == "ReplicationController":
            spec.setdefault("selector", dict(labels))
            spec.setdefault("replicas", 1)
        elif info.kind == "Job":
            spec.setdefault("parallelism", 1)
            if "completions" not in spec:
                spec["completions"] = 1 if spec["parallelism"] == 1 else None
            spec.setdefault("backoffLimit", 6)
        else:
            spec.setdefault("selector", {"matchLabels": dict(labels)})
            if info.kind != "DaemonSet":
                spec.setdefault("replicas", 1)
            if info.kind == "StatefulSet":
                spec.setdefault("podManagementPolicy", "OrderedReady")
                spec.setdefault("serviceName", name)
        if info.kind != "Job":
            selector = spec.get("selector") or {}
            matches = (
                all(labels.get(k) == v for k, v in selector.items())
                if info.kind == "ReplicationController"
                else match_label_selector(selector, labels)
            )
            if not matches:
                raise invalid(
                    info,
                    name,
                    "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`",
                )
        return spec

    # -- internals: nodes ---------------------------------------------------------------------
    def _new_node(
        self,
        nodegroup: str,
        instance_id: str,
        *,
        kubelet_version: str,
        container_runtime: str,
        instance_type: str,
        labels: dict[str, str],
        taints: list[dict[str, str]],
        pods_per_node: int,
    ) -> JSON:
        cpu, memory_gib = _INSTANCE_SHAPES.get(instance_type, (2, 8))
        arch = _architecture(instance_type)
        index = next(self._ip)
        ip = f"10.0.{index // 250}.{index % 250 + 4}"
        node_labels = {
            "beta.kubernetes.io/arch": arch,
            "beta.kubernetes.io/instance-type": instance_type,
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "kubernetes.io/hostname": instance_id,
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": instance_type,
            NODEGROUP_LABEL: nodegroup,
            **labels,
        }
        zone = node_labels.get("topology.kubernetes.io/zone", "")
        now = self._timestamp()
        memory_kib = memory_gib * 1024 * 1024
        node: JSON = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": instance_id,
                "uid": self._uid(),
                "creationTimestamp": now,
                "labels": node_labels,
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            },
            "spec": {
                "providerID": f"aws:///{zone}/{instance_id}",
                "taints": [dict(t) for t in taints],
            },
            "status": {
                "capacity": {
                    "cpu": str(cpu),
                    "memory": f"{memory_kib}Ki",
                    "pods": str(pods_per_node),
                    "ephemeral-storage": "20959212Ki",
                },
                "allocatable": {
                    "cpu": f"{cpu * 1000 - 70 - 10 * cpu}m",
                    "memory": f"{memory_kib - 574 * 1024 - 100 * 1024}Ki",
                    "pods": str(pods_per_node),
                    "ephemeral-storage": "18242267924",
                },
                "conditions": [
                    _node_condition("MemoryPressure", "False", "KubeletHasSufficientMemory", now),
                    _node_condition("DiskPressure", "False", "KubeletHasNoDiskPressure", now),
                    _node_condition("PIDPressure", "False", "KubeletHasSufficientPID", now),
                    _node_condition(
                        "Ready",
                        "False",
                        "KubeletNotReady",
                        now,
                        "container runtime network not ready: NetworkReady=false "
                        "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
                    ),
                ],
                "addresses": [
                    {"type": "InternalIP", "address": ip},
                    {"type": "Hostname", "address": instance_id},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": arch,
                    "bootID": self._uid(),
                    "containerRuntimeVersion": container_runtime,
                    "kernelVersion": "5.10.215-203.850.amzn2.x86_64"
                    if arch == "amd64"
                    else "5.10.215-203.850.amzn2.aarch64",
                    "kubeProxyVersion": kubelet_version,
                    "kubeletVersion": kubelet_version,
                    "machineID": self._uid().replace("-", ""),
                    "operatingSystem": "linux",
                    "osImage": "Amazon Linux 2",
                    "systemUUID": self._uid(),
                },
            },
        }
        self._sync_system_taints(node)
        self._validate_node(node)
        return node

    def _validate_node(self, node: JSON) -> None:
        info = KINDS["Node"]
        taints = node["spec"].get("taints") or []
        if not isinstance(taints, list):
            raise invalid(info, node["metadata"]["name"], "spec.taints: Invalid value: must be a list")
        seen = set()
        for index, taint in enumerate(taints):
            if not isinstance(taint, dict) or not taint.get("key"):
                raise invalid(info, node["metadata"]["name"], f"spec.taints[{index}].key: Required value")
            if taint.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
                raise invalid(
                    info,
                    node["metadata"]["name"],
                    f'spec.taints[{index}].effect: Unsupported value: "{taint.get("effect")}": supported '
                    'values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
                )
            pair = (taint["key"], taint["effect"])
            if pair in seen:
                raise invalid(
                    info,
                    node["metadata"]["name"],
                    f"spec.taints[{index}]: Duplicate value: taints must be unique by key and effect pair",
                )
            seen.add(pair)
        if not node["spec"].get("taints"):
            node["spec"].pop("taints", None)
        if not node["spec"].get("unschedulable"):
            node["spec"].pop("unschedulable", None)

    def _sync_system_taints(self, node: JSON) -> None:
        """The node lifecycle controller's taints: not-ready while not Ready, unschedulable while cordoned."""
        taints = [t for t in node["spec"].get("taints") or [] if t.get("key") not in SYSTEM_TAINT_KEYS]
        existing = {t.get("key"): t for t in node["spec"].get("taints") or []}
        if node["spec"].get("unschedulable"):
            taints.append(
                existing.get(TAINT_UNSCHEDULABLE)
                or {"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule", "timeAdded": self._timestamp()}
            )
        if not is_node_ready(node):
            taints.append(existing.get(TAINT_NOT_READY) or {"key": TAINT_NOT_READY, "effect": "NoSchedule"})
        for condition in node["status"].get("conditions") or []:
            key = PRESSURE_TAINTS.get(condition.get("type"))
            if key is not None and condition.get("status") == "True":
                taints.append(existing.get(key) or {"key": key, "effect": "NoSchedule"})
        if taints:
            node["spec"]["taints"] = taints
        else:
            node["spec"].pop("taints", None)

    def _node_ready(self, node: JSON) -> None:
        now = self._timestamp()
        conditions = node["status"]["conditions"]
        for index, condition in enumerate(conditions):
            if condition["type"] == "Ready":
                conditions[index] = _node_condition(
                    "Ready", "True", "KubeletReady", now, "kubelet is posting ready status"
                )
        self._sync_system_taints(node)
        self._touch(node)
        # Pods bound to it while it was not Ready finish starting now.
        name = node["metadata"]["name"]
        for pod in self._store["Pod"].values():
            state = self._pods.get(pod["metadata"]["uid"])
            if (
                pod["spec"].get("nodeName") == name
                and state is not None
                and state.bound_at is not None
                and state.bound_at + self.pod_ready_seconds <= self._t
                and pod["status"].get("phase") == "Pending"
            ):
                self._pod_ready(pod)

    # -- internals: events ----------------------------------------------------------------------
    def _apply_event(self, what: str, ref: str) -> bool:
        if what == "rollout":
            return self._rollout_step(ref)
        if what == "node-ready":
            node = next((n for n in self._store["Node"].values() if n["metadata"]["uid"] == ref), None)
            if node is None or is_node_ready(node):
                return False
            self._node_ready(node)
            return True
        pod = self._pod_by_uid(ref)
        if pod is None:
            return False
        if what == "pod-ready":
            node = self._store["Node"].get(("", pod["spec"].get("nodeName") or ""))
            if node is None or not is_node_ready(node) or pod["status"].get("phase") != "Pending":
                return False  # it finishes starting when its node becomes Ready
            self._pod_ready(pod)
            return True
        if what == "pod-succeeded":
            if pod["status"].get("phase") != "Running":
                return False
            self._pod_succeeded(pod)
            return True
        return False

    def _pod_by_uid(self, uid: str) -> JSON | None:
        key = self._pod_keys.get(uid)
        return None if key is None else self._store["Pod"].get(key)

    # -- internals: pods ------------------------------------------------------------------------
    def _init_pod(self, pod: JSON) -> None:
        state = _PodState(seq=next(self._seq))
        annotations = pod["metadata"].get("annotations") or {}
        if RUN_SECONDS_ANNOTATION in annotations:
            state.run_seconds = float(annotations[RUN_SECONDS_ANNOTATION])
        uid = pod["metadata"]["uid"]
        self._pods[uid] = state
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        self._pod_keys[uid] = key
        owner = controller_of(pod)
        if owner is not None and owner.get("uid"):
            self._owned.setdefault(owner["uid"], set()).add(key)
        pod["status"] = {"phase": "Pending", "qosClass": _qos_class(pod["spec"]), "conditions": []}
        if pod["spec"].get("nodeName"):  # bound by its author (static assignment)
            self._bind(pod, pod["spec"]["nodeName"])

    def _new_pod(self, owner: JSON, template: JSON, name: str, extra_labels: dict[str, str]) -> JSON:
        info = KINDS[owner["kind"]]
        template_meta = template.get("metadata") or {}
        meta: JSON = {
            "name": name,
            "namespace": owner["metadata"]["namespace"],
            "uid": self._uid(),
            "creationTimestamp": self._timestamp(),
            "labels": {**(template_meta.get("labels") or {}), **extra_labels},
            "ownerReferences": [
                {
                    "apiVersion": info.api_version,
                    "kind": owner["kind"],
                    "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        if owner["kind"] != "StatefulSet":
            meta["generateName"] = f"{owner['metadata']['name']}-"
        if template_meta.get("annotations"):
            meta["annotations"] = dict(template_meta["annotations"])
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": _default_pod_spec(copy.deepcopy(template.get("spec") or {})),
        }
        if owner["kind"] == "DaemonSet":
            pod["spec"]["tolerations"] = _with_daemonset_tolerations(pod["spec"].get("tolerations") or [])
        self._init_pod(pod)
        self._store["Pod"][(meta["namespace"], name)] = pod
        self._touch(pod)
        return pod

    def _bind(self, pod: JSON, node_name: str) -> None:
        pod["spec"]["nodeName"] = node_name
        now = self._timestamp()
        node = self._store["Node"].get(("", node_name))
        ip = (node or {}).get("status", {}).get("addresses", [{}])[0].get("address")
        status = pod["status"]
        if ip:
            status["hostIP"] = ip
            status["hostIPs"] = [{"ip": ip}]
        status["startTime"] = now
        status["conditions"] = [
            _pod_condition("Initialized", "True", now),
            _pod_condition("Ready", "False", now, "ContainersNotReady", "containers with unready status"),
            _pod_condition(
                "ContainersReady", "False", now, "ContainersNotReady", "containers with unready status"
            ),
            _pod_condition("PodScheduled", "True", now),
        ]
        status["containerStatuses"] = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"waiting": {"reason": "ContainerCreating"}},
            }
            for c in pod["spec"]["containers"]
        ]
        state = self._pods[pod["metadata"]["uid"]]
        state.bound_at = self._t
        self._schedule(self._t + self.pod_ready_seconds, "pod-ready", pod["metadata"]["uid"])
        self._touch(pod)

    def _pod_ready(self, pod: JSON) -> None:
        now = self._timestamp()
        index = next(self._ip)
        status = pod["status"]
        status["phase"] = "Running"
        if not pod["spec"].get("hostNetwork"):
            status["podIP"] = f"10.0.{128 + index // 250}.{index % 250 + 4}"
        else:
            status["podIP"] = status.get("hostIP", "")
        status["podIPs"] = [{"ip": status["podIP"]}]
        status["conditions"] = [
            _pod_condition("Initialized", "True", status["startTime"]),
            _pod_condition("Ready", "True", now),
            _pod_condition("ContainersReady", "True", now),
            _pod_condition("PodScheduled", "True", status["startTime"]),
        ]
        status["containerStatuses"] = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": f"{c.get('image', '')}@sha256:{hashlib.sha256(c.get('image', '').encode()).hexdigest()}",
                "containerID": f"containerd://{self._uid().replace('-', '')}",
                "ready": True,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": now}},
            }
            for c in pod["spec"]["containers"]
        ]
        self._touch(pod)
        state = self._pods[pod["metadata"]["uid"]]
        if state.run_seconds is not None:
            self._schedule(self._t + state.run_seconds, "pod-succeeded", pod["metadata"]["uid"])

    def _pod_succeeded(self, pod: JSON) -> None:
        now = self._timestamp()
        status = pod["status"]
        status["phase"] = "Succeeded"
        status["conditions"] = [
            _pod_condition("Initialized", "True", status["startTime"], "PodCompleted"),
            _pod_condition("Ready", "False", now, "PodCompleted"),
            _pod_condition("ContainersReady", "False", now, "PodCompleted"),
            _pod_condition("PodScheduled", "True", status["startTime"]),
        ]
        for container in status.get("containerStatuses") or []:
            container["ready"] = False
            container["started"] = False
            container["state"] = {
                "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}
            }
        owner = controller_of(pod)
        if owner is not None and owner.get("kind") == "Job":
            self._job_succeeded[owner["uid"]] += 1
        self._touch(pod)

    # -- internals: deletion ------------------------------------------------------------------
    def _is_expected(self, kind: str, namespace: str, name: str) -> bool:
        return (kind, name, namespace) in self._expected or (kind, name, None) in self._expected

    def _record_deletion(self, obj: JSON, cause: str) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        self._deletions.append(
            Deletion(
                obj["kind"],
                namespace,
                meta["name"],
                self._t,
                cause,
                self._is_expected(obj["kind"], namespace, meta["name"]),
            )
        )

    def _remove_object(self, obj: JSON, *, cause: str, announced: bool = False) -> JSON:
        """Remove ``obj`` and what depends on it (owned objects; a node's pods; a namespace's content).
        ``announced``: an expected API deletion; bare pods going with it are not lost."""
        info = KINDS[obj["kind"]]
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        current = self._store[obj["kind"]].pop(key, None)
        if current is None:
            return copy.deepcopy(obj)
        gone = copy.deepcopy(current)
        gone["metadata"]["deletionTimestamp"] = self._timestamp()
        self._rv += 1
        if info.kind == "Pod":
            gone["metadata"]["deletionGracePeriodSeconds"] = 0
            self._pods.pop(current["metadata"]["uid"], None)
            self._pod_keys.pop(current["metadata"]["uid"], None)
            owner = controller_of(current)
            if owner is not None:
                self._owned.get(owner.get("uid", ""), set()).discard(key)
            if (
                controller_of(current) is None
                and current["status"].get("phase") not in _TERMINAL
                and not announced
            ):
                self._bare_pods_lost += 1
        elif info.kind == "Node":
            # A node going away takes its pods, announced or not: bare pods on it are lost.
            for pod in [p for p in self._store["Pod"].values() if p["spec"].get("nodeName") == key[1]]:
                self._remove_object(pod, cause="node-removal")
        elif info.kind == "Namespace":
            for kind, objects in self._store.items():
                if KINDS[kind].namespaced:
                    for dependent in [
                        o for o in objects.values() if o["metadata"].get("namespace") == key[1]
                    ]:
                        self._remove_object(dependent, cause="cascade", announced=announced)
        uid = current["metadata"]["uid"]
        for kind, objects in self._store.items():
            if not KINDS[kind].namespaced:
                continue
            for dependent in [
                o
                for o in objects.values()
                if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])
            ]:
                self._remove_object(dependent, cause="cascade", announced=announced)
        return gone

    # -- internals: disruption budgets --------------------------------------------------------
    def _pdbs_for(self, pod: JSON) -> list[JSON]:
        namespace = pod["metadata"]["namespace"]
        labels = pod["metadata"].get("labels") or {}
        return [
            pdb
            for pdb in sorted(
                self._store["PodDisruptionBudget"].values(), key=lambda p: p["metadata"]["name"]
            )
            if pdb["metadata"]["namespace"] == namespace
            and match_label_selector(pdb["spec"].get("selector"), labels)
        ]

    def _eviction_allowed(self, pod: JSON, pdb: JSON) -> bool:
        status = pdb.get("status") or {}
        if not is_pod_ready(pod):
            if pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
                return True
            if status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0) > 0:
                return True
        return status.get("disruptionsAllowed", 0) > 0

    def _controller_scale(self, ref: JSON, namespace: str) -> int | None:
        kind, name = ref.get("kind"), ref.get("name", "")
        if kind not in ("ReplicaSet", "ReplicationController", "StatefulSet"):
            return None
        owner = self._store[kind].get((namespace, name))
        if owner is None or owner["metadata"]["uid"] != ref.get("uid"):
            return None
        if kind == "ReplicaSet":
            deployment_ref = controller_of(owner)
            if deployment_ref is not None and deployment_ref.get("kind") == "Deployment":
                deployment = self._store["Deployment"].get((namespace, deployment_ref["name"]))
                if deployment is not None:
                    return int(deployment["spec"].get("replicas", 1))
        return int(owner["spec"].get("replicas", 1))

    def _compute_pdb_status(self, pdb: JSON, active_pods: list[JSON]) -> None:
        """``active_pods``: the non-terminal pods of the budget's namespace."""
        namespace = pdb["metadata"]["namespace"]
        selector = pdb["spec"].get("selector")
        pods = [p for p in active_pods if match_label_selector(selector, p["metadata"].get("labels"))]
        healthy = sum(1 for p in pods if is_pod_ready(p))
        min_available, max_unavailable = pdb["spec"].get("minAvailable"), pdb["spec"].get("maxUnavailable")
        failed = False
        expected = desired = 0
        if isinstance(min_available, int) and max_unavailable is None:
            expected, desired = len(pods), min_available
        elif min_available is not None or max_unavailable is not None:
            scales: dict[str, int] = {}
            for pod in pods:
                ref = controller_of(pod)
                if ref is None:
                    continue  # unmanaged pods are ignored
                if ref.get("uid") in scales:
                    continue
                scale = self._controller_scale(ref, namespace)
                if scale is None:
                    failed = True  # "found no controllers for pod": the controller fails safe
                    break
                scales[ref["uid"]] = scale
            expected = sum(scales.values())
            if max_unavailable is not None:
                desired = max(0, expected - _scaled(max_unavailable, expected))
            else:
                desired = _scaled(min_available, expected)
        previous = pdb.get("status") or {}
        allowed = 0 if failed or expected <= 0 else max(0, healthy - desired)
        now = self._timestamp()
        generation = pdb["metadata"].get("generation", 1)
        if failed:
            reason, condition_status = "SyncFailed", "False"
        else:
            reason, condition_status = (
                ("SufficientPods", "True") if allowed > 0 else ("InsufficientPods", "False")
            )
        old_condition = next(iter(previous.get("conditions") or []), {})
        status = {
            "observedGeneration": generation,
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [
                {
                    "type": "DisruptionAllowed",
                    "status": condition_status,
                    "reason": reason,
                    "message": "found no controllers for a selected pod" if failed else "",
                    "observedGeneration": generation,
                    "lastTransitionTime": old_condition.get("lastTransitionTime", now)
                    if old_condition.get("status") == condition_status
                    else now,
                }
            ],
        }
        if status != previous:
            pdb["status"] = status
            self._touch(pdb)

    def _pdb_health(self) -> dict[tuple[str, str], tuple[int, int]]:
        return {
            key: (pdb["status"].get("currentHealthy", 0), pdb["status"].get("desiredHealthy", 0))
            for key, pdb in self._store["PodDisruptionBudget"].items()
            if pdb.get("status") and pdb["status"]["conditions"][0]["reason"] != "SyncFailed"
        }

    def _count_violations(self, before: dict[tuple[str, str], tuple[int, int]], change: str) -> None:
        for key, (healthy, desired) in self._pdb_health().items():
            if key not in before:
                continue
            healthy_before = before[key][0]
            if healthy < healthy_before and healthy < desired:
                self._pdb_violations += 1
                self._violations.append(
                    {
                        "pdb": f"{key[0]}/{key[1]}",
                        "change": change,
                        "at": self._t,
                        "currentHealthy": healthy,
                        "desiredHealthy": desired,
                    }
                )

    # -- internals: controllers ---------------------------------------------------------------
    def _owned_pods(self, owner: JSON) -> list[JSON]:
        keys = self._owned.get(owner["metadata"]["uid"], ())
        pods = [self._store["Pod"][k] for k in keys if k in self._store["Pod"]]
        return sorted(pods, key=lambda p: self._pods[p["metadata"]["uid"]].seq)

    def _wanted_pods(self, owner: JSON) -> int:
        spec = owner["spec"]
        if owner["kind"] == "Job":
            completions = spec.get("completions")
            succeeded = self._job_succeeded[owner["metadata"]["uid"]]
            parallelism = int(spec.get("parallelism", 1))
            if spec.get("suspend"):
                return 0
            if completions is None:
                return 0 if succeeded else parallelism
            return max(0, min(parallelism, int(completions) - succeeded))
        return int(spec.get("replicas", 1))

    def _reconcile(self) -> None:
        """Run the controllers and the scheduler until nothing changes, then the status writers
        (no controller reads another's status)."""
        for _ in range(10):
            rv = self._rv
            for deployment in list(self._store["Deployment"].values()):
                self._sync_deployment(deployment)
            for kind in ("ReplicaSet", "ReplicationController", "Job"):
                for owner in list(self._store[kind].values()):
                    self._sync_replicas(owner)
            for sts in list(self._store["StatefulSet"].values()):
                self._sync_statefulset(sts)
            for ds in list(self._store["DaemonSet"].values()):
                self._sync_daemonset(ds)
            self._schedule_pending()
            if self._rv == rv:
                break
        self._write_statuses()

    def _sync_deployment(self, deployment: JSON) -> None:
        namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        template = deployment["spec"]["template"]
        template_hash = self._template_hash(deployment)
        rs_name = f"{name}-{template_hash}"
        owned = [
            rs
            for rs in self._store["ReplicaSet"].values()
            if rs["metadata"]["namespace"] == namespace
            and (controller_of(rs) or {}).get("uid") == deployment["metadata"]["uid"]
        ]
        replicas = int(deployment["spec"].get("replicas", 1))
        for rs in owned:  # an older template: scaled to zero at once (Recreate, in effect)
            if rs["metadata"]["name"] != rs_name and rs["spec"].get("replicas") != 0:
                rs["spec"]["replicas"] = 0
                self._touch(rs)
        current = next((rs for rs in owned if rs["metadata"]["name"] == rs_name), None)
        if current is None:
            labels = {
                **(template.get("metadata") or {}).get("labels", {}),
                "pod-template-hash": template_hash,
            }
            rs_template = copy.deepcopy(template)
            rs_template.setdefault("metadata", {})["labels"] = labels
            selector = copy.deepcopy(deployment["spec"]["selector"])
            selector.setdefault("matchLabels", {})["pod-template-hash"] = template_hash
            rs = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": rs_name,
                    "namespace": namespace,
                    "uid": self._uid(),
                    "creationTimestamp": self._timestamp(),
                    "generation": 1,
                    "labels": labels,
                    "annotations": {"deployment.kubernetes.io/revision": str(len(owned) + 1)},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": name,
                            "uid": deployment["metadata"]["uid"],
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
                "status": {"replicas": 0},
            }
            self._store["ReplicaSet"][(namespace, rs_name)] = rs
            self._touch(rs)
        elif current["spec"].get("replicas") != replicas:
            current["spec"]["replicas"] = replicas
            self._touch(current)

    def _sync_replicas(self, owner: JSON) -> None:
        """ReplicaSet, ReplicationController and Job: keep the wanted number of active pods."""
        active = [p for p in self._owned_pods(owner) if p["status"].get("phase") not in _TERMINAL]
        want = self._wanted_pods(owner)
        name = owner["metadata"]["name"]
        for _ in range(want - len(active)):
            pod_name = f"{name}-{self._suffix()}"
            while (owner["metadata"]["namespace"], pod_name) in self._store["Pod"]:
                pod_name = f"{name}-{self._suffix()}"
            extra = {}
            if owner["kind"] == "Job":
                extra = {"job-name": name, "batch.kubernetes.io/job-name": name}
            self._new_pod(owner, owner["spec"]["template"], pod_name, extra)
        if len(active) > want:
            # Scale down: unscheduled first, then not ready, then the newest.
            ranked = sorted(
                active,
                key=lambda p: (
                    bool(p["spec"].get("nodeName")),
                    is_pod_ready(p),
                    -self._pods[p["metadata"]["uid"]].seq,
                ),
            )
            for pod in ranked[: len(active) - want]:
                self._remove_object(pod, cause="scale-down")

    def _sync_statefulset(self, sts: JSON) -> None:
        name = sts["metadata"]["name"]
        namespace = sts["metadata"]["namespace"]
        replicas = int(sts["spec"].get("replicas", 1))
        ordered = sts["spec"].get("podManagementPolicy", "OrderedReady") != "Parallel"
        pods = {p["metadata"]["name"]: p for p in self._owned_pods(sts)}
        revision = f"{name}-{self._template_hash(sts)}"
        for ordinal in range(replicas):
            pod_name = f"{name}-{ordinal}"
            if pod_name in pods:
                if ordered and not is_pod_ready(pods[pod_name]):
                    break
                continue
            if (namespace, pod_name) in self._store["Pod"]:
                break  # a foreign pod holds the name
            self._new_pod(
                sts,
                sts["spec"]["template"],
                pod_name,
                {
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "controller-revision-hash": revision,
                    "apps.kubernetes.io/pod-index": str(ordinal),
                },
            )
            if ordered:
                break
        for pod_name, pod in sorted(pods.items(), reverse=True):
            ordinal = pod_name.rsplit("-", 1)[-1]
            if ordinal.isdigit() and int(ordinal) >= replicas:
                self._remove_object(pod, cause="scale-down")

    def _daemon_nodes(self, ds: JSON) -> list[JSON]:
        template_spec = ds["spec"]["template"].get("spec") or {}
        tolerations = _with_daemonset_tolerations(template_spec.get("tolerations") or [])
        return [
            node
            for node in sorted(self._store["Node"].values(), key=lambda n: n["metadata"]["name"])
            if node_matches(template_spec, node)
            and untolerated_taint(tolerations, node["spec"].get("taints") or []) is None
        ]

    def _sync_daemonset(self, ds: JSON) -> None:
        pods = [p for p in self._owned_pods(ds) if p["status"].get("phase") not in _TERMINAL]
        covered = {_daemon_target(p) for p in pods}
        for node in self._daemon_nodes(ds):
            node_name = node["metadata"]["name"]
            if node_name in covered:
                continue
            template = copy.deepcopy(ds["spec"]["template"])
            spec = template.setdefault("spec", {})
            spec.setdefault("affinity", {})["nodeAffinity"] = {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
                    ]
                }
            }
            pod_name = f"{ds['metadata']['name']}-{self._suffix()}"
            self._new_pod(
                ds,
                template,
                pod_name,
                {
                    "controller-revision-hash": self._template_hash(ds),
                    "pod-template-generation": "1",
                },
            )

    def _schedule_pending(self) -> None:
        pending = [
            p
            for p in self._store["Pod"].values()
            if not p["spec"].get("nodeName") and p["status"].get("phase") == "Pending"
        ]
        if not pending:
            return
        pending.sort(key=lambda p: self._pods[p["metadata"]["uid"]].seq)
        nodes = sorted(self._store["Node"].values(), key=lambda n: n["metadata"]["name"])
        load = Counter(
            p["spec"]["nodeName"]
            for p in self._store["Pod"].values()
            if p["spec"].get("nodeName") and p["status"].get("phase") not in _TERMINAL
        )
        for pod in pending:
            fits: list[JSON] = []
            reasons: Counter[str] = Counter()
            for node in nodes:
                reason = self._unfit_reason(pod, node, load[node["metadata"]["name"]])
                if reason is None:
                    fits.append(node)
                else:
                    reasons[reason] += 1
            if fits:
                best = min(fits, key=lambda n: (load[n["metadata"]["name"]], n["metadata"]["name"]))
                self._bind(pod, best["metadata"]["name"])
                load[best["metadata"]["name"]] += 1
                continue
            if nodes:
                detail = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
                message = f"0/{len(nodes)} nodes are available: {detail}. preemption: 0/{len(nodes)} nodes are available: {len(nodes)} Preemption is not helpful for scheduling."
            else:
                message = "no nodes available to schedule pods"
            condition = _pod_condition("PodScheduled", "False", self._timestamp(), "Unschedulable", message)
            old = next((c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"), None)
            if old is None or old.get("message") != message:
                if old is not None and old.get("status") == "False":
                    condition["lastTransitionTime"] = old["lastTransitionTime"]
                pod["status"]["conditions"] = [condition]
                self._touch(pod)

    @staticmethod
    def _unfit_reason(pod: JSON, node: JSON, load: int) -> str | None:
        spec = pod["spec"]
        tolerations = spec.get("tolerations") or []
        if node["spec"].get("unschedulable") and not any(
            tolerates(t, {"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"}) for t in tolerations
        ):
            return "node(s) were unschedulable"
        if not node_matches(spec, node):
            return "node(s) didn't match Pod's node affinity/selector"
        taint = untolerated_taint(tolerations, node["spec"].get("taints") or [])
        if taint is not None:
            return f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"
        if load >= int(node["status"]["allocatable"].get("pods", "110")):
            return "Too many pods"
        return None

    def _write_statuses(self) -> None:
        for kind in ("ReplicaSet", "ReplicationController"):
            for owner in self._store[kind].values():
                pods = [p for p in self._owned_pods(owner) if p["status"].get("phase") not in _TERMINAL]
                ready = sum(1 for p in pods if is_pod_ready(p))
                status = {
                    "replicas": len(pods),
                    "fullyLabeledReplicas": len(pods),
                    "readyReplicas": ready,
                    "availableReplicas": ready,
                    "observedGeneration": owner["metadata"].get("generation", 1),
                }
                self._set_status(owner, status)
        for deployment in self._store["Deployment"].values():
            sets = [
                rs
                for rs in self._store["ReplicaSet"].values()
                if (controller_of(rs) or {}).get("uid") == deployment["metadata"]["uid"]
            ]
            total = sum(rs["status"].get("replicas", 0) for rs in sets)
            ready = sum(rs["status"].get("readyReplicas", 0) for rs in sets)
            wanted = int(deployment["spec"].get("replicas", 1))
            current_name = f"{deployment['metadata']['name']}-{self._template_hash(deployment)}"
            updated = sum(
                rs["status"].get("replicas", 0) for rs in sets if rs["metadata"]["name"] == current_name
            )
            status = {
                "observedGeneration": deployment["metadata"].get("generation", 1),
                "replicas": total,
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "unavailableReplicas": max(0, wanted - ready),
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True" if ready >= wanted else "False",
                        "reason": "MinimumReplicasAvailable"
                        if ready >= wanted
                        else "MinimumReplicasUnavailable",
                        "message": "Deployment has minimum availability."
                        if ready >= wanted
                        else "Deployment does not have minimum availability.",
                    }
                ],
            }
            if not status["unavailableReplicas"]:
                del status["unavailableReplicas"]
            self._set_status(deployment, status)
        for sts in self._store["StatefulSet"].values():
            pods = self._owned_pods(sts)
            ready = sum(1 for p in pods if is_pod_ready(p))
            self._set_status(
                sts,
                {
                    "observedGeneration": sts["metadata"].get("generation", 1),
                    "replicas": len(pods),
                    "readyReplicas": ready,
                    "currentReplicas": len(pods),
                    "updatedReplicas": len(pods),
                    "availableReplicas": ready,
                    "collisionCount": 0,
                },
            )
        for ds in self._store["DaemonSet"].values():
            pods = [p for p in self._owned_pods(ds) if p["status"].get("phase") not in _TERMINAL]
            scheduled = [p for p in pods if p["spec"].get("nodeName")]
            ready = sum(1 for p in pods if is_pod_ready(p))
            desired = len(self._daemon_nodes(ds))
            self._set_status(
                ds,
                {
                    "observedGeneration": ds["metadata"].get("generation", 1),
                    "currentNumberScheduled": len(scheduled),
                    "desiredNumberScheduled": desired,
                    "numberMisscheduled": 0,
                    "numberReady": ready,
                    "numberAvailable": ready,
                    "updatedNumberScheduled": len(scheduled),
                    **({"numberUnavailable": desired - ready} if desired > ready else {}),
                },
            )
        for job in self._store["Job"].values():
            pods = self._owned_pods(job)
            active = sum(1 for p in pods if p["status"].get("phase") not in _TERMINAL)
            succeeded = self._job_succeeded[job["metadata"]["uid"]]
            status: JSON = {
                "active": active,
                "succeeded": succeeded,
                "ready": sum(is_pod_ready(p) for p in pods),
            }
            status["startTime"] = (job.get("status") or {}).get("startTime") or self._timestamp()
            completions = job["spec"].get("completions")
            if completions is not None and succeeded >= int(completions):
                done = (job.get("status") or {}).get("completionTime") or self._timestamp()
                status["completionTime"] = done
                status["conditions"] = [
                    {"type": "Complete", "status": "True", "lastProbeTime": done, "lastTransitionTime": done}
                ]
            self._set_status(job, {k: v for k, v in status.items() if v or k == "active"})
        if self._store["PodDisruptionBudget"]:
            by_namespace: dict[str, list[JSON]] = {}
            for pod in self._store["Pod"].values():
                if pod["status"].get("phase") not in _TERMINAL:
                    by_namespace.setdefault(pod["metadata"]["namespace"], []).append(pod)
            for pdb in self._store["PodDisruptionBudget"].values():
                self._compute_pdb_status(pdb, by_namespace.get(pdb["metadata"]["namespace"], []))

    def _template_hash(self, owner: JSON) -> str:
        """The pod template's hash; the template only changes with the owner's generation."""
        key = (owner["metadata"]["uid"], owner["metadata"].get("generation", 1))
        if key not in self._hashes:
            self._hashes[key] = _template_hash(owner["spec"]["template"])
        return self._hashes[key]

    def _set_status(self, obj: JSON, status: JSON) -> None:
        if obj.get("status") != status:
            obj["status"] = status
            self._touch(obj)


# -- helpers --------------------------------------------------------------------------------------


def _default_pod_spec(spec: JSON, restart_policy: str = "Always") -> JSON:
    spec = copy.deepcopy(spec)
    containers = spec.get("containers") or [
        {"name": "app", "image": "public.ecr.aws/eks-distro/kubernetes/pause:3.9"}
    ]
    for index, container in enumerate(containers):
        container.setdefault("name", f"container-{index}")
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
    spec["containers"] = containers
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("priority", 0)
    spec.setdefault("enableServiceLinks", True)
    spec["tolerations"] = _with_default_tolerations(spec.get("tolerations") or [])
    return spec


def _with_default_tolerations(tolerations: list[JSON]) -> list[JSON]:
    """The DefaultTolerationSeconds admission plugin: tolerate not-ready/unreachable for 300 s."""
    result = list(tolerations)
    for key in (TAINT_NOT_READY, TAINT_UNREACHABLE):
        if not any(t.get("key") == key and t.get("effect") in (None, "", "NoExecute") for t in result):
            result.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    return result


def _with_daemonset_tolerations(tolerations: list[JSON]) -> list[JSON]:
    """What the DaemonSet controller adds to its pods."""
    result = [
        t
        for t in tolerations
        if not (
            t.get("key") in (TAINT_NOT_READY, TAINT_UNREACHABLE) and t.get("tolerationSeconds") is not None
        )
    ]
    wanted = [
        (TAINT_NOT_READY, "NoExecute"),
        (TAINT_UNREACHABLE, "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        (TAINT_UNSCHEDULABLE, "NoSchedule"),
    ]
    for key, effect in wanted:
        if not any(
            t.get("key") == key and t.get("effect") == effect and t.get("operator") == "Exists"
            for t in result
        ):
            result.append({"key": key, "operator": "Exists", "effect": effect})
    return result


def _daemon_target(pod: JSON) -> str | None:
    """The node a DaemonSet pod is meant for (its required ``metadata.name`` affinity)."""
    if pod["spec"].get("nodeName"):
        return str(pod["spec"]["nodeName"])
    terms = (
        ((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
        .get("nodeSelectorTerms", [])
    )
    for term in terms:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("values"):
                return str(field["values"][0])
    return None


def _template_hash(template: JSON) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_NAME_ALPHABET[b % len(_NAME_ALPHABET)] for b in digest[:10])


def _qos_class(spec: JSON) -> str:
    resources = [c.get("resources") or {} for c in spec.get("containers") or []]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    if all(r.get("limits") and r.get("limits") == (r.get("requests") or r.get("limits")) for r in resources):
        return "Guaranteed"
    return "Burstable"


def _node_condition(kind: str, status: str, reason: str, at: str, message: str = "") -> JSON:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message or reason,
        "lastHeartbeatTime": at,
        "lastTransitionTime": at,
    }


def _pod_condition(kind: str, status: str, at: str, reason: str = "", message: str = "") -> JSON:
    condition: JSON = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": at}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition
