"""The error tree and the ValidateInput step (no AWS involved)."""

from __future__ import annotations

import pytest
from upgrader import errors
from upgrader.errors import InvalidInput, UnsupportedVersionStep, UpgradeError
from validate_input.handler import ValidationEnvelope, validate_request

from tests.events import load_event


def envelope(payload) -> ValidationEnvelope:
    return ValidationEnvelope(input=payload, execution_id="arn:exec", execution_name="exec-1")


def test_every_error_is_either_retryable_or_terminal():
    retryable, terminal = errors.retryable_error_names(), errors.terminal_error_names()
    assert {"AwsThrottled", "TransientAwsError"} <= retryable
    assert {"InvalidInput", "ControlPlaneUpdateFailed", "ClusterNotFound"} <= terminal
    assert not retryable & terminal


def test_error_message_round_trips_details():
    error = errors.ControlPlaneUpdateFailed("update failed", updateId="u-1", errors=[{"errorCode": "X"}])
    message, details = UpgradeError.parse_message(str(error))
    assert message == "update failed"
    assert details == {"updateId": "u-1", "errors": [{"errorCode": "X"}]}


def test_valid_input_becomes_the_request_with_the_run_identity():
    request = validate_request(envelope(load_event("cluster_upgrade_input")))
    assert request.cluster.key == "111111111111/eu-west-1/payments-prod"
    assert request.run.execution_name == "exec-1"
    assert request.dump()["toVersion"] == "1.24"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e["cluster"].update(accountId="12345"), "accountId"),
        (lambda e: e["cluster"].pop("name"), "name"),
        (lambda e: e.update(toVersion="latest"), "toVersion"),
        (lambda e: e.update(extra=True), "extra"),
        (lambda e: e["cluster"].update(roleArn="arn:aws:iam::111111111111:user/bob"), "roleArn"),
        (lambda e: e["cluster"].update(region="moon-1"), "region"),
    ],
)
def test_schema_violations_are_invalid_input_naming_the_field(mutate, field):
    event = load_event("cluster_upgrade_input")
    mutate(event)
    with pytest.raises(InvalidInput) as caught:
        validate_request(envelope(event))
    assert field in str(caught.value)


def test_non_object_input_is_invalid():
    with pytest.raises(InvalidInput):
        validate_request(envelope(["not", "an", "object"]))


def test_a_two_minor_target_becomes_a_chain_of_single_steps():
    event = load_event("cluster_upgrade_input") | {"toVersion": "1.25"}
    request = validate_request(envelope(event))
    assert (request.from_version, request.to_version, request.target_version) == ("1.23", "1.24", "1.25")
    assert (request.version_chain, request.version_step) == (("1.24", "1.25"), 0)


@pytest.mark.parametrize(
    ("to_version", "why"),
    [("1.27", "at most 3"), ("1.23", "not above"), ("1.22", "supported range"), ("1.40", "supported range")],
)
def test_a_chain_too_long_a_downgrade_or_an_unsupported_target_is_refused(to_version, why):
    event = load_event("cluster_upgrade_input") | {"toVersion": to_version}
    with pytest.raises(UnsupportedVersionStep, match=why):
        validate_request(envelope(event))


def test_acknowledgments_reach_the_request_with_their_reasons():
    event = load_event("cluster_upgrade_input") | {
        "acknowledge": [{"rule": "DS001", "reason": "log agent moves to CRI logs in CHG-1234"}]
    }
    request = validate_request(envelope(event))
    assert [(a.rule, a.reason) for a in request.acknowledge] == [
        ("DS001", "log agent moves to CRI logs in CHG-1234")
    ]
    assert request.dump()["acknowledge"] == event["acknowledge"]


@pytest.mark.parametrize(
    ("acknowledge", "field"),
    [
        ([{"rule": "DS1", "reason": "x"}], "rule"),
        ([{"rule": "DS001"}], "reason"),
        ([{"rule": "DS001", "reason": ""}], "reason"),
        ([{"rule": "DS001", "reason": "x", "until": "2025-01-01"}], "until"),
        ([{"rule": "DS001", "reason": "a"}, {"rule": "DS001", "reason": "b"}], "DS001"),
    ],
)
def test_malformed_or_repeated_acknowledgments_are_invalid_input(acknowledge, field):
    event = load_event("cluster_upgrade_input") | {"acknowledge": acknowledge}
    with pytest.raises(InvalidInput) as caught:
        validate_request(envelope(event))
    assert field in str(caught.value)


def test_node_group_migration_options_reach_the_request_with_safe_defaults():
    # Given no options: one node at a time, 15 minutes, fail, nothing forced, uncordon on failure
    request = validate_request(envelope(load_event("cluster_upgrade_input")))
    options = request.nodegroup_migration
    assert (options.batch_size, options.node_timeout_seconds, options.on_timeout) == (1, 900, "fail")
    assert not (
        options.delete_emptydir_data or options.evict_pods_without_controller or options.force_acknowledged
    )
    assert options.on_failure == "uncordon"
    # When the operator sets them, they reach every step as given
    event = load_event("cluster_upgrade_input")
    event["nodegroupMigration"] = {"batchSize": "25%", "onTimeout": "force", "forceAcknowledged": True}
    options = validate_request(envelope(event)).nodegroup_migration
    assert (options.batch_size, options.on_timeout) == ("25%", "force")
    assert validate_request(envelope(event)).dump()["nodegroupMigration"]["forceAcknowledged"] is True


@pytest.mark.parametrize(
    "options",
    [
        {"onTimeout": "force"},  # force needs its explicit acknowledgment
        {"onTimeout": "force", "forceAcknowledged": False},
        {"batchSize": 0},
        {"batchSize": "0%"},
        {"batchSize": "150%"},
        {"nodeTimeoutSeconds": 5},
        {"onFailure": "delete"},
        {"drainEverything": True},
    ],
)
def test_unsafe_or_unknown_migration_options_are_invalid_input(options):
    event = load_event("cluster_upgrade_input")
    event["nodegroupMigration"] = options
    with pytest.raises(InvalidInput):
        validate_request(envelope(event))
