"""The operator commands (fleetctl start, plan, status, watch, report, approve, redrive, fleet) against moto: the real
statemachines/fleet_upgrade.asl.json runs on the local engine over a simulated fleet (simulator/fleet.py),
and fleetctl reaches it through boto3 exactly as it reaches a real account."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from fleetctl.cli import main
from fleetctl.deployment import CONSOLE
from fleetctl.operator import execution_name
from simulator.engine import RUN_TABLE_NAME
from simulator.scenario import load_scenario
from simulator.simulation import Simulation

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "fleet-failures.yaml"
GOOD_1, GOOD_3, BAD_1 = (
    "444444444444/eu-west-1/good-1",
    "555555555555/eu-west-1/good-3",
    "444444444444/eu-west-1/bad-1",
)
FAST = ["--interval", "0.02"]


@dataclass
class Result:
    code: int
    out: str
    err: str


def fleetctl(*args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with CONSOLE.capture(out, err):  # not redirect_stdout: the engine's Lambda threads swap sys.stdout
        code = main(list(args))
    return Result(code, out.getvalue(), err.getvalue())


def cluster(key: str, **fields) -> dict:
    account, region, name = key.split("/")
    return {"accountId": account, "region": region, "name": name, **fields}


def write(tmp_path: Path, document: dict, name: str = "input.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


@pytest.fixture
def sim():
    with Simulation(load_scenario(SCENARIO)) as simulation:
        yield simulation


@pytest.fixture
def where(sim) -> list[str]:
    """How fleetctl finds this deployment: the fleet state machine and the run table."""
    return ["--state-machine", sim.engine.state_machines["fleet_upgrade"], "--region", "us-east-1"]


def version(sim: Simulation, key: str) -> str:
    account_id, region, name = key.split("/")
    for account, entry in sim.scenario.clusters():
        if (account.id, entry.region, entry.name) == (account_id, region, name):
            return sim.cluster_state(account, entry)["version"]
    raise KeyError(key)


def executions(sim: Simulation, machine: str = "fleet_upgrade") -> list[dict]:
    sfn = sim.engine.client("stepfunctions")
    return sfn.list_executions(stateMachineArn=sim.engine.state_machines[machine])["executions"]


def test_invalid_input_exits_2_naming_the_json_path_before_any_aws_call(tmp_path):
    # Given an input whose second cluster has a bad region, and a stack that does not exist
    bad = {
        "toVersion": "1.24",
        "clusters": [cluster(GOOD_1), {"accountId": "444444444444", "region": "mars", "name": "x"}],
    }
    with mock_aws():
        # When fleetctl start reads it
        result = fleetctl(
            "start", "--input", write(tmp_path, bad), "--stack", "no-such-stack", "--region", "us-east-1"
        )
        # Then it exits 2 naming the path, without reaching AWS (the stack lookup would have exited 4)
        assert result.code == 2, result.err
        assert "$.clusters[1].region" in result.err
        # and a file that is not JSON is invalid input too
        (tmp_path / "broken.json").write_text("{")
        assert fleetctl("start", "--input", str(tmp_path / "broken.json"), "--stack", "x").code == 2
        # while a valid input with that missing stack is a configuration error
        good = write(
            tmp_path, {"toVersion": "1.24", "clusters": [cluster(GOOD_1, fromVersion="1.23")]}, "good.json"
        )
        missing = fleetctl("start", "--input", good, "--stack", "no-such-stack", "--region", "us-east-1")
        assert missing.code == 4 and "no-such-stack" in missing.err


def test_start_wait_streams_each_cluster_and_exits_0_then_status_watch_and_report_read_it(
    sim, where, tmp_path
):
    # Given two healthy clusters, a canary then one wave
    document = {
        "fromVersion": "1.23",
        "toVersion": "1.24",
        "clusters": [cluster(GOOD_1), cluster(GOOD_3)],
        "waves": [{"name": "rest", "maxConcurrency": 2}],
    }
    path = write(tmp_path, document)
    # When fleetctl start --wait runs it
    result = fleetctl("start", "--input", path, "--wait", *FAST, *where)
    # Then it exits 0 after printing each cluster's end, under a deterministic name
    assert result.code == 0, result.out + result.err
    name = execution_name(document)
    assert f"execution:fleet_upgrade:{name}" in result.out
    assert f"{GOOD_1}: SUCCEEDED" in result.out and f"{GOOD_3}: SUCCEEDED" in result.out
    assert "wave canary: SUCCEEDED" in result.out and "wave rest: SUCCEEDED" in result.out
    assert version(sim, GOOD_1) == version(sim, GOOD_3) == "1.24"

    # And starting the same input again follows that execution instead of upgrading twice
    again = fleetctl("start", "--input", path, "--wait", *FAST, *where)
    assert again.code == 0 and "following the ended execution" in again.out
    assert len(executions(sim)) == 1

    # And status, watch --once and report read the execution by name
    status = fleetctl("status", name, *where)
    assert status.code == 0 and f"fleet {name}: SUCCEEDED" in status.out and "2 succeeded" in status.out
    as_json = json.loads(fleetctl("status", name, "--json", *where).out)
    assert {c["key"]: c["status"] for c in as_json["clusters"]} == {GOOD_1: "SUCCEEDED", GOOD_3: "SUCCEEDED"}
    frame = fleetctl("watch", name, "--once", *where)
    assert (
        frame.code == 0 and f"{GOOD_1}" in frame.out and "[####################] 100% SUCCEEDED" in frame.out
    )
    written = fleetctl("report", name, "--format", "json", "--out", str(tmp_path / "out"), *where)
    assert written.code == 0
    report = json.loads((tmp_path / "out" / "fleet-report.json").read_text())
    assert report["outcome"] == "SUCCEEDED" and {c["key"] for c in report["clusters"]} == {GOOD_1, GOOD_3}
    markdown = fleetctl("report", name, "--format", "md", *where)
    assert markdown.code == 0 and GOOD_3 in markdown.out
    page = fleetctl("report", name, "--format", "html", "--out", str(tmp_path / "out"), *where)
    assert page.code == 0, page.err
    assert "<html" in (tmp_path / "out" / "fleet-report.html").read_text().lower()
    # and an execution that does not exist is an operator error, not a fleet failure
    assert fleetctl("status", "no-such-fleet", *where).code == 4


def test_a_failed_cluster_exits_1_with_its_error(sim, where, tmp_path):
    # Given a healthy canary, then a wave with a cluster whose control plane update fails (tolerated)
    document = {
        "fromVersion": "1.23",
        "toVersion": "1.24",
        "clusters": [cluster(GOOD_1), cluster(BAD_1)],
        "waves": [{"name": "rest", "failureTolerance": 1}],
    }
    # When it runs to its end
    result = fleetctl("start", "--input", write(tmp_path, document), "--wait", *FAST, *where)
    # Then the exit code is 1 and the failed cluster is named with its error
    assert result.code == 1, result.out + result.err
    assert f"{BAD_1}: FAILED: ControlPlaneUpdateFailed" in result.out
    assert f"{GOOD_1}: SUCCEEDED" in result.out


def test_an_unanswered_approval_exits_3_and_fleetctl_approve_lets_the_fleet_go_on(sim, where, tmp_path):
    # Given a fleet whose canary needs an approval
    document = {
        "fromVersion": "1.23",
        "toVersion": "1.24",
        "clusters": [cluster(GOOD_1)],
        "canary": {"approval": True},
    }
    # When start --wait gives the approval no time at all
    result = fleetctl(
        "start", "--input", write(tmp_path, document), "--wait", "--approval-timeout", "0", *FAST, *where
    )
    # Then it exits 3, says how to approve, and the execution keeps waiting
    name = execution_name(document)
    assert result.code == 3, result.out + result.err
    assert f"fleetctl approve {name} --wave canary" in result.out
    assert executions(sim)[0]["status"] == "RUNNING"
    assert "wave canary: AWAITING_APPROVAL" in fleetctl("watch", name, "--once", *where).out
    # When an operator approves the wave (the run table found from --table)
    approved = fleetctl(
        "approve",
        name,
        "--wave",
        "canary",
        "--by",
        "alice",
        "--reason",
        "looks good",
        "--table",
        RUN_TABLE_NAME,
        *where,
    )
    assert approved.code == 0, approved.err
    # Then watch follows the fleet to its successful end
    watched = fleetctl("watch", name, *FAST, *where)
    assert watched.code == 0, watched.out + watched.err
    assert version(sim, GOOD_1) == "1.24"
    # and the approval is recorded in the report and in the run table item
    report = json.loads(fleetctl("report", name, "--format", "json", *where).out)
    assert report["waves"][0]["approval"] == {
        "required": True,
        "status": "APPROVED",
        "by": "alice",
        "reason": "looks good",
    }
    item = sim.engine.client("dynamodb").get_item(
        TableName=RUN_TABLE_NAME, Key={"pk": {"S": f"APPROVAL#{name}"}, "sk": {"S": "WAVE#canary"}}
    )["Item"]
    assert (item["status"]["S"], item["answeredBy"]["S"]) == ("APPROVED", "alice")
    # and a second answer is refused: nothing waits any more
    assert fleetctl("approve", name, "--wave", "canary", "--table", RUN_TABLE_NAME, *where).code == 4


def test_a_rejected_wave_stops_the_fleet_and_watch_exits_1(sim, where, tmp_path):
    document = {
        "fromVersion": "1.23",
        "toVersion": "1.24",
        "clusters": [cluster(GOOD_1)],
        "canary": {"approval": True},
    }
    name = "reject-me"
    assert fleetctl("start", "--input", write(tmp_path, document), "--name", name, *where).code == 0
    table = ["--table", RUN_TABLE_NAME]
    # A rejection needs a reason
    assert fleetctl("approve", name, "--wave", "canary", "--reject", *table, *where).code == 2
    # And a wave that never asked is refused (after the canary's request is there)
    wait_for_approval_request(sim, name, "canary")
    assert fleetctl("approve", name, "--wave", "nope", *table, *where).code == 4
    rejected = fleetctl(
        "approve", name, "--wave", "canary", "--reject", "--reason", "freeze until Monday", *table, *where
    )
    assert rejected.code == 0, rejected.err
    watched = fleetctl("watch", name, *FAST, *where)
    assert watched.code == 1
    assert "FleetApprovalRejected" in watched.out and "wave canary: REJECTED" in watched.out
    assert version(sim, GOOD_1) == "1.23"  # nothing ran


def wait_for_approval_request(sim: Simulation, fleet: str, wave: str) -> None:
    from simulator.fleet import FleetDriver

    FleetDriver(sim).pending_approval(fleet, wave)


def test_plan_prints_what_it_found_per_cluster_and_changes_nothing(sim, where, tmp_path):
    document = {
        "fromVersion": "1.23",
        "toVersion": "1.24",
        "clusters": [cluster(GOOD_1), cluster(BAD_1)],
        "waves": [{"name": "rest"}],
    }
    result = fleetctl("plan", "--input", write(tmp_path, document), "--wait", *FAST, *where)
    assert result.code == 0, result.out + result.err
    assert "plan of fleet-plan-1-24-" in result.out
    # (each cluster planned by the cluster workflow's plan mode: these bare clusters need no twin)
    assert f"{GOOD_1}: PLANNED: 0 containerd twin(s), 0 add-on update(s)" in result.out
    assert f"{BAD_1}: PLANNED" in result.out
    assert version(sim, GOOD_1) == version(sim, BAD_1) == "1.23"


def test_the_registry_and_a_selector_choose_the_clusters(sim, where, tmp_path):
    table = ["--table", RUN_TABLE_NAME, "--region", "us-east-1"]
    # Given three registered clusters, two of them tagged env=prod
    for key, env in ((GOOD_1, "prod"), (GOOD_3, "prod"), (BAD_1, "dev")):
        added = fleetctl("fleet", "add", key, "--tag", f"env={env}", "--tag", "team=core", *table)
        assert added.code == 0 and f"registered {key}" in added.out
    assert "updated" in fleetctl("fleet", "add", BAD_1, "--tag", "env=dev", *table).out
    # and bad registrations are refused before any write
    assert fleetctl("fleet", "add", "12/eu-west-1/x", *table).code == 2
    assert fleetctl("fleet", "add", "444444444444/eu-west-1/x", "--window-start", "25:00", *table).code == 2
    listed = fleetctl("fleet", "list", "--tag", "env=prod", *table)
    assert listed.code == 0 and [line.split("\t")[0] for line in listed.out.splitlines()] == [GOOD_1, GOOD_3]

    # When a fleet input selects env=prod
    document = {
        "fromVersion": "1.23",
        "toVersion": "1.24",
        "selector": {"tags": {"env": "prod"}},
        "waves": [{"name": "rest"}],
    }
    result = fleetctl("start", "--input", write(tmp_path, document), "--wait", *FAST, *where)
    # Then exactly those clusters are upgraded
    assert result.code == 0, result.out + result.err
    assert (version(sim, GOOD_1), version(sim, GOOD_3), version(sim, BAD_1)) == ("1.24", "1.24", "1.23")
    status = json.loads(fleetctl("status", execution_name(document), "--json", *where).out)
    assert [c["key"] for c in status["clusters"]] == [GOOD_1, GOOD_3]

    # And a selector that selects nothing stops the fleet as invalid input: exit 2
    nothing = {"fromVersion": "1.23", "toVersion": "1.24", "selector": {"tags": {"env": "staging"}}}
    refused = fleetctl("start", "--input", write(tmp_path, nothing, "nothing.json"), "--wait", *FAST, *where)
    assert refused.code == 2, refused.out + refused.err
    assert "InvalidFleetInput" in refused.out and "selects none of the 3 registered clusters" in refused.out

    # And removing a cluster takes it out of the registry
    assert fleetctl("fleet", "remove", BAD_1, *table).code == 0
    assert fleetctl("fleet", "remove", BAD_1, *table).code == 1
    remaining = json.loads(fleetctl("fleet", "list", "--json", *table).out)
    assert [c["name"] for c in remaining] == ["good-1", "good-3"]


def test_the_stack_tells_fleetctl_where_the_state_machine_and_the_run_table_are(tmp_path):
    template = {
        "Resources": {
            "RunTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": "runs-from-stack",
                    "AttributeDefinitions": [
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                    ],
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "BillingMode": "PAY_PER_REQUEST",
                },
            }
        },
        "Outputs": {
            "FleetUpgradeStateMachineArn": {
                "Value": "arn:aws:states:us-east-1:123456789012:stateMachine:fleet"
            }
        },
    }
    with mock_aws():
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="EksFleetUpgraderOrchestrator", TemplateBody=json.dumps(template)
        )
        # Given only the default stack, When a cluster is registered, Then it lands in the stack's table
        assert fleetctl("fleet", "add", GOOD_1, "--region", "us-east-1").code == 0
        items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName="runs-from-stack")["Items"]
        assert [i["pk"]["S"] for i in items] == ["CLUSTER#444444444444#eu-west-1#good-1"]
        # and an execution name resolves against the stack's fleet state machine
        missing = fleetctl("status", "f1", "--region", "us-east-1")
        assert missing.code == 4
        assert "arn:aws:states:us-east-1:123456789012:execution:fleet:f1" in missing.err


def test_redrive_continues_a_fleet_an_outage_failed_and_refuses_what_cannot_be_redriven(sim, where, tmp_path):
    # Given a fleet whose report cannot be written: S3 refuses WriteFleetReport's calls for longer than its
    # retries cover, so the execution FAILS after its clusters are done
    document = {
        "fromVersion": "1.23",
        "toVersion": "1.24",
        "clusters": [cluster(GOOD_1), cluster(GOOD_3)],
        "waves": [{"name": "all"}],
    }
    outage = {"on": True}
    sim.outage("s3", lambda function: outage["on"] and function == "WriteFleetReport")
    failed = fleetctl(
        "start", "--input", write(tmp_path, document), "--name", "outage", "--wait", *FAST, *where
    )
    assert failed.code == 1, failed.out + failed.err
    assert "fleet outage: FAILED (AwsThrottled" in failed.out
    children = len(executions(sim, "cluster_upgrade"))

    # When S3 is back and the operator redrives it
    outage["on"] = False
    redriven = fleetctl("redrive", "outage", "--wait", *FAST, *where)

    # Then it continues at the report and ends well, without running a cluster again
    assert redriven.code == 0, redriven.out + redriven.err
    assert "fleet outage: SUCCEEDED" in redriven.out
    assert len(executions(sim, "cluster_upgrade")) == children
    assert {version(sim, GOOD_1), version(sim, GOOD_3)} == {"1.24"}
    assert json.loads(fleetctl("report", "outage", "--format", "json", *where).out)["outcome"] == "SUCCEEDED"
    # And a succeeded execution, or one the fleet stopped on purpose, is not redriven (exit 4, why)
    again = fleetctl("redrive", "outage", *where)
    assert again.code == 4 and "only a FAILED, TIMED_OUT or ABORTED" in again.err


def test_a_fleet_stopped_on_purpose_is_not_redriven(sim, where, tmp_path):
    document = {
        "fromVersion": "1.23",
        "toVersion": "1.24",
        "clusters": [cluster(BAD_1), cluster(GOOD_1)],
        "canary": {"size": 1},
        "waves": [{"name": "rest"}],
    }
    stopped = fleetctl(
        "start", "--input", write(tmp_path, document), "--name", "canary-failed", "--wait", *FAST, *where
    )
    assert stopped.code == 1 and "FleetToleranceExceeded" in stopped.out
    refused = fleetctl("redrive", "canary-failed", *where)
    assert refused.code == 4 and "stopped on purpose (FleetToleranceExceeded)" in refused.err
    assert version(sim, GOOD_1) == "1.23"
