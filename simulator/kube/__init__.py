"""The Kubernetes side of the simulated fleet: one in-memory cluster world per EKS cluster
(``world.py``), served over HTTP on loopback to the official ``kubernetes`` client (``apiserver.py``).

The AWS side (``simulator/eks.py``) drives a world through :class:`ClusterNodes` only: node groups
becoming ACTIVE register nodes, deleting a group removes its nodes (and their pods), a control
plane update changes the version ``/version`` reports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class ClusterNodes(Protocol):
    def register_nodes(
        self,
        nodegroup: str,
        instance_ids: list[str],
        *,
        kubelet_version: str,
        container_runtime: str,
        instance_type: str,
        labels: dict[str, str],
        taints: list[dict[str, str]],
        pods_per_node: int,
        ready_at: float | None,
    ) -> None:
        """Nodes named after ``instance_ids`` join at once (NotReady); Ready at virtual time
        ``ready_at`` (``None``: never, the "nodes never become Ready" fault). ``kubelet_version`` is
        like ``v1.23.17-eks-a59e1f0``, ``container_runtime`` like ``docker://20.10.25`` or
        ``containerd://1.6.19``; ``labels`` already include ``eks.amazonaws.com/nodegroup``."""
        ...

    def remove_nodes(self, nodegroup: str) -> list[str]:
        """The group's instances terminate: its nodes disappear with every pod on them (pods of
        controllers are recreated elsewhere, or stay Pending). Returns the node names removed."""
        ...

    def node_names(self, nodegroup: str) -> list[str]:
        """The names of the group's nodes now."""
        ...

    def rolling_update(
        self,
        nodegroup: str,
        old_nodes: list[str],
        *,
        max_unavailable: int,
        eviction_timeout: float,
        done: Callable[[bool, float, str | None], None],
        start_at: float,
    ) -> None:
        """EKS's drain of ``old_nodes`` during a managed node group update, from ``start_at``: cordon,
        evict ``max_unavailable`` nodes at a time within the PodDisruptionBudgets, terminate the empty
        ones; ``done(succeeded, at, errorCode)`` when finished or failed (``PodEvictionFailure``)."""
        ...

    def advance(self) -> None:
        """Apply what is due up to the clock's now (the AWS side calls it before answering)."""
        ...

    def set_control_plane_version(self, version: str) -> None:
        """``/version`` reports this minor version from now on (e.g. ``1.24``)."""
        ...
