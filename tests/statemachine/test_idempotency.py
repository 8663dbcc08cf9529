"""Idempotent steps (GUIDE convention 9): the steps that change something run under Powertools idempotency
keyed by their state entry. Statically: every ASL state invoking such a step passes the invocation
envelope, and retries an attempt in progress past the Lambda deadline. On the local engine: a response
lost after the step ran (Lambda.ServiceException) is retried, and the retry returns the saved result
without calling AWS or Kubernetes again."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from upgrader.catalog import STEPS, STEPS_BY_NAME

from infra.asl import STEP_BY_ARN_VARIABLE, SUBSTITUTION, load_definitions
from simulator.engine import ORCHESTRATOR_ACCOUNT
from simulator.fleet import fleet_input, run_fleet
from simulator.scenario import Scenario, load_scenario
from simulator.simulation import Simulation

DEFINITIONS = load_definitions()
ENVELOPE_INVOCATION = {
    "executionId.$": "$$.Execution.Id",
    "stateName.$": "$$.State.Name",
    "enteredTime.$": "$$.State.EnteredTime",
}
IN_PROGRESS = "IdempotencyAlreadyInProgressError"
IDEMPOTENT = frozenset(step.name for step in STEPS if step.idempotent)
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


# --- the ASL, statically --------------------------------------------------------------------------


def lambda_tasks(states: dict[str, Any], where: str = "") -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, catalog step, state) for every Task state that invokes a catalog function, nested too."""
    for name, state in states.items():
        if state.get("Type") == "Task":
            resource = str(state.get("Resource", ""))
            target = (
                resource
                if resource.startswith("${")
                else str(state.get("Parameters", {}).get("FunctionName", ""))
            )
            match = SUBSTITUTION.fullmatch(target)
            if match:
                yield f"{where}{name}", STEP_BY_ARN_VARIABLE[match.group(1)].name, state
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from lambda_tasks(state[key]["States"], f"{where}{name}/")
        for index, branch in enumerate(state.get("Branches", [])):
            yield from lambda_tasks(branch["States"], f"{where}{name}[{index}]/")


def envelope_problems(document: dict[str, Any], idempotent: frozenset[str]) -> list[str]:
    problems = []
    for path, step, state in lambda_tasks(document["States"]):
        parameters = state.get("Parameters") or {}
        direct = not str(state.get("Resource", "")).startswith("arn:")
        if step not in idempotent:
            if "invocation" in parameters or "state" in parameters or "state.$" in parameters:
                problems.append(f"{path}: {step} is not idempotent but gets the invocation envelope")
            continue
        if not direct:
            problems.append(f"{path}: {step} is idempotent but not invoked by its ARN (one attempt, one key)")
            continue
        if set(parameters) not in ({"state.$", "invocation"}, {"state", "invocation"}):
            problems.append(
                f"{path}: {step} needs Parameters {{state, invocation}}, has {sorted(parameters)}"
            )
            continue
        if parameters.get("state.$", "$") != "$" or not isinstance(parameters.get("state", {}), dict):
            problems.append(f"{path}: {step}'s state must be the whole state input ($) or its selection")
        if parameters["invocation"] != ENVELOPE_INVOCATION:
            problems.append(f"{path}: {step}'s invocation must be exactly {ENVELOPE_INVOCATION}")
    return problems


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.path.name)
def test_every_idempotent_step_gets_the_invocation_envelope_in_every_state_and_no_other_does(definition):
    assert envelope_problems(definition.document, IDEMPOTENT) == []


def test_every_idempotent_step_is_invoked_by_some_state():
    invoked = {step for d in DEFINITIONS for _, step, _ in lambda_tasks(d.document["States"])}
    assert invoked >= IDEMPOTENT
    # And both states using ReleaseClusterLock and EvaluateWave (RecordRejection) are among the enveloped
    enveloped = {
        path.rsplit("/", 1)[-1]
        for d in DEFINITIONS
        for path, step, state in lambda_tasks(d.document["States"])
        if "invocation" in state.get("Parameters", {})
    }
    assert {"ReleaseClusterLock", "ReleaseAfterFailure", "EvaluateWave", "RecordRejection"} <= enveloped


