"""The fleet registry: the clusters an organisation has registered (``fleetctl fleet add``), kept in the
orchestrator's run table beside the locks (upgrader.gateways.locks).

Items: ``pk = CLUSTER#<account>#<region>#<name>``, ``sk = CLUSTER``, with ``accountId``, ``region``, ``name``,
``tags`` (a map), optional ``roleArn``/``externalId`` and ``maintenanceWindow`` (a map), and ``registeredAt``.
The run table has no secondary index, so listing is a Scan filtered on the ``CLUSTER#`` prefix: the table
holds a few items per cluster and per fleet run, which a Scan reads in a few pages even for thousands of
clusters.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from upgrader.errors import StepMisconfigured
from upgrader.fleet.models import RegisteredCluster
from upgrader.gateways.aws import AwsSessionFactory, _container_session, aws_errors
from upgrader.gateways.locks import FleetStepSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_PREFIX = "CLUSTER#"
SORT_KEY = "CLUSTER"
_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def registry_key(account_id: str, region: str, name: str) -> str:
    return f"{KEY_PREFIX}{account_id}#{region}#{name}"


class ClusterRegistry(Protocol):
    def put(self, cluster: RegisteredCluster) -> bool:
        """Registers (or replaces) a cluster; True when it was not registered before."""
        ...

    def remove(self, account_id: str, region: str, name: str) -> bool:
        """Forgets a cluster; False when it was not registered."""
        ...

    def clusters(self) -> list[RegisteredCluster]:
        """Every registered cluster, ordered by key (account/region/name)."""
        ...


def _item(cluster: RegisteredCluster, registered_at: str) -> dict[str, Any]:
    fields = cluster.dump()  # camelCase, without the unset optional fields
    fields.setdefault("tags", {})
    fields["registeredAt"] = registered_at
    item = {name: _SERIALIZER.serialize(value) for name, value in fields.items()}
    item["pk"] = {"S": registry_key(cluster.account_id, cluster.region, cluster.name)}
    item["sk"] = {"S": SORT_KEY}
    return item


def _cluster(item: dict[str, Any]) -> RegisteredCluster:
    fields = {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}
    window = fields.get("maintenanceWindow")
    if window and "durationMinutes" in window:  # DynamoDB numbers come back as Decimal
        window["durationMinutes"] = int(window["durationMinutes"])
    return RegisteredCluster.model_validate(fields)


class DynamoClusterRegistry:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def put(self, cluster: RegisteredCluster) -> bool:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with aws_errors("dynamodb:PutItem"):
            previous = self._client.put_item(
                TableName=self._table, Item=_item(cluster, now), ReturnValues="ALL_OLD"
            ).get("Attributes")
        return not previous

    def remove(self, account_id: str, region: str, name: str) -> bool:
        with aws_errors("dynamodb:DeleteItem"):
            previous = self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": registry_key(account_id, region, name)}, "sk": {"S": SORT_KEY}},
                ReturnValues="ALL_OLD",
            ).get("Attributes")
        return bool(previous)

    def clusters(self) -> list[RegisteredCluster]:
        found: list[RegisteredCluster] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(pk, :prefix) AND sk = :sk",
            "ExpressionAttributeValues": {":prefix": {"S": KEY_PREFIX}, ":sk": {"S": SORT_KEY}},
            "ConsistentRead": True,
        }
        while True:
            with aws_errors("dynamodb:Scan"):
                page = self._client.scan(**kwargs)
            found.extend(_cluster(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return sorted(found, key=lambda cluster: cluster.key)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class InMemoryClusterRegistry:
    """The registry in a dict: the unit tests' fake, held to the same contract as the DynamoDB one by
    tests/integration/test_registry_contract.py."""

    def __init__(self, clusters: list[RegisteredCluster] | None = None) -> None:
        self._clusters: dict[str, RegisteredCluster] = {}
        for cluster in clusters or []:
            self.put(cluster)

    def put(self, cluster: RegisteredCluster) -> bool:
        key = registry_key(cluster.account_id, cluster.region, cluster.name)
        new = key not in self._clusters
        self._clusters[key] = cluster
        return new

    def remove(self, account_id: str, region: str, name: str) -> bool:
        return self._clusters.pop(registry_key(account_id, region, name), None) is not None

    def clusters(self) -> list[RegisteredCluster]:
        return sorted(self._clusters.values(), key=lambda cluster: cluster.key)


def cluster_registry(settings: FleetStepSettings) -> DynamoClusterRegistry:
    if not settings.run_table_name:
        raise StepMisconfigured("RUN_TABLE_NAME is not set: the fleet registry lives in the run table")
    client = _container_session().client("dynamodb", config=AwsSessionFactory(settings).config)
    return DynamoClusterRegistry(client, settings.run_table_name)
