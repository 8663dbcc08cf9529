"""``make bench``: cost, speed and scale figures, written to out/bench/results.json and docs/benchmarks.md.

Virtual-time figures are deterministic (one run each); wall-time figures are the median of several
runs. Figures whose workflow does not exist yet are listed under ``notMeasured`` with the reason,
never filled with a guess.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from upgrader.catalog import STEPS

from simulator.scenario import Scenario, load_scenario
from simulator.simulation import ClusterRun, Simulation

ROOT = Path(__file__).resolve().parent.parent
BENCH_CLUSTER = ROOT / "examples" / "bench" / "bench-cluster.yaml"
DOCS = ROOT / "docs" / "benchmarks.md"
WALL_RUNS = 5
TARGETS = {"stateTransitions": 250, "lambdaInvocations": 80, "detectionLatencyRatio": 0.05}


def _first_poll_after(polls: list[float], done: float) -> float | None:
    return next((t for t in polls if t >= done), None)


def _detection_latency(sim: Simulation, run: ClusterRun) -> float:
    """Virtual seconds between each EKS operation finishing and the workflow's poll that saw it.

    Control plane updates finish at their update's created time + duration; node group creations
    and deletions at the mutating call's time + the configured duration (node groups are migrated
    one at a time, so the first poll of that step after the finish is the one that saw it).
    """
    invocations = run.result.invocations

    def polls(function: str) -> list[float]:
        return sorted(i.started_at for i in invocations if i.function == function)

    timings = sim.eks.timings
    total = 0.0
    control_plane_polls = polls("PollControlPlaneUpdate")
    for updates in sim.eks.updates.values():
        for update in updates:
            seen = _first_poll_after(control_plane_polls, update.created_at + update.duration)
            total += 0.0 if seen is None else seen - (update.created_at + update.duration)
    lifecycles = {
        "CreateNodegroup": ("PollReplacementNodegroup", timings.nodegroup_create),
        "DeleteNodegroup": ("PollNodegroupDeletion", timings.nodegroup_delete),
    }
    for call in sim.faults.mutating_calls():
        if call.operation in lifecycles:
            function, duration = lifecycles[call.operation]
            seen = _first_poll_after(polls(function), call.at + duration)
            total += 0.0 if seen is None else seen - (call.at + duration)
    return total


def cost_figures(scenario: Scenario) -> dict[str, Any]:
    with Simulation(scenario) as sim:
        account, cluster = scenario.clusters()[0]
        run = sim.run_cluster(account, cluster)
        latency = _detection_latency(sim, run)
    result = run.result
    if result.status != "SUCCEEDED":
        raise RuntimeError(f"benchmark run did not succeed: {result.error}: {result.cause}")
    return {
        "stateTransitions": result.state_transitions,
        "lambdaInvocations": result.lambda_invocations,
        "handlerWallSeconds": round(sum(i.wall_seconds for i in result.invocations), 3),
        "virtualDurationSeconds": result.virtual_duration_seconds,
        "detectionLatencySeconds": latency,
        "detectionLatencyRatio": round(latency / result.virtual_duration_seconds, 4),
    }


def import_ms(module: str) -> float:
    """Median wall time of a cold ``import`` of a handler module in a fresh interpreter."""
    code = f"import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
    env = {"PYTHONPATH": str(ROOT / "functions"), "POWERTOOLS_TRACE_DISABLED": "false"}
    samples = []
    for _ in range(WALL_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        samples.append(float(out.stdout.strip()))
    return round(statistics.median(samples), 1)


def _size_mb(path: Path) -> float:
    files = [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return round(sum(p.stat().st_size for p in files) / 1_000_000, 1)


def cold_start_figures() -> dict[str, Any]:
    per_step = {step.name: import_ms(f"{step.package}.handler") for step in STEPS}
    from infra.bundling import PipLayerBundler  # builds the layer once if it is not cached yet

    layer = PipLayerBundler().ensure_cached()
    package_mb = _size_mb(ROOT / "functions") + _size_mb(layer)
    return {"importMs": per_step, "maxImportMs": max(per_step.values()), "maxPackageMB": round(package_mb, 1)}


NOT_MEASURED = {
    "fleet.makespanRatio": "needs the fleet workflow (issue 7)",
    "fleet.sequentialRatio": "needs the fleet workflow (issue 7)",
    "drain.lowerBoundRatio": "needs a lower-bound model of the drain (issue 8)",
    "drain.speedupVsSequential": "needs a parallel-drain variant to compare (issue 8)",
    "scan.apiRequests": "not instrumented yet (issue 8)",
    "scan.liveWallSeconds": "not instrumented yet (issue 8)",
    "scan.offlineObjectsPerSecond": "not instrumented yet (issue 8)",
}


def run(out_dir: Path) -> dict[str, Any]:
    scenario = load_scenario(BENCH_CLUSTER)
    wall = time.perf_counter()
    adaptive = cost_figures(scenario)
    baseline = cost_figures(scenario.model_copy(update={"poll_strategy": "fixed"}))
    results = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
            "moto": metadata.version("moto"),
            "date": time.strftime("%Y-%m-%d"),
        },
        "scope": "the whole cluster workflow on bench-cluster: readiness gate, migration of the three "
        "Docker node groups to containerd twins, control plane 1.23 -> 1.24. Detection latency covers "
        "the control plane update and every node group creation and deletion",
        "cost": {**adaptive, "baseline": baseline},
        "coldStart": cold_start_figures(),
        "targets": TARGETS,
        "notMeasured": NOT_MEASURED,
        "benchWallSeconds": None,
    }
    results["benchWallSeconds"] = round(time.perf_counter() - wall, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    DOCS.write_text(render(results))
    return results


def render(r: dict[str, Any]) -> str:
    c, b, cs = r["cost"], r["cost"]["baseline"], r["coldStart"]
    rows = [
        (
            "State transitions per cluster",
            c["stateTransitions"],
            b["stateTransitions"],
            f"<= {TARGETS['stateTransitions']}",
        ),
        (
            "Lambda invocations per cluster",
            c["lambdaInvocations"],
            b["lambdaInvocations"],
            f"<= {TARGETS['lambdaInvocations']}",
        ),
        ("Virtual duration (s)", c["virtualDurationSeconds"], b["virtualDurationSeconds"], "-"),
        ("Detection latency (s)", c["detectionLatencySeconds"], b["detectionLatencySeconds"], "-"),
        (
            "Detection latency / duration",
            c["detectionLatencyRatio"],
            b["detectionLatencyRatio"],
            f"<= {TARGETS['detectionLatencyRatio']}",
        ),
        ("Summed handler wall time (s)", c["handlerWallSeconds"], b["handlerWallSeconds"], "-"),
    ]
    m = r["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`simulator/bench.py`); do not edit by hand. Raw figures: `out/bench/results.json`.",
        f"Machine: {m['platform']}, {m['cpus']} CPUs, Python {m['python']}, moto {m['moto']}; {m['date']}.",
        "",
        f"Scope: {r['scope']}. Virtual-time figures are deterministic; wall-time figures are medians of {WALL_RUNS} runs.",
        "",
        "## Cost per cluster (`examples/bench/bench-cluster.yaml`)",
        "",
        "| Figure | Adaptive waits | Baseline (fixed 30 s polls) | Target |",
        "|---|---|---|---|",
        *[f"| {name} | {a} | {base} | {target} |" for name, a, base, target in rows],
        "",
        "## Cold start",
        "",
        "| Step | Import (ms, median) |",
        "|---|---|",
        *[f"| {step} | {ms} |" for step, ms in cs["importMs"].items()],
        "",
        f"Largest import: {cs['maxImportMs']} ms. Code + dependency layer: {cs['maxPackageMB']} MB (unzipped).",
        "",
        "## Not measured yet",
        "",
        *[f"- `{key}`: {why}" for key, why in r["notMeasured"].items()],
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    args = parser.parse_args(argv)
    results = run(args.out)
    print(json.dumps({"cost": results["cost"], "coldStart": results["coldStart"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
