"""RBAC in the emulated API servers (simulator/kube/rbac.py): the shipped ClusterRole, read from
infra/kubernetes/orchestrator-clusterrole.yaml, decides every request before it is routed; a refusal is the
API server's 403 Status, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from upgrader.gateways.kubernetes import api_client, kubernetes_error

from simulator.clock import VirtualClock
from simulator.kube.apiserver import KubeApiServer, serve
from simulator.kube.rbac import (
    ORCHESTRATOR_MANIFEST,
    ClusterAuthorizer,
    Policy,
    RbacManifestError,
    RequestAttributes,
    request_attributes,
)
from simulator.kube.world import KubeWorld

CLUSTER = "111111111111-eu-west-1-payments"
ROLE = Policy.from_manifest()


def attrs(verb: str, resource: str, group: str = "", *, sub: str = "", ns: str = "", name: str = ""):
    return RequestAttributes(verb, group, resource, sub, ns, name)


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "api/v1/nodes", {}, attrs("list", "nodes")),
        ("GET", "api/v1/nodes", {"watch": "true"}, attrs("watch", "nodes")),
        ("PATCH", "api/v1/nodes/n1", {}, attrs("patch", "nodes", name="n1")),
        ("GET", "api/v1/pods", {"fieldSelector": "spec.nodeName=n1"}, attrs("list", "pods")),
        (
            "POST",
            "api/v1/namespaces/shop/pods/web-1/eviction",
            {},
            attrs("create", "pods", sub="eviction", ns="shop", name="web-1"),
        ),
        ("DELETE", "api/v1/namespaces/shop/pods/web-1", {}, attrs("delete", "pods", ns="shop", name="web-1")),
        ("DELETE", "api/v1/namespaces/shop/pods", {}, attrs("deletecollection", "pods", ns="shop")),
        (
            "GET",
            "apis/apps/v1/namespaces/shop/replicasets/web-1",
            {},
            attrs("get", "replicasets", "apps", ns="shop", name="web-1"),
        ),
        (
            "PUT",
            "apis/apps/v1/namespaces/shop/deployments/web",
            {},
            attrs("update", "deployments", "apps", ns="shop", name="web"),
        ),
        ("GET", "api/v1/namespaces/shop", {}, attrs("get", "namespaces", ns="shop", name="shop")),
        (
            "GET",
            "api/v1/namespaces/shop/status",
            {},
            attrs("get", "namespaces", sub="status", ns="shop", name="shop"),
        ),
    ],
)
def test_requests_resolve_to_the_attributes_the_api_server_authorizes(method, path, query, expected):
    resolved = request_attributes(method, path.split("/"), query)
    assert resolved == RequestAttributes(**{**expected.__dict__, "path": "/" + path})


@pytest.mark.parametrize(
    "request_",
    [
        attrs("list", "nodes"),
        attrs("patch", "nodes", name="n1"),
        attrs("list", "pods"),
        attrs("create", "pods", sub="eviction", ns="shop", name="web-1"),
        attrs("delete", "pods", ns="shop", name="web-1"),  # the optional force-drain role, bound too
        attrs("get", "replicasets", "apps", ns="shop", name="web-1"),
        attrs("get", "statefulsets", "apps", ns="shop", name="db"),
        attrs("get", "replicationcontrollers", ns="shop", name="legacy"),
        attrs("list", "poddisruptionbudgets", "policy", ns="shop"),
        attrs("list", "secrets"),
        attrs("list", "horizontalpodautoscalers", "autoscaling"),
        RequestAttributes("get", path="/version"),
    ],
)
def test_the_role_allows_what_the_workflow_calls(request_):
    assert ROLE.allows(request_)


@pytest.mark.parametrize(
    "request_",
    [
        attrs("watch", "nodes"),
        attrs("delete", "nodes", name="n1"),
        attrs("patch", "pods", ns="shop", name="web-1"),
        attrs("create", "pods", ns="shop"),
        attrs("get", "secrets", ns="shop", name="db-password"),
        attrs("get", "configmaps", ns="kube-system", name="aws-auth"),
        attrs("update", "configmaps", ns="kube-system", name="aws-auth"),
        attrs("delete", "deployments", "apps", ns="shop", name="web"),
        attrs("create", "pods", sub="exec", ns="shop", name="web-1"),
        attrs("list", "roles", "rbac.authorization.k8s.io"),
        attrs("create", "clusterrolebindings", "rbac.authorization.k8s.io"),
        attrs("list", "nodes", "apps"),  # the right resource in the wrong API group
        RequestAttributes("get", path="/metrics"),
    ],
)
def test_the_role_refuses_everything_else(request_):
    assert not ROLE.allows(request_)


def test_without_takes_one_grant_away_and_keeps_the_rest():
    trimmed = ROLE.without("pods/eviction")
    assert not trimmed.allows(attrs("create", "pods", sub="eviction", ns="shop", name="web-1"))
    assert trimmed.allows(attrs("list", "pods")) and trimmed.allows(attrs("patch", "nodes", name="n1"))
    no_patch = ROLE.without("nodes", "patch")
    assert not no_patch.allows(attrs("patch", "nodes", name="n1")) and no_patch.allows(attrs("list", "nodes"))


def test_a_manifest_that_binds_the_group_to_nothing_or_holds_other_kinds_is_refused(tmp_path: Path):
    unbound = tmp_path / "unbound.yaml"
    unbound.write_text(ORCHESTRATOR_MANIFEST.read_text().replace("name: eks-fleet-upgrader\n", "name: x\n"))
    with pytest.raises(RbacManifestError, match="bound to"):
        Policy.from_manifest(unbound, group="someone-else")
    other = tmp_path / "other.yaml"
    other.write_text("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\n")
    with pytest.raises(RbacManifestError, match="only ClusterRole"):
        Policy.from_manifest(other)


# -- over HTTP ----------------------------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[KubeApiServer, KubeWorld, client.ApiClient]]:
    world = KubeWorld("payments", VirtualClock(), "1.23", pod_ready_seconds=10)
    world.register_nodes(
        "ng-1",
        ["i-1", "i-2"],
        kubelet_version="v1.23.17-eks-a59e1f0",
        container_runtime="docker://20.10.25",
        instance_type="m5.large",
        labels={"eks.amazonaws.com/nodegroup": "ng-1"},
        taints=[],
        pods_per_node=17,
        ready_at=0.0,
    )
    world.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    world.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "shop"},
            "data": {"a": "1"},
        }
    )
    with serve({CLUSTER: world}, lambda cluster, token: True, ClusterAuthorizer()) as server:
        yield server, world, api_client(server.url_for(CLUSTER), None, "k8s-aws-v1.test")


def test_a_call_outside_the_role_gets_the_api_servers_403_status_and_changes_nothing(served):
    server, world, api = served
    core = client.CoreV1Api(api)
    # When the orchestrator's identity tries to delete a ConfigMap (no rule grants it)
    with pytest.raises(ApiException) as refused:
        core.delete_namespaced_config_map("settings", "shop")
    # Then the answer is a 403 Status in the API server's words, and the ConfigMap is still there
    assert refused.value.status == 403
    body = json.loads(refused.value.body)
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["reason"] == "Forbidden"
    assert body["message"] == (
        'configmaps "settings" is forbidden: User "eks-fleet-upgrader" cannot delete resource "configmaps" '
        'in API group "" in the namespace "shop"'
    )
    assert body["details"] == {"name": "settings", "kind": "configmaps"}
    assert world.get("ConfigMap", "shop", "settings")["data"] == {"a": "1"}
    assert [(c, r.verb, r.resource) for c, r in server.authorizer.refusals] == [
        (CLUSTER, "delete", "configmaps")
    ]
    # And a request the role allows goes through on the same connection
    assert len(core.list_node().items) == 2
    assert [r.status for r in server.requests_to(CLUSTER)] == [403, 200]


def test_a_cluster_restricted_further_refuses_evictions_with_the_access_error_and_its_fix(served):
    server, world, api = served
    server.authorizer.restrict(CLUSTER, ROLE.without("pods/eviction"))
    core = client.CoreV1Api(api)
    world.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "shop"},
            "spec": {"containers": [{"name": "web", "image": "web"}]},
        }
    )
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name="web-1", namespace="shop"))
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod_eviction("web-1", "shop", body)
    assert refused.value.status == 403
    assert 'cannot create resource "pods/eviction"' in json.loads(refused.value.body)["message"]
    assert world.get("Pod", "shop", "web-1")["metadata"]["name"] == "web-1"  # still there
    # And the product's translation names the error, the refused call and the fix
    error = kubernetes_error(403, refused.value.body, "evict pod shop/web-1")
    assert type(error).__name__ == "KubernetesAccessDenied"
    assert "evict pod shop/web-1" in error.message
    assert "orchestrator-clusterrole.yaml" in error.message and "access entry" in error.message


def test_the_per_kind_deny_list_still_refuses_lists_on_top_of_the_role(served):
    server, _, api = served
    server.forbid(CLUSTER, "secrets")
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(api).list_secret_for_all_namespaces()
    assert refused.value.status == 403
    assert json.loads(refused.value.body)["message"].startswith("secrets is forbidden")
    assert server.authorizer.refusals == []  # the role allowed it; the deny list refused it


def test_without_an_authorizer_the_emulator_stays_cluster_admin():
    world = KubeWorld("plain", VirtualClock(), "1.23")
    world.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    with serve({"c": world}, lambda cluster, token: True) as server:
        core = client.CoreV1Api(api_client(server.url_for("c"), None, "k8s-aws-v1.test"))
        core.create_namespaced_config_map("shop", {"metadata": {"name": "x"}, "data": {}})
        assert world.get("ConfigMap", "shop", "x")["metadata"]["name"] == "x"
