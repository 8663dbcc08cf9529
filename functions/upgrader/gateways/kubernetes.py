"""Kubernetes access for the steps that talk to a cluster: the EKS bearer token and a configured
official client.

* :func:`eks_token` makes the token ``aws eks get-token`` makes: a presigned STS
  ``GetCallerIdentity`` URL whose signature covers the ``x-k8s-aws-id: <cluster>`` header, valid
  60 seconds, as ``k8s-aws-v1.`` + base64url without padding. Presigning is local: no AWS call.
* :func:`api_client` builds a ``kubernetes.client.ApiClient`` for one cluster: bearer token, TLS
  verification against the cluster's CA (never disabled; plain http only for loopback, where the
  simulator serves), and one bounded retry policy (urllib3 ``Retry``): 429 honouring
  ``Retry-After`` (capped), 500/502/503/504 and connection errors, for every method but POST. POST
  is left alone on purpose: an eviction refused by a PodDisruptionBudget answers 429, and whether
  to try again is the workflow's decision (a Wait state), never a loop inside the Lambda.

* :class:`KubernetesGateway` is what the domain sees of a cluster for the readiness scan:
  ``list_objects(kind)``, every object of a kind across namespaces as the API returns it (one
  paginated list per kind, ``limit=500`` + ``continue``). :class:`ApiKubernetesGateway` implements it
  with the official client; tests use the fake in ``tests/fakes.py`` (same contract:
  ``tests/integration/test_kubernetes_contract.py``).

``kubernetes`` is imported inside :func:`api_client` and the gateway's calls only (it costs ~300 ms of
cold start): steps that never talk to a cluster do not pay for it. Tokens are never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from urllib3.exceptions import HTTPError
from urllib3.util.retry import Retry

from upgrader.errors import (
    KubernetesAccessDenied,
    KubernetesThrottled,
    TransientKubernetesError,
    UnexpectedKubernetesError,
    UpgradeError,
)
from upgrader.redaction import without_secret_values

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
TOKEN_EXPIRES_SECONDS = 60  # what aws eks get-token and aws-iam-authenticator use
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Every method urllib3 retries by default, plus PATCH (the product only sends idempotent merge and
# strategic merge patches: cordon, taints by key). Never POST: see the module docstring.
RETRY_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
DEFAULT_MAX_RETRIES = 3
MAX_RETRY_AFTER_SECONDS = 10.0  # a longer Retry-After is the state machine's to wait, not the Lambda's
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

_log = logging.getLogger("eks-fleet-upgrader.kubernetes")


# -- token --------------------------------------------------------------------------------------


def _take_cluster_id(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """provide-client-params: move the cluster name out of the API parameters (STS would reject it)."""
    if CLUSTER_ID_HEADER in params:
        context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)


def _sign_cluster_id(request: Any, **_: Any) -> None:
    """before-sign: add the header, so the signature covers the cluster name."""
    if CLUSTER_ID_HEADER in request.context:
        request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]


def eks_token(sts_client: Any, cluster_name: str, expires_seconds: int = TOKEN_EXPIRES_SECONDS) -> str:
    """The EKS bearer token for ``cluster_name``, signed with the STS client's credentials
    (the target-account role: ``TargetAccount.client("sts")``)."""
    if not 0 < expires_seconds <= 900:
        raise ValueError(f"expires_seconds must be between 1 and 900, got {expires_seconds}")
    events = sts_client.meta.events
    events.register(
        "provide-client-params.sts.GetCallerIdentity",
        _take_cluster_id,
        unique_id="upgrader-eks-token-cluster-id",
    )
    events.register(
        "before-sign.sts.GetCallerIdentity",
        _sign_cluster_id,
        unique_id="upgrader-eks-token-sign-cluster-id",
    )
    url = sts_client.generate_presigned_url(
        "get_caller_identity",
        Params={CLUSTER_ID_HEADER: cluster_name},
        ExpiresIn=expires_seconds,
        HttpMethod="GET",
    )
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")


# -- client -------------------------------------------------------------------------------------


class BoundedRetry(Retry):
    """urllib3's Retry, with Retry-After capped and every retry logged (method, path, status;
    never headers, so never the token)."""

    max_retry_after = MAX_RETRY_AFTER_SECONDS

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.max_retry_after)

    def increment(
        self, method: str | None = None, url: str | None = None, *args: Any, **kwargs: Any
    ) -> Retry:
        response = kwargs.get("response")
        error = kwargs.get("error")
        new = super().increment(method, url, *args, **kwargs)
        _log.warning(
            "retrying Kubernetes API request",
            extra={
                "method": method,
                "path": urlsplit(url or "").path,
                "status": getattr(response, "status", None),
                "error": type(error).__name__ if error else None,
                "retriesLeft": new.total,
            },
        )
        return new


def retry_policy(max_retries: int = DEFAULT_MAX_RETRIES, *, backoff_factor: float = 0.5) -> Retry:
    """The one retry policy of Kubernetes calls (see the module docstring)."""
    return BoundedRetry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        other=0,
        redirect=0,
        backoff_factor=backoff_factor,
        backoff_max=5,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=RETRY_METHODS,
        respect_retry_after_header=True,
        # Out of retries, hand the last response to the client (an ApiException with its status),
        # not a urllib3 MaxRetryError.
        raise_on_status=False,
        raise_on_redirect=False,
    )


def api_client(
    endpoint: str, ca_data_b64: str | None, token: str, *, retry: Retry | None = None
) -> ApiClient:
    """A client for one cluster: ``endpoint`` and ``ca_data_b64`` as DescribeCluster returns them
    (``cluster.endpoint``, ``cluster.certificateAuthority.data``), ``token`` from :func:`eks_token`.
    ``retry`` defaults to :func:`retry_policy`."""
    from kubernetes import client  # lazy: ~300 ms, paid only by steps that talk to clusters

    parts = urlsplit(endpoint)
    if parts.scheme == "http":
        if parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError("refusing to send a bearer token over plain http to a non-loopback host")
    elif parts.scheme != "https":
        raise ValueError(f"not an API server endpoint: {endpoint!r}")
    configuration = client.Configuration(
        host=endpoint.rstrip("/"),
        api_key={"authorization": token},
        api_key_prefix={"authorization": "Bearer"},
        retries=retry if retry is not None else retry_policy(),
    )
    configuration.verify_ssl = True  # never disabled
    if parts.scheme == "https" and ca_data_b64:
        # The CA goes to urllib3 in memory (ssl cadata): nothing written to /tmp, nothing to leak or
        # clean up in a warm Lambda container.
        try:
            configuration.ca_cert_data = base64.b64decode(ca_data_b64, validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise ValueError("the cluster CA is not base64-encoded PEM") from error
    return client.ApiClient(configuration)


class TokenRefresher:
    """``Configuration.refresh_api_key_hook``: mints a fresh EKS token before a request once the
    current one is ``max_age`` seconds old (tokens live 60 s; a scan of a big cluster takes longer).
    Minting is local presigning: no AWS call."""

    def __init__(self, mint: Callable[[], str], *, max_age: float = 30.0) -> None:
        self._mint = mint
        self._max_age = max_age
        self._minted_at = time.monotonic()

    def __call__(self, configuration: Any) -> None:
        if time.monotonic() - self._minted_at >= self._max_age:
            configuration.api_key["authorization"] = self._mint()
            self._minted_at = time.monotonic()


# -- listing objects (the readiness scan) ---------------------------------------------------------


@dataclass(frozen=True)
class ListableKind:
    """How the official client lists one kind across all namespaces."""

    kind: str
    api_version: str  # what a single GET of an object says; list items carry no kind/apiVersion
    api_class: str  # kubernetes.client class
    method: str  # its list method (``..._for_all_namespaces`` for namespaced kinds)


LISTABLE_KINDS: dict[str, ListableKind] = {
    spec.kind: spec
    for spec in (
        ListableKind("Namespace", "v1", "CoreV1Api", "list_namespace"),
        ListableKind("Node", "v1", "CoreV1Api", "list_node"),
        ListableKind("Pod", "v1", "CoreV1Api", "list_pod_for_all_namespaces"),
        ListableKind(
            "ReplicationController", "v1", "CoreV1Api", "list_replication_controller_for_all_namespaces"
        ),
        ListableKind("ConfigMap", "v1", "CoreV1Api", "list_config_map_for_all_namespaces"),
        ListableKind("ServiceAccount", "v1", "CoreV1Api", "list_service_account_for_all_namespaces"),
        ListableKind("Secret", "v1", "CoreV1Api", "list_secret_for_all_namespaces"),
        ListableKind("Deployment", "apps/v1", "AppsV1Api", "list_deployment_for_all_namespaces"),
        ListableKind("ReplicaSet", "apps/v1", "AppsV1Api", "list_replica_set_for_all_namespaces"),
        ListableKind("StatefulSet", "apps/v1", "AppsV1Api", "list_stateful_set_for_all_namespaces"),
        ListableKind("DaemonSet", "apps/v1", "AppsV1Api", "list_daemon_set_for_all_namespaces"),
        ListableKind("Job", "batch/v1", "BatchV1Api", "list_job_for_all_namespaces"),
        ListableKind("CronJob", "batch/v1", "BatchV1Api", "list_cron_job_for_all_namespaces"),
        ListableKind(
            "PodDisruptionBudget", "policy/v1", "PolicyV1Api", "list_pod_disruption_budget_for_all_namespaces"
        ),
        # autoscaling/v1 is served by every supported version; the rules read only scaleTargetRef and
        # minReplicas, which v1 and v2 share.
        ListableKind(
            "HorizontalPodAutoscaler",
            "autoscaling/v1",
            "AutoscalingV1Api",
            "list_horizontal_pod_autoscaler_for_all_namespaces",
        ),
    )
}
LIST_PAGE_SIZE = 500
LIST_REQUEST_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds per page


@dataclass(frozen=True)
class ListOutcome:
    """Every object of one kind, or why the kind could not be read.

    ``objects`` are dicts in API JSON shape with ``kind`` and ``apiVersion`` set (list items lack
    them), without ``metadata.managedFields``; Secrets without their values (``data``,
    ``stringData``, the last-applied annotation). ``unreadable`` is the reason when the cluster
    refused the list (403) or does not serve the kind (404): reported, never silenced.
    """

    kind: str
    objects: tuple[dict[str, Any], ...] = ()
    unreadable: str | None = None
    restarted: bool = False  # the list was started over after its continue token expired (410)

    @property
    def complete(self) -> bool:
        return self.unreadable is None


class KubernetesGateway(Protocol):
    def list_objects(self, kind: str) -> ListOutcome: ...


def clean_listed_object(spec: ListableKind, item: dict[str, Any]) -> dict[str, Any]:
    """A list item as a standalone object: ``kind``/``apiVersion`` set, managedFields and secret values
    dropped (the first is bulk nobody reads, the second must never be kept)."""
    obj: dict[str, Any] = {"apiVersion": spec.api_version, "kind": spec.kind}
    obj.update(item)
    obj["apiVersion"], obj["kind"] = spec.api_version, spec.kind
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return without_secret_values(obj)


def status_reason(status: int | None, body: str | bytes | None) -> str:
    """``403 Forbidden: secrets is forbidden: ...`` from an error response's ``Status`` body."""
    reason, message = "", ""
    try:
        parsed = json.loads(body or b"null")
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        reason, message = str(parsed.get("reason") or ""), str(parsed.get("message") or "")
    text = f"{status} {reason}".strip()
    return f"{text}: {message}" if message else text


