"""``fleetctl`` commands. ``simulate`` and ``demo`` run the product on this machine against a simulated fleet.

Exit codes: 0 every cluster succeeded; 1 a cluster failed or was blocked; 2 bad scenario or usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from fleetctl import operator, scan
from simulator.report import build_report, finding_line, write_report
from simulator.scenario import Scenario, ScenarioError, load_scenario
from simulator.simulation import ClusterRun, Simulation

DEMO_SCENARIO = Path(__file__).resolve().parent.parent / "examples" / "fleets" / "demo.yaml"


def _print_run(run: ClusterRun, out: object) -> None:
    print(
        f"\n== {run.account.id}/{run.cluster.region}/{run.cluster.name}: "
        f"{run.execution_input['fromVersion']} -> {run.execution_input['toVersion']} "
        f"(execution {run.result.name})",
        file=out,  # type: ignore[arg-type]
    )
    for timestamp, state in run.result.states():
        stamp = timestamp.strftime("%H:%M:%S") if hasattr(timestamp, "strftime") else str(timestamp)
        print(f"   {stamp}  {state}", file=out)  # type: ignore[arg-type]
    line = f"   => {run.status}"
    failure = run.failure()
    if failure:
        line += f": {failure['error']}: {failure['message']}"
    print(line, file=out)  # type: ignore[arg-type]
    for group in run.nodegroups:
        print(
            f"      node group {group['old']} -> {group['new']}: {group['status']} ({group['nodesDrained']} of "
            f"{group['nodesTotal']} nodes drained, {group['podsEvicted']} pods evicted, "
            f"{group['pdbBlockedSeconds']} s blocked on budgets)",
            file=out,  # type: ignore[arg-type]
        )
    if failure and failure["error"] == "UnmigratableDockerNodes":
        print("      Docker nodes this workflow does not replace:", file=out)  # type: ignore[arg-type]
        for entry in failure["details"].get("blocking", []):
            nodes = ", ".join(entry.get("nodes", []))
            print(
                f"      - {entry['nodegroup']} ({entry['management']}): {entry['reason']}"
                + (f": {nodes}" if nodes else ""),
                file=out,  # type: ignore[arg-type]
            )
    elif run.status == "BLOCKED" and failure:
        print("      blocking findings (rule, object: field = value):", file=out)  # type: ignore[arg-type]
        findings = (run.readiness or {}).get("blockingFindings") or failure["details"].get("blocking", [])
        for finding in findings:
            if not finding.get("acknowledged"):
                print(f"      - {finding_line(finding)}", file=out)  # type: ignore[arg-type]
        report = failure["details"].get("report") or {}
        if report:
            print(f"      report: s3://{report['bucket']}/{report['markdownKey']}", file=out)  # type: ignore[arg-type]


def simulate(scenario_path: Path, out_dir: Path, check_expectations: bool = False) -> int:
    try:
        scenario = load_scenario(scenario_path)
    except ScenarioError as error:
        print(f"fleetctl: {error}", file=sys.stderr)
        return 2
    wall = time.perf_counter()
    with Simulation(scenario) as simulation:
        runs = []
        for account, cluster in scenario.clusters():
            run = simulation.run_cluster(account, cluster)
            _print_run(run, sys.stdout)
            runs.append(run)
        report = build_report(simulation, runs)
        (out_dir).mkdir(parents=True, exist_ok=True)
        (out_dir / "lambda.log").write_text(simulation.lambda_log.getvalue())
    json_path, md_path = write_report(report, out_dir)
    summary, cost = report["summary"], report["cost"]
    print(
        f"\n{summary['total']} cluster(s): {summary['succeeded']} succeeded, {summary['failed']} failed, "
        f"{summary['blocked']} blocked. "
        f"Virtual time {report['virtualDurationSeconds']:.0f} s, {cost['stateTransitions']} state transitions, "
        f"{cost['lambdaInvocations']} Lambda invocations, {report['awsCalls']['throttled']} throttled AWS calls; "
        f"wall time {time.perf_counter() - wall:.1f} s.\nReport: {json_path} and {md_path}"
    )
    if check_expectations:
        return _check_expectations(scenario, report)
    return 0 if summary["succeeded"] == summary["total"] else 1


def run_demo(scenario_path: Path, out_dir: Path) -> int:
    """The demo scenario through the fleet workflow (statemachines/fleet_upgrade.asl.json) on the local
    engine: waves from the scenario's ``fleet`` block, progress printed from the events the workflow emits
    (docs/events.md), each cluster checked against its ``expect``, the reports in JSON, Markdown and HTML."""
    from simulator.fleet import FleetDriver, cluster_runs, fleet_input, run_with_progress

    try:
        scenario = load_scenario(scenario_path)
    except ScenarioError as error:
        print(f"fleetctl: {error}", file=sys.stderr)
        return 2
    wall = time.perf_counter()
    with Simulation(scenario) as simulation:
        spec = scenario.fleet
        name = (spec.execution_name if spec else "") or f"{scenario.name}-fleet"
        request = fleet_input(simulation, **(spec.input_fields() if spec else {}))
        before = {
            f"{account.id}/{cluster.region}/{cluster.name}": simulation.cluster_state(account, cluster)
            for account, cluster in scenario.clusters()
        }
        print(f"Fleet {name}: {len(request['clusters'])} cluster(s) to {request['toVersion']}")
        clock = simulation.clock
        # Lambda handlers run in moto's threads with sys.stdout redirected to the log: print to the
        # terminal's stream, bound now.
        out = sys.stdout

        def progress(event: dict[str, Any]) -> None:
            detail, kind = event["detail"], event["detail-type"]
            stamp = str(detail.get("time") or detail.get("requestedAt") or "")[11:19] or clock.to_datetime(
                clock.now()
            ).strftime("%H:%M:%S")
            if kind.endswith("Cluster State Change"):
                error = f" ({detail['error']})" if detail.get("error") else ""
                print(f"   {stamp}  {detail['cluster']}: {detail['status']}{error}", file=out, flush=True)
            elif kind.endswith("Approval Pending"):
                print(f"   {stamp}  wave {detail['wave']} waits for approval", file=out, flush=True)
            elif detail.get("status") == "RUNNING":
                print(
                    f"   {stamp}  fleet started, waves: {', '.join(detail.get('waves') or [])}",
                    file=out,
                    flush=True,
                )
            else:
                print(f"   {stamp}  fleet finished: {detail['status']}", file=out, flush=True)

        run = run_with_progress(FleetDriver(simulation), name, request, progress)
        if run.report is None:
            print(
                f"fleetctl: fleet {name} wrote no report ({run.result.error}: {run.result.cause})",
                file=sys.stderr,
            )
            return 1
        runs = cluster_runs(simulation, run, before)
        waves = {c["key"]: c["wave"] for c in run.report["clusters"]}
        for wave in run.report["waves"]:
            print(
                f"\n== wave {wave['index']} {wave['name']}: {wave['outcome']} "
                f"({wave['failed']} failed or blocked, {wave['failureTolerance']} tolerated)"
            )
            for cluster_run in runs:
                key = f"{cluster_run.account.id}/{cluster_run.cluster.region}/{cluster_run.cluster.name}"
                if waves.get(key) == wave["name"]:
                    _print_run(cluster_run, sys.stdout)
        report = build_report(simulation, runs, run)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "lambda.log").write_text(simulation.lambda_log.getvalue())
    paths = write_report(report, out_dir, with_html=True)
    summary, cost = report["summary"], report["cost"]
    print(
        f"\nFleet {report['outcome']}: {summary['total']} cluster(s), {summary['succeeded']} succeeded, "
        f"{summary['failed']} failed, {summary['blocked']} blocked. Virtual time {report['virtualDurationSeconds']:.0f} s, "
        f"{cost['stateTransitions']} cluster state transitions, {cost['lambdaInvocations']} Lambda invocations, "
        f"{report['awsCalls']['throttled']} throttled AWS calls, {report['events']} events; "
        f"wall time {time.perf_counter() - wall:.1f} s.\nReport: {', '.join(str(p) for p in paths)}"
    )
    return _check_expectations(scenario, report)


def _check_expectations(scenario: Scenario, report: dict[str, Any]) -> int:
    """The demo fails one cluster and blocks another on purpose: succeed when every outcome is the expected one."""
    outcomes = {(c["account"], c["region"], c["name"]): c["status"] for c in report["clusters"]}
    wrong = [
        f"{cluster.name}: expected {cluster.expect or 'SUCCEEDED'}, got {outcomes[(account.id, cluster.region, cluster.name)]}"
        for account, cluster in scenario.clusters()
        if outcomes[(account.id, cluster.region, cluster.name)] != (cluster.expect or "SUCCEEDED")
    ]
    if wrong:
        print(
            "fleetctl: outcomes differ from the scenario's expectations: " + "; ".join(wrong), file=sys.stderr
        )
        return 1
    print("Every cluster ended as the scenario expects.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fleetctl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser("simulate", help="run the upgrade on the local engine against a scenario")
    sim.add_argument("scenario", type=Path)
    sim.add_argument("--out", type=Path, default=Path("out/simulate"))
    demo = commands.add_parser("demo", help="simulate examples/fleets/demo.yaml")
    demo.add_argument("--out", type=Path, default=Path("out/demo"))
    scan.add_parser(commands)
    operator.add_parsers(commands)
    args = parser.parse_args(argv)
    if args.command in operator.COMMANDS:
        return int(args.func(args))
    if args.command == "scan":
        return args.func(args)
    if args.command == "simulate":
        return simulate(args.scenario, args.out)
    return run_demo(DEMO_SCENARIO, args.out)


if __name__ == "__main__":
    sys.exit(main())
