"""Draining the old node group: capacity check, cordon, batches of evictions, rollback.

``kubectl drain``'s rules (``k8s.io/kubectl/pkg/drain``): the Eviction API, never a plain delete;
DaemonSet and mirror pods skipped; pods with emptyDir data (``deleteEmptyDirData``) or without a
controller (``evictPodsWithoutController``, kubectl's ``--force``) refused unless the input opts in;
finished pods ignored; a pod already terminating, or gone (404), counts as done.

One invocation of :func:`drain_step` does one round: it finishes or starts a batch (``batchSize``
nodes, or a percentage; default one node), asks the Eviction API once for every pod of the batch, and
returns. A refusal by a disruption budget (429), or throttling, comes back to the state machine,
which waits (computed here) and calls again: nothing is retried or slept on in the Lambda.
A batch is done when its nodes hold no pod to evict *and* the controllers of what it evicted have
their replicas Ready again; only then does the next batch start. Each batch has a deadline
(``nodeTimeoutSeconds``, default 15 minutes) ending in the ``onTimeout`` policy: ``fail`` (default)
raises :class:`DrainTimedOut` naming every blocking pod and its budget; ``force`` (only with
``forceAcknowledged``) deletes the pods the budgets protect.

Pacing, the budgets' own rhythm: a budget that refuses because pods *this drain* evicted are still
starting will say yes as soon as their replacements are Ready, so the next round comes exactly then
(the replacement start time this drain observed, 15 s before any observation; once they are overdue,
polls from 5 s lengthening with the delay to 60 s) with no backoff; only a budget that refuses with nothing of ours in flight (a stuck budget, throttling)
backs off (10, 20, 40, 60 s). Within a round, once a budget refuses a pod, the other pods of the
same controller are not asked again until the next round (the answer would be the same 429). A
batch of several nodes (``batchSize: "100%"``) therefore drains at the pace the budgets allow, one
wave of evictions per replacement start time, and one invocation per wave.

A batch whose replacements never become Ready stops at its deadline naming them, with the scheduler's
reason (no capacity: pressure, taints). However long the deadlines, a round that finds the execution's
history near its limit stops the drain like any failure (``ExecutionHistoryBudgetExhausted``, checked
for every looping step by ``step_handler``).

Every round re-reads the cluster: a retried, crashed or redriven invocation continues from what is
actually there, never from a stale count.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Literal

from upgrader.errors import (
    DrainRefused,
    DrainTimedOut,
    InsufficientReplacementCapacity,
    PodDisruptionBudgetMisconfigured,
    UpgradeError,
)
from upgrader.gateways.cluster_nodes import (
    NODEGROUP_LABEL,
    ClusterNodesGateway,
    NodeInfo,
    Owner,
    PodInfo,
)
from upgrader.migration_models import (
    MAX_LISTED,
    BlockingPod,
    DrainProgress,
    GroupRequest,
    GroupSummary,
    MigrationFailure,
    MigrationOptions,
    OwnerRef,
    PlannedDeletion,
)
from upgrader.polling import WaitPlan
from upgrader.versions import (
    DRAIN,
    DRAIN_MAX_BACKOFF_SECONDS,
    DRAIN_PACING_POLL_SECONDS,
    OperationTiming,
)

PodVerdict = Literal[
    "evict", "finished", "mirror", "daemonset", "terminating", "refuse-emptydir", "refuse-unmanaged"
]
FINISHED = ("Succeeded", "Failed")


def drain_timing(request: GroupRequest) -> OperationTiming:
    """Short waits for replacements, backoff when blocked; the cap is the input's nodeTimeoutSeconds."""
    return OperationTiming(DRAIN.first_wait_seconds, DRAIN.poll_seconds, request.options.node_timeout_seconds)


