"""The emulated Kubernetes API servers: one HTTP server on loopback, one virtual API server per
cluster under ``/clusters/<cluster_id>``, serving :class:`~simulator.kube.world.KubeWorld` objects to
the official ``kubernetes`` client with the real API's paths, semantics and ``Status`` errors.

Served (``docs/kubernetes-emulator.md`` has the full list and the known gaps):

* ``GET /version``;
* core ``v1``: namespaces, nodes, pods, configmaps, replicationcontrollers, serviceaccounts, secrets;
  ``apps/v1``: deployments, replicasets, statefulsets, daemonsets; ``batch/v1``: jobs, cronjobs;
  ``policy/v1``: poddisruptionbudgets; ``autoscaling/v1``: horizontalpodautoscalers. Verbs: list (one namespace or all), get, create, replace, patch (merge,
  strategic merge, JSON patch), delete; ``POST .../pods/<name>/eviction``;
* list ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``),
  ``fieldSelector`` (``=``, ``==``, ``!=`` on the fields the real API server indexes), ``limit`` and
  ``continue`` (a consistent snapshot, ordered by namespace and name; an unknown snapshot answers
  410 Expired, as after etcd compaction).

Every request needs ``Authorization: Bearer <token>`` that ``token_check(cluster_id, token)``
accepts (returns ``True``); anything else is 401. With an ``authorizer`` (``simulator/kube/rbac.py``,
the orchestrator's ClusterRole), a request it does not allow is 403, before routing. The server logs
nothing: requests, rejected tokens and handler crashes are kept on :class:`KubeApiServer` for reports
and tests.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from simulator.kube.world import (
    JSON,
    KINDS,
    ApiStatus,
    KindInfo,
    KubeError,
    KubeWorld,
    bad_request,
)

if TYPE_CHECKING:
    from simulator.kube.rbac import ClusterAuthorizer

TokenCheck = Callable[[str, str], "bool | str"]

# (group/version, plural) -> kind
RESOURCES: dict[tuple[str, str], KindInfo] = {
    (info.api_version, info.plural): info for info in KINDS.values()
}

# Fields each kind can be selected by (what the real API server registers), besides metadata.*.
FIELD_SELECTORS: dict[str, dict[str, Callable[[JSON], str]]] = {
    "Pod": {
        "spec.nodeName": lambda o: o["spec"].get("nodeName") or "",
        "spec.restartPolicy": lambda o: o["spec"].get("restartPolicy") or "",
        "spec.schedulerName": lambda o: o["spec"].get("schedulerName") or "",
        "spec.serviceAccountName": lambda o: o["spec"].get("serviceAccountName") or "",
        "spec.hostNetwork": lambda o: "true" if o["spec"].get("hostNetwork") else "false",
        "status.phase": lambda o: (o.get("status") or {}).get("phase") or "",
        "status.podIP": lambda o: (o.get("status") or {}).get("podIP") or "",
        "status.nominatedNodeName": lambda o: (o.get("status") or {}).get("nominatedNodeName") or "",
    },
    "Node": {"spec.unschedulable": lambda o: "true" if o["spec"].get("unschedulable") else "false"},
    "Namespace": {"status.phase": lambda o: (o.get("status") or {}).get("phase") or ""},
    "ReplicaSet": {"status.replicas": lambda o: str((o.get("status") or {}).get("replicas", 0))},
    "ReplicationController": {"status.replicas": lambda o: str((o.get("status") or {}).get("replicas", 0))},
    "Job": {"status.successful": lambda o: str((o.get("status") or {}).get("succeeded", 0))},
}
_METADATA_FIELDS: dict[str, Callable[[JSON], str]] = {
    "metadata.name": lambda o: o["metadata"]["name"],
    "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
}
SNAPSHOTS_KEPT = 128  # paginated lists whose remaining pages the server can still serve
_FAILURE_REASONS = {
    403: ("Forbidden", "forbidden: the request is not allowed (injected)"),
    410: (
        "Expired",
        "The provided continue parameter is too old to display a consistent list result. You can start a "
        "new list without the continue parameter.",
    ),
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    500: ("InternalError", 'an error on the server ("injected") has prevented the request from succeeding'),
    502: ("", "bad gateway"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted"),
}


# -- selectors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "=":
            return present and value == self.values[0]
        if self.operator == "!=":
            return not present or value != self.values[0]
        if self.operator == "in":
            return present and value in self.values
        if self.operator == "notin":
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        return not present  # "!"


_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"


def parse_label_selector(text: str) -> list[Requirement]:
    """The string form of a label selector, as ``labels.Parse`` reads it."""
    parts: list[str] = []
    depth, current = 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    requirements = []
    for raw in parts:
        part = raw.strip()
        if not part:
            if text.strip():
                raise bad_request(f"unable to parse requirement: empty requirement in {text!r}")
            continue
        if match := re.fullmatch(rf"({_KEY})\s+(in|notin)\s+\(([^()]*)\)", part):
            values = tuple(v.strip() for v in match[3].split(",") if v.strip())
            if not all(re.fullmatch(_VALUE, v) for v in values):
                raise bad_request(f"unable to parse requirement: invalid values in {part!r}")
            requirements.append(Requirement(match[1], match[2], values))
        elif match := re.fullmatch(rf"!\s*({_KEY})", part):
            requirements.append(Requirement(match[1], "!"))
        elif match := re.fullmatch(rf"({_KEY})\s*(==|!=|=)\s*({_VALUE})", part):
            operator = "=" if match[2] in ("=", "==") else "!="
            requirements.append(Requirement(match[1], operator, (match[3],)))
        elif match := re.fullmatch(rf"({_KEY})", part):
            requirements.append(Requirement(match[1], "exists"))
        else:
            raise bad_request(
                f"unable to parse requirement: {part!r} is not a valid label selector requirement"
            )
    return requirements


def parse_field_selector(info: KindInfo, text: str) -> list[tuple[Callable[[JSON], str], bool, str]]:
    """``field=value``, ``field==value``, ``field!=value``, comma separated (all must hold)."""
    getters = {**_METADATA_FIELDS, **FIELD_SELECTORS.get(info.kind, {})}
    terms = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        match = re.fullmatch(r"([A-Za-z0-9.]+)\s*(==|!=|=)\s*(.*)", part)
        if not match:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        name, operator, value = match[1], match[2], match[3].strip()
        if name not in getters:
            raise bad_request(f"field label not supported: {name}")
        terms.append((getters[name], operator != "!=", value))
    return terms


# -- continue tokens ----------------------------------------------------------------------------


def encode_continue(resource_version: str, namespace: str, name: str) -> str:
    """Shaped like the API server's own token: base64 of ``{"v", "rv", "start"}``."""
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": int(resource_version), "start": f"{namespace}/{name}\x00"})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[str, tuple[str, str]]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if raw.get("v") != "meta.k8s.io/v1":
            raise ValueError("unknown version")
        namespace, _, name = str(raw["start"]).rstrip("\x00").partition("/")
        return str(int(raw["rv"])), (namespace, name)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as error:
        raise bad_request(f"continue key is not valid: {error}") from error


