"""Secret scan of everything a workflow run leaves behind, for every test that runs the local engine.

What is scanned, per ``LocalEngine.run``: every event of the execution history; every line the Lambda
handlers wrote (the engine's log stream: Powertools' JSON) and every record that reached Python logging
during the run (the adapters' loggers, the tracer's exception records); every object in the reports bucket.

What counts as a leak (:class:`SecretScanner`):

* an EKS bearer token (``k8s-aws-v1.`` + base64url), a PEM block (``-----BEGIN``), kubeconfig credential
  fields (``client-certificate-data``, ``client-key-data``, ``token:``), a JSON field named like a
  credential (``SecretAccessKey``, ``SessionToken``, ``token``...);
* the secret access keys and session tokens the simulator's STS actually issued (read from moto), and the
  generic shape of a secret access key (40 characters of base64 with upper case, lower case and digits,
  standing alone);
* any value a test declares secret (``scanner.add_known(...)``: e.g. the data of Secrets it seeded), as
  given and base64-encoded.

Hooked from tests/conftest.py (``pytest_plugins``): the autouse fixture fails a test whose runs leaked.
Written by hand because the scanners that exist (detect-secrets, trufflehog, gitleaks) scan files or git
history, not a run's in-memory history, logs and S3 objects, and none knows the credentials moto issued.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

# (name, pattern) of what is a secret wherever it appears.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EKS bearer token", re.compile(r"k8s-aws-v1\.[A-Za-z0-9_-]{16,}")),
    ("PEM block", re.compile(r"-----BEGIN [A-Z0-9 ]*-----")),
    ("kubeconfig client certificate", re.compile(r"client-certificate-data")),
    ("kubeconfig client key", re.compile(r"client-key-data")),
    ("kubeconfig token", re.compile(r"(?<![A-Za-z_-])token:\s*\S")),
    (
        "credential field",
        re.compile(
            r"[\"'](?:SecretAccessKey|SessionToken|secretAccessKey|sessionToken|aws_secret_access_key|"
            r"aws_session_token|token|bearerToken|password)[\"']\s*:\s*[\"'][^\"']"
        ),
    ),
    # A secret access key's shape: exactly 40 base64 characters, upper and lower case and digits, not part of
    # a longer base64 run (a CA bundle or user data) nor of a hex digest (no upper case there).
    (
        "AWS secret access key (40-character pattern)",
        re.compile(
            r"(?<![A-Za-z0-9/+])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*[0-9])"
            r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
        ),
    ),
)


@dataclass(frozen=True)
class Leak:
    where: str  # "history of <execution>: event 12 (TaskSucceeded)", "log line 3", "s3://bucket/key"
    what: str  # the pattern's name, or "known secret"
    excerpt: str  # the match, cut short: the report must not become the leak

    def __str__(self) -> str:
        return f"{self.where}: {self.what} ({self.excerpt})"


def _excerpt(text: str) -> str:
    return text[:12] + "..." if len(text) > 12 else text


@dataclass
class SecretScanner:
    known: set[str] = field(default_factory=set)

    def add_known(self, *values: str) -> None:
        """Values that must appear nowhere, in clear or base64-encoded (as a Secret's ``data`` holds them)."""
        for value in values:
            if len(value) >= 8:  # shorter values would match by chance
                self.known.add(value)
                self.known.add(base64.b64encode(value.encode()).decode())

    def scan(self, where: str, text: str) -> list[Leak]:
        leaks = [
            Leak(where, name, _excerpt(match.group(0)))
            for name, pattern in PATTERNS
            for match in pattern.finditer(text)
        ]
        leaks += [
            Leak(where, "known secret", _excerpt(value)) for value in sorted(self.known) if value in text
        ]
        return leaks


def sts_issued_secrets() -> set[str]:
    """The secret access keys and session tokens moto's STS issued in this process (AssumeRole)."""
    from moto.sts.models import sts_backends

    issued: set[str] = set()
    for by_partition in sts_backends.values():
        for backend in by_partition.values():
            for role in backend.assumed_roles:
                issued.update({role.secret_access_key, role.session_token})
    return issued


def history_texts(name: str, history: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for number, event in enumerate(history, 1):
        yield f"history of {name}: event {number} ({event.get('type')})", json.dumps(event, default=str)


def report_texts(s3: Any, bucket: str) -> Iterator[tuple[str, str]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            yield f"s3://{bucket}/{entry['Key']}", entry["Key"] + "\n" + body.decode("utf-8", "replace")


class _Records(logging.Handler):
    """Every Python logging record of the run, as text with its extra fields and exception."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)  # what a Lambda at LOG_LEVEL=INFO writes
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exception = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        fields = {k: v for k, v in record.__dict__.items() if k not in ("exc_info", "args", "msg")}
        self.texts.append(f"{record.getMessage()} {fields!r} {exception}")


@dataclass
class RunScan:
    """Wraps ``LocalEngine.run`` for one test: each run's outputs are scanned while moto is still up."""

    scanner: SecretScanner = field(default_factory=SecretScanner)
    leaks: list[Leak] = field(default_factory=list)
    runs: int = 0
    scanned: int = 0  # texts looked at (a scan that saw nothing proves nothing)

    def after_run(self, engine: Any, result: Any, log_text: str, records: list[str]) -> None:
        self.runs += 1
        self.scanner.known |= sts_issued_secrets()
        texts = list(history_texts(result.name, result.history))
        texts += [
            (f"log of {result.name}: line {n}", line) for n, line in enumerate(log_text.splitlines(), 1)
        ]
        texts += [(f"logging record of {result.name} #{n}", text) for n, text in enumerate(records, 1)]
        texts += list(report_texts(engine.client("s3"), engine.report_bucket))
        self.scanned += len(texts)
        for where, text in texts:
            self.leaks += self.scanner.scan(where, text)


@pytest.fixture
def secret_scan(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunScan]:
    """Every ``LocalEngine.run`` of the test is scanned; the test fails if anything leaked."""
    from simulator.engine import LocalEngine

    scan = RunScan()
    original = LocalEngine.run

    def run(self: LocalEngine, machine: str, name: str, execution_input: Any) -> Any:
        records = _Records()
        root = logging.getLogger()
        root.addHandler(records)
        log_start = len(self.runtime.log.getvalue()) if hasattr(self.runtime.log, "getvalue") else 0
        try:
            result = original(self, machine, name, execution_input)
        finally:
            root.removeHandler(records)
        log_text = self.runtime.log.getvalue()[log_start:] if hasattr(self.runtime.log, "getvalue") else ""
        scan.after_run(self, result, log_text, records.texts)
        return result

    monkeypatch.setattr(LocalEngine, "run", run)
    yield scan


@pytest.fixture(autouse=True)
def _no_secret_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Autouse: a test that ran the local engine fails if a run left a secret anywhere. A test that plants
    a leak on purpose uses the ``secret_scan`` fixture itself and is marked ``plants_secrets``."""
    if request.node.get_closest_marker("plants_secrets"):
        yield
        return
    scan: RunScan = request.getfixturevalue("secret_scan")
    yield
    fail_on_leaks(scan)


def fail_on_leaks(scan: RunScan) -> None:
    if scan.leaks:
        shown = "\n".join(str(leak) for leak in scan.leaks[:20])
        pytest.fail(
            f"{len(scan.leaks)} secret(s) leaked by this test's workflow runs:\n{shown}", pytrace=False
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "plants_secrets: the test leaks a secret on purpose; the suite-wide secret scan skips it"
    )
