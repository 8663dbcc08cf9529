"""The orchestrator's run table (DynamoDB, central account) for the fleet workflow: per-cluster lease
locks, the waves' records and pending approvals. Items are keyed ``pk``/``sk`` (infra/constructs/run_data.py).

Locks: ``pk = LOCK#<account>#<region>#<cluster>``, ``sk = LOCK``, ``owner`` = the fleet execution name,
``expiresAt`` = epoch seconds. The lease is compared in the ConditionExpression, so a crashed holder's
lock is free the second its lease ends (TTL deletion may lag by days and is not relied on).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import Field

from upgrader.errors import StepMisconfigured
from upgrader.fleet.models import LeaseResult, WaveRecord
from upgrader.gateways.aws import AwsSessionFactory, _container_session, aws_errors
from upgrader.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LOCK_SORT_KEY = "LOCK"


class FleetStepSettings(Settings):
    """The fleet steps' environment: the common settings (the run table's name among them) plus the
    cluster workflow's state machine."""

    # The cluster workflow the fleet starts as child executions (PlanFleetWaves puts it in the plan).
    cluster_state_machine_arn: str = Field(default="", max_length=2048)


class DynamoRunTable:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    # -- locks ----------------------------------------------------------------------------------
    def put_lease_if_free(self, lease: LeaseResult, now: int) -> LeaseResult | None:
        with aws_errors("dynamodb:PutItem"):
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        "pk": {"S": lease.key},
                        "sk": {"S": LOCK_SORT_KEY},
                        "owner": {"S": lease.owner},
                        "acquiredAt": {"N": str(lease.acquired_at)},
                        "expiresAt": {"N": str(lease.expires_at)},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR expiresAt < :now OR #owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":now": {"N": str(now)}, ":owner": {"S": lease.owner}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                item = error.response.get("Item")
            else:
                return None
        return self._holder(lease.key, item)

    def _holder(self, key: str, item: dict[str, Any] | None) -> LeaseResult:
        if not item:  # older APIs do not return the item: read it
            with aws_errors("dynamodb:GetItem"):
                item = (
                    self._client.get_item(
                        TableName=self._table,
                        Key={"pk": {"S": key}, "sk": {"S": LOCK_SORT_KEY}},
                        ConsistentRead=True,
                    ).get("Item")
                    or {}
                )
        return LeaseResult(
            key=key,
            owner=item.get("owner", {}).get("S", "unknown"),
            acquired_at=int(item.get("acquiredAt", {}).get("N", "0")),
            expires_at=int(item.get("expiresAt", {}).get("N", "0")),
        )

    def get_lease(self, key: str) -> LeaseResult | None:
        with aws_errors("dynamodb:GetItem"):
            item = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": key}, "sk": {"S": LOCK_SORT_KEY}},
                ConsistentRead=True,
            ).get("Item")
        return self._holder(key, item) if item else None

    def delete_lease_if_owner(self, key: str, owner: str) -> bool:
        with aws_errors("dynamodb:DeleteItem"):
            try:
                self._client.delete_item(
                    TableName=self._table,
                    Key={"pk": {"S": key}, "sk": {"S": LOCK_SORT_KEY}},
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":owner": {"S": owner}},
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                return False  # not ours (or already gone): left alone
        return True

    # -- wave records ------------------------------------------------------------------------------
    def put_wave(self, fleet: str, record: WaveRecord) -> None:
        with aws_errors("dynamodb:PutItem"):
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"FLEET#{fleet}"},
                    "sk": {"S": f"WAVE#{record.index:03d}"},
                    "record": {"S": json.dumps(record.dump(), sort_keys=True)},
                },
            )

    def waves(self, fleet: str) -> list[WaveRecord]:
        records: list[WaveRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :wave)",
            "ExpressionAttributeValues": {":pk": {"S": f"FLEET#{fleet}"}, ":wave": {"S": "WAVE#"}},
            "ConsistentRead": True,
        }
        while True:
            with aws_errors("dynamodb:Query"):
                page = self._client.query(**kwargs)
            records.extend(
                WaveRecord.model_validate(json.loads(item["record"]["S"])) for item in page["Items"]
            )
            if "LastEvaluatedKey" not in page:
                return records
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- approvals ---------------------------------------------------------------------------------
    def put_approval_request(self, fleet: str, wave: str, task_token: str, requested_at: str) -> str:
        """Where ``fleetctl approve`` (or an operator with the console) finds the task token to answer."""
        key = f"APPROVAL#{fleet}"
        with aws_errors("dynamodb:PutItem"):
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": key},
                    "sk": {"S": f"WAVE#{wave}"},
                    "taskToken": {"S": task_token},
                    "requestedAt": {"S": requested_at},
                    "status": {"S": "PENDING"},
                },
            )
        return key

    def pending_approvals(self, fleet: str) -> list[dict[str, str]]:
        with aws_errors("dynamodb:Query"):
            items = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"APPROVAL#{fleet}"}},
                ConsistentRead=True,
            )["Items"]
        return [{name: value["S"] for name, value in item.items()} for item in items]


def run_table(settings: FleetStepSettings) -> DynamoRunTable:
    if not settings.run_table_name:
        raise StepMisconfigured("RUN_TABLE_NAME is not set: the fleet step has no run table")
    # The Lambda's own credentials (central account), with the one botocore Config of the session factory.
    client = _container_session().client("dynamodb", config=AwsSessionFactory(settings).config)
    return DynamoRunTable(client, settings.run_table_name)
