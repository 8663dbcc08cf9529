"""The fleet domain with fakes: waves, tolerance, windows, the report."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from upgrader.errors import ClusterLockLost, FleetApprovalRejected, FleetToleranceExceeded, InvalidFleetInput
from upgrader.fleet import locks
from upgrader.fleet.models import FleetRequest, MaintenanceWindow, ReportRequest, WaveRequest
from upgrader.fleet.report import evaluate_wave, write_report
from upgrader.fleet.waves import child_execution_name, plan_waves
from upgrader.fleet.windows import decide
from upgrader.models import ClusterRef

from tests.fakes_fleet import FakeReportWriter, FakeRunTable

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:cluster_upgrade"


def request(n: int = 10, **fleet) -> FleetRequest:
    clusters = [{"accountId": f"{i % 3 + 1}" * 12, "region": "eu-west-1", "name": f"c{i}"} for i in range(n)]
    return FleetRequest.model_validate(
        {
            "run": {"executionId": "arn:x", "executionName": "fleet-1"},
            "fleet": {"fromVersion": "1.23", "toVersion": "1.24", "clusters": clusters} | fleet,
        }
    )


def test_canary_first_then_waves_by_count_and_percentage_the_last_takes_the_rest():
    plan = plan_waves(
        request(
            10,
            canary={"size": 1, "soakSeconds": 300},
            waves=[
                {
                    "name": "a",
                    "size": "25%",
                    "maxConcurrency": 3,
                    "failureTolerance": "50%",
                    "soakSeconds": 60,
                },
                {"name": "b", "size": 2},
                {"name": "c", "size": 1, "failureTolerance": 2},
            ],
        ),
        ARN,
    )
    assert [(w.name, len(w.clusters), w.failure_tolerance, w.soak_seconds) for w in plan.waves] == [
        ("canary", 1, 0, 300),
        ("a", 3, 1, 60),  # 25% of 10 rounded up; half of 3 rounded down
        ("b", 2, 0, 0),
        ("c", 4, 2, 0),  # the last wave takes the rest; no soak after it
    ]
    keys = [c.key for w in plan.waves for c in w.clusters]
    assert len(keys) == len(set(keys)) == 10
    first = plan.waves[0].clusters[0]
    assert first.child_input == {
        "cluster": {"accountId": "111111111111", "region": "eu-west-1", "name": "c0"},
        "fromVersion": "1.23",
        "toVersion": "1.24",
        "lock": {"owner": "fleet-1"},  # every cluster-changing step of the child re-checks this lease
    }


def test_child_names_are_deterministic_short_and_safe():
    long = "x" * 90 + ".weird name"
    name = child_execution_name(long, "111111111111/eu-west-1/c0")
    assert len(name) == 80 and name == child_execution_name(long, "111111111111/eu-west-1/c0")
    assert name != child_execution_name(long, "111111111111/eu-west-1/c1")
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def test_duplicate_clusters_and_unknown_canaries_are_rejected_with_their_path():
    duplicated = request(3)
    clusters = (*duplicated.fleet.clusters, duplicated.fleet.clusters[1])
    with pytest.raises(InvalidFleetInput) as error:
        plan_waves(
            duplicated.model_copy(
                update={"fleet": duplicated.fleet.model_copy(update={"clusters": clusters})}
            ),
            ARN,
        )
    assert error.value.details == {"path": "$.clusters[3]", "duplicateOf": "$.clusters[1]"}
    with pytest.raises(InvalidFleetInput, match=r"canary cluster .* is not in the fleet"):
        plan_waves(
            request(3, canary={"clusters": ["999999999999/eu-west-1/nope"]}, waves=[{"name": "r"}]), ARN
        )
    with pytest.raises(InvalidFleetInput, match="in no wave"):
        plan_waves(request(3), ARN)


MONDAY_9 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def test_windows_wait_until_they_open_or_skip_by_policy():
    window = MaintenanceWindow(days=("MON",), start="11:00", duration_minutes=60)
    assert decide(window, "wait", MONDAY_9).model_dump() == {
        "action": "wait",
        "wait_seconds": 7201,
        "opens_at": "2026-01-05T11:00:00+00:00",
    }
    assert decide(window, "skip", MONDAY_9).action == "skip"
    assert decide(window, "wait", MONDAY_9.replace(hour=11, minute=30)).action == "proceed"
    assert decide(None, "skip", MONDAY_9).action == "proceed"
    # a window that started yesterday evening in another time zone and is still open
    night = MaintenanceWindow(days=("SUN",), start="23:00", duration_minutes=720, timezone="Europe/Paris")
    assert decide(night, "skip", MONDAY_9).action == "proceed"


def _wave_request(plan, index, outcomes, **extra):
    return WaveRequest.model_validate(
        {
            "run": plan.run.dump(),
            "settings": plan.settings.dump(),
            "wave": plan.waves[index].dump(),
            "startedAt": "2026-01-05T09:00:00Z",
            "finishedAt": "2026-01-05T09:10:00Z",
            "outcomes": outcomes,
        }
        | extra
    )


def _child_failure(error: str) -> dict:
    cause = {
        "Status": "FAILED",
        "Error": error,
        "Cause": json.dumps({"errorMessage": 'nope | {"x": 1}'}),
        "ExecutionArn": "arn:c",
    }
    return {"Error": "States.TaskFailed", "Cause": json.dumps(cause)}


def test_tolerance_counts_failed_and_blocked_but_not_skipped_and_the_canary_tolerates_nothing():
    table = FakeRunTable()
    plan = plan_waves(request(5, waves=[{"name": "rest", "failureTolerance": 1}]), ARN)
    rest = plan.waves[1].clusters
    outcomes = [
        {"key": rest[0].key, "status": "FAILED", "failure": _child_failure("ReadinessBlocked")},
        {"key": rest[1].key, "status": "SKIPPED", "reason": "locked"},
        {
            "key": rest[2].key,
            "status": "SUCCEEDED",
            "child": {"ExecutionArn": "arn:c", "StartDate": 0, "StopDate": 60000},
        },
        {
            "key": rest[3].key,
            "status": "SUCCEEDED",
            "child": {"ExecutionArn": "arn:d", "StartDate": 0, "StopDate": 60000},
        },
    ]
    record = evaluate_wave(_wave_request(plan, 1, outcomes), table)
    assert (record.outcome, record.failed) == ("TOLERATED", 1)
    assert record.cluster_outcomes[0].status == "BLOCKED" and record.cluster_outcomes[0].details == {"x": 1}
    outcomes[1] = {
        "key": rest[1].key,
        "status": "FAILED",
        "failure": _child_failure("ControlPlaneUpdateFailed"),
    }
    with pytest.raises(FleetToleranceExceeded):
        evaluate_wave(_wave_request(plan, 1, outcomes), table)
    canary = plan.waves[0].clusters[0]
    with pytest.raises(FleetToleranceExceeded, match="canary"):
        evaluate_wave(
            _wave_request(plan, 0, [{"key": canary.key, "status": "FAILED", "failure": _child_failure("X")}]),
            table,
        )
    assert [r.outcome for r in table.waves("fleet-1")] == ["STOPPED", "STOPPED"]


def test_a_rejected_approval_records_the_wave_and_the_report_shows_what_never_started():
    table, writer = FakeRunTable(), FakeReportWriter()
    plan = plan_waves(request(3, waves=[{"name": "prod", "approval": True}]), ARN)
    canary = plan.waves[0].clusters[0]
    ok = {
        "key": canary.key,
        "status": "SUCCEEDED",
        "child": {"ExecutionArn": "arn:c", "StartDate": 0, "StopDate": 420000},
    }
    evaluate_wave(_wave_request(plan, 0, [ok]), table)
    with pytest.raises(FleetApprovalRejected):
        evaluate_wave(
            _wave_request(plan, 1, [], rejection={"Error": "FleetApprovalRejected", "Cause": "not tonight"}),
            table,
        )
    result = write_report(
        ReportRequest(run=plan.run, plan=plan, stopped={"Error": "FleetApprovalRejected", "Cause": "x"}),
        table,
        writer,
    )
    report = json.loads(writer.objects[result["jsonKey"]])
    assert result["jsonKey"] == "reports/fleet-1/fleet-report.json"
    assert report["outcome"] == "STOPPED"
    assert [(w["name"], w["outcome"], w["approval"]["status"]) for w in report["waves"]] == [
        ("canary", "SUCCEEDED", "NOT_REQUIRED"),
        ("prod", "REJECTED", "REJECTED"),
    ]
    assert report["waves"][1]["approval"]["reason"] == "not tonight"
    assert [c["status"] for c in report["clusters"]] == ["SUCCEEDED", "NOT_STARTED", "NOT_STARTED"]
    assert report["clusters"][0]["finishedAt"] == "1970-01-01T00:07:00Z"
    assert "| prod |" in writer.objects["reports/fleet-1/fleet-report.md"].decode()


def test_a_lease_is_verified_by_its_owner_and_lost_once_another_run_holds_it():
    table = FakeRunTable()
    cluster = ClusterRef(account_id="111111111111", region="eu-west-1", name="payments-prod")
    locks.acquire(table, cluster, "fleet-a", now=0, lease_seconds=60)
    assert locks.verify_held(table, cluster, "fleet-a").owner == "fleet-a"
    # The lease expires and fleet-b takes it over: fleet-a's next change is refused
    locks.acquire(table, cluster, "fleet-b", now=61, lease_seconds=60)
    with pytest.raises(ClusterLockLost, match="held by fleet-b"):
        locks.verify_held(table, cluster, "fleet-a")
    locks.release(table, cluster, "fleet-b")
    with pytest.raises(ClusterLockLost, match="gone"):
        locks.verify_held(table, cluster, "fleet-a")


def test_a_fleet_whose_plan_would_not_fit_one_execution_is_rejected_before_anything_runs():
    # Given the schema's largest fleet (500 clusters) with long names: its plan passes 200 KiB
    def fleet(n: int, name_length: int) -> FleetRequest:
        clusters = [
            {
                "accountId": f"{100000000000 + i % 50}",
                "region": "ap-southeast-2",
                "name": f"{i:04d}".ljust(name_length, "x"),
            }
            for i in range(n)
        ]
        return FleetRequest.model_validate(
            {
                "run": {"executionId": "arn:x", "executionName": "fleet-1"},
                "fleet": {
                    "fromVersion": "1.23",
                    "toVersion": "1.24",
                    "clusters": clusters,
                    "waves": [{"name": "all"}],
                },
            }
        )

    with pytest.raises(InvalidFleetInput, match="split the fleet into several runs") as refused:
        plan_waves(fleet(500, 100), ARN)
    # Then the error says how big it is and what the limit is, on the clusters' path
    assert refused.value.details["path"] == "$.clusters"
    assert refused.value.details["planBytes"] > refused.value.details["limitBytes"] == 200 * 1024
    # And a fleet of 300 such clusters, or the bench's 100, still plans
    assert sum(len(w.clusters) for w in plan_waves(fleet(300, 100), ARN).waves) == 300
    assert sum(len(w.clusters) for w in plan_waves(request(100, waves=[{"name": "r"}]), ARN).waves) == 100