def test_the_envelope_check_reports_a_missing_a_wrong_and_an_unexpected_envelope():
    broken = {
        "States": {
            "Bare": {"Type": "Task", "Resource": "${DrainNodesFunctionArn}", "End": True},
            "NoTime": {
                "Type": "Task",
                "Resource": "${RetireNodegroupFunctionArn}",
                "Parameters": {"state.$": "$", "invocation": {"executionId.$": "$$.Execution.Id"}},
                "End": True,
            },
            "ReadOnly": {
                "Type": "Task",
                "Resource": "${PreflightFunctionArn}",
                "Parameters": {"state.$": "$", "invocation": ENVELOPE_INVOCATION},
                "End": True,
            },
        }
    }
    problems = envelope_problems(broken, IDEMPOTENT)
    assert len(problems) == 3, problems
    assert [p.split(":")[0] for p in problems] == ["Bare", "NoTime", "ReadOnly"]


def test_every_state_of_an_idempotent_step_retries_an_attempt_in_progress_past_the_lambda_deadline():
    from infra.constants import LAMBDA_TIMEOUT  # imports aws_cdk: only here

    deadline = LAMBDA_TIMEOUT.to_seconds()
    for definition in DEFINITIONS:
        for path, step, state in lambda_tasks(definition.document["States"]):
            rules = [r for r in state.get("Retry", []) if IN_PROGRESS in r["ErrorEquals"]]
            if step not in IDEMPOTENT and not STEPS_BY_NAME[step].assumes_target_role:
                continue
            if str(state.get("Resource")).startswith("arn:"):
                continue  # waitForTaskToken: not idempotent, its own token per attempt
            # Then one rule, of its own, without jitter: its waits add up past the in-progress window
            # (an attempt that died holds the record until its Lambda deadline)
            [rule] = rules
            assert rule["ErrorEquals"] == [IN_PROGRESS], path
            assert rule.get("JitterStrategy", "NONE") == "NONE", path
            waits, interval = [], float(rule["IntervalSeconds"])
            for _ in range(rule["MaxAttempts"]):
                waits.append(min(interval, rule.get("MaxDelaySeconds", interval)))
                interval *= rule["BackoffRate"]
            assert sum(waits) > 2 * deadline, (path, waits)


# --- on the local engine ---------------------------------------------------------------------------


@dataclass
class Attempt:
    function: str
    response_lost: bool
    calls: list[Any] = field(default_factory=list)
    kube_requests: list[Any] = field(default_factory=list)


@dataclass
class LostResponses:
    """Loses the response of the first attempt of every state entry of ``steps`` (after the step ran and
    changed what it changes): Lambda reports Lambda.ServiceException and Step Functions retries."""

    sim: Simulation
    steps: frozenset[str]
    attempts: list[Attempt] = field(default_factory=list)

    @contextlib.contextmanager
    def __call__(self, function: str) -> Iterator[None]:
        sim = self.sim
        assert sim.kube_server is not None
        calls, requests = len(sim.faults.calls), len(sim.kube_server.requests)
        previous = next((a for a in reversed(self.attempts) if a.function == function), None)
        # Invocations run one at a time: the attempt after a lost one is that state entry's retry.
        lose = function in self.steps and not (previous and previous.response_lost)
        attempt = Attempt(function, lose)
        self.attempts.append(attempt)
        yield  # the handler ran (an exception it raised goes on as it is)
        attempt.calls = sim.faults.calls[calls:]
        attempt.kube_requests = sim.kube_server.requests[requests:]
        if lose:
            error = RuntimeError(f"Lambda.ServiceException injected after {function} ran: response lost")
            error.lambda_error_type = "Lambda.ServiceException"  # type: ignore[attr-defined]
            raise error

    def retries(self) -> list[tuple[Attempt, Attempt]]:
        """(the lost attempt, the retry of the same state entry) pairs."""
        pairs = []
        for index, attempt in enumerate(self.attempts):
            if attempt.response_lost:
                retry = next(a for a in self.attempts[index + 1 :] if a.function == attempt.function)
                pairs.append((attempt, retry))
        return pairs


def only_its_idempotency_record(attempt: Attempt) -> bool:
    """The retry read (or tried to claim) its idempotency record in the central account, nothing else."""
    return not attempt.kube_requests and all(
        (c.service, c.account) == ("dynamodb", ORCHESTRATOR_ACCOUNT) and c.operation in ("PutItem", "GetItem")
        for c in attempt.calls
    )


