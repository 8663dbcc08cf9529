"""The error tree. Class names are stable: the ASL ``Retry``/``Catch`` blocks match them by name.

Whether an error is retried is decided here, once: subclasses of :class:`RetryableError` are retried
by the state machine (see the ``Retry`` blocks and ``tests/statemachine/test_asl_definitions.py``),
subclasses of :class:`TerminalError` stop the workflow with the error's name and details.
"""

from __future__ import annotations

import json
from typing import Any


class UpgradeError(Exception):
    """Base of every error a step raises on purpose. ``details`` is JSON-safe and ends up in the report."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @classmethod
    def parse_message(cls, error_message: str) -> tuple[str, dict[str, Any]]:
        """Split an ``errorMessage`` produced by ``__str__`` back into message and details."""
        message, sep, payload = error_message.partition(" | ")
        if not sep:
            return error_message, {}
        try:
            details = json.loads(payload)
        except ValueError:
            return error_message, {}
        return message, details if isinstance(details, dict) else {}

    def __str__(self) -> str:
        if not self.details:
            return self.message
        # Lambda puts str(error) in errorMessage, which Step Functions shows as the cause:
        # keep the details machine-readable after the separator.
        return f"{self.message} | {json.dumps(self.details, sort_keys=True, default=str)}"


class RetryableError(UpgradeError):
    """Transient: the state machine retries the step with backoff."""


class TerminalError(UpgradeError):
    """Permanent for this run: retrying cannot help; the workflow stops safely."""


# --- retryable -------------------------------------------------------------------------------
class AwsThrottled(RetryableError):
    """An AWS API kept throttling after the SDK's own retries."""


class TransientAwsError(RetryableError):
    """A 5xx, timeout or connection error from an AWS API after the SDK's own retries."""


class EksResourceBusy(RetryableError):
    """EKS answered ResourceInUseException to an add-on or node group update: another update of that
    resource is running (ours from a lost response is adopted before this is raised). Retried later."""


class IdempotencyAlreadyInProgressError(RetryableError):
    """Another attempt of the same state entry holds the step's idempotency record (Powertools): a retry
    while the first attempt still runs, or after it crashed, until its in-progress window (the Lambda's
    deadline) ends. Named as Powertools names it. Retried with a backoff that outlasts the window: then
    the completed attempt's result is returned, or the crashed one's step runs for real."""


# --- terminal --------------------------------------------------------------------------------
class InvalidInput(TerminalError):
    """The execution input does not match the schema; nothing was called or changed."""


class TargetRoleNotAssumable(TerminalError):
    """The orchestrator could not assume the role in the target account (trust, ExternalId, org)."""


class AwsAccessDenied(TerminalError):
    """The target role lacks a permission the step needs."""


class ClusterNotFound(TerminalError):
    """No cluster with that name in the target account and region."""


class AwsResourceNotFound(TerminalError):
    """A node group, add-on, launch template, subnet or insight that no longer exists (deleted between
    a list and a describe, or since the cluster named it). Steps that can do without it skip it."""


class ReadinessBlocked(TerminalError):
    """The readiness scan found blocking findings the execution input did not acknowledge; the cluster
    was not changed. Details carry the counts, the blocking rules and objects, and the report's S3 keys."""


class StepMisconfigured(TerminalError):
    """The step's environment lacks a setting it needs (a deployment error, not a cluster problem)."""


class IdempotencyEnvelopeMissing(TerminalError):
    """A step that changes something was invoked without the invocation envelope its ASL states pass
    (``{"state": ..., "invocation": {executionId, stateName, enteredTime}}``): it refuses to run without
    the idempotency that keys on it. A deployment error (a state machine out of step with the functions);
    nothing was called or changed."""


class ClusterNotActive(TerminalError):
    """The cluster is not ACTIVE (creating, updating, deleting or failed)."""


class ClusterVersionMismatch(TerminalError):
    """The cluster's actual version is neither the declared source nor the target."""


class UnsupportedVersionStep(TerminalError):
    """The requested version step is not one the version policy supports."""


class UpdateAlreadyInProgress(TerminalError):
    """Another update (not ours) is running on the cluster; EKS allows one at a time."""


class ControlPlaneUpdateFailed(TerminalError):
    """EKS reported the control plane update Failed or Cancelled; details carry EKS's errors."""


class ControlPlaneUpdateTimedOut(TerminalError):
    """The control plane update did not finish within the poll cap."""


class UnexpectedAwsError(TerminalError):
    """An AWS error the workflow has no rule for; stopped rather than guessed at."""


# --- node group migration (blue/green to containerd) -------------------------------------------
class KubernetesThrottled(RetryableError):
    """The Kubernetes API answered 429 (not a disruption budget) after the client's own retries."""


