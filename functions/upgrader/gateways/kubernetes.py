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

``kubernetes`` is imported inside :func:`api_client` only (it costs ~300 ms of cold start): steps
that never talk to a cluster do not pay for it. Tokens are never logged.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from urllib3.util.retry import Retry

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
