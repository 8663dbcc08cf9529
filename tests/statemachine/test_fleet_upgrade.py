"""The real statemachines/fleet_upgrade.asl.json on the local engine: waves of child cluster executions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.fleet import FleetDriver, fleet_input, run_fleet
from simulator.scenario import load_scenario
from simulator.simulation import Simulation

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
CONTROL_PLANE = 420  # the scenarios' control plane update: one cluster's virtual time


def simulation(name: str) -> Simulation:
    return Simulation(load_scenario(SCENARIOS / f"{name}.yaml"))


def clusters(sim: Simulation, *names: str) -> list[dict]:
    """The fleet input's entries for these clusters, in this order."""
    by_name = {c["name"]: c for c in fleet_input(sim)["clusters"]}
    return [by_name[name] for name in names]


def key(sim: Simulation, name: str) -> str:
    entry = clusters(sim, name)[0]
    return f"{entry['accountId']}/{entry['region']}/{entry['name']}"


def test_twelve_clusters_in_three_accounts_and_two_regions_upgrade_in_three_waves():
    with simulation("fleet-twelve") as sim:
        # Given twelve clusters: a canary, a wave of 4 (concurrency 4, 600 s soak), then the other 7
        request = fleet_input(
            sim,
            canary={"size": 1},
            waves=[
                {"name": "wave-1", "size": 4, "maxConcurrency": 4, "soakSeconds": 600},
                {"name": "wave-2", "size": "100%", "maxConcurrency": 7},
            ],
        )
        assert len({(c["accountId"], c["region"]) for c in request["clusters"]}) == 6
        started = sim.clock.now()

        # When the fleet workflow runs
        run = run_fleet(sim, "fleet-twelve-1", request)

        # Then every cluster is upgraded, each by its own child execution
        assert run.result.status == "SUCCEEDED", run.result.cause
        assert run.report["outcome"] == "SUCCEEDED"
        assert set(run.statuses().values()) == {"SUCCEEDED"} and len(run.statuses()) == 12
        for account, cluster in sim.scenario.clusters():
            assert sim.cluster_state(account, cluster)["version"] == "1.24"
        assert {child["status"] for child in run.children.values()} == {"SUCCEEDED"}
        names = {child["name"] for child in run.children.values()}
        assert len(names) == 12 and all(n.startswith("fleet-twelve-1-") and len(n) <= 80 for n in names)
        # and the waves ran in order, canary first, with their sizes
        waves = run.report["waves"]
        assert [(w["name"], len(w["clusters"]), w["outcome"]) for w in waves] == [
            ("canary", 1, "SUCCEEDED"),
            ("wave-1", 4, "SUCCEEDED"),
            ("wave-2", 7, "SUCCEEDED"),
        ]
        assert (
            waves[0]["finishedAt"] <= waves[1]["startedAt"] and waves[1]["finishedAt"] < waves[2]["startedAt"]
        )
        # and the makespan reflects concurrency: each wave costs one cluster's time, plus the soak
        assert run.result.virtual_duration_seconds == 3 * CONTROL_PLANE + 600
        assert sim.clock.now() - started == 3 * CONTROL_PLANE + 600
        wave_1 = [run.cluster(k) for k in waves[1]["clusters"]]
        assert len({(c["startedAt"], c["finishedAt"]) for c in wave_1}) == 1  # side by side
        # and every lock was released
        assert not _locks(sim)
        # and the Markdown report names every cluster
        assert all(c["key"] in run.markdown for c in run.report["clusters"])


def _locks(sim: Simulation) -> list[dict]:
    from simulator.engine import RUN_TABLE_NAME

    items = sim.engine.client("dynamodb").scan(TableName=RUN_TABLE_NAME)["Items"]
    return [item for item in items if item["pk"]["S"].startswith("LOCK#")]


