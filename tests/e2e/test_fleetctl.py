"""``fleetctl`` end to end, in-process: scenario file in, exit code and fleet report out.

Each simulated run costs a few seconds of wall time, so every run happens once per module
(module-scoped fixtures) and the tests only read what it produced.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleetctl.cli import DEMO_SCENARIO, main
from simulator.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
# The demo's clusters in scenario order; the IP-starved analytics-prod is the one expected to fail,
# platform-tools (fluentd on the Docker socket and Docker's log format) the one the readiness gate blocks.
DEMO_CLUSTERS = [(a.id, c.region, c.name) for a, c in load_scenario(DEMO_SCENARIO).clusters()]
BLOCKED = "platform-tools"
STATUSES = {"SUCCEEDED", "FAILED", "BLOCKED", "SKIPPED", "PLANNED"}
CLUSTER_KEYS = {
    "account",
    "region",
    "name",
    "status",
    "fromVersion",
    "toVersion",
    "executionName",
    "virtualDurationSeconds",
    "stateTransitions",
    "lambdaInvocations",
    "retries",
    "before",
    "after",
}


@dataclass
class Run:
    exit_code: int
    out: Path
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.out / "fleet-report.json").read_text())

    def cluster(self, name: str) -> dict[str, Any]:
        return next(c for c in self.report["clusters"] if c["name"] == name)


def _fleetctl(*argv: str, out: Path) -> Run:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([*argv, "--out", str(out)])
    return Run(code, out, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """`fleetctl demo`, run once: examples/fleets/demo.yaml (one cluster fails, one is blocked, on purpose)."""
    return _fleetctl("demo", out=tmp_path_factory.mktemp("demo") / "report")


@pytest.fixture(scope="module")
def succeeding(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _fleetctl(
        "simulate", str(SCENARIOS / "one-cluster-succeeds.yaml"), out=tmp_path_factory.mktemp("ok") / "out"
    )


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _fleetctl(
        "simulate", str(SCENARIOS / "one-cluster-fails.yaml"), out=tmp_path_factory.mktemp("ko") / "out"
    )


# -- fleetctl demo -----------------------------------------------------------------------------
def test_demo_exits_0_when_every_outcome_is_the_expected_one(demo):
    # Given the demo fleet, built to fail one cluster
    # When `fleetctl demo` runs
    # Then it exits 0, because every cluster ended as its `expect` says
    assert demo.exit_code == 0, demo.stderr
    assert "Every cluster ended as the scenario expects." in demo.stdout
    assert demo.stderr == ""


def test_demo_writes_the_json_report_its_markdown_and_the_lambda_log(demo):
    # When `fleetctl demo --out DIR` has run
    # Then DIR holds the three reports (the HTML page since the demo runs the fleet workflow) and the log
    assert sorted(p.name for p in demo.out.iterdir()) == [
        "fleet-report.html",
        "fleet-report.json",
        "fleet-report.md",
        "lambda.log",
    ]
    markdown = (demo.out / "fleet-report.md").read_text()
    assert markdown.startswith("# Fleet report: demo\n")
    assert "| 222222222222 | eu-west-1 | analytics-prod | FAILED | 1.23 | 1.23 |" in markdown
    # And the log is the handlers' structured JSON, with the failed step among it
    records = [json.loads(line) for line in (demo.out / "lambda.log").read_text().splitlines()]
    assert any(
        r.get("message") == "step stopped"
        and r.get("error") == "ControlPlaneUpdateFailed"
        and r.get("cluster") == "222222222222/eu-west-1/analytics-prod"
        for r in records
    )


def test_demo_report_has_the_documented_shape(demo):
    # When the demo's JSON report is read
    report = demo.report

    # Then every cluster entry has the documented keys and a known status
    assert report["schemaVersion"] == 1
    assert report["scenario"] == "demo"
    assert [(c["account"], c["region"], c["name"]) for c in report["clusters"]] == DEMO_CLUSTERS
    for cluster in report["clusters"]:
        assert cluster.keys() >= CLUSTER_KEYS
        assert cluster["status"] in STATUSES
        assert (cluster["fromVersion"], cluster["toVersion"]) == ("1.23", "1.24")
        assert (cluster["before"]["version"], cluster["before"]["status"]) == ("1.23", "ACTIVE")
        assert set(cluster["after"]) == {"version", "status", "nodegroups", "kubernetes"}
        assert cluster["invariants"].keys() == {
            "podsLost",
            "pdbViolations",
            "unexpectedDeletions",
            "mutatingCalls",
        }
    # And the totals are the sums of the clusters'
    clusters = report["clusters"]
    assert report["summary"] == {
        "succeeded": len(DEMO_CLUSTERS) - 2,
        "failed": 1,
        "blocked": 1,
        "skipped": 0,
        "planned": 0,
        "total": len(DEMO_CLUSTERS),
    }
    assert report["cost"]["stateTransitions"] == sum(c["stateTransitions"] for c in clusters) > 0
    assert report["cost"]["lambdaInvocations"] == sum(c["lambdaInvocations"] for c in clusters) > 0
    # (the demo runs the fleet workflow: the run's virtual time is the fleet execution's, waves one after
    # another with their soaks, a wave's clusters side by side)
    durations = [c["virtualDurationSeconds"] for c in clusters]
    assert report["virtualDurationSeconds"] == report["fleetExecution"]["virtualDurationSeconds"]
    assert max(durations) < report["virtualDurationSeconds"] < sum(durations) + 900 + 1800
    # And the virtual time is each Docker group's migration (twin created in 4 virtual minutes, drained,
    # old group deleted in 3), the control plane update (8), then the add-ons and each twin's rolling
    # update to 1.24 (nodes join in 1 minute, then drained node by node within the budgets); the
    # blocked cluster stopped at the gate, before any wait
    for c in clusters:
        if c["name"] != BLOCKED:
            assert (
                480 + 420 * len(c["nodegroups"])
                <= c["virtualDurationSeconds"]
                < 900 + 1500 * len(c["nodegroups"])
            ), c["name"]
    assert demo.cluster(BLOCKED)["virtualDurationSeconds"] < 60
    # And each entry has the node group migration and the nodes as they stand
    for c in clusters:
        assert all(
            g.keys() >= {"old", "new", "status", "nodesDrained", "podsEvicted", "pdbBlockedSeconds"}
            for g in c["nodegroups"]
        )
        assert all(
            n.keys() == {"name", "nodegroup", "kubeletVersion", "containerRuntimeVersion"} for n in c["nodes"]
        )
    # And every cluster went through the readiness gate, with its report in the reports bucket
    for cluster in clusters:
        readiness = cluster["readiness"]
        assert readiness.keys() >= {"passed", "counts", "blockingRules", "acknowledged", "report"}
        assert readiness["report"]["jsonKey"].endswith(f"/{cluster['name']}/readiness.json")
        assert readiness["passed"] is (cluster["name"] != BLOCKED)


@pytest.mark.parametrize("name", ["payments-prod", "payments-staging"])
def test_demo_upgrades_the_healthy_clusters_to_1_24(demo, name):
    # When the demo has run / Then each healthy cluster SUCCEEDED and is ACTIVE on 1.24
    cluster = demo.cluster(name)
    assert cluster["status"] == "SUCCEEDED"
    assert (cluster["after"]["version"], cluster["after"]["status"]) == ("1.24", "ACTIVE")
    assert "failure" not in cluster


def test_demo_reports_the_ip_starved_cluster_failed_with_eks_error_details(demo):
    # Given analytics-prod, whose subnets have 3 free IPs
    # When the demo has run
    cluster = demo.cluster("analytics-prod")

    # Then it FAILED with ControlPlaneUpdateFailed carrying EKS's IpNotAvailable, still on 1.23
    assert cluster["status"] == "FAILED"
    failure = cluster["failure"]
    assert failure["error"] == "ControlPlaneUpdateFailed"
    assert [e["errorCode"] for e in failure["details"]["errors"]] == ["IpNotAvailable"]
    assert failure["details"]["status"] == "Failed"
    assert (cluster["after"]["version"], cluster["after"]["status"]) == ("1.23", "ACTIVE")


def test_demo_mutating_calls_are_the_migration_then_one_update_per_cluster(demo):
    # When the demo has run (with EKS throttling the first two DescribeUpdate calls)
    calls = demo.report["awsCalls"]

    # Then, per cluster the gate let through and in its own account: for each Docker node group its
    # twin's launch template and node group, the old group's deletion, then one UpdateClusterVersion
    # (the reports the gate writes to the orchestrator's bucket change nothing in the fleet)
    expected = []
    for account, region, name in DEMO_CLUSTERS:
        if name == BLOCKED:
            continue
        for _ in demo.cluster(name)["nodegroups"]:
            expected += [
                ("ec2:CreateLaunchTemplate", account, region, "CreateReplacementNodegroup"),
                ("eks:CreateNodegroup", account, region, "CreateReplacementNodegroup"),
                ("eks:DeleteNodegroup", account, region, "RetireNodegroup"),
            ]
        expected.append(("eks:UpdateClusterVersion", account, region, "StartControlPlaneUpdate"))
        cluster = demo.cluster(name)
        if cluster["status"] != "SUCCEEDED":
            continue  # a control plane that failed stops the cluster before add-ons and nodes
        # then each add-on's hop to its 1.24 default, then each twin moved to 1.24 in place: a launch
        # template version with the 1.24 EKS-optimized AMI, then UpdateNodegroupVersion
        expected += [
            ("eks:UpdateAddon", account, region, "UpdateAddons")
            for addon in cluster["upgrade"]["addons"]
            if addon["action"] == "update"
        ]
        for _twin in sorted(g["new"] for g in cluster["nodegroups"]):
            expected += [
                ("ec2:CreateLaunchTemplateVersion", account, region, "UpdateNodegroupVersions"),
                ("eks:UpdateNodegroupVersion", account, region, "UpdateNodegroupVersions"),
            ]
    # (a wave's clusters run side by side, so their calls interleave: compared per cluster, each cluster
    # the only one of its account and region in the demo)
    actual = [(m["call"], m["account"], m["region"], m["step"]) for m in calls["mutatingCalls"]]
    for account, region, _ in DEMO_CLUSTERS:
        assert [c for c in actual if c[1:3] == (account, region)] == [
            c for c in expected if c[1:3] == (account, region)
        ]
    assert sorted(actual) == sorted(expected)


def test_demo_replaces_every_docker_group_by_a_containerd_twin_and_retires_it(demo):
    # When the demo has run
    report = demo.report
    for cluster in report["clusters"]:
        if cluster["name"] == BLOCKED:
            continue
        # Then every node group that ran Docker has a containerd twin, and is gone
        docker_groups = sorted(
            group
            for group, entry in cluster["before"]["kubernetes"]["nodes"]["byNodegroup"].items()
            if any(runtime.startswith("docker://") for runtime in entry["runtimes"])
        )
        assert sorted(g["old"] for g in cluster["nodegroups"]) == docker_groups
        assert all(
            g["status"] == "retired" and g["new"] == f"{g['old']}-containerd" for g in cluster["nodegroups"]
        )
        assert sorted(cluster["after"]["nodegroups"]) == [f"{g}-containerd" for g in docker_groups]
        # And every node runs containerd now, with the kubelet of the cluster's version: 1.24 where the
        # control plane moved (the twins were updated in place after it), 1.23 where its update failed
        assert cluster["nodes"] and all(
            n["containerRuntimeVersion"].startswith("containerd://") for n in cluster["nodes"]
        )
        assert {n["nodegroup"] for n in cluster["nodes"]} == {f"{g}-containerd" for g in docker_groups}
        kubelet = "v1.24" if cluster["status"] == "SUCCEEDED" else "v1.23"
        assert all(n["kubeletVersion"].startswith(kubelet) for n in cluster["nodes"])
        assert (
            sum(g["nodesDrained"] for g in cluster["nodegroups"])
            == cluster["before"]["kubernetes"]["nodes"]["total"]
        )
        # And nothing was lost, violated or deleted without being planned
        invariants = cluster["invariants"]
        assert (invariants["podsLost"], invariants["pdbViolations"], invariants["unexpectedDeletions"]) == (
            0,
            0,
            0,
        )
    # And the blocked cluster was not touched: its Docker groups are still there, no twin
    blocked = demo.cluster(BLOCKED)
    assert blocked["nodegroups"] == []
    assert sorted(blocked["after"]["nodegroups"]) == ["ci-runners", "system"]
    assert {n["containerRuntimeVersion"] for n in blocked["nodes"]} == {"docker://20.10.25"}
    # And the Markdown report shows the migration
    markdown = (demo.out / "fleet-report.md").read_text()
    assert "## Node groups migrated to containerd" in markdown
    assert "| payments-prod | general | general-containerd | retired | 3 of 3 |" in markdown


def test_demo_throttles_reach_the_state_machine_retry(demo):
    # Given the demo's rule throttling the first two DescribeUpdate calls
    # When the demo has run
    report = demo.report

    # Then both throttles were recorded, and each was retried by the state machine (not by botocore
    # sleeping inside the Lambda): two retries of the first cluster's poll, none elsewhere
    assert report["awsCalls"]["throttled"] == 2
    assert [c["retries"] for c in report["clusters"]] == [2] + [0] * (len(DEMO_CLUSTERS) - 1)


# -- fleetctl simulate -------------------------------------------------------------------------
def test_simulate_exits_0_when_every_cluster_succeeds(succeeding):
    # Given a scenario with one healthy cluster
    # When `fleetctl simulate` runs it
    # Then it exits 0 and the report shows the cluster upgraded
    assert succeeding.exit_code == 0, succeeding.stderr
    report = succeeding.report
    assert report["scenario"] == "e2e-succeeds"
    assert report["summary"]["succeeded"] == report["summary"]["total"] == 1
    cluster = succeeding.cluster("checkout-prod")
    assert (cluster["account"], cluster["region"], cluster["status"]) == (
        "333333333333",
        "eu-central-1",
        "SUCCEEDED",
    )
    assert (cluster["after"]["version"], cluster["after"]["status"]) == ("1.24", "ACTIVE")
    assert (succeeding.out / "lambda.log").is_file()


def test_simulate_exits_1_when_a_cluster_fails(failing):
    # Given a scenario whose only cluster's control plane update EKS fails (SubnetNotFound)
    # When `fleetctl simulate` runs it (simulate does not read `expect`: any failure is a failure)
    # Then it exits 1, and the report carries EKS's errorCode with the cluster still on 1.25
    assert failing.exit_code == 1
    cluster = failing.cluster("search-prod")
    assert (cluster["status"], cluster["fromVersion"], cluster["toVersion"]) == ("FAILED", "1.25", "1.26")
    assert cluster["failure"]["error"] == "ControlPlaneUpdateFailed"
    assert [e["errorCode"] for e in cluster["failure"]["details"]["errors"]] == ["SubnetNotFound"]
    assert (cluster["after"]["version"], cluster["after"]["status"]) == ("1.25", "ACTIVE")
    assert [m["call"] for m in failing.report["awsCalls"]["mutatingCalls"]] == ["eks:UpdateClusterVersion"]
    assert "=> FAILED: ControlPlaneUpdateFailed" in failing.stdout


@pytest.mark.parametrize(
    ("scenario", "names"),
    [
        ("invalid-typo.yaml", "accounts.0.clusters.0.freeIP: Extra inputs are not permitted"),
        ("no-such-scenario.yaml", "cannot read scenario"),
    ],
)
def test_a_bad_scenario_exits_2_with_the_reason_on_stderr_and_no_report(tmp_path, capsys, scenario, names):
    # Given a scenario file with a typo, or no file at all
    path = SCENARIOS / scenario
    out = tmp_path / "out"

    # When `fleetctl simulate` is given it
    code = main(["simulate", str(path), "--out", str(out)])

    # Then it exits 2, says why on stderr (naming the file and the field), and writes nothing
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith(f"fleetctl: {path}: ")
    assert names in captured.err
    assert captured.out == ""
    assert not out.exists()


def test_demo_report_shows_the_world_before_and_after_with_real_invariants(demo):
    # When the demo has run (platform-tools blocked at the gate: its node groups untouched)
    report = demo.report
    cluster = demo.cluster("platform-tools")

    # Then the Kubernetes world is in the report: Docker-runtime 1.23 nodes, every pod Running
    nodes = cluster["before"]["kubernetes"]["nodes"]
    assert nodes["total"] == 4
    assert set(nodes["byContainerRuntime"]) == {"docker://20.10.25"}
    assert cluster["before"]["nodegroups"]["ci-runners"]["status"] == "ACTIVE"
    pods = cluster["after"]["kubernetes"]["pods"]
    assert pods["byPhase"] == {"Running": pods["total"]}
    # the fluentd DaemonSet does not tolerate the ci-runners taint: one pod per system node only
    # (and the readiness gate kept the control plane where it was)
    assert cluster["after"]["kubernetes"]["version"].startswith("v1.23")
    # And the invariants are measured, not assumed: nothing lost, violated or deleted
    assert report["invariants"]["podsLost"] == 0
    assert report["invariants"]["pdbViolations"] == 0
    assert report["invariants"]["unexpectedDeletions"] == 0
    migrated = sum(len(c["nodegroups"]) for c in report["clusters"])
    updated_in_place = sum(len(c["nodegroups"]) for c in report["clusters"] if c["status"] == "SUCCEEDED")
    addon_hops = sum(
        sum(a["action"] == "update" for a in c["upgrade"]["addons"])
        for c in report["clusters"]
        if "upgrade" in c
    )
    assert len(report["invariants"]["mutatingCalls"]) == (
        len(DEMO_CLUSTERS) - 1 + 3 * migrated + 2 * updated_in_place + addon_hops
    )


def test_demo_blocks_platform_tools_at_the_readiness_gate_and_shows_why(demo):
    # Given platform-tools, whose fluentd DaemonSet mounts the Docker socket and parses Docker JSON logs
    # When the demo has run
    cluster = demo.cluster(BLOCKED)

    # Then the readiness gate BLOCKED it with DS001 and DS009, before any change
    assert cluster["status"] == "BLOCKED"
    assert cluster["failure"]["error"] == "ReadinessBlocked"
    readiness = cluster["readiness"]
    assert readiness["blockingRules"] == readiness["unacknowledgedBlockingRules"] == ["DS001", "DS009"]
    assert readiness["counts"]["blocking"] == 2 and readiness["acknowledged"] == []
    assert cluster["invariants"]["mutatingCalls"] == []
    assert (cluster["after"]["version"], cluster["after"]["status"]) == ("1.23", "ACTIVE")
    # And the blocking findings are printed and in the Markdown report, rule, object, field and value
    ds001 = (
        "DS001 DaemonSet logging/fluentd: spec.template.spec.volumes[0].hostPath.path = /var/run/docker.sock"
    )
    ds009 = 'DS009 ConfigMap logging/fluentd-config: data["fluent.conf"] = @type json'
    assert f"- {ds001}" in demo.stdout and f"- {ds009}" in demo.stdout
    assert "=> BLOCKED: ReadinessBlocked" in demo.stdout
    markdown = (demo.out / "fleet-report.md").read_text()
    assert "## Blocked by the readiness gate" in markdown
    assert f"`{ds001}`" in markdown and f"`{ds009}`" in markdown
    assert "| platform-tools | BLOCKED (DS001, DS009) | 2 |" in markdown
    # And the log names the blocked cluster's step
    records = [json.loads(line) for line in (demo.out / "lambda.log").read_text().splitlines()]
    assert any(
        r.get("error") == "ReadinessBlocked" and r.get("cluster") == "333333333333/us-east-1/platform-tools"
        for r in records
    )


def test_demo_runs_the_fleet_workflow_canary_first_then_waves(demo):
    # Given the demo's fleet block (canary, then "early" and "rest", each tolerating one failure)
    # When the demo has run
    report = demo.report

    # Then the fleet workflow ran the waves in order and recorded each, the failures tolerated
    assert report["fleetExecution"]["name"] == "demo-fleet"
    assert report["outcome"] == "SUCCEEDED_WITH_FAILURES"
    assert [(w["name"], len(w["clusters"]), w["outcome"]) for w in report["waves"]] == [
        ("canary", 1, "SUCCEEDED"),
        ("early", 2, "TOLERATED"),
        ("rest", 3, "TOLERATED"),
    ]
    assert all(
        a["finishedAt"] <= b["startedAt"] for a, b in zip(report["waves"], report["waves"][1:], strict=False)
    )
    assert demo.cluster("payments-prod")["wave"] == "canary"
    # And every cluster has its times and its timeline (phases from its child execution's history; the
    # blocked cluster stopped within the same virtual instant: no phase lasted)
    for cluster in report["clusters"]:
        assert cluster["startedAt"] and cluster["finishedAt"] and "timeline" in cluster, cluster["name"]
        assert bool(cluster["timeline"]) is (cluster["name"] != BLOCKED)
    phases = {p["phase"] for p in demo.cluster("payments-prod")["timeline"]}
    assert {"node group migration", "drain", "control plane", "add-ons", "node versions"} <= phases
    # And the progress printed per cluster came from the workflow's events: each cluster RUNNING, then its
    # outcome (14 events: fleet start and finish, two per cluster)
    assert report["events"] == 2 + 2 * len(DEMO_CLUSTERS)
    assert "222222222222/eu-west-1/analytics-prod: FAILED (ControlPlaneUpdateFailed)" in demo.stdout
    assert "333333333333/us-east-1/platform-tools: BLOCKED (ReadinessBlocked)" in demo.stdout
    assert "== wave 1 early: TOLERATED" in demo.stdout
    # And the HTML page draws the waves and names every cluster, with no script and no URL
    page = (demo.out / "fleet-report.html").read_text()
    assert "<script" not in page and "http" not in page
    assert all(c["name"] in page for c in report["clusters"]) and "wave rest: TOLERATED" in page