# -- kubectl's filters -------------------------------------------------------------------------------
def verdict(pod: PodInfo, options: MigrationOptions) -> PodVerdict:
    if pod.phase in FINISHED:
        return "finished"
    if pod.mirror:
        return "mirror"
    if pod.owner is not None and pod.owner.kind == "DaemonSet":
        return "daemonset"
    if pod.deleting:
        return "terminating"
    if pod.owner is None and not options.evict_pods_without_controller:
        return "refuse-unmanaged"
    if pod.empty_dir and not options.delete_emptydir_data:
        return "refuse-emptydir"
    return "evict"


def blocks_retirement(pod: PodInfo) -> bool:
    """A pod that still runs on a node and is not a DaemonSet's (or a static mirror) pod."""
    return pod.phase not in FINISHED and not pod.mirror and not (pod.owner and pod.owner.kind == "DaemonSet")


def batch_size(option: int | str, total: int) -> int:
    if isinstance(option, int):
        return max(1, option)
    return max(1, math.ceil(total * int(option.rstrip("%")) / 100))


def _refusals(pods: Iterable[PodInfo], options: MigrationOptions) -> list[dict[str, str]]:
    reasons = {
        "refuse-unmanaged": "no controller (set evictPodsWithoutController: true to evict it; it will not come back)",
        "refuse-emptydir": "emptyDir data (set deleteEmptyDirData: true to evict it; the data is lost)",
    }
    return [
        {"pod": pod.key, "node": pod.node, "reason": reasons[v]}
        for pod in pods
        if (v := verdict(pod, options)) in reasons
    ]


def _refuse(request: GroupRequest, refused: list[dict[str, str]]) -> DrainRefused:
    shown = ", ".join(f"{r['pod']} ({r['reason'].split(' (')[0]})" for r in refused[:MAX_LISTED])
    more = f" and {len(refused) - MAX_LISTED} more" if len(refused) > MAX_LISTED else ""
    return DrainRefused(
        f"kubectl drain would refuse {len(refused)} pod(s) on {request.group.old}: {shown}{more}",
        cluster=request.cluster.name,
        nodegroup=request.group.old,
        refused=refused[:200],
        refusedTotal=len(refused),
    )


# -- reading the group -----------------------------------------------------------------------------------
def _old_nodes(kube: ClusterNodesGateway, request: GroupRequest) -> list[NodeInfo]:
    return kube.list_nodes(f"{NODEGROUP_LABEL}={request.group.old}")


def _pods_by_node(pods: Iterable[PodInfo], nodes: set[str]) -> dict[str, list[PodInfo]]:
    found: dict[str, list[PodInfo]] = defaultdict(list)
    for pod in pods:
        if pod.node in nodes:
            found[pod.node].append(pod)
    return found


def _summary(request: GroupRequest, status: str, progress: dict[str, Any]) -> GroupSummary:
    return GroupSummary(
        old=request.group.old,
        new=request.group.new,
        status=status,  # type: ignore[arg-type]
        nodes_total=progress.get("nodes_total", 0),
        nodes_drained=progress.get("nodes_drained", 0),
        pods_evicted=progress.get("pods_evicted", 0),
        pods_forced=progress.get("pods_forced", 0),
        pdb_blocked_seconds=progress.get("pdb_blocked_seconds", 0),
    )


