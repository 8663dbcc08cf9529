"""The readiness gate in the real statemachines/cluster_upgrade.asl.json, on the local engine against a
simulated fleet: the ReadinessCheck Lambda scans the emulated cluster over HTTP and EKS/EC2 in moto."""

from __future__ import annotations

import json
from pathlib import Path

from upgrader.gateways.kubernetes import LISTABLE_KINDS
from upgrader.readiness_check import SCAN_KINDS

from simulator.scenario import load_scenario
from simulator.seed import account_session
from simulator.simulation import Simulation

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
ACKNOWLEDGE_DS001 = [
    {"rule": "DS001", "reason": "log agent moves to the CRI log path next sprint (CHG-1234)"}
]


def states_of(run) -> list[str]:
    return [name for _, name in run.result.states()]


def cluster_id(account, cluster) -> str:
    return f"{account.id}-{cluster.region}-{cluster.name}"


def list_path(kind: str) -> str:
    api_version = LISTABLE_KINDS[kind].api_version
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    plural = {
        "ReplicationController": "replicationcontrollers",
        "PodDisruptionBudget": "poddisruptionbudgets",
        "HorizontalPodAutoscaler": "horizontalpodautoscalers",
        "ServiceAccount": "serviceaccounts",
        "ConfigMap": "configmaps",
        "ReplicaSet": "replicasets",
        "StatefulSet": "statefulsets",
        "DaemonSet": "daemonsets",
        "CronJob": "cronjobs",
    }.get(kind, kind.lower() + "s")
    return f"{prefix}/{plural}"


def s3_text(sim: Simulation, key: str) -> str:
    return (
        sim.engine.client("s3").get_object(Bucket=sim.engine.report_bucket, Key=key)["Body"].read().decode()
    )


def test_a_docker_socket_blocks_the_cluster_before_any_change():
    # Given a 1.23 cluster whose log agent DaemonSet mounts the node's Docker socket
    scenario = load_scenario(SCENARIOS / "readiness-docker-socket.yaml")
    with Simulation(scenario) as sim:
        account, cluster = scenario.clusters()[0]
        # When the cluster workflow runs for 1.24
        run = sim.run_cluster(account, cluster)

        # Then it stops at the gate with ReadinessBlocked, reported BLOCKED, still on 1.23
        assert (run.result.status, run.result.error) == ("FAILED", "ReadinessBlocked")
        assert run.status == "BLOCKED"
        assert states_of(run)[-1] == "ReadinessCheck"
        assert (run.after["version"], run.after["status"]) == ("1.23", "ACTIVE")
        # And not a single mutating call reached AWS, nor a single write the cluster's API server
        assert sim.faults.mutating_calls() == []
        assert run.invariants["mutatingCalls"] == []
        assert {r.method for r in sim.kube_server.requests_to(cluster_id(account, cluster))} == {"GET"}
        # And the failure names the rule, the object, the field and the value
        failure = run.failure()
        assert failure["details"]["blockingRules"] == ["DS001"]
        [blocking] = failure["details"]["blocking"]
        assert (blocking["kind"], blocking["namespace"], blocking["name"]) == (
            "DaemonSet",
            "logging",
            "log-agent",
        )
        assert (blocking["path"], blocking["value"]) == (
            "spec.template.spec.volumes[0].hostPath.path",
            "/var/run/docker.sock",
        )
        # And the full report is in the reports bucket, where the failure says
        keys = failure["details"]["report"]
        assert keys["bucket"] == sim.engine.report_bucket
        report = json.loads(s3_text(sim, keys["jsonKey"]))
        assert report["gate"]["passed"] is False and report["gate"]["unacknowledgedBlockingRules"] == [
            "DS001"
        ]
        assert run.readiness == report
        assert "**Blocked**" in s3_text(sim, keys["markdownKey"])


