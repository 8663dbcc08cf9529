"""Redrive (RedriveExecution) through the real ASL on the local engine (issue 7.3, issue 9 row 1.12).

A failed execution that is redriven keeps its ARN and name (so every deterministic name and
clientRequestToken derived from them is the same), continues from the unsuccessful step with the same
input, and does not run the steps that had succeeded again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from simulator.fleet import FleetDriver, fleet_input
from simulator.scenario import load_scenario
from simulator.simulation import Simulation
from tests.statemachine.test_fleet_upgrade import _locks
from tests.statemachine.test_guarantees import scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def _entered(history: list[dict], state: str) -> int:
    return sum(
        1
        for e in history
        if e["type"].endswith("StateEntered") and e.get("stateEnteredEventDetails", {}).get("name") == state
    )


def _after_redrive(history: list[dict]) -> list[dict]:
    marker = next(i for i, e in enumerate(history) if e["type"] == "ExecutionRedriven")
    return history[marker + 1 :]


def test_a_run_failed_after_the_twin_exists_is_redriven_and_resumes_at_the_failed_step():
    # Given a run whose twin node group was created, after which EKS throttles DescribeNodegroup for
    # longer than every retry policy covers, so the execution FAILS (nothing cordoned, the old group
    # still running every workload)
    spec = scenario()
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        storm = {"on": False}
        sim.outage("eks", lambda function: storm["on"], operation="DescribeNodegroup")
        sim.engine.runtime.after_invoke.append(
            lambda function, event, result: storm.update(
                on=storm["on"] or function == "CreateReplacementNodegroup"
            )
        )
        failed = sim.run_cluster(account, cluster)
        assert failed.result.status == "FAILED", failed.failure()
        assert failed.result.error == "AwsThrottled"
        world = sim.world(account, cluster)
        nodegroups = set(failed.after["nodegroups"])
        assert "general" in nodegroups and len(nodegroups) == 2, nodegroups  # the old group and its twin
        assert not any(n["spec"].get("unschedulable") for n in world.list("Node"))
        assert {"Preflight", "ReadinessCheck", "CreateReplacementNodegroup"} <= {
            i.function for i in failed.result.invocations
        }

        # When the throttling has stopped and the operator redrives the execution
        storm["on"] = False
        redriven = sim.redrive_cluster(failed)
        described = sim.engine.client("stepfunctions").describe_execution(executionArn=failed.result.arn)

    # Then the same execution succeeds
    assert redriven.result.status == "SUCCEEDED", redriven.failure()
    assert redriven.result.arn == failed.result.arn
    # And it continued at the failed step: nothing before it ran again
    invoked = [i.function for i in redriven.result.invocations]
    assert invoked[0] == "PollReplacementNodegroup", invoked[:3]
    for done in ("ValidateInput", "Preflight", "ReadinessCheck", "PlanNodegroupMigration"):
        assert done not in invoked, done
    assert "CreateReplacementNodegroup" not in invoked
    # And each change happened exactly once over both attempts (one twin, one control plane update)
    changes = [c.operation for c in sim.faults.mutating_calls()]
    for once in ("CreateNodegroup", "DeleteNodegroup", "UpdateClusterVersion"):
        assert changes.count(once) == 1, (once, changes)
    # And the history is one history: the first attempt, ExecutionRedriven, the rest; the states that
    # had succeeded are not entered again
    history = redriven.result.history
    assert [e["type"] for e in history].count("ExecutionRedriven") == 1
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))
    resumed = _after_redrive(history)
    assert _entered(resumed, "Preflight") == 0 and _entered(resumed, "CreateReplacementNodegroup") == 0
    assert _entered(resumed, "PollReplacementNodegroup") >= 1
    # And the old group was deleted only once none of its nodes ran a workload: nothing lost
    inv = redriven.invariants
    assert (inv["podsLost"], inv["pdbViolations"], inv["unexpectedDeletions"]) == (0, 0, 0)
    assert set(redriven.after["nodegroups"]) == nodegroups - {"general"}
    assert redriven.after["version"] == "1.24"
    # And DescribeExecution reports the redrive
    assert (described["status"], described["redriveCount"]) == ("SUCCEEDED", 1)
    assert described["redriveDate"] >= described["startDate"]


def test_a_running_or_succeeded_execution_is_not_redrivable():
    spec = scenario()
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        run = sim.run_cluster(account, cluster)
        assert run.result.status == "SUCCEEDED", run.failure()
        sfn = sim.engine.client("stepfunctions")
        with pytest.raises(ClientError) as refused:
            sfn.redrive_execution(executionArn=run.result.arn)
        described = sfn.describe_execution(executionArn=run.result.arn)
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert described["redriveCount"] == 0 and described["redriveStatus"] == "NOT_REDRIVABLE"


def test_a_fleet_failed_by_an_outage_between_waves_is_redriven_and_touches_no_finished_cluster():
    with Simulation(load_scenario(SCENARIOS / "fleet-twelve.yaml")) as sim:
        # Given a fleet of four clusters (a canary, then three side by side) whose run table becomes
        # unavailable (DynamoDB throttles every call) while the second wave is being recorded, for
        # longer than EvaluateWave's retries cover
        request = fleet_input(sim)
        request = request | {
            "clusters": request["clusters"][:4],
            "canary": {"size": 1},
            "waves": [{"name": "rest", "maxConcurrency": 3}],
        }
        outage = {"on": True, "evaluations": 0}

        def second_evaluation(function: str) -> bool:
            outage["evaluations"] += function == "EvaluateWave"
            return bool(outage["on"] and function == "EvaluateWave" and outage["evaluations"] > 1)

        sim.outage("dynamodb", second_evaluation)
        driver = FleetDriver(sim)
        failed = driver.run("outage-fleet", request)

        # Then the fleet FAILED at that step: every cluster was upgraded, no report yet
        assert (failed.result.status, failed.result.error) == ("FAILED", "AwsThrottled"), failed.result.cause
        children = sim.engine.client("stepfunctions").list_executions(
            stateMachineArn=sim.engine.state_machines["cluster_upgrade"]
        )["executions"]
        assert len(children) == 4 and {c["status"] for c in children} == {"SUCCEEDED"}
        assert failed.report is None
        changes_before = len(sim.faults.mutating_calls())

        # When the run table is back and the operator redrives the fleet execution
        outage["on"] = False
        redriven = driver.redrive(failed.result.arn)
        locks_after = _locks(sim)

    # Then it resumes at the wave's evaluation and finishes: the report lists every cluster upgraded
    assert redriven.result.status == "SUCCEEDED", redriven.result.cause
    assert redriven.report is not None and redriven.report["outcome"] == "SUCCEEDED"
    assert set(redriven.statuses().values()) == {"SUCCEEDED"} and len(redriven.statuses()) == 4
    assert [(w["name"], len(w["clusters"])) for w in redriven.report["waves"]] == [("canary", 1), ("rest", 3)]
    # And no cluster was touched again: no child execution started, no mutating call made
    resumed = _after_redrive(redriven.result.history)
    assert not [e for e in resumed if e["type"] == "TaskScheduled" and "startExecution" in str(e)]
    assert len(sim.faults.mutating_calls()) == changes_before
    assert _entered(resumed, "EvaluateWave") == 1 and _entered(resumed, "UpgradeCluster") == 0
    # And every lock was released during the first attempt and none is held now
    assert not locks_after
    assert redriven.children and {c["status"] for c in redriven.children.values()} == {"SUCCEEDED"}
