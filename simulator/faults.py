"""Every AWS call a step makes passes here first: recorded, checked against the world's rules, and
failed on purpose when a fault says so.

This uses botocore's public event system (a ``before-send`` handler registered ahead of moto's),
so it sees exactly the requests the real Lambda would send, whatever the service.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.handlers import BUILTIN_HANDLERS
from moto.iam.models import get_account_id_from

# Operations that change something: the report's ``mutatingCalls`` lists these.
READ_PREFIXES = ("Describe", "List", "Get", "AssumeRole", "Search", "Scan", "Query", "BatchGet")


@dataclass(frozen=True)
class RecordedCall:
    step: str
    service: str
    operation: str
    account: str | None
    region: str | None
    at: float
    throttled: bool = False

    @property
    def mutating(self) -> bool:
        return not self.operation.startswith(READ_PREFIXES)


@dataclass
class ThrottleRule:
    """Throttle calls to ``service`` (and ``operation`` if given): the first ``first`` matching
    calls, then each later one with probability ``rate`` (seeded, so runs are repeatable)."""

    service: str
    operation: str | None = None
    first: int = 0
    rate: float = 0.0
    seen: int = 0

    def matches(self, service: str, operation: str) -> bool:
        return self.service == service and self.operation in (None, operation)


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any, **__: Any) -> bytes:
        body, self._body = self._body, b""
        return body


@dataclass
class AwsFaults:
    """The recorder and fault injector for AWS calls. ``clock`` gives virtual timestamps."""

    clock: Any
    throttles: list[ThrottleRule] = field(default_factory=list)
    # (account, role name) -> ExternalId the role's trust policy requires
    external_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    seed: int = 7
    calls: list[RecordedCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._protocols: dict[str, str] = {}
        self._thread = threading.local()  # the step whose Lambda runs on this thread, if any

    # -- botocore hook --------------------------------------------------------------------------
    def __call__(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        step = getattr(self._thread, "step", None)
        if step is None:  # the engine's own calls (deploying, starting executions) are not recorded
            return None
        _, service, operation = event_name.split(".", 2)
        account = _account_from_credentials(request)
        region = request.context.get("client_region") if hasattr(request, "context") else None
        with self._lock:
            throttled = self._should_throttle(service, operation)
            self.calls.append(
                RecordedCall(step, service, operation, account, region, self.clock.now(), throttled)
            )
        if throttled:
            return self._error(request, service, 400, "ThrottlingException", "Rate exceeded")
        if service == "sts" and operation == "AssumeRole":
            return self._check_external_id(request)
        return None

    @contextlib.contextmanager
    def step(self, function_name: str) -> Iterator[None]:
        """The engine wraps each Lambda invocation in this: calls inside belong to that step."""
        self._thread.step = function_name
        try:
            yield
        finally:
            self._thread.step = None

    def _should_throttle(self, service: str, operation: str) -> bool:
        for rule in self.throttles:
            if rule.matches(service, operation):
                rule.seen += 1
                if rule.seen <= rule.first or (rule.rate and self._random.random() < rule.rate):
                    return True
        return False

    def _check_external_id(self, request: Any) -> AWSResponse | None:
        params = {k: v[0] for k, v in parse_qs(_body_text(request)).items()}
        role_arn = params.get("RoleArn", "")
        account, _, role_name = role_arn.partition(":iam::")[2].partition(":role/")
        required = self.external_ids.get((account, role_name))
        if required is not None and params.get("ExternalId") != required:
            return self._error(
                request,
                "sts",
                403,
                "AccessDenied",
                f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            )
        return None

    # -- responses ------------------------------------------------------------------------------
    def _protocol(self, service: str) -> str:
        if service not in self._protocols:
            model = botocore.session.get_session().get_service_model(service)
            self._protocols[service] = model.metadata["protocol"]
        return self._protocols[service]

    def _error(self, request: Any, service: str, status: int, code: str, message: str) -> AWSResponse:
        protocol = self._protocol(service)
        if protocol in ("query", "ec2", "rest-xml"):
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
                "</Error><RequestId>sim</RequestId></ErrorResponse>"
            ).encode()
            headers = {"Content-Type": "text/xml"}
        else:
            body = json.dumps({"__type": code, "message": message}).encode()
            headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code}
        return AWSResponse(request.url, status, headers, _RawBody(body))

    def mutating_calls(self) -> list[RecordedCall]:
        return [c for c in self.calls if c.mutating and not c.throttled]

    def calls_to(self, *services: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.service in services]


def _body_text(request: Any) -> str:
    body = request.body
    if isinstance(body, bytes):
        return body.decode()
    return body or ""


def _account_from_credentials(request: Any) -> str | None:
    """moto maps access keys of assumed-role sessions to the role's account; read it the same way."""
    authorization = request.headers.get("Authorization", b"")
    if isinstance(authorization, bytes):
        authorization = authorization.decode()
    marker = "Credential="
    if marker not in authorization:
        return None
    access_key = authorization.split(marker, 1)[1].split("/", 1)[0]
    return get_account_id_from(access_key)


_active: list[AwsFaults] = []


def _dispatch(request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
    return _active[-1](request, event_name, **kwargs) if _active else None


# Registered once, ahead of moto's stubber, so every botocore session created after this import
# (including sessions a Lambda container caches across simulations) reaches the active faults.
BUILTIN_HANDLERS.insert(0, ("before-send", _dispatch))


@contextlib.contextmanager
def aws_faults(faults: AwsFaults) -> Iterator[AwsFaults]:
    """Make ``faults`` the active recorder and injector for the duration of the context."""
    _active.append(faults)
    try:
        yield faults
    finally:
        _active.remove(faults)
