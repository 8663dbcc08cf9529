"""What the cluster-workflow tests build and read back: the one simulated cluster they share, its
workloads, and the run's outputs, failure details, cordoned nodes and invariants."""

from __future__ import annotations

import json
from typing import Any

from simulator.simulation import ClusterRun, Simulation

ACCOUNT, REGION, NAME = "111111111111", "eu-west-1", "payments-prod"
# The readiness gate blocks budgets that allow no eviction (GN007); these tests go ahead on purpose.
ACK_BLOCKING_PDB = [{"rule": "GN007", "reason": "test: the drain must stop on it and name it"}]


def deployment(replicas: int, *, name: str = "api", **extra: Any) -> dict[str, Any]:
    """A Deployment in the payments namespace, in the workload shorthand (``pdb=...`` adds its budget)."""
    return {"kind": "Deployment", "name": name, "namespace": "payments", "replicas": replicas, **extra}


def lambda_outputs(run: ClusterRun) -> list[dict[str, Any]]:
    """What every successful Lambda invocation of the run returned, in order."""
    return [
        json.loads(e["lambdaFunctionSucceededEventDetails"]["output"])
        for e in run.result.history
        if e["type"] == "LambdaFunctionSucceeded"
    ]


def assert_nothing_lost(run: ClusterRun) -> None:
    invariants = run.invariants
    assert (invariants["podsLost"], invariants["pdbViolations"], invariants["unexpectedDeletions"]) == (
        0,
        0,
        0,
    ), invariants


def cordoned(sim: Simulation, group: str) -> list[str]:
    world = sim.worlds[(ACCOUNT, REGION, NAME)]
    return [
        n["metadata"]["name"]
        for n in world.list("Node")
        if n["metadata"]["labels"].get("eks.amazonaws.com/nodegroup") == group
        and n["spec"].get("unschedulable")
    ]


def failure_details(run: ClusterRun) -> dict[str, Any]:
    failure = run.failure()
    assert failure is not None
    return failure["details"]
