"""EKS calls moto lacks, added as a moto extension that follows EKS's rules on the virtual clock.

moto 5.2.5 answers UpdateClusterVersion, DescribeUpdate and ListUpdates with 404 "Not yet
implemented". :func:`eks_extension` routes every EKS path to :class:`SimEksResponse`, a subclass of
moto's ``EKSResponse`` that adds them (and settles due lifecycles before any call), keeping
moto's own cluster and node group objects as the single store of the world's state.

Rules enforced (as EKS does): one minor version per update; one update at a time
(``ResourceInUseException``, HTTP 409); managed node groups must be on the control plane's version
before it moves; the cluster is ``UPDATING`` during the update and ``ACTIVE`` after it;
``clientRequestToken`` makes a repeated request return the same update; an update needs 5 free
IP addresses in the cluster's subnets, and can be made to fail on purpose.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.eks import urls as eks_urls
from moto.eks.exceptions import (
    InvalidParameterException,
    InvalidRequestException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from moto.eks.models import eks_backends
from moto.eks.responses import EKSResponse

from simulator.clock import VirtualClock

NEW_PATHS = {
    "{0}/clusters/(?P<name>[^/]+)/updates$",
    "{0}/clusters/(?P<name>[^/]+)/updates/(?P<updateId>[^/]+)$",
}
MIN_FREE_IPS_FOR_UPDATE = 5


@dataclass(frozen=True)
class EksTimings:
    """Virtual durations of EKS lifecycles, in seconds (defaults: what EKS usually takes)."""

    control_plane_update: float = 480.0


@dataclass
class ClusterSim:
    """What the simulator knows of a cluster beyond moto's object."""

    free_ips: int = 250
    fail_next_update: str | None = None  # an EKS errorCode to fail the next version update with


@dataclass
class SimUpdate:
    id: str
    cluster: str
    type: str
    params: dict[str, str]
    created_at: float
    duration: float
    outcome: str  # "Successful" | "Failed" once the duration has elapsed
    errors: list[dict[str, Any]] = field(default_factory=list)
    settled: bool = False

    def status(self, now: float) -> str:
        return "InProgress" if now < self.created_at + self.duration else self.outcome


class EksSimulation:
    """State of the EKS extension for every account and region, shared by all requests."""

    def __init__(self, clock: VirtualClock, timings: EksTimings | None = None) -> None:
        self.clock = clock
        self.timings = timings or EksTimings()
        self.clusters: dict[tuple[str, str, str], ClusterSim] = {}
        self.updates: dict[tuple[str, str, str], list[SimUpdate]] = {}
        self.tokens: dict[tuple[str, str, str, str], str] = {}
        self.lock = threading.RLock()

    def cluster_sim(self, account: str, region: str, name: str) -> ClusterSim:
        return self.clusters.setdefault((account, region, name), ClusterSim())

    def settle(self, account: str, region: str) -> None:
        """Apply every lifecycle whose virtual duration has elapsed (lazily, on the next call)."""
        now = self.clock.now()
        with self.lock:
            backend = eks_backends[account][region]
            for (acct, reg, name), updates in self.updates.items():
                if (acct, reg) != (account, region):
                    continue
                for update in updates:
                    if update.settled or update.status(now) == "InProgress":
                        continue
                    update.settled = True
                    cluster = backend.clusters.get(name)
                    if cluster is None:
                        continue
                    if update.outcome == "Successful" and update.type == "VersionUpdate":
                        cluster.version = update.params["Version"]
                    cluster.status = "ACTIVE"

    def settle_all(self) -> None:
        for account, region in {(a, r) for (a, r, _) in self.updates}:
            self.settle(account, region)

    def render(self, update: SimUpdate) -> dict[str, Any]:
        return {
            "id": update.id,
            "status": update.status(self.clock.now()),
            "type": update.type,
            "params": [{"type": key, "value": value} for key, value in update.params.items()],
            "createdAt": self.clock.to_datetime(update.created_at),
            "errors": update.errors if update.status(self.clock.now()) == "Failed" else [],
        }