def kubernetes_error(status: int | None, body: str | bytes | None, operation: str) -> UpgradeError:
    """Map a Kubernetes API error answer (after the client's bounded retries) to the error tree."""
    reason = status_reason(status, body)
    details = {"operation": operation, "httpStatus": status, "reason": reason}
    if status == 401:
        return KubernetesAccessDenied(
            f"{operation}: the API server refused the target role's token (401); map the role into the "
            "cluster with an EKS access entry (or aws-auth) giving it the eks-fleet-upgrader group "
            "(docs/kubernetes-access.md)",
            **details,
        )
    if status == 403:
        return KubernetesAccessDenied(
            f"{operation}: the cluster's RBAC does not allow it (403: {reason}); apply "
            "infra/kubernetes/orchestrator-clusterrole.yaml and give the target role the eks-fleet-upgrader "
            "group through its EKS access entry (docs/kubernetes-access.md), then run again",
            **details,
            fix="kubectl apply -f infra/kubernetes/orchestrator-clusterrole.yaml; aws eks create-access-entry "
            "--kubernetes-groups eks-fleet-upgrader (docs/kubernetes-access.md)",
        )
    if status == 429:
        return KubernetesThrottled(f"{operation} throttled by the API server", **details)
    if status is None or status == 0 or status >= 500:
        return TransientKubernetesError(f"{operation} failed on the API server", **details)
    return UnexpectedKubernetesError(f"{operation} failed: {reason}", **details)