# -- the server ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiRequest:
    """One request as the server saw it (for reports): never the token."""

    cluster_id: str
    method: str
    path: str
    query: str
    status: int
    at: float | None  # the cluster's virtual time


@dataclass
class InjectedFailure:
    cluster_id: str
    code: int
    remaining: int
    method: str | None = None
    path_contains: str | None = None
    retry_after: int | None = None
    query_contains: str | None = None

    def matches(self, cluster_id: str, method: str, path: str, query: str = "") -> bool:
        return (
            self.remaining > 0
            and cluster_id == self.cluster_id
            and self.method in (None, method)
            and (self.path_contains is None or self.path_contains in path)
            and (self.query_contains is None or self.query_contains in query)
        )


@dataclass
class _Response:
    code: int
    body: JSON
    headers: dict[str, str] = field(default_factory=dict)


def _status(status: ApiStatus) -> _Response:
    headers = {"Retry-After": str(status.retry_after)} if status.retry_after is not None else {}
    return _Response(status.code, status.body(), headers)


def _not_found_path() -> _Response:
    return _status(ApiStatus(404, "NotFound", "the server could not find the requested resource", {}))


def _method_not_allowed(method: str) -> _Response:
    return _status(
        ApiStatus(
            405,
            "MethodNotAllowed",
            f"the server does not allow this method on the requested resource ({method})",
            {},
        )
    )