def test_the_same_cluster_with_the_rule_acknowledged_is_upgraded_and_the_reason_kept():
    scenario = load_scenario(SCENARIOS / "readiness-docker-socket.yaml")
    with Simulation(scenario) as sim:
        account, cluster = scenario.clusters()[0]
        # When the input acknowledges DS001 with a reason
        run = sim.run_cluster(account, cluster, acknowledge=ACKNOWLEDGE_DS001)

        # Then the gate lets it through and the control plane moves to 1.24
        assert run.result.status == "SUCCEEDED", run.result.cause
        assert run.status == "SUCCEEDED"
        assert run.after["version"] == "1.24"
        readiness = run.result.output["readiness"]
        assert readiness["blockingRules"] == ["DS001"] and readiness["acknowledgedRules"] == ["DS001"]
        # (after the Docker node group's blue/green migration to containerd, which changes only EKS node
        # groups and their launch template)
        mutating = sim.faults.mutating_calls()
        calls = [f"{c.service}:{c.operation}" for c in mutating]
        assert calls.count("eks:UpdateClusterVersion") == 1
        control_plane = calls.index("eks:UpdateClusterVersion")
        assert {c.step for c in mutating[:control_plane]} <= {"CreateReplacementNodegroup", "RetireNodegroup"}
        # (then the containerd twin moves to 1.24 in place: a launch template version with the 1.24 AMI)
        assert {c.step for c in mutating[control_plane + 1 :]} <= {"UpdateAddons", "UpdateNodegroupVersions"}
        # And the S3 report records the acknowledged finding with its reason
        report = json.loads(s3_text(sim, readiness["report"]["jsonKey"]))
        [ds001] = [f for f in report["findings"] if f["rule"] == "DS001"]
        assert ds001["acknowledgment"] == {"reason": ACKNOWLEDGE_DS001[0]["reason"]}
        assert report["gate"]["acknowledged"] == [
            {"rule": "DS001", "reason": ACKNOWLEDGE_DS001[0]["reason"], "findings": 1}
        ]
        assert "CHG-1234" in s3_text(sim, readiness["report"]["markdownKey"])


def test_a_clean_cluster_passes_the_gate_with_one_list_call_per_kind():
    # Given a cluster with nothing blocking 1.24 (and a Secret whose value must not travel)
    scenario = load_scenario(SCENARIOS / "readiness-clean.yaml")
    with Simulation(scenario) as sim:
        account, cluster = scenario.clusters()[0]
        run = sim.run_cluster(account, cluster)

        # Then the gate passes and the upgrade completes
        assert run.result.status == "SUCCEEDED", run.result.cause
        assert states_of(run).index("ReadinessCheck") < states_of(run).index("StartControlPlaneUpdate")
        readiness = run.result.output["readiness"]
        assert readiness["counts"]["blocking"] == 0
        assert readiness["unreadableKinds"] == []
        # And the state carries a pointer and counts only (the report is in S3)
        assert len(json.dumps(readiness)) < 1024
        # And the scan listed each kind exactly once, cluster-wide, in pages of 500 (the node group
        # migration's requests come after it)
        requests = sim.kube_server.requests_to(cluster_id(account, cluster))[: len(SCAN_KINDS)]
        assert sorted(r.path for r in requests) == sorted(list_path(kind) for kind in SCAN_KINDS)
        assert all(r.method == "GET" and r.status == 200 and "limit=500" in r.query for r in requests)
        # And the Secret's value is nowhere in the report, while the Secret was scanned
        report_text = s3_text(sim, readiness["report"]["jsonKey"])
        assert "not-for-the-report" not in report_text
        assert "Secret" in json.loads(report_text)["inventory"]["collectedKinds"]
        # And the readiness report saw the HorizontalPodAutoscaler keeping api above one replica
        assert not any(
            f["rule"] == "GN008" and f["evidence"]["name"] == "api" for f in run.readiness["findings"]
        )


def test_an_update_already_under_way_is_adopted_without_a_second_gate():
    # Given a cluster already UPDATING to 1.24 (an earlier run started it, then lost track)
    scenario = load_scenario(SCENARIOS / "readiness-docker-socket.yaml")
    with Simulation(scenario) as sim:
        account, cluster = scenario.clusters()[0]
        eks = account_session(account.id).client("eks", region_name=cluster.region)
        eks.update_cluster_version(name=cluster.name, version="1.24")
        # When the workflow runs again with the input of that run (the docker socket would block a
        # new upgrade: the earlier run acknowledged DS001, and the verification at the end holds the
        # rerun to the same acknowledgment)
        run = sim.run_cluster(account, cluster, acknowledge=ACKNOWLEDGE_DS001)
        # Then it adopts the running update: the gate is for changes not yet started
        assert run.result.status == "SUCCEEDED", run.result.cause
        assert "ReadinessCheck" not in states_of(run)
        assert run.result.output["controlPlaneUpdate"]["adopted"] is True
