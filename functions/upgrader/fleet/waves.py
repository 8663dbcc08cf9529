"""The fleet plan: which clusters go in which wave, with what concurrency, tolerance, soak and approval.

Rules (docs/fleet.md):
- every cluster appears once (a duplicate key is ``InvalidFleetInput``, naming both positions);
- the canary wave comes first: the clusters it names, or the first ``canary.size`` of the list; its
  failure tolerance is zero (any canary failure stops the fleet);
- then the waves in order: ``size`` is a count or a percentage of the whole fleet (rounded up, at
  least one cluster); the last wave takes every cluster left, whatever its size; waves left empty
  are dropped; a wave without ``size`` takes the rest;
- ``failureTolerance`` (count or percentage of the wave, rounded down) counts failed and blocked
  clusters; skipped clusters (locked, outside their window) do not count;
- ``soakSeconds`` is waited after the wave, except after the last one.
"""

from __future__ import annotations

import hashlib
import json
import math
import re

from upgrader.errors import InvalidFleetInput
from upgrader.fleet.models import (
    CLUSTER_OPTIONS,
    FleetCluster,
    FleetPlan,
    FleetRequest,
    FleetSettings,
    FleetUpgradeInput,
    PlannedCluster,
    PlannedWave,
)
from upgrader.models import ClusterRef

MAX_EXECUTION_NAME = 80
# Step Functions passes at most 256 KiB from state to state. The plan is the largest thing the fleet's state
# carries (about 450 bytes per cluster); a wave's outcomes and the report's pointers ride beside it, so the
# plan may use this much. About 450 clusters fit; a larger fleet is split into several runs (docs/fleet.md).
MAX_PLAN_BYTES = 200 * 1024
_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")


def cluster_key(cluster: ClusterRef) -> str:
    return f"{cluster.account_id}/{cluster.region}/{cluster.name}"


