"""Every AWS call a step makes passes here first: recorded, checked against the world's rules, and
failed on purpose when a fault says so.

This uses botocore's public event system (a ``before-send`` handler registered ahead of moto's),
so it sees exactly the requests the real Lambda would send, whatever the service.
"""

from __future__ import annotations

import contextlib
import functools
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
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
    # What the refused call gets: throttling by default; e.g. ResourceInUseException (409) for "another
    # update of this resource is running", which EKS answers to concurrent updates.
    error_code: str = "ThrottlingException"
    seen: int = 0

    def matches(self, service: str, operation: str) -> bool:
        return self.service == service and self.operation in (None, operation)


@dataclass
class LoseResponseRule:
    """The request reaches the backend and takes effect; the client gets a read timeout instead."""

    service: str
    operation: str
    times: int = 1


@dataclass
class CrashRule:
    """The step's Lambda process dies as it is about to make its ``at_call``-th AWS call."""

    step: str
    at_call: int = 1
    times: int = 1


class SimulatedLambdaCrash(Exception):
    """Reported as Lambda reports a process that exited mid-invocation."""

    lambda_error_type = "Runtime.ExitError"


@dataclass
class AwsFaults:
    """The recorder and fault injector for AWS calls. ``clock`` gives virtual timestamps."""

    clock: Any
    throttles: list[ThrottleRule] = field(default_factory=list)
    lost_responses: list[LoseResponseRule] = field(default_factory=list)
    crashes: list[CrashRule] = field(default_factory=list)
    # (account, role name) -> ExternalId the role's trust policy requires
    external_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    seed: int = 7
    calls: list[RecordedCall] = field(default_factory=list)
    lost: list[tuple[str, str, float]] = field(default_factory=list)
    # The central account: a step writing there (its run reports) keeps the orchestrator's books; it
    # changes nothing in the fleet, so it is not a mutating call.
    orchestrator_account: str | None = None

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        for rule in [*self.throttles, *self.lost_responses]:
            rule.service = event_service_name(rule.service)
        self._thread = threading.local()  # the step whose Lambda runs on this thread, if any

    @contextlib.contextmanager
    def step(self, function_name: str) -> Iterator[None]:
        """The engine wraps each Lambda invocation in this: calls inside belong to that step."""
        self._thread.step = function_name
        self._thread.calls = 0
        try:
            yield
        finally:
            self._thread.step = None

    # -- botocore hook --------------------------------------------------------------------------
    # ``before-call`` runs before the request is even built and, unlike ``before-send`` (where
    # botocore still runs every handler, moto's included), a response here short-circuits the
    # call: a throttled or refused call reaches no backend and changes nothing.
    def __call__(self, event_name: str, params: Any, request_signer: Any, context: Any, **_: Any) -> Any:
        step = getattr(self._thread, "step", None)
        if step is None:  # the engine's own calls (deploying, starting executions) are not recorded
            return None
        _, service, operation = event_name.split(".", 2)
        account = _account_from_signer(request_signer)
        region = (context or {}).get("client_region") or getattr(request_signer, "region_name", None)
        self._thread.calls += 1
        self._maybe_crash(step, self._thread.calls)  # the process dies before the call leaves it
        with self._lock:
            refused = self._should_throttle(service, operation)
            self.calls.append(
                RecordedCall(step, service, operation, account, region, self.clock.now(), refused is not None)
            )
        if refused == "ThrottlingException":
            return _error(400, "ThrottlingException", "Rate exceeded")
        if refused is not None:
            return _error(
                409 if refused == "ResourceInUseException" else 400,
                refused,
                f"{operation} refused ({refused})",
            )
        if service == "sts" and operation == "AssumeRole":
            return self._check_external_id(params)
        return None

    def _maybe_crash(self, step: str, call_number: int) -> None:
        for rule in self.crashes:
            if rule.step == step and rule.at_call == call_number and rule.times > 0:
                rule.times -= 1
                raise SimulatedLambdaCrash(f"{step} crashed before its AWS call #{call_number} (injected)")

    def after_call(self, event_name: str, **_: Any) -> None:
        """Lose the response of a call that already took effect (``after-call`` runs after the backend)."""
        if getattr(self._thread, "step", None) is None:
            return
        _, service, operation = event_name.split(".", 2)
        for rule in self.lost_responses:
            if (rule.service, rule.operation) == (service, operation) and rule.times > 0:
                rule.times -= 1
                self.lost.append((service, operation, self.clock.now()))
                raise ReadTimeoutError(endpoint_url=f"https://{service}.simulator.invalid")

    def _should_throttle(self, service: str, operation: str) -> str | None:
        """The error code the call is refused with (None: it goes through)."""
        refused: str | None = None
        for rule in self.throttles:  # every matching rule counts the call, even once one refuses it
            if rule.matches(service, operation):
                rule.seen += 1
                if rule.seen <= rule.first or (rule.rate and self._random.random() < rule.rate):
                    refused = refused or rule.error_code
        return refused

    def _check_external_id(self, request_dict: dict[str, Any]) -> Any:
        body = request_dict.get("body") or {}
        if not isinstance(body, dict):
            text = body.decode() if isinstance(body, bytes) else str(body)
            body = {k: v[0] for k, v in parse_qs(text).items()}
        role_arn = body.get("RoleArn", "")
        account, _, role_name = role_arn.partition(":iam::")[2].partition(":role/")
        required = self.external_ids.get((account, role_name))
        if required is not None and body.get("ExternalId") != required:
            return _error(
                403,
                "AccessDenied",
                f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            )
        return None

    def changes_the_fleet(self, call: RecordedCall) -> bool:
        """A write that took effect in a fleet account (not throttled, not the orchestrator's own books)."""
        return call.mutating and not call.throttled and call.account != self.orchestrator_account

    def mutating_calls(self) -> list[RecordedCall]:
        return [c for c in self.calls if self.changes_the_fleet(c)]

    def calls_to(self, *services: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.service in services]