# -- before any disruption ----------------------------------------------------------------------------
def check_capacity(
    to_evict: list[PodInfo], replacement_nodes: list[NodeInfo], pods: Iterable[PodInfo], request: GroupRequest
) -> None:
    """The twin's free room (allocatable minus what already runs there: pods, CPU and memory
    requests) must hold every pod the drain will evict. Conservative: room elsewhere is not counted."""
    usable = {n.name: n for n in replacement_nodes if n.ready and not n.unschedulable}
    used_pods: dict[str, int] = defaultdict(int)
    used_cpu: dict[str, int] = defaultdict(int)
    used_memory: dict[str, int] = defaultdict(int)
    for pod in pods:
        if pod.node in usable and pod.phase not in FINISHED:
            used_pods[pod.node] += 1
            used_cpu[pod.node] += pod.cpu_request_milli
            used_memory[pod.node] += pod.memory_request_bytes
    free = {
        "pods": sum(max(0, n.allocatable_pods - used_pods[name]) for name, n in usable.items()),
        "cpuMilli": sum(max(0, n.allocatable_cpu_milli - used_cpu[name]) for name, n in usable.items()),
        "memoryBytes": sum(
            max(0, n.allocatable_memory_bytes - used_memory[name]) for name, n in usable.items()
        ),
    }
    need = {
        "pods": len(to_evict),
        "cpuMilli": sum(p.cpu_request_milli for p in to_evict),
        "memoryBytes": sum(p.memory_request_bytes for p in to_evict),
    }
    short = [key for key in need if need[key] > free[key]]
    if short:
        raise InsufficientReplacementCapacity(
            f"{request.group.new} ({len(usable)} Ready node(s)) cannot hold the {len(to_evict)} pod(s) "
            f"{request.group.old} would evict: not enough {', '.join(short)}; nothing was cordoned",
            cluster=request.cluster.name,
            nodegroup=request.group.old,
            replacement=request.group.new,
            need=need,
            free=free,
            replacementNodes=sorted(usable),
        )


def prepare(kube: ClusterNodesGateway, request: GroupRequest, plan: WaitPlan) -> DrainProgress:
    """Before anything is disrupted: kubectl's refusals and the capacity check; then cordon every
    node of the old group (marking the ones we cordon, so a rollback uncordons only those)."""
    options = request.options
    nodes = _old_nodes(kube, request)
    names = {n.name for n in nodes}
    pods = kube.list_pods()
    on_old = [p for p in pods if p.node in names]
    refused = _refusals(on_old, options)
    if refused:
        raise _refuse(request, refused)
    to_evict = [p for p in on_old if verdict(p, options) == "evict"]
    replacement = kube.list_nodes(f"{NODEGROUP_LABEL}={request.group.new}")
    check_capacity(to_evict, replacement, pods, request)
    for node in nodes:
        if not node.unschedulable:
            kube.cordon(node.name, mark=True)
    counters = {"nodes_total": len(nodes)}
    accepted = [
        PlannedDeletion(kind="Pod", name=p.name, namespace=p.namespace) for p in to_evict if p.owner is None
    ]
    return DrainProgress(
        status="Cordoned",
        nodes_total=len(nodes),
        planned_deletions=accepted[:200],
        next_wait_seconds=0,
        summary=_summary(request, "draining", counters),
    )


# -- one round -------------------------------------------------------------------------------------------
def _owners_not_ready(
    kube: ClusterNodesGateway, owners: list[OwnerRef], pods: list[PodInfo]
) -> list[OwnerRef]:
    """Controllers of evicted pods whose replicas are not all Running and Ready again."""
    waiting = []
    for owner in owners:
        live = [
            p
            for p in pods
            if p.owner and p.owner.uid == owner.uid and p.phase not in FINISHED and not p.deleting
        ]
        ready = sum(1 for p in live if p.ready and p.phase == "Running")
        desired = kube.desired_replicas(owner.namespace, Owner(owner.kind, owner.name, owner.uid))
        if desired is None:
            if ready < len(live):
                waiting.append(owner)
        elif ready < desired:
            waiting.append(owner)
    return waiting


def _name_budgets(
    kube: ClusterNodesGateway, blocking: list[BlockingPod], pods: dict[str, PodInfo]
) -> list[BlockingPod]:
    """Fill in the budget of a blocked pod when the 429 did not name it (match selectors)."""
    missing = {b.namespace for b in blocking if b.budget is None and b.reason != "Throttled"}
    if not missing:
        return blocking
    budgets = {ns: kube.list_budgets(ns) for ns in sorted(missing)}
    named = []
    for entry in blocking:
        if entry.budget is None and entry.reason != "Throttled":
            pod = pods.get(f"{entry.namespace}/{entry.name}")
            labels = pod.labels if pod else {}
            matching = [b.name for b in budgets[entry.namespace] if selector_matches(b.selector, labels)]
            if matching:
                entry = entry.model_copy(update={"budget": ", ".join(matching)})
        named.append(entry)
    return named