def child_execution_name(fleet_execution_name: str, key: str) -> str:
    """``<fleet execution name>-<hash of the cluster key>``: deterministic (a redriven fleet adopts the
    children it started), 80 characters at most, only characters every AWS console and log accept."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    prefix = _NAME_CHARACTERS.sub("-", fleet_execution_name)[: MAX_EXECUTION_NAME - len(digest) - 1]
    return f"{prefix}-{digest}"


def find_duplicates(clusters: tuple[FleetCluster, ...]) -> None:
    seen: dict[str, int] = {}
    for index, cluster in enumerate(clusters):
        key = cluster_key(cluster)
        if key in seen:
            raise InvalidFleetInput(
                f"fleet input rejected: cluster {key} appears twice",
                path=f"$.clusters[{index}]",
                duplicateOf=f"$.clusters[{seen[key]}]",
            )
        seen[key] = index


def _resolve(value: int | str, total: int, *, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    share = total * int(value[:-1]) / 100
    return math.ceil(share) if round_up else math.floor(share)


def _child_input(
    fleet: FleetUpgradeInput, cluster: FleetCluster, from_version: str, owner: str
) -> dict[str, object]:
    """The cluster workflow's execution input (its schema: cluster_upgrade_input.schema.json). ``lock``
    names this fleet run: every step of the child that changes the cluster re-checks the lease is still
    its own (upgrader/leases.py)."""
    ref = ClusterRef.model_validate(cluster.model_dump(include=set(ClusterRef.model_fields)))
    child: dict[str, object] = {
        "cluster": ref.dump(),
        "fromVersion": from_version,
        "toVersion": fleet.to_version,
        "lock": {"owner": owner},
    }
    if fleet.mode == "plan":
        child["mode"] = "plan"  # the child runs its read-only checks and returns the plan
    for option in CLUSTER_OPTIONS:
        if option in fleet.cluster_options:
            child[option] = fleet.cluster_options[option]
    if fleet.acknowledge and "acknowledge" not in child:
        child["acknowledge"] = [ack.dump() for ack in fleet.acknowledge]
    return child


def _planned(request: FleetRequest, cluster: FleetCluster) -> PlannedCluster:
    fleet = request.fleet
    key = cluster_key(cluster)
    from_version = cluster.from_version or fleet.from_version
    if from_version is None:
        raise InvalidFleetInput(
            f"fleet input rejected: cluster {key} has no fromVersion and the fleet declares none",
            path="$.fromVersion",
        )
    return PlannedCluster(
        key=key,
        cluster=ClusterRef.model_validate(cluster.model_dump(include=set(ClusterRef.model_fields))),
        from_version=from_version,
        to_version=fleet.to_version,
        child_name=child_execution_name(request.run.execution_name, key),
        child_input=_child_input(fleet, cluster, from_version, request.run.execution_name),
        maintenance_window=cluster.maintenance_window,
    )


def plan_waves(request: FleetRequest, cluster_state_machine_arn: str) -> FleetPlan:
    fleet = request.fleet
    find_duplicates(fleet.clusters)
    by_key = {cluster_key(c): c for c in fleet.clusters}
    total = len(fleet.clusters)

    if fleet.canary.clusters:
        for index, key in enumerate(fleet.canary.clusters):
            if key not in by_key:
                raise InvalidFleetInput(
                    f"fleet input rejected: canary cluster {key} is not in the fleet",
                    path=f"$.canary.clusters[{index}]",
                )
        canary_keys = list(dict.fromkeys(fleet.canary.clusters))
    else:
        canary_keys = [cluster_key(c) for c in fleet.clusters[: fleet.canary.size]]
    remaining = [cluster_key(c) for c in fleet.clusters if cluster_key(c) not in set(canary_keys)]

    groups: list[tuple[str, list[str], int, int, int, bool, bool]] = [
        (
            "canary",
            canary_keys,
            fleet.canary.max_concurrency,
            0,
            fleet.canary.soak_seconds,
            fleet.canary.approval,
            True,
        )
    ]
    if remaining and not fleet.waves:
        raise InvalidFleetInput(
            f"fleet input rejected: {len(remaining)} clusters are in no wave (declare at least one wave)",
            path="$.waves",
        )
    names = [wave.name for wave in fleet.waves]
    if "canary" in names or len(set(names)) != len(names):
        raise InvalidFleetInput(
            "fleet input rejected: wave names must be unique and not 'canary'", path="$.waves"
        )
    for position, wave in enumerate(fleet.waves):
        last = position == len(fleet.waves) - 1
        if last or wave.size is None:
            members, remaining = remaining, []
        else:
            count = max(1, _resolve(wave.size, total, round_up=True))
            members, remaining = remaining[:count], remaining[count:]
        if not members:
            continue
        tolerance = _resolve(wave.failure_tolerance, len(members), round_up=False)
        groups.append(
            (wave.name, members, wave.max_concurrency, tolerance, wave.soak_seconds, wave.approval, False)
        )

    waves = []
    for index, (name, keys, concurrency, tolerance, soak, approval, canary) in enumerate(groups):
        waves.append(
            PlannedWave(
                index=index,
                name=name,
                canary=canary,
                clusters=tuple(_planned(request, by_key[key]) for key in keys),
                max_concurrency=concurrency,
                failure_tolerance=tolerance,
                soak_seconds=soak if index < len(groups) - 1 else 0,
                approval=approval,
            )
        )
    plan = FleetPlan(
        run=request.run,
        settings=FleetSettings(
            mode=fleet.mode,
            to_version=fleet.to_version,
            outside_window=fleet.outside_window,
            lock_lease_seconds=fleet.lock_lease_seconds,
            cluster_state_machine_arn=cluster_state_machine_arn,
        ),
        waves=tuple(waves),
    )
    size = len(json.dumps(plan.dump(), separators=(",", ":")))
    if size > MAX_PLAN_BYTES:
        raise InvalidFleetInput(
            f"fleet input rejected: the plan of {total} clusters takes {size} bytes, more than the "
            f"{MAX_PLAN_BYTES} one fleet execution can carry (Step Functions passes at most 256 KiB between "
            "states): split the fleet into several runs, e.g. one selector per account or region",
            path="$.clusters",
            planBytes=size,
            limitBytes=MAX_PLAN_BYTES,
            clusters=total,
        )
    return plan