def test_a_canary_failure_stops_the_fleet_before_any_other_cluster():
    with simulation("fleet-failures") as sim:
        # Given a canary whose control plane update EKS fails
        request = fleet_input(
            sim,
            canary={"clusters": [key(sim, "bad-1")]},
            waves=[{"name": "rest", "maxConcurrency": 5, "failureTolerance": "100%"}],
        )

        # When the fleet runs
        run = run_fleet(sim, "canary-fails", request)

        # Then the fleet stops with FleetToleranceExceeded after the canary, and no other cluster was touched
        assert (run.result.status, run.result.error) == ("FAILED", "FleetToleranceExceeded")
        assert run.report["outcome"] == "STOPPED"
        assert run.report["stoppedBy"]["error"] == "FleetToleranceExceeded"
        assert run.cluster(key(sim, "bad-1"))["status"] == "FAILED"
        assert run.cluster(key(sim, "bad-1"))["error"] == "ControlPlaneUpdateFailed"
        assert [w["outcome"] for w in run.report["waves"]] == ["STOPPED", "NOT_STARTED"]
        touched = {call["call"].split(":")[0] for call in run.mutating_calls}
        assert touched == {"eks"} and len(run.mutating_calls) == 1  # the canary's UpdateClusterVersion
        assert not _locks(sim)


def test_a_wave_past_its_tolerance_stops_the_fleet_and_a_tolerated_failure_does_not():
    with simulation("fleet-failures") as sim:
        # Given a wave of four with two failing clusters: tolerated in wave-1 (50%), not in wave-2 (1)
        entries = clusters(sim, "good-1", "bad-1", "good-2", "good-3", "bad-2", "good-4")
        request = fleet_input(
            sim,
            clusters=entries,
            canary={"size": 1},
            waves=[
                {"name": "wave-1", "size": 2, "maxConcurrency": 2, "failureTolerance": "50%"},
                {"name": "wave-2", "size": 2, "maxConcurrency": 2, "failureTolerance": 0},
                {"name": "wave-3", "maxConcurrency": 2},
            ],
        )

        # When the fleet runs
        run = run_fleet(sim, "tolerance", request)

        # Then wave-1 is tolerated, wave-2 stops the fleet, wave-3 never starts
        assert (run.result.status, run.result.error) == ("FAILED", "FleetToleranceExceeded")
        assert [
            (w["name"], w["outcome"], w["failed"], w["failureTolerance"]) for w in run.report["waves"]
        ] == [
            ("canary", "SUCCEEDED", 0, 0),
            ("wave-1", "TOLERATED", 1, 1),
            ("wave-2", "STOPPED", 1, 0),
            ("wave-3", "NOT_STARTED", 0, 0),
        ]
        statuses = run.statuses()
        assert statuses[key(sim, "bad-2")] == "FAILED" and statuses[key(sim, "good-3")] == "SUCCEEDED"
        assert statuses[key(sim, "good-4")] == "NOT_STARTED"
        assert "IpNotAvailable" in json.dumps(run.cluster(key(sim, "bad-2")))