def selector_matches(selector: dict[str, Any] | Any, labels: dict[str, str] | Any) -> bool:
    """A policy/v1 label selector (matchLabels, matchExpressions); an empty selector matches all."""
    if selector is None:
        return False
    labels = dict(labels or {})
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = (
            expression.get("key"),
            expression.get("operator"),
            expression.get("values") or [],
        )
        present = key in labels
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and present and labels.get(key) in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _blocked_message(blocking: list[BlockingPod]) -> str:
    def one(b: BlockingPod) -> str:
        why = {
            "DisruptionBudget": f"budget {b.budget or '(unnamed)'}",
            "MultipleBudgets": f"several budgets: {b.budget or 'unnamed'}",
            "Throttled": "API throttling",
            "ReplacementNotReady": "replacement not Ready",
            "Pending": f"Pending: {b.message}" if b.message else "Pending",
        }[b.reason]
        return f"{b.namespace}/{b.name} on {b.node} ({why})"

    shown = ", ".join(one(b) for b in blocking[:MAX_LISTED])
    more = f" and {len(blocking) - MAX_LISTED} more" if len(blocking) > MAX_LISTED else ""
    return shown + more


def _next_wait(
    plan: WaitPlan,
    status: str,
    *,
    blocked_polls: int,
    batch_waited: int,
    timeout: int,
    paced: int | None,
) -> int:
    """``paced``: seconds until the replacements in flight are due (None when nothing is in flight).
    A stuck budget backs off, but never past the moment the drain's own replacements are due."""
    if plan.strategy == "fixed":
        wait = plan.fixed_seconds
    elif status == "Blocked" and blocked_polls > 0:
        wait = min(DRAIN_MAX_BACKOFF_SECONDS, plan.timing.poll_seconds * 2 ** (blocked_polls - 1))
        if paced is not None:
            wait = min(wait, paced)
    elif paced is not None:
        wait = paced
    elif status == "Evicting":
        wait = plan.timing.first_wait_seconds
    else:
        wait = plan.timing.poll_seconds
    # Never overshoot the batch's deadline by more than the last short wait.
    return max(1, min(wait, max(1, timeout - batch_waited)))


def paced_wait(now: int, in_flight_since: int | None, expected: int) -> int | None:
    """Seconds until replacements started at ``in_flight_since`` (the drain's clock) are expected
    Ready; once overdue, a short poll that lengthens with the delay (5, 5, 10, 20, 40, then 60 s):
    late replacements are seen soon, replacements that do not come cost few rounds. None when nothing
    is in flight."""
    if in_flight_since is None:
        return None
    due = in_flight_since + expected - now
    if due > 0:
        return due
    return min(DRAIN_MAX_BACKOFF_SECONDS, max(DRAIN_PACING_POLL_SECONDS, -due))


def _owner_ref(pod: PodInfo) -> OwnerRef:
    assert pod.owner is not None
    return OwnerRef(namespace=pod.namespace, kind=pod.owner.kind, name=pod.owner.name, uid=pod.owner.uid)