def cluster_scenario() -> Scenario:
    return Scenario.model_validate(
        {
            "name": "idempotency",
            "upgrade": {"toVersion": "1.24"},
            "accounts": [
                {
                    "id": "111111111111",
                    "clusters": [
                        {
                            "name": "payments-prod",
                            "region": "eu-west-1",
                            "version": "1.23",
                            "nodegroups": [{"name": "general", "desiredSize": 2}],
                            "addons": [{"name": "kube-proxy"}],
                            "workloads": [
                                {"kind": "Deployment", "name": "api", "namespace": "payments", "replicas": 3}
                            ],
                        }
                    ],
                }
            ],
        }
    )


def test_a_lost_response_of_every_idempotent_step_is_retried_and_nothing_changes_twice():
    # Given the first response of every state entry of every idempotent step lost after the step ran
    # (migration, drain rounds, control plane, add-on and node version passes)
    spec = cluster_scenario()
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        lost = LostResponses(sim, IDEMPOTENT)
        sim.engine.runtime.around_invoke.append(lost)
        # When the cluster workflow runs
        run = sim.run_cluster(account, cluster)

    # Then every lost response was retried and the run completed
    assert run.result.status == "SUCCEEDED", run.failure()
    retries = lost.retries()
    retried = {first.function for first, _ in retries}
    assert retried >= {
        "CreateReplacementNodegroup",
        "PrepareDrain",
        "DrainNodes",
        "RetireNodegroup",
        "StartControlPlaneUpdate",
        "UpdateAddons",
        "UpdateNodegroupVersions",
    }
    assert sum(1 for first, _ in retries if first.function == "DrainNodes") >= 2  # each round its own entry
    assert run.result.retries >= len(retries)
    # And each retry returned the saved result: no AWS call in the fleet account, no Kubernetes request
    for first, retry in retries:
        assert only_its_idempotency_record(retry), (retry.function, retry.calls, retry.kube_requests)
        assert first.calls  # while the lost attempt did the work
    # And each change happened exactly once
    changes = [c.operation for c in sim.faults.mutating_calls()]
    for once in (
        "CreateNodegroup",
        "DeleteNodegroup",
        "UpdateClusterVersion",
        "UpdateNodegroupVersion",
        "UpdateAddon",
    ):
        assert changes.count(once) == 1, (once, changes)
    # And no pod was lost, no budget violated, nothing deleted unexpectedly
    lost_pods = {name: run.invariants[name] for name in ("podsLost", "pdbViolations", "unexpectedDeletions")}
    assert lost_pods == {"podsLost": 0, "pdbViolations": 0, "unexpectedDeletions": 0}
    assert run.after["version"] == "1.24"


FLEET_STEPS = frozenset({"AcquireClusterLock", "ReleaseClusterLock", "EvaluateWave", "WriteFleetReport"})


def test_a_lost_response_of_the_fleet_steps_is_retried_and_the_lock_and_report_are_written_once():
    with Simulation(load_scenario(SCENARIOS / "fleet-failures.yaml")) as sim:
        # Given a one-cluster fleet whose lock, wave record and report steps each lose their first response
        [entry] = [c for c in fleet_input(sim)["clusters"] if c["name"] == "good-1"]
        request = fleet_input(sim, clusters=[entry], canary={"size": 1})
        lost = LostResponses(sim, FLEET_STEPS)
        sim.engine.runtime.around_invoke.append(lost)
        # When the fleet runs
        run = run_fleet(sim, "fleet-lost-responses", request)
        reports = sim.engine.client("s3").list_objects_v2(
            Bucket=sim.engine.report_bucket, Prefix="reports/fleet-lost-responses/"
        )

    # Then it succeeded, each of those steps' lost response retried once
    assert run.result.status == "SUCCEEDED", run.result.cause
    assert run.report is not None and run.report["outcome"] == "SUCCEEDED"
    retries = lost.retries()
    assert sorted(first.function for first, _ in retries) == sorted(FLEET_STEPS)
    # And the retries only found their saved results: the lock taken and released once, the wave
    # recorded once, the report written once (its three objects, one PutObject each)
    for _, retry in retries:
        assert only_its_idempotency_record(retry), (retry.function, retry.calls)
    writes = [
        c.operation
        for a in lost.attempts
        if a.function == "WriteFleetReport"
        for c in a.calls
        if c.service == "s3"
    ]
    keys = [o["Key"] for o in reports.get("Contents", []) if "/fleet-report." in o["Key"]]
    assert writes == ["PutObject"] * len(keys) and len(keys) == 3
    assert run.cluster(f"{entry['accountId']}/{entry['region']}/{entry['name']}")["status"] == "SUCCEEDED"
    assert [c["call"] for c in run.mutating_calls].count("eks:UpdateClusterVersion") == 1
