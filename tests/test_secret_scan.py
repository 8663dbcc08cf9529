"""The secret scan (tests/secret_scan.py): it catches each kind of secret, it finds nothing in the history,
logs and reports of representative workflows run on a cluster full of secrets, and it fails when a secret
does leak (three leaks planted the way they happen: a debug print, a logged credential, a lost redaction).
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.scenario import Scenario
from simulator.simulation import Simulation
from tests.secret_scan import RunScan, SecretScanner, fail_on_leaks, sts_issued_secrets

SCENARIOS = Path(__file__).parent / "scenarios"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # the shape of a secret access key
CLIENT_KEY = base64.b64encode(b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKJ1c2VyLWtleQ==\n").decode()
KUBECONFIG = (
    "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n"
    f"    client-certificate-data: {base64.b64encode(b'certificate-bytes').decode()}\n"
    f"    client-key-data: {CLIENT_KEY}\n    token: kubeconfig-static-token-0123456789\n"
)
TLS_KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
DB_PASSWORD = "correct-horse-battery-staple-42"
SEEDED_VALUES = (AWS_SECRET, KUBECONFIG, TLS_KEY, DB_PASSWORD, "kubeconfig-static-token-0123456789")


def secrets_manifests() -> list[dict[str, Any]]:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "admin-kubeconfig", "namespace": "default"},
            "stringData": {"config": KUBECONFIG},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "ingress-tls", "namespace": "default"},
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": b64("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
                "tls.key": b64(TLS_KEY),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "backup-credentials", "namespace": "default"},
            "stringData": {"AWS_SECRET_ACCESS_KEY": AWS_SECRET, "DB_PASSWORD": DB_PASSWORD},
        },
    ]


def with_secrets(file: str) -> Scenario:
    """A scenario file of tests/scenarios, its first cluster seeded with Secrets worth stealing."""
    raw = yaml.safe_load((SCENARIOS / file).read_text())
    cluster = raw["accounts"][0]["clusters"][0]
    cluster["manifests"] = [*cluster.get("manifests", []), *secrets_manifests()]
    return Scenario.model_validate(raw)


# -- the scanner -----------------------------------------------------------------------------------------------

LEAKS = {
    "EKS token": (
        "Authorization: Bearer k8s-aws-v1.aHR0cHM6Ly9zdHMuZXUtd2VzdC0xLmFtYXpvbmF3cy5jb20v",
        "EKS bearer token",
    ),
    "PEM": ('{"userData": "-----BEGIN RSA PRIVATE KEY-----"}', "PEM block"),
    "client key": ("client-key-data: LS0tLS1CRUdJTi", "kubeconfig client key"),
    "client certificate": ("client-certificate-data: LS0t", "kubeconfig client certificate"),
    "kubeconfig token": ("    token: abc.def", "kubeconfig token"),
    "logged session token": ('{"SessionToken": "FwoGZXIvYXdzEBYaD"}', "credential field"),
    "40-character key": (f"aws_secret={AWS_SECRET} rest", "AWS secret access key (40-character pattern)"),
}


@pytest.mark.parametrize(("text", "kind"), LEAKS.values(), ids=LEAKS.keys())
def test_the_scanner_names_each_kind_of_secret(text, kind):
    assert kind in {leak.what for leak in SecretScanner().scan("here", text)}


BENIGN = {
    "sha1 digest": "commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "uuid": "updateId a6e5f2b0-c6b7-4a20-b113-638099f79afb",
    "long base64 blob": "userData " + base64.b64encode(bytes(range(256)) * 4).decode(),
    "client request token field": '{"clientRequestToken": "exec-1-payments-1.24"}',
    "execution arn": "arn:aws:states:us-east-1:123456789012:execution:cluster_upgrade:e2e-succeeds-333333333333",
    "redacted secret": '{"kind": "Secret", "metadata": {"name": "db"}, "type": "Opaque", "dataKeys": ["password"]}',
}


@pytest.mark.parametrize("text", BENIGN.values(), ids=BENIGN.keys())
def test_the_scanner_leaves_ordinary_identifiers_alone(text):
    assert SecretScanner().scan("here", text) == []


def test_known_values_are_found_in_clear_and_base64_and_never_echoed_whole():
    scanner = SecretScanner()
    scanner.add_known(DB_PASSWORD)
    encoded = base64.b64encode(DB_PASSWORD.encode()).decode()
    assert [leak.what for leak in scanner.scan("x", f"data: {encoded}")] == ["known secret"]
    [leak] = scanner.scan("x", f"password={DB_PASSWORD}")
    assert DB_PASSWORD not in str(leak)  # the report of a leak is not a leak


# -- representative workflows: nothing leaks ---------------------------------------------------------------------

WORKFLOWS = {
    "full upgrade": ("one-cluster-succeeds.yaml", "SUCCEEDED"),
    "blocked by the readiness gate": ("readiness-docker-socket.yaml", "BLOCKED"),
    "failed control plane update": ("one-cluster-fails.yaml", "FAILED"),
}


@pytest.mark.parametrize(("file", "status"), WORKFLOWS.values(), ids=WORKFLOWS.keys())
def test_history_logs_and_reports_of_a_workflow_hold_no_secret(secret_scan: RunScan, file, status):
    # Given a cluster holding a kubeconfig, a TLS key and cloud credentials in Secrets
    spec = with_secrets(file)
    secret_scan.scanner.add_known(*SEEDED_VALUES)
    with Simulation(spec) as sim:
        # When the workflow runs (the readiness scan lists every Secret of the cluster)
        run = sim.run_cluster(*spec.clusters()[0])
        issued = sts_issued_secrets()
        assert sim.kube_server is not None
        secrets_listed = [r.status for r in sim.kube_server.requests if r.path == "/api/v1/secrets"]
    # Then it ends as the scenario says, and the scan looked at every history event, log line and report
    assert run.status == status, run.failure()
    assert secret_scan.runs == 1 and secret_scan.scanned >= len(run.result.history) + 1
    # And it knew the credentials STS issued to the steps (a key and a token per AssumeRole)
    assert len(issued & secret_scan.scanner.known) >= 2
    # And found none of them, no token, no key, no Secret value
    assert secret_scan.leaks == []
    # Even though the readiness scan read every Secret of the cluster
    assert secrets_listed and set(secrets_listed) == {200}


# -- a leak fails the test ----------------------------------------------------------------------------------------


def print_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    import upgrader.wiring

    real = upgrader.wiring.eks_token

    def noisy(*args: Any, **kwargs: Any) -> str:
        token = real(*args, **kwargs)
        print(f"DEBUG using token {token}")  # the classic debugging leftover
        return token

    monkeypatch.setattr(upgrader.wiring, "eks_token", noisy)


def log_the_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from upgrader.gateways import aws

    real = aws.TargetAccount.__init__

    def chatty(self: Any, base: Any, credentials: dict[str, Any], region: str, config: Any) -> None:
        logging.getLogger("eks-fleet-upgrader.debug").warning(
            "assumed the target role", extra={"credentials": credentials}
        )
        real(self, base, credentials, region, config)

    monkeypatch.setattr(aws.TargetAccount, "__init__", chatty)


def put_the_raw_answer_in_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from upgrader.errors import UnexpectedKubernetesError
    from upgrader.gateways import kubernetes

    monkeypatch.setattr(kubernetes, "without_secret_values", lambda obj: dict(obj))  # redaction lost
    real = kubernetes.ApiKubernetesGateway.list_objects

    def careless(self: Any, kind: str) -> Any:
        outcome = real(self, kind)
        if kind == "Secret":  # an error whose details carry the API's raw answer
            raise UnexpectedKubernetesError("list Secret: unexpected answer", answer=list(outcome.objects))
        return outcome

    monkeypatch.setattr(kubernetes.ApiKubernetesGateway, "list_objects", careless)


PLANTED = {
    "a printed EKS token": (print_the_token, "EKS bearer token", "log of"),
    "logged STS credentials": (log_the_credentials, "known secret", "logging record of"),
    "Secret values in an error": (put_the_raw_answer_in_an_error, "known secret", "history of"),
}


@pytest.mark.plants_secrets
@pytest.mark.parametrize(("plant", "kind", "where"), PLANTED.values(), ids=PLANTED.keys())
def test_a_planted_leak_is_found_where_it_leaked(secret_scan: RunScan, monkeypatch, plant, kind, where):
    # Given the blocked workflow (it assumes the role, signs a token, lists Secrets and writes a report)
    # with one leak planted
    spec = with_secrets("readiness-docker-socket.yaml")
    secret_scan.scanner.add_known(*SEEDED_VALUES)
    plant(monkeypatch)
    with Simulation(spec) as sim:
        sim.run_cluster(*spec.clusters()[0])
    # Then the scan reports it, and where
    assert any(leak.what == kind and leak.where.startswith(where) for leak in secret_scan.leaks), [
        str(leak) for leak in secret_scan.leaks
    ]


def test_the_suite_wide_check_fails_a_test_whose_runs_leaked():
    # The autouse fixture of tests/secret_scan.py ends every test with this check
    scan = RunScan()
    fail_on_leaks(scan)  # nothing leaked: the test goes on
    scan.leaks += SecretScanner().scan(
        "log of run-1: line 3", "DEBUG k8s-aws-v1.aHR0cHM6Ly9zdHMuZXUtd2VzdC0x"
    )
    with pytest.raises(
        pytest.fail.Exception, match=r"1 secret\(s\) leaked.*\n.*log of run-1: line 3: EKS bearer token"
    ):
        fail_on_leaks(scan)