def drain_step(kube: ClusterNodesGateway, request: GroupRequest, plan: WaitPlan) -> DrainProgress:
    previous = request.drain
    assert previous is not None
    options = request.options
    elapsed = previous.next_wait_seconds
    now = previous.waited_seconds + elapsed  # the drain's clock: seconds waited since it began
    nodes = _old_nodes(kube, request)
    names = sorted(n.name for n in nodes)
    node_set = set(names)
    pods = kube.list_pods()
    by_node = _pods_by_node(pods, node_set)
    refused = _refusals((p for ps in by_node.values() for p in ps), options)
    if refused:
        raise _refuse(request, refused)
    evictable = {n: [p for p in by_node.get(n, []) if verdict(p, options) == "evict"] for n in names}
    pdb_blocked = previous.pdb_blocked_seconds
    if previous.status == "Blocked" and any(b.reason != "Throttled" for b in previous.blocking):
        pdb_blocked += elapsed
    counters: dict[str, Any] = {
        "nodes_total": max(previous.nodes_total, len(names)),
        "pods_evicted": previous.pods_evicted,
        "pods_forced": previous.pods_forced,
        "pdb_blocked_seconds": pdb_blocked,
    }
    batch = [n for n in previous.batch if n in node_set]
    batch_waited = previous.batch_waited_seconds + elapsed if batch else 0
    owners = list(previous.owners)
    timeout = options.node_timeout_seconds
    # The replacements of what this batch evicted: which controllers are not Ready again yet, and
    # (once they all are) how long the newest wave took: the next wave's expected wait.
    waiting = _owners_not_ready(kube, owners, pods) if owners else []
    in_flight_since = previous.in_flight_since
    learned = previous.replacement_ready_seconds
    if in_flight_since is not None and not waiting:
        learned, in_flight_since = max(1, now - in_flight_since), None

    def progress(
        status: str,
        *,
        batch: list[str] | None = None,
        batch_waited_seconds: int = 0,
        owners: list[OwnerRef] | None = None,
        blocking: list[BlockingPod] | None = None,
        blocking_total: int = 0,
        blocked_polls: int = 0,
    ) -> DrainProgress:
        values = counters | {"nodes_drained": counters["nodes_total"] - sum(1 for n in names if evictable[n])}
        expected = learned or plan.timing.first_wait_seconds
        wait = (
            0
            if status == "Drained"
            else _next_wait(
                plan,
                status,
                blocked_polls=blocked_polls,
                batch_waited=batch_waited_seconds,
                timeout=timeout,
                paced=paced_wait(now, in_flight_since, expected),
            )
        )
        return DrainProgress(
            status=status,  # type: ignore[arg-type]
            batch=batch or [],
            batch_waited_seconds=batch_waited_seconds,
            owners=(owners or [])[:200],
            blocking=(blocking or [])[:MAX_LISTED],
            blocking_total=blocking_total,
            blocked_polls=blocked_polls,
            in_flight_since=in_flight_since,
            replacement_ready_seconds=learned,
            next_wait_seconds=wait,
            waited_seconds=now,
            polls=previous.polls + 1,
            summary=_summary(request, "drained" if status == "Drained" else "draining", values),
            **values,
        )

    if batch and not any(evictable[n] for n in batch):
        if waiting:
            if batch_waited >= timeout:
                blocking = [
                    BlockingPod(
                        namespace=o.namespace,
                        name=f"{o.kind}/{o.name}",
                        node=", ".join(batch),
                        reason="ReplacementNotReady",
                    )
                    for o in waiting
                ] + _pending_replacements(waiting, pods)
                raise _timed_out(request, batch, blocking, batch_waited, counters)
            return progress(
                "WaitingForReplacements",
                batch=batch,
                batch_waited_seconds=batch_waited,
                owners=owners,
            )
        batch, owners, batch_waited = [], [], 0
    if not batch:
        remaining = [n for n in names if evictable[n]]
        if not remaining:
            leaving = [p for ps in by_node.values() for p in ps if verdict(p, options) == "terminating"]
            if leaving:
                return progress("Evicting")  # already terminating pods count as done; wait for them to go
            return progress("Drained")
        batch = remaining[: batch_size(options.batch_size, len(names))]
        owners, batch_waited, waiting = [], 0, []

    pods_by_key = {p.key: p for n in batch for p in evictable[n]}
    blocking: list[BlockingPod] = []
    known = {o.uid for o in owners}
    # A controller whose pod a budget just refused: its other pods would get the same answer this
    # round, so they wait for the next one without another request.
    refused_by: dict[str, BlockingPod] = {}
    evicted_before = counters["pods_evicted"]
    fresh: set[str] = set()  # controllers whose pods this round evicted
    reasons = {"blocked": "DisruptionBudget", "multiple-budgets": "MultipleBudgets", "throttled": "Throttled"}
    for node in batch:
        for pod in evictable[node]:
            sibling = refused_by.get(pod.owner.uid) if pod.owner is not None else None
            if sibling is not None:
                blocking.append(
                    sibling.model_copy(
                        update={
                            "name": pod.name,
                            "node": node,
                            "message": f"not asked this round: the same budget refused {sibling.name}",
                        }
                    )
                )
                continue
            result = kube.evict(pod.namespace, pod.name)
            if result.outcome == "evicted":
                counters["pods_evicted"] += 1
                if pod.owner is not None:
                    fresh.add(pod.owner.uid)
                    if pod.owner.uid not in known:
                        known.add(pod.owner.uid)
                        owners.append(_owner_ref(pod))
            elif result.outcome in reasons:
                entry = BlockingPod(
                    namespace=pod.namespace,
                    name=pod.name,
                    node=node,
                    reason=reasons[result.outcome],  # type: ignore[arg-type]
                    budget=result.budget,
                    message=result.message[:200],
                )
                blocking.append(entry)
                if result.outcome != "throttled" and pod.owner is not None:
                    refused_by[pod.owner.uid] = entry
    if counters["pods_evicted"] > evicted_before:
        in_flight_since = now  # a new wave of replacements starts now
    if not blocking:
        return progress("Evicting", batch=batch, batch_waited_seconds=batch_waited, owners=owners)
    blocking = _name_budgets(kube, blocking, pods_by_key)
    misconfigured = [b for b in blocking if b.reason == "MultipleBudgets"]
    if misconfigured:
        # The API server refuses to evict a pod several budgets select (500), and no wait can change
        # that: stop now, naming the pods and budgets, instead of waiting out the deadline.
        raise PodDisruptionBudgetMisconfigured(
            f"{len(misconfigured)} pod(s) of {request.group.old} are selected by more than one "
            f"PodDisruptionBudget, which the Eviction API refuses: {_blocked_message(misconfigured)}. "
            "Make each pod match one budget, then run again",
            cluster=request.cluster.name,
            nodegroup=request.group.old,
            replacement=request.group.new,
            nodes=batch,
            blocking=[b.dump() for b in misconfigured[:200]],
            blockingTotal=len(misconfigured),
            podsEvicted=counters["pods_evicted"],
        )
    if batch_waited >= timeout:
        if options.on_timeout == "force" and options.force_acknowledged:
            for entry in blocking:
                if kube.delete_pod(entry.namespace, entry.name):
                    counters["pods_forced"] += 1
                    pod = pods_by_key.get(f"{entry.namespace}/{entry.name}")
                    if pod is not None and pod.owner is not None and pod.owner.uid not in known:
                        known.add(pod.owner.uid)
                        owners.append(_owner_ref(pod))
            in_flight_since = now
            # The node's deadline ended in force; its replacements get a deadline of their own.
            return progress("Evicting", batch=batch, batch_waited_seconds=0, owners=owners)
        raise _timed_out(request, batch, blocking, batch_waited, counters)
    # Paced: a refusing budget waits on replacements of ours (evicted this round, or still starting),
    # so it frees when they are Ready. Stuck: nothing of ours is in flight for it; back off.
    ours = {o.uid for o in waiting} | fresh
    paced = any(
        (pod := pods_by_key.get(f"{b.namespace}/{b.name}")) is not None
        and pod.owner is not None
        and pod.owner.uid in ours
        for b in blocking
        if b.reason != "Throttled"
    )
    stuck_polls = (previous.blocked_polls + 1) if previous.status == "Blocked" else 1
    return progress(
        "Blocked",
        batch=batch,
        batch_waited_seconds=batch_waited,
        owners=owners,
        blocking=blocking,
        blocking_total=len(blocking),
        blocked_polls=0 if paced else stuck_polls,
    )