class SimEksResponse(EKSResponse):
    simulation: EksSimulation  # set by eks_extension()

    def call_action(self) -> Any:
        self.simulation.settle(self.current_account, self.region)
        return super().call_action()

    def _cluster(self, name: str) -> Any:
        cluster = self.eks_backend.clusters.get(name)
        if cluster is None:
            raise ResourceNotFoundException(
                clusterName=name,
                message=f"No cluster found for name: {name}.",
            )
        return cluster

    def _key(self, name: str) -> tuple[str, str, str]:
        return (self.current_account, self.region, name)

    def update_cluster_version(self) -> ActionResult:
        sim = self.simulation
        name = self._get_param("name")
        version = self._get_param("version")
        token = self._get_param("clientRequestToken") or str(uuid.uuid4())
        with sim.lock:
            cluster = self._cluster(name)
            key = self._key(name)
            known = sim.tokens.get((*key, token))
            if known is not None:
                update = next(u for u in sim.updates[key] if u.id == known)
                if update.params.get("Version") != version:
                    raise InvalidParameterException(
                        clusterName=name,
                        message=f"clientRequestToken {token} was already used for a different request",
                    )
                return ActionResult({"update": sim.render(update)})
            now = sim.clock.now()
            if any(u.status(now) == "InProgress" for u in sim.updates.get(key, [])):
                raise ResourceInUseException(
                    clusterName=name,
                    message=f"Cluster {name} has an update in progress; EKS allows one update at a time.",
                )
            if cluster.status != "ACTIVE":
                raise ResourceInUseException(
                    clusterName=name,
                    message=f"Cluster {name} is in {cluster.status} state.",
                )
            major, minor = (int(p) for p in cluster.version.split("."))
            if version != f"{major}.{minor + 1}":
                raise InvalidParameterException(
                    clusterName=name,
                    message=f"Unsupported Kubernetes minor version update from {cluster.version} to {version}",
                )
            behind = [
                ng.nodegroup_name
                for ng in self.eks_backend.clusters[name].nodegroups.values()
                if ng.version != cluster.version
            ]
            if behind:
                raise InvalidRequestException(
                    message=f"Nodegroups {', '.join(sorted(behind))} must be updated to match cluster "
                    f"version {cluster.version} before updating cluster version",
                )
            state = sim.cluster_sim(*key)
            errors: list[dict[str, Any]] = []
            if state.free_ips < MIN_FREE_IPS_FOR_UPDATE:
                errors.append(
                    {
                        "errorCode": "IpNotAvailable",
                        "errorMessage": f"Subnets of cluster {name} have {state.free_ips} free IP "
                        f"addresses; the update needs {MIN_FREE_IPS_FOR_UPDATE}.",
                        "resourceIds": list(cluster.resources_vpc_config.get("subnetIds", [])),
                    }
                )
            elif state.fail_next_update:
                errors.append(
                    {
                        "errorCode": state.fail_next_update,
                        "errorMessage": "Injected failure of the control plane update.",
                        "resourceIds": [name],
                    }
                )
                state.fail_next_update = None
            update = SimUpdate(
                id=str(uuid.uuid4()),
                cluster=name,
                type="VersionUpdate",
                params={"Version": version, "PlatformVersion": "eks.1"},
                created_at=now,
                duration=sim.timings.control_plane_update,
                outcome="Failed" if errors else "Successful",
                errors=errors,
            )
            sim.updates.setdefault(key, []).append(update)
            sim.tokens[(*key, token)] = update.id
            cluster.status = "UPDATING"
            return ActionResult({"update": sim.render(update)})

    def describe_update(self) -> ActionResult:
        name = self._get_param("name")
        update_id = self._get_param("updateId")
        self._cluster(name)
        for update in self.simulation.updates.get(self._key(name), []):
            if update.id == update_id:
                return ActionResult({"update": self.simulation.render(update)})
        raise ResourceNotFoundException(
            clusterName=name,
            message=f"No update found for ID: {update_id}.",
        )

    def list_updates(self) -> ActionResult:
        name = self._get_param("name")
        self._cluster(name)
        ids = [u.id for u in self.simulation.updates.get(self._key(name), [])]
        max_results = int(self._get_param("maxResults") or 100)
        token = self._get_param("nextToken") or "0"
        if not token.isdigit():
            raise InvalidParameterException(clusterName=name, message=f"Invalid nextToken {token}")
        start = int(token)
        page = ids[start : start + max_results]
        result: dict[str, Any] = {"updateIds": page}
        if start + max_results < len(ids):
            result["nextToken"] = str(start + max_results)
        return ActionResult(result)


@contextlib.contextmanager
def eks_extension(simulation: EksSimulation) -> Iterator[EksSimulation]:
    """Route every EKS path to :class:`SimEksResponse` while the context is open."""
    saved = dict(eks_urls.url_paths)
    SimEksResponse.simulation = simulation
    for path in list(eks_urls.url_paths) + sorted(NEW_PATHS):
        eks_urls.url_paths[path] = SimEksResponse.dispatch
    try:
        yield simulation
    finally:
        eks_urls.url_paths.clear()
        eks_urls.url_paths.update(saved)