@pytest.mark.parametrize("approve", [True, False])
def test_a_wave_waits_for_its_approval_and_a_rejection_stops_the_fleet(approve):
    with simulation("fleet-failures") as sim:
        # Given a canary, then a wave that needs approval
        request = fleet_input(
            sim,
            clusters=clusters(sim, "good-1", "good-2", "good-3"),
            canary={"size": 1, "soakSeconds": 300},
            waves=[{"name": "prod", "maxConcurrency": 2, "approval": True}],
        )
        driver = FleetDriver(sim)
        name = f"approval-{approve}"
        arn = driver.start(name, request)

        # When the operator answers the pending approval
        driver.pending_approval(name, "prod")
        waiting_since = sim.clock.now()
        if approve:
            driver.approve(name, "prod", by="alice", reason="canary looks good")
        else:
            driver.reject(name, "prod", reason="freeze until Monday")
        run = driver.finish(arn)

        # Then time stood still while the approval was pending (after the canary and its soak)
        assert waiting_since == pytest.approx(
            run.report and _virtual(run.report["waves"][0]["finishedAt"]) + 300, abs=1
        )
        prod = run.report["waves"][1]
        if approve:
            assert run.result.status == "SUCCEEDED"
            assert prod["approval"] == {
                "required": True,
                "status": "APPROVED",
                "by": "alice",
                "reason": "canary looks good",
            }
            assert run.statuses()[key(sim, "good-3")] == "SUCCEEDED"
        else:
            assert (run.result.status, run.result.error) == ("FAILED", "FleetApprovalRejected")
            assert prod["outcome"] == "REJECTED"
            assert (
                prod["approval"]["status"] == "REJECTED"
                and prod["approval"]["reason"] == "freeze until Monday"
            )
            assert run.statuses()[key(sim, "good-3")] == "NOT_STARTED"
            assert sim.cluster_state(*_spec(sim, "good-3"))["version"] == "1.23"


def _virtual(iso: str) -> float:
    import datetime as dt

    from simulator.clock import DEFAULT_EPOCH

    return (dt.datetime.fromisoformat(iso.replace("Z", "+00:00")) - DEFAULT_EPOCH).total_seconds()


def _spec(sim: Simulation, name: str):
    return next((a, c) for a, c in sim.scenario.clusters() if c.name == name)


def test_two_fleet_runs_on_one_cluster_one_upgrades_it_and_the_other_skips_it_locked():
    with simulation("fleet-failures") as sim:
        # Given two fleets started at the same instant, both naming good-1
        first = fleet_input(
            sim, clusters=clusters(sim, "good-1", "good-2"), canary={"size": 2, "maxConcurrency": 2}
        )
        second = fleet_input(
            sim, clusters=clusters(sim, "good-1", "good-3"), canary={"size": 2, "maxConcurrency": 2}
        )
        driver = FleetDriver(sim)

        # When both run
        arns = driver.start_together([("fleet-a", first), ("fleet-b", second)])
        runs = [driver.finish(arn) for arn in arns]

        # Then exactly one of them upgraded good-1, the other recorded it as skipped (ClusterLocked)
        shared = key(sim, "good-1")
        outcomes = sorted((run.cluster(shared)["status"], run.cluster(shared).get("reason")) for run in runs)
        assert outcomes == [("SKIPPED", "locked"), ("SUCCEEDED", None)]
        locked = next(run for run in runs if run.cluster(shared)["status"] == "SKIPPED")
        assert locked.cluster(shared)["error"] == "ClusterLocked"
        holder = next(run for run in runs if run is not locked)
        assert locked.cluster(shared)["details"]["owner"] == holder.result.name
        # and each fleet's own cluster was upgraded, one UpdateClusterVersion per cluster in all
        assert all(run.result.status == "SUCCEEDED" for run in runs)
        updates = [c for c in sim.faults.mutating_calls() if c.operation == "UpdateClusterVersion"]
        assert len(updates) == 3
        assert not _locks(sim)


def test_plan_mode_runs_read_only_checks_and_changes_nothing():
    with simulation("fleet-failures") as sim:
        request = fleet_input(
            sim,
            mode="plan",
            canary={"size": 1, "approval": True, "soakSeconds": 3600},
            waves=[{"name": "all", "maxConcurrency": 5}],
        )
        run = run_fleet(sim, "plan-1", request)

        assert run.result.status == "SUCCEEDED", run.result.cause
        assert run.report["outcome"] == "PLANNED"
        assert set(run.statuses().values()) == {"PLANNED"}
        assert run.mutating_calls == []
        assert not _locks(sim)  # a plan changes nothing, so it takes no lock
        # And each cluster was planned by the cluster workflow's own plan mode, as a child execution
        assert run.children and all(c["status"] == "SUCCEEDED" for c in run.children.values())
        assert all(c["reason"] for c in run.report["clusters"])
        assert run.report["waves"][0]["approval"]["status"] == "SKIPPED_IN_PLAN"
        assert run.result.virtual_duration_seconds < 60  # no soak, no waiting for approval