def _pending_replacements(waiting: list[OwnerRef], pods: list[PodInfo]) -> list[BlockingPod]:
    """The replacement pods of ``waiting`` controllers the scheduler has not placed, with its reason
    (no capacity left: pressure, taints, requests), named when the drain stops for them."""
    uids = {o.uid for o in waiting}
    return [
        BlockingPod(
            namespace=p.namespace,
            name=p.name,
            node=p.node or "(not scheduled)",
            reason="Pending",
            message=(f"Unschedulable: {p.unschedulable}" if p.unschedulable else "not Ready")[:200],
        )
        for p in pods
        if p.owner is not None
        and p.owner.uid in uids
        and p.phase == "Pending"
        and not p.deleting
        and (p.unschedulable or not p.node)
    ]


def _timed_out(
    request: GroupRequest,
    batch: list[str],
    blocking: list[BlockingPod],
    waited: int,
    counters: dict[str, Any],
) -> DrainTimedOut:
    return DrainTimedOut(
        f"{', '.join(batch)} of {request.group.old} did not drain within "
        f"{request.options.node_timeout_seconds}s; blocking: {_blocked_message(blocking)}",
        cluster=request.cluster.name,
        nodegroup=request.group.old,
        replacement=request.group.new,
        nodes=batch,
        waitedSeconds=waited,
        blocking=[b.dump() for b in blocking[:200]],
        blockingTotal=len(blocking),
        podsEvicted=counters["pods_evicted"],
    )


