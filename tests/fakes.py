"""In-memory fakes of the gateway interfaces. tests/integration/test_eks_contract.py runs the same
contract against each fake and its real gateway (on moto + the simulator), so they cannot drift."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from upgrader.errors import ClusterNotFound, UnexpectedAwsError, UpdateAlreadyInProgress
from upgrader.gateways.eks import ClusterInfo, UpdateInfo


@dataclass
class _FakeCluster:
    version: str
    status: str = "ACTIVE"
    updates: list[UpdateInfo] = field(default_factory=list)


class FakeEksGateway:
    """EKS rules that matter to the domain: one update at a time, tokens are idempotent."""

    def __init__(self) -> None:
        self.clusters: dict[str, _FakeCluster] = {}
        self.tokens: dict[tuple[str, str], str] = {}
        self.calls: list[tuple[str, Any]] = []
        self._ids = (f"update-{n}" for n in itertools.count(1))

    def add_cluster(self, name: str, version: str, status: str = "ACTIVE") -> None:
        self.clusters[name] = _FakeCluster(version=version, status=status)

    def _cluster(self, name: str) -> _FakeCluster:
        if name not in self.clusters:
            raise ClusterNotFound(f"cluster {name} not found", cluster=name)
        return self.clusters[name]

    def describe_cluster(self, name: str) -> ClusterInfo:
        self.calls.append(("describe_cluster", name))
        cluster = self._cluster(name)
        return ClusterInfo(
            name=name, version=cluster.version, status=cluster.status, platform_version="eks.1"
        )

    def list_updates(self, name: str) -> list[str]:
        self.calls.append(("list_updates", name))
        return [u.id for u in self._cluster(name).updates]

    def describe_update(self, name: str, update_id: str) -> UpdateInfo:
        self.calls.append(("describe_update", update_id))
        for update in self._cluster(name).updates:
            if update.id == update_id:
                return update
        raise UnexpectedAwsError(f"no update {update_id}", awsErrorCode="ResourceNotFoundException")

    def update_cluster_version(self, name: str, version: str, client_request_token: str) -> UpdateInfo:
        self.calls.append(("update_cluster_version", (name, version, client_request_token)))
        cluster = self._cluster(name)
        if (name, client_request_token) in self.tokens:
            return self.describe_update(name, self.tokens[(name, client_request_token)])
        if any(u.status == "InProgress" for u in cluster.updates):
            raise UpdateAlreadyInProgress(f"cluster {name} has an update in progress", cluster=name)
        update = UpdateInfo(
            id=next(self._ids), status="InProgress", type="VersionUpdate", params={"Version": version}
        )
        cluster.updates.append(update)
        cluster.status = "UPDATING"
        self.tokens[(name, client_request_token)] = update.id
        return update

    # -- test controls --------------------------------------------------------------------------
    def finish(self, name: str, update_id: str, status: str = "Successful", errors: tuple = ()) -> None:
        cluster = self._cluster(name)
        for index, update in enumerate(cluster.updates):
            if update.id == update_id:
                cluster.updates[index] = UpdateInfo(update.id, status, update.type, update.params, errors)
                if status == "Successful":
                    cluster.version = update.params["Version"]
                cluster.status = "ACTIVE"

    def mutating_calls(self) -> list[tuple[str, Any]]:
        return [c for c in self.calls if c[0] == "update_cluster_version"]
