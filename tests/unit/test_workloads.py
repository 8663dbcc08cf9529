"""Scenario workload shorthand -> Kubernetes manifests, and the new scenario fields' validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from simulator.scenario import CrashStepSpec, WorkloadSpec
from simulator.workloads import manifests


def test_daemonset_with_docker_socket_becomes_a_hostpath_volume_and_mount():
    (ds,) = manifests(WorkloadSpec(kind="DaemonSet", name="log-agent", hostPaths=["/var/run/docker.sock"]))
    pod = ds["spec"]["template"]["spec"]
    assert ds["apiVersion"] == "apps/v1"
    assert pod["volumes"] == [{"name": "host-0", "hostPath": {"path": "/var/run/docker.sock"}}]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "host-0", "mountPath": "/var/run/docker.sock"}]
    assert ds["spec"]["selector"] == {"matchLabels": {"app": "log-agent"}}


def test_deployment_with_pdb_yields_a_matching_budget():
    deployment, pdb = manifests(
        WorkloadSpec(kind="Deployment", name="web", replicas=3, pdb={"minAvailable": 2})
    )
    assert deployment["spec"]["replicas"] == 3
    assert pdb["kind"] == "PodDisruptionBudget"
    assert pdb["spec"] == {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}


@pytest.mark.parametrize(
    ("kind", "api_version", "path"),
    [
        ("CronJob", "batch/v1", ("spec", "jobTemplate", "spec", "template", "spec")),
        ("Job", "batch/v1", ("spec", "template", "spec")),
        ("ReplicationController", "v1", ("spec", "template", "spec")),
        ("StatefulSet", "apps/v1", ("spec", "template", "spec")),
        ("Pod", "v1", ("spec",)),
    ],
)
def test_every_kind_carries_its_pod_spec(kind, api_version, path):
    (body,) = manifests(WorkloadSpec(kind=kind, name="w", env={"DOCKER_HOST": "unix:///var/run/docker.sock"}))
    node = body
    for key in path:
        node = node[key]
    assert body["apiVersion"] == api_version
    assert node["containers"][0]["env"] == [{"name": "DOCKER_HOST", "value": "unix:///var/run/docker.sock"}]


def test_suspended_cronjob_keeps_suspend():
    (cron,) = manifests(WorkloadSpec(kind="CronJob", name="nightly", suspend=True))
    assert cron["spec"]["suspend"] is True


@pytest.mark.parametrize("pdb", [{}, {"minAvailable": 1, "maxUnavailable": 1}, {"minimum": 1}])
def test_pdb_needs_exactly_one_budget(pdb):
    with pytest.raises(ValidationError, match="exactly one"):
        WorkloadSpec(kind="Deployment", name="web", pdb=pdb)


def test_crash_fault_names_a_real_step():
    assert CrashStepSpec(step="Preflight").at_call == 1
    with pytest.raises(ValidationError, match="unknown step 'Preflite'"):
        CrashStepSpec(step="Preflite")
