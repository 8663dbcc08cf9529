"""Hostile and bad input for statemachines/cluster_upgrade.asl.json, on the local engine against one
simulated fleet (shared by the module: an engine start costs seconds).

Every case is refused with a named error, and the refusal changes nothing: no AWS call that changes the
fleet (simulator/faults.py records every call), no Kubernetes write, no report object. Injection attempts
in names never reach an AWS call, an S3 key or a log line: every log line stays one JSON object.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.eks.models import eks_backends
from upgrader.errors import UpgradeError

from simulator.engine import ExecutionResult
from simulator.scenario import Scenario
from simulator.simulation import Simulation

ACCOUNT, REGION, NAME = "111111111111", "eu-west-1", "payments-prod"
NOT_ACTIVE = "payments-creating"
VALID: dict[str, Any] = {
    "cluster": {"accountId": ACCOUNT, "region": REGION, "name": NAME},
    "fromVersion": "1.23",
    "toVersion": "1.24",
}
_names = itertools.count(1)


@dataclass
class Refusal:
    result: ExecutionResult
    aws_calls: list[Any]
    kube_requests: list[Any]
    log_lines: list[str]
    report_keys: list[str]


class Fleet:
    """One simulated fleet for the module; ``run`` starts one execution and collects what it did."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def report_keys(self) -> list[str]:
        s3 = self.sim.engine.client("s3")
        listed = s3.list_objects_v2(Bucket=self.sim.engine.report_bucket)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def run(self, execution_input: Any, machine: str = "cluster_upgrade") -> Refusal:
        sim = self.sim
        assert sim.kube_server is not None
        calls, requests = len(sim.faults.calls), len(sim.kube_server.requests)
        log_start, keys = len(sim.lambda_log.getvalue()), set(self.report_keys())
        result = sim.engine.run(machine, f"hostile-{next(_names):03d}", execution_input)
        return Refusal(
            result,
            sim.faults.calls[calls:],
            sim.kube_server.requests[requests:],
            sim.lambda_log.getvalue()[log_start:].splitlines(),
            sorted(set(self.report_keys()) - keys),
        )


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    spec = Scenario.model_validate(
        {
            "name": "hostile",
            "upgrade": {"toVersion": "1.24"},
            "accounts": [
                {
                    "id": ACCOUNT,
                    "clusters": [
                        {
                            "name": NAME,
                            "region": REGION,
                            "version": "1.23",
                            "nodegroups": [{"name": "general", "desiredSize": 1}],
                            "workloads": [
                                {"kind": "Deployment", "name": "api", "namespace": "shop", "replicas": 2}
                            ],
                        },
                        {"name": NOT_ACTIVE, "region": REGION, "version": "1.23"},
                    ],
                }
            ],
        }
    )
    with Simulation(spec) as sim:
        # A cluster EKS is still creating (moto has no such state of its own to seed)
        eks_backends[ACCOUNT][REGION].clusters[NOT_ACTIVE].status = "CREATING"
        # A role whose trust policy requires an ExternalId we do not have (as a foreign role would)
        sim.faults.external_ids[(ACCOUNT, "someone-elses-role")] = "their-external-id"
        yield Fleet(sim)