# -- after a failure ---------------------------------------------------------------------------------------
def _original(cause: str) -> tuple[str, dict[str, Any]]:
    try:
        parsed = json.loads(cause)
    except ValueError:
        parsed = None
    text = parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
    return UpgradeError.parse_message(str(text))


def rollback(kube: ClusterNodesGateway, request: GroupRequest) -> MigrationFailure:
    """On a failed drain: uncordon the nodes we cordoned (``onFailure: uncordon``, the default) or
    keep them cordoned; the replacement is kept either way. The failure is rebuilt with the original
    error name and a cause that says exactly where the migration stopped."""
    caught = request.error
    assert caught is not None
    policy = request.options.on_failure
    nodes = _old_nodes(kube, request)
    ours = [n.name for n in nodes if n.unschedulable and n.cordoned_by_us]
    uncordoned: list[str] = []
    if policy == "uncordon":
        for name in ours:
            kube.uncordon(name)
            uncordoned.append(name)
    drain = request.drain
    counters = drain.model_dump() if drain is not None else {}
    summary = _summary(request, "failed", counters)
    message, details = _original(caught.cause)
    stopped = {
        "nodegroup": request.group.old,
        "replacement": request.group.new,
        "phase": drain.status if drain is not None else "before drain",
        "batch": drain.batch if drain is not None else [],
        "nodesDrained": summary.nodes_drained,
        "nodesTotal": summary.nodes_total or len(nodes),
        "podsEvicted": summary.pods_evicted,
    }
    details |= {
        "stoppedAt": stopped,
        "rollback": {
            "onFailure": policy,
            "uncordoned": uncordoned,
            "keptCordoned": [n for n in ours if n not in uncordoned],
            "replacementKept": request.group.new,
        },
    }
    cause = json.dumps(
        {
            "errorType": caught.error,
            "errorMessage": f"{message} | {json.dumps(details, sort_keys=True, default=str)}",
        }
    )
    return MigrationFailure(error=caught.error, cause=cause, summary=summary)
