"""step_handler's invocation envelope: a step that changes something runs under Powertools idempotency on
the run table (DynamoDB on moto), keyed by the state entry (upgrader/gateways/idempotency.py).

The steps are the real AcquireClusterLock and ReleaseClusterLock handlers; what they change (the lock
item) shows whether the domain ran: a release that really ran again would answer ``released: false``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from acquire_cluster_lock.handler import lambda_handler as acquire
from moto import mock_aws
from release_cluster_lock.handler import lambda_handler as release
from upgrader.catalog import STEPS
from upgrader.errors import (
    ClusterLocked,
    IdempotencyAlreadyInProgressError,
    IdempotencyEnvelopeMissing,
    RetryableError,
    TerminalError,
)
from upgrader.fleet.models import LeaseResult
from upgrader.gateways.idempotency import EXPIRES_AFTER_SECONDS, EXPIRY_ATTRIBUTE, partition_key
from upgrader.gateways.locks import DynamoRunTable

from simulator.engine import create_run_table
from tests.events import load_event

TABLE = "runs"
LOCK = {"pk": {"S": "LOCK#111111111111#eu-west-1#payments-prod"}, "sk": {"S": "LOCK"}}
DEADLINE_MILLIS = 60_000


class Context:
    """The Lambda context attributes Powertools reads (the deployed function's name)."""

    def __init__(self, step: str) -> None:
        self.function_name = f"eks-fleet-upgrader-{step}"
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.memory_limit_in_mb = 256
        self.aws_request_id = "test-request"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "test"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return DEADLINE_MILLIS


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("RUN_TABLE_NAME", TABLE)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_run_table(client, TABLE)
        yield client


def envelope(state_name: str, entered: str = "2024-06-03T10:00:00.000Z") -> dict[str, Any]:
    event = load_event("cluster_lock_invocation")
    event["invocation"].update(stateName=state_name, enteredTime=entered)
    return event


def hold_lock(client: Any, owner: str) -> None:
    DynamoRunTable(client, TABLE).put_lease_if_free(
        LeaseResult(key=LOCK["pk"]["S"], owner=owner, acquired_at=0, expires_at=99_999_999_999), now=0
    )


def lock_owner(client: Any) -> str | None:
    item = client.get_item(TableName=TABLE, Key=LOCK, ConsistentRead=True).get("Item")
    return item["owner"]["S"] if item else None


def records(client: Any, step: str) -> list[dict[str, Any]]:
    return client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": partition_key(Context(step).function_name)}},
        ConsistentRead=True,
    )["Items"]


def test_a_retry_of_a_completed_state_entry_returns_the_saved_output_and_changes_nothing(dynamodb):
    # Given fleet-a holds the lock and its ReleaseClusterLock state entry released it (the response lost)
    hold_lock(dynamodb, "fleet-a")
    event = envelope("ReleaseClusterLock")
    first = release(copy.deepcopy(event), Context("ReleaseClusterLock"))
    assert first == {"key": LOCK["pk"]["S"], "released": True}
    assert lock_owner(dynamodb) is None
    # And the lock was taken again since (were the step to run again, it would delete it)
    hold_lock(dynamodb, "fleet-a")
    # When Step Functions retries the same state entry
    again = release(copy.deepcopy(event), Context("ReleaseClusterLock"))
    # Then the saved output comes back, identical, and the domain did not run: the lock is untouched
    assert again == first
    assert lock_owner(dynamodb) == "fleet-a"


def test_a_new_entry_of_the_state_runs_again(dynamodb):
    # Given a completed ReleaseClusterLock entry, and the lock held again
    hold_lock(dynamodb, "fleet-a")
    release(envelope("ReleaseClusterLock"), Context("ReleaseClusterLock"))
    hold_lock(dynamodb, "fleet-a")
    # When the state is entered anew (a loop round, a redrive: a new enteredTime)
    later = release(envelope("ReleaseClusterLock", "2024-06-03T11:00:00.000Z"), Context("ReleaseClusterLock"))
    # Then the step really runs: the lock is released again
    assert later["released"] is True
    assert lock_owner(dynamodb) is None
    # And the other state using the same function (ReleaseAfterFailure) is its own entry too
    assert release(envelope("ReleaseAfterFailure"), Context("ReleaseClusterLock"))["released"] is False


def test_the_record_is_keyed_by_the_function_and_expires_after_a_day_its_window_at_the_deadline(dynamodb):
    before = time.time()
    release(envelope("ReleaseClusterLock"), Context("ReleaseClusterLock"))
    [record] = records(dynamodb, "ReleaseClusterLock")
    # Then pk is what the role's dynamodb:LeadingKeys condition allows, sk names the step
    assert record["pk"]["S"] == "idempotency#eks-fleet-upgrader-ReleaseClusterLock"
    assert record["sk"]["S"].startswith("ReleaseClusterLock#")
    assert record["status"]["S"] == "COMPLETED"
    # And it expires (the table's TTL attribute) a day later; the in-progress window was the deadline
    expires = int(record[EXPIRY_ATTRIBUTE]["N"])
    assert before + EXPIRES_AFTER_SECONDS - 1 <= expires <= time.time() + EXPIRES_AFTER_SECONDS + 1
    window = int(record["in_progress_expiration"]["N"]) / 1000
    assert before + DEADLINE_MILLIS / 1000 - 1 <= window <= time.time() + DEADLINE_MILLIS / 1000 + 1