def changed(input_: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``input_`` with ``path`` ("cluster.name") set to ``value`` (``...`` removes it)."""
    result = copy.deepcopy(input_)
    *parents, leaf = path.split(".")
    node = result
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return result


def assert_refused_without_change(refusal: Refusal, error: str, *, no_aws_call: bool) -> None:
    result = refusal.result
    assert (result.status, result.error) == ("FAILED", error), (result.error, result.cause)
    mutating = [c for c in refusal.aws_calls if c.mutating and c.account != "123456789012"]
    assert mutating == [], mutating
    if no_aws_call:
        assert refusal.aws_calls == [], refusal.aws_calls
    assert [r for r in refusal.kube_requests if r.method != "GET"] == []
    assert refusal.report_keys == []
    for line in refusal.log_lines:  # structured logs: a value can never break out of its line
        assert isinstance(json.loads(line), dict), line


# -- the shape of the input ----------------------------------------------------------------------------------

NOT_AN_OBJECT = [[], [VALID], "payments-prod", 42, None, True]


@pytest.mark.parametrize("execution_input", NOT_AN_OBJECT, ids=lambda v: type(v).__name__)
def test_json_that_is_not_an_object_is_invalid_input(fleet, execution_input):
    refusal = fleet.run(execution_input)
    assert_refused_without_change(refusal, "InvalidInput", no_aws_call=True)


@pytest.mark.parametrize("text", ["{", '{"cluster": ', "{'cluster': {}}", "\x00", ""])
def test_text_that_is_not_json_is_refused_by_start_execution(fleet, text):
    # Given the raw input text an API caller could send (the engine's run() always sends JSON)
    sfn = fleet.sim.engine.client("stepfunctions")
    machine = fleet.sim.engine.state_machines["cluster_upgrade"]
    calls, executions = (
        len(fleet.sim.faults.calls),
        len(sfn.list_executions(stateMachineArn=machine)["executions"]),
    )
    # Then StartExecution refuses it (AWS: 400 InvalidExecutionInput; moto's interpreter answers the same
    # 400 with the JSON parser's message and no code) before any execution exists
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=machine, name=f"not-json-{next(_names)}", input=text)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert refused.value.response["Error"]["Code"] in ("InvalidExecutionInput", "")
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == executions
    assert fleet.sim.faults.calls[calls:] == []


WRONG_TYPES = {
    "accountId as a number": ("cluster.accountId", 111111111111),
    "region as a list": ("cluster.region", [REGION]),
    "name as an object": ("cluster.name", {"value": NAME}),
    "cluster as a string": ("cluster", f"{ACCOUNT}/{REGION}/{NAME}"),
    "fromVersion as a number": ("fromVersion", 1.23),
    "toVersion as a number": ("toVersion", 1.24),
    "acknowledge as a string": ("acknowledge", "DS001"),
    "acknowledgment without reason": ("acknowledge", [{"rule": "DS001"}]),
    "batchSize zero": ("nodegroupMigration.batchSize", 0),
    "batchSize 0%": ("nodegroupMigration.batchSize", "0%"),
    "batchSize 101%": ("nodegroupMigration.batchSize", "101%"),
    "batchSize a float": ("nodegroupMigration.batchSize", 1.5),
    "nodeTimeoutSeconds a string": ("nodegroupMigration.nodeTimeoutSeconds", "900"),
    "nodeTimeoutSeconds a boolean": ("nodegroupMigration.nodeTimeoutSeconds", True),
    "forceAcknowledged a string": ("nodegroupMigration.forceAcknowledged", "true"),
    "onFailure unknown": ("nodegroupMigration.onFailure", "delete-everything"),
    "missing cluster": ("cluster", ...),
    "missing cluster name": ("cluster.name", ...),
    "missing fromVersion": ("fromVersion", ...),
    "empty externalId": ("cluster.externalId", ""),
    "roleArn not an ARN": ("cluster.roleArn", "admin"),
}


@pytest.mark.parametrize(("path", "value"), WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_wrong_types_and_missing_fields_are_invalid_input(fleet, path, value):
    refusal = fleet.run(changed(VALID, path, value))
    assert_refused_without_change(refusal, "InvalidInput", no_aws_call=True)
    # And the cause names the field
    leaf = path.split(".")[-1]
    assert leaf in json.loads(refusal.result.cause)["errorMessage"]


UNKNOWN_FIELDS = {
    "top level": ("dryRun", True),
    "in cluster": ("cluster.arn", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{NAME}"),
    "in nodegroupMigration": ("nodegroupMigration.skipBudgets", True),
    "in an acknowledgment": ("acknowledge", [{"rule": "DS001", "reason": "ok", "scope": "all"}]),
    "a misspelt field": ("nodegroupMigration.nodeTimeoutSecs", 900),
}


@pytest.mark.parametrize(("path", "value"), UNKNOWN_FIELDS.values(), ids=UNKNOWN_FIELDS.keys())
def test_unknown_fields_are_invalid_input(fleet, path, value):
    assert_refused_without_change(fleet.run(changed(VALID, path, value)), "InvalidInput", no_aws_call=True)


# -- the target: does it exist, is it what the input says ------------------------------------------------------

TARGETS = {
    "unknown cluster": (changed(VALID, "cluster.name", "no-such-cluster"), "ClusterNotFound"),
    "unknown region": (changed(VALID, "cluster.region", "ap-southeast-2"), "ClusterNotFound"),
    "region not a region": (changed(VALID, "cluster.region", "mars-north-1a"), "InvalidInput"),
    "unknown account": (changed(VALID, "cluster.accountId", "999999999999"), "ClusterNotFound"),
    "account not an account": (changed(VALID, "cluster.accountId", "12345"), "InvalidInput"),
    "cluster not ACTIVE": (changed(VALID, "cluster.name", NOT_ACTIVE), "ClusterNotActive"),
    "declared version is not the actual one": (
        {**VALID, "fromVersion": "1.24", "toVersion": "1.25"},
        "ClusterVersionMismatch",
    ),
    "wrong external id": (
        changed(VALID, "cluster.externalId", "guessed-external-id"),
        "TargetRoleNotAssumable",
    ),
    "role assumption denied": (
        changed(VALID, "cluster.roleArn", f"arn:aws:iam::{ACCOUNT}:role/someone-elses-role"),
        "TargetRoleNotAssumable",
    ),
    "role in another account than the cluster's": (
        changed(VALID, "cluster.roleArn", "arn:aws:iam::222222222222:role/eks-fleet-upgrader-target"),
        "InvalidInput",
    ),
}


@pytest.mark.parametrize(("execution_input", "error"), TARGETS.values(), ids=TARGETS.keys())
def test_a_target_that_is_not_what_the_input_says_stops_before_any_change(fleet, execution_input, error):
    refusal = fleet.run(execution_input)
    assert_refused_without_change(refusal, error, no_aws_call=error == "InvalidInput")
    # And no Kubernetes API was even called: every check happens on the EKS side first
    assert refusal.kube_requests == []


# -- versions ------------------------------------------------------------------------------------------------

VERSIONS = {
    "downgrade": ("1.23", "1.22"),
    "same version": ("1.23", "1.23"),
    "five minors ahead": ("1.23", "1.28"),  # the policy chains at most MAX_CHAIN_STEPS minors
    "outside the supported range": ("1.22", "1.23"),
    "far beyond the supported range": ("1.23", "1.99"),
    "not a minor version": ("1.23", "1.24.3"),
    "major version 2": ("1.23", "2.00"),
}


@pytest.mark.parametrize(("source", "target"), VERSIONS.values(), ids=VERSIONS.keys())
def test_a_version_step_the_policy_has_no_path_for_is_refused_before_any_call(fleet, source, target):
    refusal = fleet.run({**VALID, "fromVersion": source, "toVersion": target})
    error = "InvalidInput" if target in ("1.24.3", "2.00") else "UnsupportedVersionStep"
    assert_refused_without_change(refusal, error, no_aws_call=True)


# -- dangerous options and absurd numbers -------------------------------------------------------------------

OPTIONS = {
    "force without acknowledgment": {"onTimeout": "force"},
    "force with acknowledgment false": {"onTimeout": "force", "forceAcknowledged": False},
    "negative deadline": {"nodeTimeoutSeconds": -1},
    "zero deadline": {"nodeTimeoutSeconds": 0},
    "a deadline of a year": {"nodeTimeoutSeconds": 365 * 86_400},
    "a float deadline": {"nodeTimeoutSeconds": 900.5},
    "a huge deadline": {"nodeTimeoutSeconds": 10**30},
    "replacement ready in no time": {"replacementReadyTimeoutSeconds": 0},
    "replacement ready in ten years": {"replacementReadyTimeoutSeconds": 10 * 365 * 86_400},
    "a batch of a million nodes": {"batchSize": 1_000_000},
    "a negative batch": {"batchSize": -3},
}


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_force_without_acknowledgment_and_absurd_deadlines_are_invalid_input(fleet, options):
    assert_refused_without_change(
        fleet.run({**VALID, "nodegroupMigration": options}), "InvalidInput", no_aws_call=True
    )


# -- size and injection ------------------------------------------------------------------------------------

HUNDREDS_OF_KB = 200 * 1024  # below Step Functions' 256 KiB input limit, so ValidateInput sees it
OVERSIZED = {
    "a 200 KB cluster name": changed(VALID, "cluster.name", "a" * HUNDREDS_OF_KB),
    "a 200 KB unknown field": {**VALID, "padding": "x" * HUNDREDS_OF_KB},
    "a 200 KB acknowledgment reason": {
        **VALID,
        "acknowledge": [{"rule": "DS001", "reason": "r" * HUNDREDS_OF_KB}],
    },
    "51 acknowledgments": {
        **VALID,
        "acknowledge": [{"rule": f"DS{n:03d}", "reason": "because " * 400} for n in range(51)],
    },
    "a 200 KB externalId": changed(VALID, "cluster.externalId", "e" * HUNDREDS_OF_KB),
    "200 nested objects": {**VALID, "nodegroupMigration": json.loads('{"a":' * 200 + "1" + "}" * 200)},
}


@pytest.mark.parametrize("execution_input", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_oversized_inputs_are_invalid_input_and_are_not_echoed_into_logs(fleet, execution_input):
    refusal = fleet.run(execution_input)
    assert_refused_without_change(refusal, "InvalidInput", no_aws_call=True)
    assert all(len(line) < 4_096 for line in refusal.log_lines)
    assert len(refusal.result.cause or "") < 4_096


HOSTILE_NAMES = {
    "path traversal": "../../reports/other-cluster",
    "slash": "payments/prod",
    "double quote": 'payments"prod',
    "single quote": "payments'prod",
    "newline": "payments-prod\nINFO forged log line",
    "carriage return": "payments-prod\r",
    "trailing newline": "payments-prod\n",
    "tab": "payments\tprod",
    "2 KB": "p" * 2048,
    "shell metacharacters": "payments;rm -rf /;$(id)`id`|&>",
    "json breaking": '"}],"x":{"',
    "nul byte": "payments\x00prod",
    "unicode lookalike": "p\u0430yments-prod",  # Cyrillic a
    "url encoded": "payments%2F..%2Fprod",
    "leading dash": "-payments",
    "empty": "",
}


@pytest.mark.parametrize("field", ["cluster.name", "cluster.region", "cluster.accountId", "fromVersion"])
@pytest.mark.parametrize("hostile", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_injection_in_names_is_refused_and_reaches_no_log_key_or_call(fleet, field, hostile):
    refusal = fleet.run(changed(VALID, field, hostile))
    assert_refused_without_change(refusal, "InvalidInput", no_aws_call=True)
    # And the value itself is in no log line, raw or JSON-escaped (it is not logged at all)
    escaped = json.dumps(hostile)[1:-1]
    assert not hostile or not any(hostile in line or escaped in line for line in refusal.log_lines)
    if field == "cluster.name":
        assert refusal.result.lambda_invocations == 1  # ValidateInput only: no step ever used the name


@pytest.mark.parametrize(
    "hostile", ["x\ny", "x\r\ny", '"}],"', "../x"], ids=["newline", "crlf", "json", "dotdot"]
)
def test_a_hostile_unknown_key_is_refused_and_echoed_only_escaped(fleet, hostile):
    # An unknown key is named back in the error (so the operator sees the typo), escaped
    refusal = fleet.run({**VALID, hostile: True})
    assert_refused_without_change(refusal, "InvalidInput", no_aws_call=True)
    message = json.loads(refusal.result.cause)["errorMessage"]
    assert "\n" not in message and "\r" not in message and repr(hostile) in message


def test_a_200_kb_unknown_key_is_not_echoed_whole_into_the_cause(fleet):
    refusal = fleet.run({**VALID, "k" * HUNDREDS_OF_KB: True})
    assert_refused_without_change(refusal, "InvalidInput", no_aws_call=True)
    assert len(refusal.result.cause or "") < 4_096


# -- the fleet workflow's input (statemachines/fleet_upgrade.asl.json): checked when the execution starts ----

FLEET_CLUSTER = {"accountId": ACCOUNT, "region": REGION, "name": NAME, "fromVersion": "1.23"}
OTHER_CLUSTER = {"accountId": ACCOUNT, "region": REGION, "name": NOT_ACTIVE, "fromVersion": "1.23"}
WINDOW = {"days": ["SAT"], "start": "22:00", "durationMinutes": 240, "timezone": "Europe/Paris"}


def in_window(**window: Any) -> dict[str, Any]:
    return {**FLEET_CLUSTER, "maintenanceWindow": {**WINDOW, **window}}


# (clusters, the JSON path the error names, the first position of a duplicate)
FLEET_INPUTS = {
    "the same cluster twice": (
        [FLEET_CLUSTER, OTHER_CLUSTER, {**FLEET_CLUSTER, "maintenanceWindow": WINDOW}],
        "$.clusters[2]",
        "$.clusters[0]",
    ),
    "the same cluster twice in a row": ([OTHER_CLUSTER, OTHER_CLUSTER], "$.clusters[1]", "$.clusters[0]"),
    "an unknown time zone": (
        [in_window(timezone="Europe/Atlantis")],
        "$.clusters[0].maintenanceWindow.timezone",
        None,
    ),
    "a time zone that is a path": (
        [in_window(timezone="../../etc/localtime")],
        "$.clusters[0].maintenanceWindow.timezone",
        None,
    ),
    "an empty time zone": ([in_window(timezone="")], "$.clusters[0].maintenanceWindow.timezone", None),
    "a start at 24:00": ([in_window(start="24:00")], "$.clusters[0].maintenanceWindow.start", None),
    "a start without its leading zero": (
        [in_window(start="9:00")],
        "$.clusters[0].maintenanceWindow.start",
        None,
    ),
    "a day that is not a day": (
        [in_window(days=["MONDAY"])],
        "$.clusters[0].maintenanceWindow.days[0]",
        None,
    ),
    "a window shorter than 15 minutes": (
        [in_window(durationMinutes=10)],
        "$.clusters[0].maintenanceWindow.durationMinutes",
        None,
    ),
}


@pytest.mark.parametrize(("clusters", "path", "duplicate_of"), FLEET_INPUTS.values(), ids=FLEET_INPUTS.keys())
def test_a_fleet_input_refused_at_run_time_names_its_json_path_and_nothing_runs(
    fleet, clusters, path, duplicate_of
):
    # Given a fleet input as a schedule or an operator would start it, with one mistake
    sfn = fleet.sim.engine.client("stepfunctions")
    children = len(
        sfn.list_executions(stateMachineArn=fleet.sim.engine.state_machines["cluster_upgrade"])["executions"]
    )
    request = {"toVersion": "1.24", "clusters": clusters, "canary": {"size": 1}}
    # When the fleet workflow starts with it
    refusal = fleet.run(request, machine="fleet_upgrade")
    # Then ValidateFleetInput refuses it, naming the JSON path (and the first position of a duplicate)
    assert_refused_without_change(refusal, "InvalidFleetInput", no_aws_call=True)
    _, details = UpgradeError.parse_message(json.loads(refusal.result.cause)["errorMessage"])
    assert details["path"] == path, details
    assert details.get("duplicateOf") == duplicate_of
    # And nothing ran: the validation was the only step, and no cluster execution was started
    assert refusal.result.lambda_invocations == 1
    assert (
        len(
            sfn.list_executions(stateMachineArn=fleet.sim.engine.state_machines["cluster_upgrade"])[
                "executions"
            ]
        )
        == children
    )
