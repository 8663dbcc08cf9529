"""The fleet lease re-check every cluster-changing step makes before it changes anything.

A fleet run holds a lease on each cluster it upgrades (``upgrader.fleet.locks``) and passes its owner in
the cluster workflow's input (``lock.owner``). The steps the catalog marks ``holds_cluster_lock`` call
:func:`ensure_lease_held` first (from ``observability.step_handler``, so no handler can forget it): a
run whose lease another run took over stops with ``ClusterLockLost`` instead of interleaving its
changes with the other run's. A cluster workflow started alone (no owner) has nothing to check.
"""

from __future__ import annotations

from typing import Any

from upgrader.catalog import STEPS_BY_NAME


def ensure_lease_held(step: str, state: Any) -> None:
    spec = STEPS_BY_NAME.get(step)
    lock = getattr(state, "lock", None)
    owner = getattr(lock, "owner", None)
    if spec is None or not spec.holds_cluster_lock or not owner:
        return
    # Imported here: only cluster-changing steps of fleet runs pay for the DynamoDB client.
    from upgrader.fleet.locks import verify_held
    from upgrader.gateways.locks import FleetStepSettings, run_table

    verify_held(run_table(FleetStepSettings.load()), state.cluster, owner)