def test_a_cluster_outside_its_maintenance_window_waits_for_it_or_is_skipped():
    with simulation("fleet-failures") as sim:
        # Given (Monday 09:00 UTC plus the world's setup) a window opening at 11:00, and one closed today
        opens_at_eleven = {"days": ["MON"], "start": "11:00", "durationMinutes": 120}
        entries = clusters(sim, "good-1", "good-2")
        entries[0] |= {"maintenanceWindow": opens_at_eleven}
        entries[1] |= {"maintenanceWindow": {"days": ["SAT"], "start": "22:00", "durationMinutes": 240}}
        waiting = fleet_input(sim, clusters=entries[:1], canary={"size": 1})
        skipping = fleet_input(sim, clusters=entries[1:], canary={"size": 1}, outsideWindow="skip")

        # When the fleets run
        waited = run_fleet(sim, "window-wait", waiting)
        skipped = run_fleet(sim, "window-skip", skipping)

        # Then the first cluster started when its window opened; the second was skipped
        assert waited.cluster(key(sim, "good-1"))["startedAt"].startswith("2026-01-05T11:00:01")
        assert skipped.cluster(key(sim, "good-2"))["status"] == "SKIPPED"
        assert skipped.cluster(key(sim, "good-2"))["reason"] == "outsideWindow"
        assert sim.cluster_state(*_spec(sim, "good-2"))["version"] == "1.23"


def test_invalid_fleet_input_names_the_json_path_and_nothing_runs():
    with simulation("fleet-failures") as sim:
        request = fleet_input(sim, canary={"size": 1}, waves=[{"name": "rest"}])
        request["clusters"][2]["region"] = "moon-1"
        run = run_fleet(sim, "invalid-1", request)
        assert (run.result.status, run.result.error) == ("FAILED", "InvalidFleetInput")
        assert "$.clusters[2].region" in run.result.cause
        assert run.report is None and run.mutating_calls == []


def test_a_dead_holders_lease_expires_by_its_timestamp_and_a_later_run_proceeds():
    from simulator.engine import RUN_TABLE_NAME

    with simulation("fleet-twelve") as sim:
        # Given a lock on pay-a left by a fleet run that died 10 minutes before its lease ends
        target = clusters(sim, "pay-a")
        account, region, name = target[0]["accountId"], target[0]["region"], target[0]["name"]
        expires = int(sim.clock.datetime().timestamp()) + 600
        sim.engine.client("dynamodb").put_item(
            TableName=RUN_TABLE_NAME,
            Item={
                "pk": {"S": f"LOCK#{account}#{region}#{name}"},
                "sk": {"S": "LOCK"},
                "owner": {"S": "fleet-that-died"},
                "acquiredAt": {"N": str(expires - 3600)},
                "expiresAt": {"N": str(expires)},
            },
        )
        # When a fleet run reaches it before the lease ends, Then it is skipped as locked, untouched
        early = run_fleet(sim, "fleet-early", fleet_input(sim, clusters=target, canary={"size": 1}))
        assert early.statuses() == {key(sim, "pay-a"): "SKIPPED"}
        assert early.mutating_calls == []
        # When the lease's timestamp has passed (no TTL sweep needed), Then a later run takes the lock,
        # upgrades the cluster and releases the lock
        sim.clock.sleep(max(0, expires - sim.clock.datetime().timestamp()) + 1)
        later = run_fleet(sim, "fleet-later", fleet_input(sim, clusters=target, canary={"size": 1}))
        assert later.statuses() == {key(sim, "pay-a"): "SUCCEEDED"}, later.result.cause
        assert _locks(sim) == []
