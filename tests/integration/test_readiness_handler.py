"""The ReadinessCheck Lambda (functions/readiness_check/handler.py) as Step Functions invokes it: through
moto's Lambda API with the function's environment, the target role assumed in the fleet account, the
cluster's API server on loopback, and the report written to the reports bucket in the central account."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from readiness_check.handler import lambda_handler
from upgrader.errors import StepMisconfigured

from simulator.engine import ORCHESTRATOR_ACCOUNT
from simulator.scenario import load_scenario
from simulator.simulation import Simulation
from tests.events import load_event

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "readiness-docker-socket.yaml"


@pytest.fixture(scope="module")
def sim():
    with Simulation(load_scenario(SCENARIO)) as simulation:
        yield simulation


def state_for(sim: Simulation, name: str, **extra: Any) -> dict[str, Any]:
    account, cluster = sim.scenario.clusters()[0]
    return {
        "run": {
            "executionId": f"arn:aws:states:us-east-1:{ORCHESTRATOR_ACCOUNT}:execution:x:{name}",
            "executionName": name,
        },
        **sim.execution_input(account, cluster),
        "preflight": {"clusterStatus": "ACTIVE", "clusterVersion": "1.23", "controlPlaneAtTarget": False},
        **extra,
    }


def invoke(sim: Simulation, state: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    response = sim.engine.client("lambda").invoke(FunctionName="ReadinessCheck", Payload=json.dumps(state))
    return json.loads(response["Payload"].read()), "FunctionError" in response


def test_handler_writes_both_reports_and_returns_a_small_pointer(sim):
    # Given the state after Preflight, acknowledging the cluster's one blocking rule
    state = state_for(sim, "handler-ok", acknowledge=[{"rule": "DS001", "reason": "moving to CRI logs"}])
    first_call = len(sim.faults.calls)
    # When Step Functions invokes the function
    output, failed = invoke(sim, state)
    # Then it returns the small output model: counts, rules, keys
    assert not failed, output
    assert output["acknowledgedRules"] == ["DS001"] and output["counts"]["blocking"] == 1
    assert len(json.dumps(output)) < 1024
    report = output["report"]
    assert report["bucket"] == sim.engine.report_bucket
    assert report["jsonKey"] == ("reports/handler-ok/111111111111/eu-west-1/logging-prod/readiness.json")
    # And both reports are in the bucket with their content types
    s3 = sim.engine.client("s3")
    as_json = s3.get_object(Bucket=report["bucket"], Key=report["jsonKey"])
    as_markdown = s3.get_object(Bucket=report["bucket"], Key=report["markdownKey"])
    assert as_json["ContentType"] == "application/json"
    assert as_markdown["ContentType"].startswith("text/markdown")
    assert json.loads(as_json["Body"].read())["gate"]["acknowledged"][0]["reason"] == "moving to CRI logs"
    # And the step only read in the fleet account; its only writes were the reports, in the central one
    calls = sim.faults.calls[first_call:]
    writes = [(c.service, c.operation, c.account) for c in calls if c.mutating]
    assert writes == [("s3", "PutObject", ORCHESTRATOR_ACCOUNT)] * 2
    assert {c.account for c in calls if c.service in ("eks", "ec2")} == {"111111111111"}
    assert not any(sim.faults.changes_the_fleet(c) for c in calls)


def test_handler_raises_readiness_blocked_with_the_report_keys(sim):
    output, failed = invoke(sim, state_for(sim, "handler-blocked"))
    assert failed and output["errorType"] == "ReadinessBlocked"
    message, _, details = output["errorMessage"].partition(" | ")
    assert "not ready for 1.24" in message
    assert json.loads(details)["report"]["markdownKey"].endswith(
        "/handler-blocked/111111111111/eu-west-1/logging-prod/readiness.md"
    )


class _Context:
    function_name = "ReadinessCheck"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ORCHESTRATOR_ACCOUNT}:function:ReadinessCheck"
    memory_limit_in_mb = 256
    aws_request_id = "test-request"
    log_group_name = "/aws/lambda/ReadinessCheck"
    log_stream_name = "test"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def test_without_a_report_bucket_the_step_is_misconfigured_before_any_aws_call(monkeypatch):
    monkeypatch.delenv("REPORT_BUCKET_NAME", raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    event = load_event("cluster_upgrade_request")
    with pytest.raises(StepMisconfigured, match="REPORT_BUCKET_NAME"):
        lambda_handler(event, _Context())