class _ContinueExpired(Exception):
    """410 on a continue token: the snapshot the pages came from is gone."""


class ApiKubernetesGateway:
    """:class:`KubernetesGateway` with the official client (``api_client(...)``).

    One paginated list per kind across all namespaces, never one call per namespace. Pages are read
    raw (``_preload_content=False``) and parsed as JSON: the exact API shape, without the client's
    model validation (costly since v37, and it would reject fields newer than the client).
    """

    def __init__(self, api: ApiClient, *, page_size: int = LIST_PAGE_SIZE) -> None:
        self._api = api
        self._page_size = page_size

    def list_objects(self, kind: str) -> ListOutcome:
        spec = LISTABLE_KINDS.get(kind)
        if spec is None:
            raise ValueError(f"kind {kind!r} is not listable; known: {', '.join(LISTABLE_KINDS)}")
        try:
            return self._list(spec, restarted=False)
        except _ContinueExpired:
            _log.warning("continue token expired; listing the kind again", extra={"kind": kind})
        try:
            return self._list(spec, restarted=True)
        except _ContinueExpired:
            raise TransientKubernetesError(
                f"list {kind}: the continue token expired twice; the cluster changes faster than it pages",
                operation=f"list {kind}",
                httpStatus=410,
            ) from None

    def _list(self, spec: ListableKind, *, restarted: bool) -> ListOutcome:
        from kubernetes import client  # lazy: see the module docstring
        from kubernetes.client.exceptions import ApiException

        method = getattr(getattr(client, spec.api_class)(self._api), spec.method)
        objects: list[dict[str, Any]] = []
        token: str | None = None
        pages = 0
        while True:
            try:
                response = method(
                    limit=self._page_size,
                    _continue=token,
                    _preload_content=False,
                    _request_timeout=LIST_REQUEST_TIMEOUT,
                )
                try:
                    page = json.loads(response.data)
                finally:
                    response.release_conn()
            except ApiException as error:
                if error.status == 410 and token:
                    raise _ContinueExpired from error
                if error.status in (403, 404):
                    reason = status_reason(error.status, error.body)
                    _log.warning("kind not readable", extra={"kind": spec.kind, "reason": reason})
                    return ListOutcome(spec.kind, unreadable=reason, restarted=restarted)
                raise kubernetes_error(error.status, error.body, f"list {spec.kind}") from error
            except HTTPError as error:  # connection refused, reset, timeouts after the retries
                raise TransientKubernetesError(
                    f"list {spec.kind}: {type(error).__name__}", operation=f"list {spec.kind}"
                ) from error
            pages += 1
            objects.extend(clean_listed_object(spec, item) for item in page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                _log.info(
                    "listed kind",
                    extra={
                        "kind": spec.kind,
                        "objects": len(objects),
                        "pages": pages,
                        "restarted": restarted,
                    },
                )
                return ListOutcome(spec.kind, tuple(objects), restarted=restarted)
