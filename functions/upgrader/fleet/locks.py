"""Per-cluster lease locks: one fleet run at a time touches a cluster.

A lock is an item in the run table (``pk = LOCK#<account>#<region>#<cluster>``) owned by the fleet
execution (its name) until ``expiresAt``, an epoch timestamp. Acquiring is one conditional write that
succeeds when nobody holds the lock, when the holder's lease has expired (a crashed run: the
timestamp decides, not DynamoDB's TTL sweeper, which may lag by days), or when we already hold it (a
redriven run renews its own lease). Releasing deletes the item only if we own it.
"""

from __future__ import annotations

from typing import Protocol

from upgrader.errors import ClusterLocked, ClusterLockLost
from upgrader.fleet.models import LeaseResult
from upgrader.models import ClusterRef


def lock_key(cluster: ClusterRef) -> str:
    return f"LOCK#{cluster.account_id}#{cluster.region}#{cluster.name}"


class LockTable(Protocol):
    def put_lease_if_free(self, lease: LeaseResult, now: int) -> LeaseResult | None:
        """Write ``lease`` unless another owner holds an unexpired one; return that holder's lease if so."""
        ...

    def delete_lease_if_owner(self, key: str, owner: str) -> bool:
        """Delete the lease if ``owner`` holds it; False (nothing changed) otherwise."""
        ...

    def get_lease(self, key: str) -> LeaseResult | None:
        """The lease as it stands (a strongly consistent read), or None when nobody holds one."""
        ...


def acquire(table: LockTable, cluster: ClusterRef, owner: str, now: int, lease_seconds: int) -> LeaseResult:
    lease = LeaseResult(key=lock_key(cluster), owner=owner, acquired_at=now, expires_at=now + lease_seconds)
    holder = table.put_lease_if_free(lease, now)
    if holder is not None:
        raise ClusterLocked(
            f"cluster {cluster.key} is locked by {holder.owner} until {holder.expires_at}",
            cluster=cluster.key,
            owner=holder.owner,
            expiresAt=holder.expires_at,
        )
    return lease


def release(table: LockTable, cluster: ClusterRef, owner: str) -> bool:
    return table.delete_lease_if_owner(lock_key(cluster), owner)


def verify_held(table: LockTable, cluster: ClusterRef, owner: str) -> LeaseResult:
    """Before a step changes the cluster: the lease this run acquired must still be ours.

    Ownership is what keeps two runs from interleaving: a lease that expired while we worked is taken over
    by the next run's conditional write, and from then on this check stops us. (A lease that expired with
    nobody taking it over is still ours alone, so the expiry itself is not checked here.)"""
    lease = table.get_lease(lock_key(cluster))
    if lease is None or lease.owner != owner:
        raise ClusterLockLost(
            f"cluster {cluster.key}: the fleet lock of {owner} is "
            + ("gone" if lease is None else f"held by {lease.owner} now")
            + "; this run stops before changing anything more",
            cluster=cluster.key,
            owner=owner,
            holder=None if lease is None else lease.owner,
        )
    return lease