def _account_from_signer(request_signer: Any) -> str | None:
    """moto maps the access keys of assumed-role sessions to the role's account; read it the same way.
    (``_credentials`` is botocore's, pinned; the simulator only.)"""
    credentials = getattr(request_signer, "_credentials", None)
    access_key = getattr(credentials, "access_key", None)
    return get_account_id_from(access_key) if access_key else None


def _error(status: int, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    """The (http, parsed) pair botocore expects from a ``before-call`` handler; it raises ClientError."""
    parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return AWSResponse("https://simulator.invalid", status, {}, None), parsed


@functools.cache
def event_service_name(name: str) -> str:
    """The name botocore uses in event names for a boto3 client name ("autoscaling" -> "auto-scaling")."""
    session = _botocore_session()
    if name not in session.get_available_services():
        raise ValueError(
            f"unknown AWS service {name!r}: use the boto3 client name, e.g. 'eks', 'autoscaling'"
        )
    return session.get_service_model(name).service_id.hyphenize()


@functools.cache
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


_active: list[AwsFaults] = []


def _dispatch(event_name: str, **kwargs: Any) -> Any:
    return _active[-1](event_name, **kwargs) if _active else None


def _dispatch_after(event_name: str, **kwargs: Any) -> None:
    if _active:
        _active[-1].after_call(event_name, **kwargs)


# Registered once, so every botocore session created after this import (including sessions a
# Lambda container caches across simulations) reaches the active faults.
BUILTIN_HANDLERS.insert(0, ("before-call", _dispatch))
BUILTIN_HANDLERS.append(("after-call", _dispatch_after))


@contextlib.contextmanager
def aws_faults(faults: AwsFaults) -> Iterator[AwsFaults]:
    """Make ``faults`` the active recorder and injector for the duration of the context."""
    _active.append(faults)
    try:
        yield faults
    finally:
        _active.remove(faults)
