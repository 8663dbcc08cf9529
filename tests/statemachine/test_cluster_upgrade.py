"""The real statemachines/cluster_upgrade.asl.json on the local engine, against the simulator."""

from __future__ import annotations

import json

import pytest

from simulator.scenario import Scenario
from simulator.simulation import Simulation
from tests.events import load_event


def scenario(**overrides) -> Scenario:
    cluster = {"name": "payments-prod", "region": "eu-west-1", "version": "1.23"} | overrides.pop(
        "cluster", {}
    )
    raw = {
        "name": "sm-test",
        "upgrade": {"toVersion": "1.24"},
        "accounts": [{"id": "111111111111", "clusters": [cluster]}],
    } | overrides
    return Scenario.model_validate(raw)


def run_one(spec: Scenario):
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        return sim, sim.run_cluster(account, cluster)


def entered(run) -> list[str]:
    return [name for _, name in run.result.states()]


def test_happy_path_upgrades_the_control_plane_in_virtual_time():
    sim, run = run_one(scenario())
    assert run.result.status == "SUCCEEDED"
    assert (run.before["version"], run.after["version"], run.after["status"]) == ("1.23", "1.24", "ACTIVE")
    # First wait near the expected 8 minutes, then 20 s polls: detected exactly at 480 s.
    assert run.result.virtual_duration_seconds == 480
    states = entered(run)
    assert states[:13] == [
        "ValidateInput",
        "Preflight",
        "ControlPlaneAlreadyAtTarget?",
        "UpdateAlreadyUnderWay?",
        "ReadinessCheck",
        "PlanNodegroupMigration",  # no node group: nothing to migrate
        "PlanVersionUpdate",
        "PlanOnly?",
        "StrategyOrder?",
        "MigrateNodegroups",
        "AfterMigration?",  # runtime-first: the control plane moves after the migration
        "StartControlPlaneUpdate",
        "WaitForControlPlane",
    ]
    # After the control plane: add-ons (none here), node versions (no group), the verification, done.
    assert states[-9:] == [
        "AfterControlPlane?",
        "UpdateAddons",
        "AddonsUpdated?",
        "UpdateNodegroupVersions",
        "NodegroupsUpdated?",
        "VerifyUpgrade",
        "Verified?",
        "MoreVersionSteps?",
        "Upgraded",
    ]
    assert states.count("PollControlPlaneUpdate") == 4
    assert run.result.lambda_invocations == 13
    assert run.result.output["verification"]["status"] == "Verified"
    assert run.result.output["nodegroupPlan"] == {
        "groups": [],
        "skipped": [],
        "plannedDeletions": [],
        "blocking": [],
    }
    assert run.result.output["readiness"]["counts"]["blocking"] == 0
    assert run.result.state_transitions == len(states)
    assert [f"{c.service}:{c.operation}" for c in sim.faults.mutating_calls()] == ["eks:UpdateClusterVersion"]


def test_eks_update_failure_fails_the_execution_with_the_named_error():
    _, run = run_one(
        scenario(
            faults={"failControlPlaneUpdate": [{"cluster": "payments-prod", "errorCode": "SubnetNotFound"}]}
        )
    )
    assert run.result.status == "FAILED"
    assert run.result.error == "ControlPlaneUpdateFailed"
    failure = run.failure()
    assert failure["details"]["errors"][0]["errorCode"] == "SubnetNotFound"
    assert run.after["version"] == "1.23"
    assert "Upgraded" not in entered(run)


def test_throttled_describe_update_is_retried_and_the_run_succeeds():
    sim, run = run_one(
        scenario(faults={"throttle": [{"service": "eks", "operation": "DescribeUpdate", "first": 2}]})
    )
    assert run.result.status == "SUCCEEDED"
    assert run.result.retries == 2
    assert sum(1 for c in sim.faults.calls if c.throttled) == 2
    assert run.result.virtual_duration_seconds > 480  # retry intervals ran on the virtual clock
    assert run.after["version"] == "1.24"


