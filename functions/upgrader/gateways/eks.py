"""EKS behind a small interface. The domain talks to :class:`EksGateway`; tests use a fake with the
same contract (tests/fakes.py), and tests/integration/test_eks_contract.py proves the two agree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from upgrader.errors import ClusterNotFound, UpdateAlreadyInProgress, UpgradeError
from upgrader.gateways.aws import aws_errors, translate_client_error

if TYPE_CHECKING:
    from mypy_boto3_eks import EKSClient


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    version: str
    status: str
    platform_version: str | None = None


@dataclass(frozen=True)
class UpdateInfo:
    id: str
    status: str
    type: str
    params: dict[str, str] = field(default_factory=dict)
    errors: tuple[dict[str, Any], ...] = ()


class EksGateway(Protocol):
    def describe_cluster(self, name: str) -> ClusterInfo: ...

    def list_updates(self, name: str) -> list[str]: ...

    def describe_update(self, name: str, update_id: str) -> UpdateInfo: ...

    def update_cluster_version(self, name: str, version: str, client_request_token: str) -> UpdateInfo: ...


def _update_info(raw: dict[str, Any]) -> UpdateInfo:
    return UpdateInfo(
        id=raw["id"],
        status=raw["status"],
        type=raw.get("type", ""),
        params={p["type"]: p["value"] for p in raw.get("params", [])},
        errors=tuple(raw.get("errors", [])),
    )


class BotoEksGateway:
    def __init__(self, client: EKSClient) -> None:
        self._client = client

    def _translate(self, error: ClientError, operation: str, cluster: str) -> UpgradeError:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code == "ResourceNotFoundException":
            return ClusterNotFound(
                f"{operation}: cluster {cluster} not found", cluster=cluster, awsMessage=message
            )
        if code == "ResourceInUseException":
            return UpdateAlreadyInProgress(
                f"{operation}: cluster {cluster} has another update in progress",
                cluster=cluster,
                awsMessage=message,
            )
        return translate_client_error(error, operation)

    def _call(self, operation: str, cluster: str, **kwargs: Any) -> dict[str, Any]:
        method = getattr(self._client, operation)
        with aws_errors(f"eks:{operation}"):
            try:
                return method(**kwargs)
            except ClientError as error:
                raise self._translate(error, f"eks:{operation}", cluster) from error

    def describe_cluster(self, name: str) -> ClusterInfo:
        raw = self._call("describe_cluster", name, name=name)["cluster"]
        return ClusterInfo(
            name=raw["name"],
            version=raw["version"],
            status=raw["status"],
            platform_version=raw.get("platformVersion"),
        )

    def list_updates(self, name: str) -> list[str]:
        ids: list[str] = []
        kwargs: dict[str, Any] = {"name": name}
        while True:
            page = self._call("list_updates", name, **kwargs)
            ids.extend(page.get("updateIds", []))
            token = page.get("nextToken")
            if not token:
                return ids
            kwargs["nextToken"] = token

    def describe_update(self, name: str, update_id: str) -> UpdateInfo:
        return _update_info(self._call("describe_update", name, name=name, updateId=update_id)["update"])

    def update_cluster_version(self, name: str, version: str, client_request_token: str) -> UpdateInfo:
        raw = self._call(
            "update_cluster_version",
            name,
            name=name,
            version=version,
            clientRequestToken=client_request_token,
        )
        return _update_info(raw["update"])