class TransientKubernetesError(RetryableError):
    """A 5xx, timeout or connection error from the Kubernetes API after the client's own retries."""


class KubernetesAccessDenied(TerminalError):
    """The cluster refused the target role's token (401) or its permissions (403)."""


class UnexpectedKubernetesError(TerminalError):
    """A Kubernetes API answer the workflow has no rule for; stopped rather than guessed at."""


class UnmigratableDockerNodes(TerminalError):
    """Nodes running Docker that this workflow does not replace (self-managed, Karpenter...): nothing
    was changed; the details name the nodes and who manages them."""


class NodegroupNameTaken(TerminalError):
    """The replacement's deterministic name belongs to a node group (or launch template) this
    workflow did not create: it is never adopted, never modified."""


class NodeImageNotFound(TerminalError):
    """The public SSM parameter of the EKS-optimized AMI for the cluster's version is missing."""


class ReplacementNodegroupNotReady(TerminalError):
    """The replacement node group did not become ACTIVE with every node Ready on containerd by its
    deadline (or EKS reported it failed); it was deleted and the old group left untouched."""


class InsufficientReplacementCapacity(TerminalError):
    """The replacement nodes cannot hold the pods the drain would evict; nothing was cordoned."""


class DrainRefused(TerminalError):
    """Pods kubectl drain refuses without an explicit opt-in (emptyDir data, no controller)."""


class DrainTimedOut(TerminalError):
    """A node did not drain by its deadline; the details name every blocking pod and its budget."""


class ExecutionHistoryBudgetExhausted(TerminalError):
    """The execution's history reached its budget (Settings.history_event_budget, 20,000 of Step
    Functions' 25,000 events) in one of the workflow's loops: an extraordinarily long drain or wait, or
    very many node groups. Stopped as a named error, so the drain's rollback runs, instead of the quota
    failing the execution with nothing rolled back. Running the upgrade again continues in a new execution
    from the cluster as it is."""


class PodDisruptionBudgetMisconfigured(TerminalError):
    """Pods the drain must move are selected by more than one PodDisruptionBudget: the Eviction API
    answers 500 for them whatever the wait. Stopped at once (then rolled back like any drain failure);
    the details name the pods and the budgets."""


class NodegroupDeletionFailed(TerminalError):
    """EKS could not delete a node group (DELETE_FAILED), or the deletion outlived its poll cap."""


# --- version step: add-ons, node versions, verification ------------------------------------------
class NodegroupUpdateUnsupported(TerminalError):
    """A node group the workflow would update in place cannot be: its custom AMI is not an EKS-optimized
    one (its owner must name the target image), or the target has no AMI of its family. Raised by the
    plan, before any change."""


class ClusterLockLost(TerminalError):
    """A step about to change a cluster found the fleet's lease on it no longer held by this run (another
    run took it over after it expired): stopped before the change."""


class NodegroupVersionSkew(TerminalError):
    """A managed node group is not on the control plane's version: the control plane update was not
    started (EKS requires them level; the workflow's node version step or the owner must fix it first)."""


class AddonUpdateFailed(TerminalError):
    """EKS reported an add-on update Failed (e.g. ConfigurationConflict) or the add-on DEGRADED."""


class AddonUpdateTimedOut(TerminalError):
    """An add-on update was still running past its poll cap."""


class NodegroupVersionUpdateFailed(TerminalError):
    """EKS reported a node group version update Failed (PodEvictionFailure, NodeCreationFailure...)."""


class NodegroupVersionUpdateTimedOut(TerminalError):
    """A node group version update was still running past its poll cap."""


class PostUpgradeVerificationFailed(TerminalError):
    """After the last change the cluster is not as the step promised (a node on the old kubelet or on
    Docker, a workload short of its replicas past the settle time, a blocking dockershim finding, an
    add-on not on its target); the details list every problem."""


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def retryable_error_names() -> frozenset[str]:
    return frozenset(cls.__name__ for cls in _subclasses(RetryableError))


def terminal_error_names() -> frozenset[str]:
    return frozenset(cls.__name__ for cls in _subclasses(TerminalError))


# --- fleet workflow (statemachines/fleet_upgrade.asl.json, docs/fleet.md) --------------------------
class InvalidFleetInput(TerminalError):
    """The fleet input does not match its schema or its rules (duplicate cluster, unknown canary); the
    details name the JSON path. Nothing was called or changed."""


class ClusterLocked(TerminalError):
    """Another fleet run holds the cluster's lease lock (details: owner, expiresAt); this run skips it."""


class FleetToleranceExceeded(TerminalError):
    """More clusters of a wave failed or were blocked than its tolerance allows (any canary failure): the
    fleet stops before the next wave."""


class FleetApprovalRejected(TerminalError):
    """The operator rejected a wave's approval (SendTaskFailure): the fleet stops before the wave."""
