"""One contract, two implementations of KubernetesGateway: the in-memory fake the domain tests use, and
ApiKubernetesGateway (the official client, built as the product builds it: api_client + eks_token
signed by target-account credentials) against the simulator's API server. If they disagree, the fake
has drifted."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from upgrader.errors import KubernetesAccessDenied, TransientKubernetesError
from upgrader.gateways.eks import ClusterInfo
from upgrader.gateways.kubernetes import (
    LISTABLE_KINDS,
    ApiKubernetesGateway,
    KubernetesGateway,
    TokenRefresher,
    api_client,
    eks_token,
)
from upgrader.wiring import kubernetes_for

from simulator.clock import VirtualClock
from simulator.kube.apiserver import KubeApiServer, serve
from simulator.kube.tokens import token_checker
from simulator.kube.world import KubeWorld
from tests.fakes import FakeKubernetesGateway

REGION = "eu-west-1"
ACCOUNT = "111111111111"
PAGE = 3  # small pages: paging is exercised with a handful of objects
_numbers = itertools.count(1)
PLURALS = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Pod": "pods",
    "Deployment": "deployments",
    "Node": "nodes",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
}


@dataclass
class Harness:
    gateway: KubernetesGateway
    add: Callable[..., None]
    forbid: Callable[[str], None]
    expire_continue: Callable[[str, int], None]
    refuse_token: Callable[[], None]
    pages_of: Callable[[str], int]  # list requests the server saw for a kind


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[KubeApiServer, dict[str, KubeWorld], dict[str, tuple[str, str]], Any]]:
    with mock_aws():
        creds = boto3.client("sts", region_name=REGION).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/eks-fleet-upgrader-target", RoleSessionName="contract"
        )["Credentials"]
        sts = boto3.client(
            "sts",
            region_name=REGION,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        worlds: dict[str, KubeWorld] = {}
        clusters: dict[str, tuple[str, str]] = {}
        with serve(worlds, token_checker(clusters)) as server:
            yield server, worlds, clusters, sts


def _real(served: Any, page_size: int) -> Harness:
    server, worlds, clusters, sts = served
    number = next(_numbers)
    cluster_id, name = f"contract-{number}", f"contract-{number}"
    world = KubeWorld(name, VirtualClock(), "1.23")
    worlds[cluster_id] = world
    clusters[cluster_id] = (name, ACCOUNT)
    refused = {"token": False}

    def token() -> str:
        return "k8s-aws-v1.not-a-token" if refused["token"] else eks_token(sts, name)

    api = api_client(server.url_for(cluster_id), None, token())
    api.configuration.refresh_api_key_hook = lambda configuration: configuration.api_key.update(
        authorization=token()
    )

    def add(*manifests: dict[str, Any]) -> None:
        for manifest in manifests:
            world.apply(manifest)

    def expire(kind: str, times: int) -> None:
        server.inject_failure(
            cluster_id, 410, times=times, path_contains=f"/{PLURALS[kind]}", query_contains="continue="
        )

    def pages_of(kind: str) -> int:
        return sum(
            1
            for r in server.requests_to(cluster_id, "GET")
            if r.path.rstrip("/").endswith(f"/{PLURALS[kind]}")
        )

    def refuse() -> None:
        refused["token"] = True

    return Harness(
        ApiKubernetesGateway(api, page_size=page_size),
        add,
        lambda kind: server.forbid(cluster_id, PLURALS[kind]),
        expire,
        refuse,
        pages_of,
    )


def _fake(page_size: int) -> Harness:
    fake = FakeKubernetesGateway(page_size=page_size)
    return Harness(
        fake,
        fake.add,
        fake.forbid,
        fake.expire_continue,
        fake.refuse_token,
        lambda kind: fake.pages.count(kind),
    )


@pytest.fixture(params=["fake", "real"])
def harness(request, served) -> Harness:
    return _fake(PAGE) if request.param == "fake" else _real(served, PAGE)


def config_map(name: str, namespace: str = "default", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


# -- the contract -------------------------------------------------------------------------------------
def test_objects_of_every_namespace_come_back_whole_in_one_paginated_list(harness):
    # Given 7 ConfigMaps in three namespaces (pages of 3)
    harness.add(*(config_map(f"cm-{i}", f"ns-{i % 3}", key=f"value-{i}") for i in range(7)))
    # When the kind is listed
    outcome = harness.gateway.list_objects("ConfigMap")
    # Then every object comes back once, as a standalone object in API shape, in one list of 3 pages
    assert outcome.complete and not outcome.restarted
    names = sorted((o["metadata"]["namespace"], o["metadata"]["name"]) for o in outcome.objects)
    assert names == sorted((f"ns-{i % 3}", f"cm-{i}") for i in range(7))
    assert {(o["kind"], o["apiVersion"]) for o in outcome.objects} == {("ConfigMap", "v1")}
    assert {o["metadata"]["name"]: o["data"]["key"] for o in outcome.objects}["cm-4"] == "value-4"
    assert all("managedFields" not in o["metadata"] for o in outcome.objects)
    assert harness.pages_of("ConfigMap") == 3


def test_a_kind_without_objects_is_complete_and_empty(harness):
    outcome = harness.gateway.list_objects("HorizontalPodAutoscaler")
    assert (outcome.complete, outcome.objects) == (True, ())
    assert harness.pages_of("HorizontalPodAutoscaler") == 1


def test_secrets_come_back_without_their_values(harness):
    # Given a Secret applied with kubectl (its manifest, values included, kept in an annotation)
    applied = '{"stringData":{"password":"hunter2"}}'
    harness.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/basic-auth",
            "metadata": {
                "name": "db",
                "namespace": "shop",
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": applied,
                    "team": "shop",
                },
            },
            "data": {"username": base64.b64encode(b"admin").decode()},
            "stringData": {"password": "hunter2"},
        }
    )
    [secret] = harness.gateway.list_objects("Secret").objects
    # Then only metadata and type are left: no data, no stringData, no last-applied copy
    assert secret["type"] == "kubernetes.io/basic-auth"
    assert "data" not in secret and "stringData" not in secret
    assert secret["metadata"]["annotations"] == {"team": "shop"}
    assert "hunter2" not in repr(secret) and base64.b64encode(b"admin").decode() not in repr(secret)


def test_a_forbidden_kind_is_reported_unreadable_with_the_reason(harness):
    harness.add(config_map("visible"))
    harness.forbid("Secret")
    outcome = harness.gateway.list_objects("Secret")
    assert not outcome.complete and outcome.objects == ()
    assert outcome.unreadable.startswith("403 Forbidden: secrets is forbidden")
    # And other kinds are unaffected
    assert [o["metadata"]["name"] for o in harness.gateway.list_objects("ConfigMap").objects] == ["visible"]


def test_an_expired_continue_token_restarts_the_list_once(harness):
    # Given 7 objects (3 pages) and a continue token that expires once (410 Gone)
    harness.add(*(config_map(f"cm-{i}") for i in range(7)))
    harness.expire_continue("ConfigMap", 1)
    # When the kind is listed
    outcome = harness.gateway.list_objects("ConfigMap")
    # Then the list started over and still returns every object exactly once
    assert outcome.complete and outcome.restarted
    assert sorted(o["metadata"]["name"] for o in outcome.objects) == [f"cm-{i}" for i in range(7)]
    # first page, the refused continue, then the three pages of the new list
    assert harness.pages_of("ConfigMap") == 5


def test_a_continue_token_expiring_again_is_a_retryable_error(harness):
    harness.add(*(config_map(f"cm-{i}") for i in range(7)))
    harness.expire_continue("ConfigMap", 2)
    with pytest.raises(TransientKubernetesError):
        harness.gateway.list_objects("ConfigMap")


def test_a_refused_token_is_access_denied(harness):
    harness.refuse_token()
    with pytest.raises(KubernetesAccessDenied):
        harness.gateway.list_objects("Pod")


def test_only_known_kinds_can_be_listed(harness):
    with pytest.raises(ValueError, match="not listable"):
        harness.gateway.list_objects("Widget")


def test_every_listable_kind_is_served_by_the_simulator(served):
    # The scan lists all of these; the emulator must serve each (else the simulated scan would report
    # kinds as unreadable that a real cluster serves).
    harness = _real(served, 500)
    for kind in LISTABLE_KINDS:
        assert harness.gateway.list_objects(kind).complete, kind


def test_real_gateway_makes_one_request_per_kind_with_the_default_page_size(served):
    # Given 600 objects of one kind: more than one page of 500
    harness = _real(served, 500)
    harness.add(*(config_map(f"cm-{i:03d}") for i in range(600)))
    outcome = harness.gateway.list_objects("ConfigMap")
    assert len(outcome.objects) == 600
    assert harness.pages_of("ConfigMap") == 2  # limit=500, then one continue: never one call per namespace


class _TargetAccount:
    """What kubernetes_for needs of upgrader.gateways.aws.TargetAccount: its STS client."""

    def __init__(self, sts: Any) -> None:
        self._sts = sts

    def client(self, service: str) -> Any:
        assert service == "sts"
        return self._sts


def test_kubernetes_for_builds_the_gateway_from_describe_cluster_and_the_target_role(served):
    # Given a cluster as DescribeCluster describes it (the simulator's endpoint; no CA over loopback http)
    server, worlds, clusters, sts = served
    worlds["wired"] = world = KubeWorld("wired", VirtualClock(), "1.23")
    clusters["wired"] = ("wired", ACCOUNT)
    world.apply(config_map("hello"))
    info = ClusterInfo(name="wired", version="1.23", status="ACTIVE", endpoint=server.url_for("wired"))
    # When the step's builder makes the gateway with the target role's credentials
    gateway = kubernetes_for(info, _TargetAccount(sts))  # type: ignore[arg-type]
    # Then the cluster answers it
    assert [o["metadata"]["name"] for o in gateway.list_objects("ConfigMap").objects] == ["hello"]
    assert not any(cluster_id == "wired" for cluster_id, _ in server.rejections)


def test_tokens_are_minted_again_once_they_are_old():
    minted = iter(["token-2", "token-3"])
    configuration = type("Configuration", (), {"api_key": {"authorization": "token-1"}})()
    fresh = TokenRefresher(lambda: next(minted), max_age=30.0)
    fresh(configuration)
    assert configuration.api_key["authorization"] == "token-1"  # still young
    aged = TokenRefresher(lambda: next(minted), max_age=0.0)
    aged(configuration)
    assert configuration.api_key["authorization"] == "token-2"