def test_bad_input_is_rejected_before_any_aws_call():
    with Simulation(scenario()) as sim:
        bad = load_event("cluster_upgrade_input")
        bad["cluster"]["accountId"] = "not-an-account"
        result = sim.engine.run("cluster_upgrade", "bad-input", bad)
        assert result.status == "FAILED"
        assert result.error == "InvalidInput"
        assert "accountId" in json.loads(result.cause)["errorMessage"]
        assert sim.faults.calls == []  # not even sts:AssumeRole
        assert result.lambda_invocations == 1


def test_cluster_already_on_target_succeeds_without_changing_anything():
    # Given a cluster declared 1.23 that already runs 1.24 (a redrive after the update finished)
    spec = scenario(cluster={"version": "1.24"}, upgrade={"toVersion": "1.25"})
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        request = sim.execution_input(account, cluster) | {"fromVersion": "1.23", "toVersion": "1.24"}
        result = sim.engine.run("cluster_upgrade", "already-there", request)
        assert result.status == "SUCCEEDED"
        assert sim.faults.mutating_calls() == []
        states = [name for _, name in result.states()]
        assert "StartControlPlaneUpdate" not in states
        assert "ReadinessCheck" not in states  # no control plane update: no gate to pass
        # but what an earlier run may have left (add-ons, node versions) is finished and verified
        assert states[-3:] == ["Verified?", "MoreVersionSteps?", "Upgraded"]


def test_version_mismatch_stops_before_any_change():
    spec = scenario(cluster={"version": "1.22"}, upgrade={"toVersion": "1.23"})
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        request = sim.execution_input(account, cluster) | {"fromVersion": "1.23", "toVersion": "1.24"}
        result = sim.engine.run("cluster_upgrade", "mismatch", request)
        assert (result.status, result.error) == ("FAILED", "ClusterVersionMismatch")
        assert sim.faults.mutating_calls() == []


def test_wrong_external_id_is_terminal_and_not_retried():
    with Simulation(scenario()) as sim:
        account, cluster = sim.scenario.clusters()[0]
        request = sim.execution_input(account, cluster)
        request["cluster"]["externalId"] = "not-the-right-one"
        result = sim.engine.run("cluster_upgrade", "wrong-external-id", request)
        assert (result.status, result.error) == ("FAILED", "TargetRoleNotAssumable")
        assert result.retries == 0
        assert [c.operation for c in sim.faults.calls] == ["AssumeRole"]


@pytest.mark.parametrize("strategy", ["fixed"])
def test_fixed_poll_baseline_costs_more_transitions_than_adaptive(strategy):
    _, adaptive = run_one(scenario())
    _, fixed = run_one(scenario(pollStrategy=strategy))
    assert fixed.result.status == "SUCCEEDED"
    assert fixed.result.state_transitions > adaptive.result.state_transitions
    assert fixed.result.virtual_duration_seconds >= adaptive.result.virtual_duration_seconds


def test_lost_update_response_is_retried_and_adopts_the_running_update():
    # Given UpdateClusterVersion takes effect in EKS but its response is lost (read timeout)
    sim, run = run_one(
        scenario(faults={"loseResponse": [{"service": "eks", "operation": "UpdateClusterVersion"}]})
    )
    # Then the step is retried, finds the update it started and adopts it: exactly one update
    assert run.result.status == "SUCCEEDED"
    assert len(sim.faults.lost) == 1
    assert [c.operation for c in sim.faults.mutating_calls()] == ["UpdateClusterVersion"]
    assert run.result.output["controlPlaneUpdate"]["adopted"] is True
    assert run.after["version"] == "1.24"


def test_a_crashed_step_is_retried_and_the_run_completes():
    # Given StartControlPlaneUpdate's Lambda dies just before its third AWS call (UpdateClusterVersion)
    sim, run = run_one(scenario(faults={"crashStep": [{"step": "StartControlPlaneUpdate", "atCall": 3}]}))
    # Then Step Functions sees Runtime.ExitError, retries, and the retry starts the update once
    assert run.result.status == "SUCCEEDED"
    assert any(i.error == "Runtime.ExitError" for i in run.result.invocations)
    assert [c.operation for c in sim.faults.mutating_calls()] == ["UpdateClusterVersion"]
    assert run.result.retries == 1
