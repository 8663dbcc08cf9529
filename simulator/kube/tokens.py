"""The emulated API servers' authenticator: checks EKS bearer tokens the way the EKS authenticator
(aws-iam-authenticator) reads them, before it asks STS who signed them.

A token is ``k8s-aws-v1.`` + base64url(presigned STS ``GetCallerIdentity`` URL). The checks:

* the prefix, the base64url encoding, an ``https://sts.<region>.amazonaws.com/`` URL with
  ``Action=GetCallerIdentity`` and ``Version=2011-06-15``, a SigV4 query signature;
* ``x-k8s-aws-id`` among ``X-Amz-SignedHeaders`` (without it the token would work on any cluster);
* ``X-Amz-Expires`` at most 60 and ``X-Amz-Date + X-Amz-Expires`` not past, on the real wall clock
  (the signer used real time, not the simulation's virtual clock);
* the signing access key belongs to the cluster's account (moto maps access keys to accounts).

What it cannot check from the token alone: the cluster name. ``x-k8s-aws-id`` is only *signed*, its
value is not in the URL; EKS learns it when STS verifies the signature with the header EKS adds.
Pass ``secret_key_for`` (e.g. :func:`moto_secret_key`) to recompute the signature with the
expected cluster name, which closes that gap in the simulator.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, quote, urlsplit

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
MAX_EXPIRES_SECONDS = 60
CLOCK_SKEW_SECONDS = 300  # a token dated this far in the future is refused
_STS_HOST = re.compile(r"^sts\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"

SecretLookup = Callable[[str], "str | None"]


def check_token(
    token: str,
    *,
    expected_cluster: str,
    expected_account: str,
    now: float | None = None,
    secret_key_for: SecretLookup | None = None,
) -> bool | str:
    """``True`` if the token is acceptable for the cluster, else the reason it is not (a ``str``:
    compare the result with ``is True``). ``now`` is wall-clock epoch seconds (default: now)."""
    if not token.startswith(TOKEN_PREFIX):
        return f"token does not start with {TOKEN_PREFIX}"
    encoded = token[len(TOKEN_PREFIX) :]
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        url = base64.b64decode(padded, altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return "token is not base64url-encoded"
    parts = urlsplit(url)
    host_match = _STS_HOST.match(parts.hostname or "")
    if parts.scheme != "https" or host_match is None or parts.path not in ("", "/") or parts.port:
        return "token is not a presigned https://sts.<region>.amazonaws.com/ URL"
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return "malformed query in the presigned URL"
    query = {k.lower(): v for k, v in pairs}
    if len(query) != len(pairs):
        return "duplicate query parameters in the presigned URL"
    if query.get("action") != "GetCallerIdentity":
        return "unexpected action in the presigned URL (want GetCallerIdentity)"
    if query.get("version") != "2011-06-15":
        return "unexpected API version in the presigned URL"
    if query.get("x-amz-algorithm") != "AWS4-HMAC-SHA256" or not re.fullmatch(
        r"[0-9a-f]{64}", query.get("x-amz-signature", "")
    ):
        return "the URL carries no SigV4 query signature"
    signed_headers = query.get("x-amz-signedheaders", "").lower().split(";")
    if CLUSTER_ID_HEADER not in signed_headers:
        return f"the {CLUSTER_ID_HEADER} header is not signed"
    try:
        expires = int(query.get("x-amz-expires", ""))
        signed_at = dt.datetime.strptime(query.get("x-amz-date", ""), _AMZ_DATE).replace(tzinfo=dt.UTC)
    except ValueError:
        return "invalid X-Amz-Expires or X-Amz-Date"
    if not 0 < expires <= MAX_EXPIRES_SECONDS:
        return f"X-Amz-Expires must be between 1 and {MAX_EXPIRES_SECONDS} (got {expires})"
    current = time.time() if now is None else now
    if current > signed_at.timestamp() + expires:
        return f"token expired at {(signed_at + dt.timedelta(seconds=expires)).isoformat()}"
    if signed_at.timestamp() > current + CLOCK_SKEW_SECONDS:
        return "token is dated in the future"
    credential = query.get("x-amz-credential", "").split("/")
    if len(credential) != 5 or credential[3] != "sts" or credential[4] != "aws4_request":
        return "malformed X-Amz-Credential"
    access_key, scope_date, scope_region = credential[0], credential[1], credential[2]
    if scope_region != host_match["region"] or scope_date != signed_at.strftime("%Y%m%d"):
        return "the credential scope does not match the URL's region or date"
    account = _account_of(access_key)
    if account != expected_account:
        return f"token was signed by account {account}; the cluster is in account {expected_account}"
    if secret_key_for is not None:
        secret = secret_key_for(access_key)
        if secret is None:
            return "unknown access key"
        if not _signature_matches(parts.hostname or "", pairs, signed_headers, expected_cluster, secret):
            return f"signature does not match (was the token made for cluster {expected_cluster}?)"
    return True


def token_checker(
    clusters: Mapping[str, tuple[str, str]], *, verify_signature: bool = True
) -> Callable[[str, str], bool | str]:
    """A ``token_check`` for :func:`simulator.kube.apiserver.serve`: ``clusters`` maps each
    cluster id to ``(cluster name, account id)``. With ``verify_signature`` the signature is
    recomputed with moto's secret key, so a token made for another cluster is refused too."""

    def check(cluster_id: str, token: str) -> bool | str:
        if cluster_id not in clusters:
            return f"unknown cluster {cluster_id}"
        name, account = clusters[cluster_id]
        return check_token(
            token,
            expected_cluster=name,
            expected_account=account,
            secret_key_for=moto_secret_key if verify_signature else None,
        )

    return check


def _account_of(access_key: str) -> str:
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def moto_secret_key(access_key: str) -> str | None:
    """The secret of an access key moto issued (IAM user keys and assumed-role keys alike)."""
    from moto.iam.models import iam_backends

    for _, account in list(iam_backends.items()):
        for partition in list(account.keys()):
            key = account[partition].access_keys.get(access_key)
            if key is not None:
                return str(key.secret_access_key)
    return None


def _signature_matches(
    host: str, pairs: list[tuple[str, str]], signed_headers: list[str], cluster: str, secret: str
) -> bool:
    """Recompute the SigV4 query signature of a presigned GET with ``x-k8s-aws-id: cluster``."""
    query = dict(pairs)
    signature = query.pop("X-Amz-Signature", "")
    headers = {"host": host, CLUSTER_ID_HEADER: cluster}
    if any(h not in headers for h in signed_headers):
        return False
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items())
    )
    canonical_headers = "".join(f"{h}:{headers[h].strip()}\n" for h in signed_headers)
    canonical_request = "\n".join(
        [
            "GET",
            "/",
            canonical_query,
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    if "X-Amz-Credential" not in query or "X-Amz-Date" not in query:
        return False  # not botocore's canonical parameter names
    _, date, region, service, terminator = query["X-Amz-Credential"].split("/")
    scope = f"{date}/{region}/{service}/{terminator}"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            query["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)
