"""What the target-account role may do, and on which resources.

The actions come from the step catalog (``TARGET_READ_ACTIONS`` / ``TARGET_MUTATING_ACTIONS``); this module
only decides their ``Resource``. Every EKS action that supports resource-level permissions is scoped to
EKS ARNs in the configured regions of the role's own account. An action missing from the tables below
stops the synth with an error, so adding an action to the catalog forces a decision here, never a
silent ``*``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from aws_cdk import Aws


class EksResource(Enum):
    CLUSTER = "cluster/*"
    NODEGROUP = "nodegroup/*/*/*"  # nodegroup/<cluster>/<nodegroup>/<uuid>
    ADDON = "addon/*/*/*"  # addon/<cluster>/<addon>/<uuid>


ALL_EKS_RESOURCES = (EksResource.CLUSTER, EksResource.NODEGROUP, EksResource.ADDON)

# Resource types per the Service Authorization Reference for Amazon EKS. Reads that accept several
# types (e.g. DescribeUpdate of a cluster, node group or add-on update) get all of them.
EKS_READ_RESOURCES: dict[str, tuple[EksResource, ...]] = {
    "eks:DescribeCluster": (EksResource.CLUSTER,),
    "eks:ListUpdates": ALL_EKS_RESOURCES,
    "eks:DescribeUpdate": ALL_EKS_RESOURCES,
    "eks:ListNodegroups": (EksResource.CLUSTER,),
    "eks:DescribeNodegroup": (EksResource.NODEGROUP,),
    "eks:ListAddons": (EksResource.CLUSTER,),
    "eks:DescribeAddon": (EksResource.ADDON,),
    "eks:ListInsights": (EksResource.CLUSTER,),
    "eks:DescribeInsight": (EksResource.CLUSTER,),
}
# Reads IAM cannot scope to a resource: they need Resource "*" (read-only, no data of a cluster).
UNSCOPED_READ_ACTIONS: frozenset[str] = frozenset(
    {
        "eks:ListClusters",
        "eks:DescribeAddonVersions",
        "eks:DescribeClusterVersions",
        # EC2 Describe* actions support no resource-level permissions.
        "ec2:DescribeSubnets",
        "ec2:DescribeLaunchTemplateVersions",
    }
)
EKS_MUTATING_RESOURCES: dict[str, tuple[EksResource, ...]] = {
    "eks:UpdateClusterVersion": (EksResource.CLUSTER,),
    "eks:CreateNodegroup": (EksResource.CLUSTER,),  # with tags it also needs eks:TagResource
    "eks:UpdateNodegroupVersion": (EksResource.NODEGROUP,),
    "eks:UpdateNodegroupConfig": (EksResource.NODEGROUP,),
    "eks:DeleteNodegroup": (EksResource.NODEGROUP,),
    "eks:CreateAddon": (EksResource.CLUSTER,),
    "eks:UpdateAddon": (EksResource.ADDON,),
    "eks:TagResource": ALL_EKS_RESOURCES,
}


class UnclassifiedActionError(ValueError):
    """A catalog action has no entry in this module's tables."""


@dataclass(frozen=True)
class ScopedActions:
    actions: tuple[str, ...]
    resources: tuple[str, ...]  # ARN patterns (CloudFormation tokens for partition/account) or ("*",)


def eks_arn(region: str, resource: EksResource) -> str:
    # Partition and account are the deploying stack's own pseudo parameters: the template names no account
    # and serves every fleet account (per-account stacks and the StackSet alike).
    return f"arn:{Aws.PARTITION}:eks:{region}:{Aws.ACCOUNT_ID}:{resource.value}"


def node_role_arn(name_pattern: str) -> str:
    return f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{name_pattern}"


def scoped_reads(actions: Iterable[str], regions: Sequence[str]) -> list[ScopedActions]:
    """Group read actions by their resource set; unscoped ones (if any) form a ``*`` group."""
    return _group(actions, regions, EKS_READ_RESOURCES, unscoped=UNSCOPED_READ_ACTIONS, kind="read")


def scoped_mutations(actions: Iterable[str], regions: Sequence[str]) -> list[ScopedActions]:
    """Group mutating actions by their resource set. Never ``*``: every one must be classified."""
    return _group(actions, regions, EKS_MUTATING_RESOURCES, unscoped=frozenset(), kind="mutating")


def _group(
    actions: Iterable[str],
    regions: Sequence[str],
    table: dict[str, tuple[EksResource, ...]],
    *,
    unscoped: frozenset[str],
    kind: str,
) -> list[ScopedActions]:
    by_resources: dict[tuple[EksResource, ...], list[str]] = {}
    wildcard: list[str] = []
    for action in actions:
        if action in table:
            by_resources.setdefault(table[action], []).append(action)
        elif action in unscoped:
            wildcard.append(action)
        else:
            raise UnclassifiedActionError(
                f"{kind} action {action!r} from upgrader/catalog.py has no resource scope: add it to "
                f"infra/target_permissions.py (EKS resource types, or UNSCOPED_READ_ACTIONS for reads IAM "
                "cannot scope)"
            )
    groups = [
        ScopedActions(
            actions=tuple(sorted(grouped)),
            resources=tuple(eks_arn(region, resource) for resource in kinds for region in regions),
        )
        for kinds, grouped in by_resources.items()
    ]
    if wildcard:
        groups.append(ScopedActions(actions=tuple(sorted(wildcard)), resources=("*",)))
    return groups
