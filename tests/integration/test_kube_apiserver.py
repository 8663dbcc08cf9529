"""The emulated API servers (simulator/kube/apiserver.py) as the product sees them: the official
``kubernetes`` client built by ``upgrader.gateways.kubernetes.api_client`` with an ``eks_token``
signed by target-account credentials (moto), against ``serve(...)`` on loopback."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import itertools
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from moto import mock_aws
from upgrader.gateways.kubernetes import api_client, eks_token, retry_policy
from urllib3.exceptions import MaxRetryError

from simulator.clock import VirtualClock
from simulator.kube.apiserver import KubeApiServer, serve
from simulator.kube.tokens import token_checker
from simulator.kube.world import KubeWorld

REGION = "eu-west-1"
ACCOUNT = "111111111111"
OTHER_ACCOUNT = "222222222222"
KUBELET = "v1.23.17-eks-a59e1f0"
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, Any]]:
    """moto, and an STS client signing as a role in each of two accounts."""
    with mock_aws():
        base = boto3.client("sts", region_name=REGION)

        def sts_in(account: str) -> Any:
            creds = base.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/eks-fleet-upgrader-target", RoleSessionName="test-run"
            )["Credentials"]
            return boto3.client(
                "sts",
                region_name=REGION,
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )

        yield {"sts": sts_in(ACCOUNT), "other_sts": sts_in(OTHER_ACCOUNT)}


@pytest.fixture(scope="module")
def registry(
    aws: dict[str, Any],
) -> Iterator[tuple[KubeApiServer, dict[str, KubeWorld], dict[str, tuple[str, str]]]]:
    worlds: dict[str, KubeWorld] = {}
    clusters: dict[str, tuple[str, str]] = {}
    with serve(worlds, token_checker(clusters)) as server:
        yield server, worlds, clusters


class Cluster:
    def __init__(self, server: KubeApiServer, world: KubeWorld, cluster_id: str, name: str, sts: Any) -> None:
        self.server, self.world, self.id, self.name = server, world, cluster_id, name
        self.clock = world.clock
        self.api = api_client(server.url_for(cluster_id), None, eks_token(sts, name))
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.policy = client.PolicyV1Api(self.api)

    def requests(self, method: str | None = None) -> list[Any]:
        return self.server.requests_to(self.id, method)


@pytest.fixture
def make_cluster(registry, aws) -> Callable[..., Cluster]:
    """A fresh cluster (its own world, id and name) with 3 Ready nodes, served by the shared server."""
    server, worlds, clusters = registry

    def make(nodes: int = 3) -> Cluster:
        number = next(_numbers)
        cluster_id, name = f"{ACCOUNT}/{REGION}/cluster-{number}", f"cluster-{number}"
        world = KubeWorld(name, VirtualClock(), "1.23", pod_ready_seconds=10)
        world.register_nodes(
            "ng-1",
            [f"i-{number}-{i}" for i in range(nodes)],
            kubelet_version=KUBELET,
            container_runtime="docker://20.10.25",
            instance_type="m5.large",
            labels={"eks.amazonaws.com/nodegroup": "ng-1"},
            taints=[],
            pods_per_node=17,
            ready_at=0.0,
        )
        worlds[cluster_id] = world
        clusters[cluster_id] = (name, ACCOUNT)
        return Cluster(server, world, cluster_id, name, aws["sts"])

    return make


def deploy(world: KubeWorld, name: str, replicas: int, namespace: str = "shop", tier: str = "web") -> None:
    labels = {"app": name, "tier": tier}
    world.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": name, "image": name}]},
                },
            },
        }
    )


def status_body(error: ApiException) -> dict[str, Any]:
    return json.loads(error.body)


# -- reads ----------------------------------------------------------------------------------------


def test_list_pages_through_every_pod_with_limit_and_continue_on_a_consistent_snapshot(make_cluster):
    cluster = make_cluster()
    deploy(cluster.world, "web", 5)
    deploy(cluster.world, "api", 4, namespace="payments", tier="backend")
    cluster.clock.sleep(10)
    # When listing all namespaces two by two
    first = cluster.core.list_pod_for_all_namespaces(limit=2)
    assert first.kind == "PodList" and len(first.items) == 2
    assert first.metadata.remaining_item_count == 7 and first.metadata._continue
    # (a pod deleted mid-listing does not change the snapshot being paged)
    cluster.world.delete("Pod", "shop", cluster.world.list("Pod", "shop")[-1]["metadata"]["name"])
    names = [(p.metadata.namespace, p.metadata.name) for p in first.items]
    token = first.metadata._continue
    while token:
        page = cluster.core.list_pod_for_all_namespaces(limit=2, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [(p.metadata.namespace, p.metadata.name) for p in page.items]
        token = page.metadata._continue
    # Then every pod came exactly once, ordered by namespace and name
    assert len(names) == 9 and names == sorted(set(names))
    assert [n for n, _ in names] == ["payments"] * 4 + ["shop"] * 5


def test_list_filters_by_label_and_field_selectors(make_cluster):
    cluster = make_cluster()
    deploy(cluster.world, "web", 3)
    deploy(cluster.world, "api", 2, tier="backend")
    cluster.world.apply(  # a pod without the tier label
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "debug", "namespace": "shop", "labels": {"app": "debug"}},
            "spec": {"containers": [{"name": "sh", "image": "busybox"}]},
        }
    )
    node = cluster.world.list("Pod", "shop")[0]["spec"]["nodeName"]

    def names(**selectors: str) -> set[str]:
        return {p.metadata.labels["app"] for p in cluster.core.list_namespaced_pod("shop", **selectors).items}

    assert names(label_selector="app=web") == {"web"}
    assert names(label_selector="tier!=web") == {"api", "debug"}  # != and notin match a missing label
    assert names(label_selector="tier notin (backend)") == {"web", "debug"}
    assert names(label_selector="app in (web, api),tier notin (backend)") == {"web"}
    assert names(label_selector="app==debug") == {"debug"}
    assert names(label_selector="!tier") == {"debug"}
    assert names(label_selector="tier") == {"web", "api"}
    on_node = cluster.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    assert on_node and {p.spec.node_name for p in on_node} == {node}
    assert len(on_node) < 6
    assert len(cluster.core.list_namespaced_pod("shop", field_selector="status.phase=Pending").items) == 6
    assert cluster.core.list_namespaced_pod("shop", field_selector="status.phase!=Pending").items == []
    # Selectors the API server would reject are rejected with a BadRequest Status
    with pytest.raises(ApiException) as caught:
        cluster.core.list_namespaced_pod("shop", field_selector="spec.image=web")
    assert caught.value.status == 400
    assert status_body(caught.value)["message"] == "field label not supported: spec.image"


def test_get_answers_objects_and_404_status_for_unknown_ones(make_cluster):
    cluster = make_cluster()
    deploy(cluster.world, "web", 1)
    assert cluster.apps.read_namespaced_deployment("web", "shop").spec.replicas == 1
    with pytest.raises(ApiException) as caught:
        cluster.core.read_namespaced_pod("nope", "shop")
    assert caught.value.status == 404
    body = status_body(caught.value)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }
    with pytest.raises(ApiException) as caught:
        cluster.apps.read_namespaced_daemon_set("nope", "kube-system")
    assert status_body(caught.value)["message"] == 'daemonsets.apps "nope" not found'


def test_unknown_paths_are_404_status(make_cluster):
    cluster = make_cluster()
    response = cluster.api.call_api(
        "GET", f"{cluster.server.url_for(cluster.id)}/apis/apps/v1/widgets",
        header_params={"Authorization": cluster.api.configuration.get_api_key_with_prefix("authorization")},
    )  # fmt: skip
    response.read()
    assert response.status == 404
    assert json.loads(response.data)["reason"] == "NotFound"


def test_version_reports_the_control_plane(make_cluster):
    cluster = make_cluster()
    info = client.VersionApi(cluster.api).get_code()
    assert info.git_version.startswith("v1.23.") and info.minor == "23+"
    cluster.world.set_control_plane_version("1.24")
    assert client.VersionApi(cluster.api).get_code().git_version.startswith("v1.24.")


# -- writes -----------------------------------------------------------------------------------------


def test_cordon_with_a_merge_patch_and_taint_with_a_strategic_merge_patch(make_cluster):
    cluster = make_cluster()
    node = cluster.world.list("Node")[0]["metadata"]["name"]
    cordoned = cluster.core.patch_node(
        node, {"spec": {"unschedulable": True}}, _content_type="application/merge-patch+json"
    )
    assert cordoned.spec.unschedulable is True
    taint = {"key": "eks-fleet-upgrader/draining", "value": "true", "effect": "NoSchedule"}
    tainted = cluster.core.patch_node(
        node, {"spec": {"taints": [taint]}}, _content_type="application/strategic-merge-patch+json"
    )
    assert {(t.key, t.effect) for t in tainted.spec.taints} == {
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ("eks-fleet-upgrader/draining", "NoSchedule"),
    }
    # The client's default for a dict body is a strategic merge patch too
    untainted = cluster.core.patch_node(
        node, {"spec": {"taints": [{"key": taint["key"], "$patch": "delete"}]}}
    )
    assert [t.key for t in untainted.spec.taints] == ["node.kubernetes.io/unschedulable"]
    listed = cluster.core.list_node(field_selector="spec.unschedulable=true").items
    assert [n.metadata.name for n in listed] == [node]


def test_delete_removes_objects_and_controllers_replace_pods(make_cluster):
    cluster = make_cluster()
    deploy(cluster.world, "web", 2)
    victim = cluster.world.list("Pod", "shop")[0]["metadata"]["name"]
    deleted = cluster.core.delete_namespaced_pod(victim, "shop")
    assert deleted.metadata.name == victim and deleted.metadata.deletion_timestamp is not None
    remaining = [p.metadata.name for p in cluster.core.list_namespaced_pod("shop").items]
    assert len(remaining) == 2 and victim not in remaining
    cluster.world.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "shop"}}
    )
    status = cluster.core.delete_namespaced_config_map("cfg", "shop")
    assert status["status"] == "Success" and status["details"]["name"] == "cfg"
    assert cluster.world.invariants()["unexpectedDeletions"] == 2


def test_eviction_answers_201_429_and_500_and_a_refused_eviction_is_not_retried(make_cluster):
    cluster = make_cluster()
    deploy(cluster.world, "web", 3)
    cluster.clock.sleep(10)
    cluster.world.apply(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
        }
    )
    pods = [p.metadata.name for p in cluster.core.list_namespaced_pod("shop", label_selector="app=web").items]

    def evict(name: str) -> Any:
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace="shop"))
        return cluster.core.create_namespaced_pod_eviction(name, "shop", body)

    accepted = evict(pods[0])
    assert accepted.kind == "Status"
    assert cluster.requests("POST")[-1].status == 201
    posts_before = len(cluster.requests("POST"))
    with pytest.raises(ApiException) as refused:
        evict(pods[1])
    assert refused.value.status == 429
    assert status_body(refused.value)["reason"] == "TooManyRequests"
    assert status_body(refused.value)["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert len(cluster.requests("POST")) == posts_before + 1  # urllib3 did not retry the POST
    budget = cluster.policy.read_namespaced_pod_disruption_budget("web", "shop")
    assert budget.status.disruptions_allowed == 0 and budget.status.current_healthy == 2
    cluster.world.apply(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web-2", "namespace": "shop"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        }
    )
    with pytest.raises(ApiException) as several:
        evict(pods[2])
    assert several.value.status == 500
    assert "more than one PodDisruptionBudget" in status_body(several.value)["message"]
    assert cluster.world.invariants()["pdbViolations"] == 0


def test_reads_are_retried_on_5xx_and_429_with_retry_after(make_cluster, aws):
    cluster = make_cluster()
    # (the product's policy, without the backoff sleeps)
    token = eks_token(aws["sts"], cluster.name)
    core = client.CoreV1Api(
        api_client(cluster.server.url_for(cluster.id), None, token, retry=retry_policy(backoff_factor=0))
    )
    cluster.server.inject_failure(cluster.id, 503, times=1, method="GET")
    cluster.server.inject_failure(cluster.id, 429, times=1, method="GET", retry_after=0)
    nodes = core.list_node()
    assert len(nodes.items) == 3
    assert [r.status for r in cluster.requests("GET")] == [503, 429, 200]
    # Past the retry budget the last answer reaches the caller as an ApiException
    cluster.server.inject_failure(cluster.id, 503, times=10, method="GET")
    with pytest.raises(ApiException) as caught:
        core.list_node()
    assert caught.value.status == 503
    assert len(cluster.requests("GET")) == 3 + 4  # the first attempt and 3 retries


# -- authentication ---------------------------------------------------------------------------------


def test_requests_without_a_valid_token_for_the_cluster_are_401(make_cluster, aws):
    cluster = make_cluster()
    other = make_cluster()
    endpoint = cluster.server.url_for(cluster.id)
    attempts = {
        "no token": client.ApiClient(client.Configuration(host=endpoint)),
        "garbage": api_client(endpoint, None, "k8s-aws-v1.bm90IGEgdXJs"),
        "other account": api_client(endpoint, None, eks_token(aws["other_sts"], cluster.name)),
        "other cluster": api_client(endpoint, None, eks_token(aws["sts"], other.name)),
    }
    for why, api in attempts.items():
        with pytest.raises(ApiException) as caught:
            client.CoreV1Api(api).list_node()
        assert caught.value.status == 401, why
        assert status_body(caught.value)["reason"] == "Unauthorized"
    reasons = [reason for cluster_id, reason in cluster.server.rejections if cluster_id == cluster.id][-4:]
    assert reasons[0] == "no bearer token"
    assert "presigned" in reasons[1]
    assert f"account {OTHER_ACCOUNT}" in reasons[2]
    assert "signature does not match" in reasons[3]
    # And the right token works
    assert len(cluster.core.list_node().items) == 3


# -- the product's client ---------------------------------------------------------------------------


def _certificate_authority(name: str) -> tuple[Any, Any, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def https_server(tmp_path_factory) -> Iterator[tuple[str, bytes]]:
    """A TLS endpoint on 127.0.0.1 whose certificate the returned CA (PEM) signed."""
    ca_key, ca_cert, ca_pem = _certificate_authority("kubernetes")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    (directory / "server.pem").write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    version = json.dumps(KubeWorld("tls", VirtualClock(), "1.23").version_info()).encode()

    class Version(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(version)))
            self.end_headers()
            self.wfile.write(version)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Version)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "server.pem")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", ca_pem
    httpd.shutdown()
    httpd.server_close()


def test_api_client_trusts_the_cluster_ca_and_nothing_else(https_server):
    endpoint, ca_pem = https_server
    # Given the cluster's CA as DescribeCluster returns it (base64 PEM), the TLS endpoint is trusted
    api = api_client(endpoint, base64.b64encode(ca_pem).decode(), "token")
    assert client.VersionApi(api).get_code().minor == "23+"
    # And with another CA the connection is refused, not downgraded
    _, _, other_pem = _certificate_authority("someone-else")
    api = api_client(endpoint, base64.b64encode(other_pem).decode(), "token")
    with pytest.raises((ApiException, MaxRetryError)) as caught:
        client.VersionApi(api).get_code()
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)


def test_api_client_configuration_and_plain_http_refused_off_loopback():
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    api = api_client(
        "https://ABC.gr7.eu-west-1.eks.amazonaws.com", base64.b64encode(pem.encode()).decode(), "t"
    )
    configuration = api.configuration
    assert configuration.verify_ssl is True and configuration.ca_cert_data == pem
    assert configuration.get_api_key_with_prefix("authorization") == "Bearer t"
    assert "POST" not in configuration.retries.allowed_methods
    assert configuration.retries.respect_retry_after_header is True
    with pytest.raises(ValueError, match="plain http"):
        api_client("http://ABC.gr7.eu-west-1.eks.amazonaws.com", None, "t")