class KubeApiServer:
    """The loopback HTTP server behind every cluster's virtual API server."""

    def __init__(
        self,
        worlds_by_id: Mapping[str, KubeWorld],
        token_check: TokenCheck,
        authorizer: ClusterAuthorizer | None = None,
    ) -> None:
        self._worlds = worlds_by_id  # kept by reference: clusters added later are served too
        self._token_check = token_check
        self.authorizer = authorizer  # None: every authenticated request is allowed (cluster-admin)
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[tuple[Any, ...], list[JSON]] = OrderedDict()
        self._failures: list[InjectedFailure] = []
        self._forbidden: dict[tuple[str, str], str] = {}  # (cluster_id, plural) -> user named in the 403
        self.requests: list[ApiRequest] = []
        self.rejections: list[tuple[str, str]] = []  # (cluster_id, why the token was refused)
        self.errors: list[str] = []  # tracebacks of handler crashes (answered 500)
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        httpd = _HttpServer(("127.0.0.1", 0), _Handler)
        httpd.api = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="kube-apiserver", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not running"
        return int(self._httpd.server_address[1])

    def url_for(self, cluster_id: str) -> str:
        """The API endpoint of one cluster: the official client's ``host``."""
        return f"http://127.0.0.1:{self.port}/clusters/{quote(cluster_id, safe='')}"

    # -- fault injection --------------------------------------------------------------------------
    def inject_failure(
        self,
        cluster_id: str,
        code: int = 503,
        *,
        times: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        retry_after: int | None = None,
        query_contains: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching (authenticated) requests with ``code`` and a ``Status``
        body, as an overloaded API server (or its priority-and-fairness throttling) would.
        ``query_contains="continue="`` hits only the later pages of a list (410: the snapshot expired)."""
        with self._lock:
            self._failures.append(
                InjectedFailure(
                    cluster_id,
                    code,
                    times,
                    method and method.upper(),
                    path_contains,
                    retry_after,
                    query_contains,
                )
            )

    def forbid(self, cluster_id: str, plural: str, *, user: str = "eks-fleet-upgrader") -> None:
        """RBAC without ``list`` on ``plural`` (e.g. ``"secrets"``) for the caller: listing it answers
        403 Forbidden with the API server's message; everything else is allowed."""
        with self._lock:
            self._forbidden[(cluster_id, plural)] = user

    def requests_to(self, cluster_id: str, method: str | None = None) -> list[ApiRequest]:
        with self._lock:
            return [r for r in self.requests if r.cluster_id == cluster_id and method in (None, r.method)]

    # -- request handling -----------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> _Response:
        parsed = urlsplit(raw_path)
        segments = [unquote(s) for s in parsed.path.split("/")[1:]]
        if len(segments) < 2 or segments[0] != "clusters":
            return _not_found_path()
        cluster_id = segments[1]
        rest = [s for s in segments[2:] if s]
        world = self._worlds.get(cluster_id)
        path = "/" + "/".join(rest)
        if world is None:
            response = _not_found_path()
        else:
            response = self._authenticated(cluster_id, world, method, rest, parsed.query, headers, body)
        with self._lock:
            self.requests.append(
                ApiRequest(
                    cluster_id,
                    method,
                    path,
                    parsed.query,
                    response.code,
                    world.clock.now() if world else None,
                )
            )
        return response

    def _authenticated(
        self,
        cluster_id: str,
        world: KubeWorld,
        method: str,
        rest: list[str],
        query_text: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> _Response:
        authorization = headers.get("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        verdict: bool | str = "no bearer token"
        if scheme.lower() == "bearer" and token.strip():
            verdict = self._token_check(cluster_id, token.strip())
        if verdict is not True:
            with self._lock:
                self.rejections.append((cluster_id, str(verdict)))
            return _status(ApiStatus(401, "Unauthorized", "Unauthorized"))
        path = "/" + "/".join(rest)
        with self._lock:
            failure = next(
                (f for f in self._failures if f.matches(cluster_id, method, path, query_text)), None
            )
            if failure is not None:
                failure.remaining -= 1
        if failure is not None:
            reason, message = _FAILURE_REASONS.get(failure.code, ("", "injected failure"))
            return _status(ApiStatus(failure.code, reason, message, {}, failure.retry_after))
        query = {k: v[-1] for k, v in parse_qs(query_text, keep_blank_values=True).items()}
        refusal = self.authorizer.check(cluster_id, method, rest, query) if self.authorizer else None
        if refusal is not None:  # RBAC (simulator/kube/rbac.py), before routing as in the real API server
            return _status(refusal)
        try:
            return self._route(cluster_id, world, method, rest, query, headers, body)
        except KubeError as error:
            return _status(error.status)

    def _route(
        self,
        cluster_id: str,
        world: KubeWorld,
        method: str,
        rest: list[str],
        query: dict[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> _Response:
        if rest == ["version"]:
            return _Response(200, world.version_info()) if method == "GET" else _method_not_allowed(method)
        if rest[:2] == ["api", "v1"]:
            group_version, tail = "v1", rest[2:]
        elif len(rest) >= 3 and rest[0] == "apis":
            group_version, tail = f"{rest[1]}/{rest[2]}", rest[3:]
        else:
            return _not_found_path()
        namespace: str | None = None
        if len(tail) >= 3 and tail[0] == "namespaces":
            namespace, tail = tail[1], tail[2:]
        if not tail or len(tail) > 3:
            return _not_found_path()
        info = RESOURCES.get((group_version, tail[0]))
        if info is None or (namespace is not None and not info.namespaced):
            return _not_found_path()
        name = tail[1] if len(tail) > 1 else None
        sub = tail[2] if len(tail) > 2 else None
        if info.namespaced and namespace is None and name is not None:
            return _not_found_path()
        if query.get("watch") in ("true", "1"):
            raise bad_request("watch is not supported by this emulator")
        if name is None:
            if method == "GET":
                self._check_list_allowed(cluster_id, info, namespace)
                return self._list(cluster_id, world, info, namespace, query)
            if method == "POST":
                return self._create(world, info, namespace, query, body)
            return _method_not_allowed(method)
        if sub is None:
            if method == "GET":
                return _Response(200, world.get(info.kind, namespace, name))
            if "dryRun" in query:
                raise bad_request("dryRun is only supported for evictions by this emulator")
            if method == "PATCH":
                content_type = headers.get("Content-Type") or ""
                patched = world.patch(info.kind, namespace, name, _json(body), content_type)
                return _Response(200, patched)
            if method == "PUT":
                return self._replace(world, info, namespace, name, body)
            if method == "DELETE":
                return self._delete(world, info, namespace, name)
            return _method_not_allowed(method)
        if sub == "status" and method == "GET":
            return _Response(200, world.get(info.kind, namespace, name))
        if sub == "eviction" and info.kind == "Pod":
            if method != "POST":
                return _method_not_allowed(method)
            return self._evict(world, namespace or "default", name, query, body)
        return _not_found_path()

    def _check_list_allowed(self, cluster_id: str, info: KindInfo, namespace: str | None) -> None:
        with self._lock:
            user = self._forbidden.get((cluster_id, info.plural))
        if user is None:
            return
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        details: JSON = {"kind": info.plural}
        if info.group:
            details["group"] = info.group
        raise KubeError(
            ApiStatus(
                403,
                "Forbidden",
                f'{info.qualified} is forbidden: User "{user}" cannot list resource "{info.plural}" in API '
                f'group "{info.group}" {scope}',
                details,
            )
        )

    def _list(
        self, cluster_id: str, world: KubeWorld, info: KindInfo, namespace: str | None, query: dict[str, str]
    ) -> _Response:
        label_text = query.get("labelSelector", "")
        field_text = query.get("fieldSelector", "")
        labels = parse_label_selector(label_text)
        fields = parse_field_selector(info, field_text)
        try:
            limit = int(query.get("limit") or 0)
        except ValueError as error:
            raise bad_request(f"limit: invalid value {query.get('limit')!r}") from error
        token = query.get("continue")
        snapshot_key: tuple[Any, ...]
        if token:
            resource_version, start = decode_continue(token)
            snapshot_key = (cluster_id, info.kind, namespace, label_text, field_text, resource_version)
            with self._lock:
                snapshot = self._snapshots.get(snapshot_key)
                if snapshot is not None:
                    self._snapshots.move_to_end(snapshot_key)
            if snapshot is None:
                raise KubeError(
                    ApiStatus(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter.",
                    )
                )
            items = [i for i in snapshot if _sort_key(i) > start]
        else:
            resource_version, everything = world.list_at(info.kind, namespace)
            items = [
                item
                for item in everything
                if all(r.matches(item["metadata"].get("labels") or {}) for r in labels)
                and all((get(item) == value) == equal for get, equal, value in fields)
            ]
            snapshot_key = (cluster_id, info.kind, namespace, label_text, field_text, resource_version)
        page = items[:limit] if limit > 0 else items
        metadata: JSON = {"resourceVersion": resource_version}
        if limit > 0 and len(items) > limit:
            if not token:
                with self._lock:
                    self._snapshots[snapshot_key] = items
                    while len(self._snapshots) > SNAPSHOTS_KEPT:
                        self._snapshots.popitem(last=False)
            last = page[-1]["metadata"]
            metadata["continue"] = encode_continue(resource_version, last.get("namespace", ""), last["name"])
            if not labels and not fields:
                metadata["remainingItemCount"] = len(items) - limit
        # Items of a list carry no kind/apiVersion, as from the real API server.
        stripped = [{k: v for k, v in item.items() if k not in ("kind", "apiVersion")} for item in page]
        return _Response(
            200,
            {
                "kind": f"{info.kind}List",
                "apiVersion": info.api_version,
                "metadata": metadata,
                "items": stripped,
            },
        )

    def _create(
        self, world: KubeWorld, info: KindInfo, namespace: str | None, query: dict[str, str], body: bytes
    ) -> _Response:
        if "dryRun" in query:
            raise bad_request("dryRun is only supported for evictions by this emulator")
        manifest = _json(body)
        if not isinstance(manifest, dict):
            raise bad_request("the body must be an object")
        if manifest.get("kind") not in (None, info.kind):
            raise bad_request(f"the body is a {manifest.get('kind')}, the path expects a {info.kind}")
        manifest = {
            **manifest,
            "kind": info.kind,
            "apiVersion": manifest.get("apiVersion") or info.api_version,
        }
        if info.namespaced:
            meta = dict(manifest.get("metadata") or {})
            if meta.get("namespace") not in (None, namespace):
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
            manifest["metadata"] = meta
            world.get("Namespace", None, namespace or "default")  # 404 if the namespace does not exist
        return _Response(201, world.create(manifest))

    def _replace(
        self, world: KubeWorld, info: KindInfo, namespace: str | None, name: str, body: bytes
    ) -> _Response:
        manifest = _json(body)
        if not isinstance(manifest, dict):
            raise bad_request("the body must be an object")
        meta = dict(manifest.get("metadata") or {})
        if meta.get("name") != name:
            raise bad_request("the name of the object does not match the name on the URL")
        if info.namespaced:
            meta["namespace"] = namespace
        manifest = {**manifest, "metadata": meta, "kind": info.kind}
        return _Response(200, world.replace(manifest))

    def _delete(self, world: KubeWorld, info: KindInfo, namespace: str | None, name: str) -> _Response:
        gone = world.delete(info.kind, namespace, name)
        if info.kind == "Pod":
            return _Response(200, gone)
        details: JSON = {"name": name, "kind": info.plural, "uid": gone["metadata"]["uid"]}
        if info.group:
            details["group"] = info.group
        return _Response(200, ApiStatus(200, details=details).body())

    def _evict(
        self, world: KubeWorld, namespace: str, name: str, query: dict[str, str], body: bytes
    ) -> _Response:
        eviction = _json(body) if body else {}
        if not isinstance(eviction, dict) or eviction.get("kind") not in (None, "Eviction"):
            raise bad_request(f"not a Eviction object: {type(eviction).__name__}")
        if (eviction.get("metadata") or {}).get("name") != name:
            raise bad_request("name in URL does not match name in Eviction object")
        dry_run = bool(query.get("dryRun")) or bool((eviction.get("deleteOptions") or {}).get("dryRun"))
        return _status(world.evict(namespace, name, dry_run=dry_run))


def _sort_key(item: JSON) -> tuple[str, str]:
    return (item["metadata"].get("namespace", ""), item["metadata"]["name"])


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as error:
        raise bad_request(f"the body of the request is not valid JSON: {error}") from error


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive connections must not hold close() up
    api: KubeApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver prints these to stderr; the emulator keeps them (e.g. a client reset)."""
        with self.api._lock:
            self.api.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as urllib3's pools expect
    disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms delayed-ACK stalls)
    timeout = 30  # an idle keep-alive connection is closed after this many seconds
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:  # the emulator logs nothing
        return

    def _serve(self) -> None:
        api = self.server.api
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            response = api.handle(self.command, self.path, self.headers, body)
        except Exception:
            with api._lock:
                api.errors.append(traceback.format_exc())
            response = _Response(
                500, ApiStatus(500, "InternalError", "the emulator failed on this request").body()
            )
        payload = json.dumps(response.body).encode()
        self.send_response(response.code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


@contextlib.contextmanager
def serve(
    worlds_by_id: Mapping[str, KubeWorld],
    token_check: TokenCheck,
    authorizer: ClusterAuthorizer | None = None,
) -> Iterator[KubeApiServer]:
    """Start the API servers of ``worlds_by_id`` on an OS-chosen loopback port for the duration of
    the context. ``token_check(cluster_id, token)`` must return ``True`` to let a request in;
    ``authorizer`` (``simulator.kube.rbac``), if given, must then allow it (else 403 Forbidden)."""
    server = KubeApiServer(worlds_by_id, token_check, authorizer)
    server.start()
    try:
        yield server
    finally:
        server.close()