def test_a_step_that_raises_leaves_no_record_and_its_retry_runs_for_real(dynamodb):
    # Given fleet-b holds the cluster, so fleet-a's AcquireClusterLock raises ClusterLocked (an UpgradeError)
    hold_lock(dynamodb, "fleet-b")
    event = envelope("AcquireClusterLock")
    with pytest.raises(ClusterLocked):
        acquire(copy.deepcopy(event), Context("AcquireClusterLock"))
    # Then the error keeps its class name and no idempotency record is left behind
    assert records(dynamodb, "AcquireClusterLock") == []
    # When the holder is gone and the same entry is tried again, Then it runs for real and takes the lock
    dynamodb.delete_item(TableName=TABLE, Key=LOCK)
    lease = acquire(copy.deepcopy(event), Context("AcquireClusterLock"))
    assert lease["owner"] == "fleet-a"
    assert lock_owner(dynamodb) == "fleet-a"


def test_an_attempt_in_progress_makes_the_retry_wait_until_its_window_ends(dynamodb):
    # Given a completed entry whose record is set back to in progress (an attempt running, or one that died)
    hold_lock(dynamodb, "fleet-a")
    event = envelope("ReleaseClusterLock")
    release(copy.deepcopy(event), Context("ReleaseClusterLock"))
    [record] = records(dynamodb, "ReleaseClusterLock")
    key = {"pk": record["pk"], "sk": record["sk"]}
    in_progress_until = int((time.time() + 30) * 1000)
    dynamodb.update_item(
        TableName=TABLE,
        Key=key,
        UpdateExpression="SET #s = :s, in_progress_expiration = :w",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "INPROGRESS"}, ":w": {"N": str(in_progress_until)}},
    )
    hold_lock(dynamodb, "fleet-a")
    # When the same entry is invoked, Then it refuses with the retryable error the ASL retries, untouched
    with pytest.raises(IdempotencyAlreadyInProgressError) as refused:
        release(copy.deepcopy(event), Context("ReleaseClusterLock"))
    assert isinstance(refused.value, RetryableError)
    assert refused.value.details["invocation"] == event["invocation"]
    assert lock_owner(dynamodb) == "fleet-a"
    # And once the window has passed (the dead attempt's deadline), the retry runs for real
    dynamodb.update_item(
        TableName=TABLE,
        Key=key,
        UpdateExpression="SET in_progress_expiration = :w",
        ExpressionAttributeValues={":w": {"N": str(int((time.time() - 1) * 1000))}},
    )
    assert release(copy.deepcopy(event), Context("ReleaseClusterLock"))["released"] is True
    assert lock_owner(dynamodb) is None


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(load_event("cluster_lock_invocation")["state"], id="bare-state"),
        pytest.param({**load_event("cluster_lock_invocation"), "extra": 1}, id="extra-key"),
        pytest.param(
            {
                **load_event("cluster_lock_invocation"),
                "invocation": {"executionId": "arn:x", "stateName": "S"},
            },
            id="no-entered-time",
        ),
    ],
)
def test_a_flagged_step_without_the_envelope_refuses_before_any_change(dynamodb, event):
    hold_lock(dynamodb, "fleet-a")
    with pytest.raises(IdempotencyEnvelopeMissing) as refused:
        release(event, Context("ReleaseClusterLock"))
    # Then it is terminal, names the step, and nothing was changed or recorded
    assert isinstance(refused.value, TerminalError)
    assert refused.value.details["step"] == "ReleaseClusterLock"
    assert lock_owner(dynamodb) == "fleet-a"
    assert records(dynamodb, "ReleaseClusterLock") == []


def test_the_flagged_steps_are_the_ones_that_change_something():
    flagged = {step.name for step in STEPS if step.idempotent}
    assert flagged == {
        "CreateReplacementNodegroup",
        "AbandonReplacementNodegroup",
        "PrepareDrain",
        "DrainNodes",
        "RollbackDrain",
        "RetireNodegroup",
        "StartControlPlaneUpdate",
        "UpdateAddons",
        "UpdateNodegroupVersions",
        "AcquireClusterLock",
        "ReleaseClusterLock",
        "EvaluateWave",
        "WriteFleetReport",
    }
    # Every step that re-checks the fleet's lease before changing the cluster is among them
    assert {step.name for step in STEPS if step.holds_cluster_lock} <= flagged
