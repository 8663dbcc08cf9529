"""What the target-account role may do, and on which resources.

The actions come from the step catalog (``TARGET_READ_ACTIONS`` / ``TARGET_MUTATING_ACTIONS``); this module
only decides their ``Resource``. Every EKS action that supports resource-level permissions is scoped to
EKS ARNs in the configured regions of the role's own account. An action missing from the tables below
stops the synth with an error, so adding an action to the catalog forces a decision here, never a
silent ``*``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aws_cdk import Aws


class EksResource(Enum):
    CLUSTER = "cluster/*"
    NODEGROUP = "nodegroup/*/*/*"  # nodegroup/<cluster>/<nodegroup>/<uuid>
    ADDON = "addon/*/*/*"  # addon/<cluster>/<addon>/<uuid>


ALL_EKS_RESOURCES = (EksResource.CLUSTER, EksResource.NODEGROUP, EksResource.ADDON)


@dataclass(frozen=True)
class ArnPattern:
    """A resource of another service: ``arn:<partition>:<service>:<region>:<account or empty>:<resource>``."""

    service: str
    resource: str
    in_account: bool = True  # public resources (AMIs, AWS-owned SSM parameters) name no account


Resource = EksResource | ArnPattern
LAUNCH_TEMPLATE = ArnPattern("ec2", "launch-template/*")
# What a RunInstances with a launch template is authorized on (EC2's resource types for RunInstances).
RUN_INSTANCES_RESOURCES: tuple[Resource, ...] = (
    LAUNCH_TEMPLATE,
    ArnPattern("ec2", "instance/*"),
    ArnPattern("ec2", "volume/*"),
    ArnPattern("ec2", "network-interface/*"),
    ArnPattern("ec2", "subnet/*"),
    ArnPattern("ec2", "security-group/*"),
    ArnPattern("ec2", "key-pair/*"),
    ArnPattern("ec2", "image/*", in_account=False),
)
# The EKS-optimized AMI ids AWS publishes (public parameters: no account in their ARN).
EKS_AMI_PARAMETERS = ArnPattern("ssm", "parameter/aws/service/eks/optimized-ami/*", in_account=False)

# Resource types per the Service Authorization Reference for Amazon EKS. Reads that accept several
# types (e.g. DescribeUpdate of a cluster, node group or add-on update) get all of them.
EKS_READ_RESOURCES: dict[str, tuple[Resource, ...]] = {
    "eks:DescribeCluster": (EksResource.CLUSTER,),
    "eks:ListUpdates": ALL_EKS_RESOURCES,
    "eks:DescribeUpdate": ALL_EKS_RESOURCES,
    "eks:ListNodegroups": (EksResource.CLUSTER,),
    "eks:DescribeNodegroup": (EksResource.NODEGROUP,),
    "eks:ListAddons": (EksResource.CLUSTER,),
    "eks:DescribeAddon": (EksResource.ADDON,),
    "eks:ListInsights": (EksResource.CLUSTER,),
    "eks:DescribeInsight": (EksResource.CLUSTER,),
    "ssm:GetParameter": (EKS_AMI_PARAMETERS,),
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
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribeImages",
    }
)
EKS_MUTATING_RESOURCES: dict[str, tuple[Resource, ...]] = {
    "eks:UpdateClusterVersion": (EksResource.CLUSTER,),
    "eks:CreateNodegroup": (EksResource.CLUSTER,),  # with tags it also needs eks:TagResource
    "eks:UpdateNodegroupVersion": (EksResource.NODEGROUP,),
    "eks:UpdateNodegroupConfig": (EksResource.NODEGROUP,),
    "eks:DeleteNodegroup": (EksResource.NODEGROUP,),
    "eks:CreateAddon": (EksResource.CLUSTER,),
    "eks:UpdateAddon": (EksResource.ADDON,),
    "eks:TagResource": ALL_EKS_RESOURCES,
    # The node group migration's launch templates: created tagged as ours, tags only at creation.
    "ec2:CreateLaunchTemplate": (LAUNCH_TEMPLATE,),
    "ec2:CreateTags": (LAUNCH_TEMPLATE,),
    # After the control plane, a custom-AMI node group (our twin or the owner's group on an EKS-optimized
    # AMI) gets a new version of its own template with the target's AMI; nothing else in it changes.
    "ec2:CreateLaunchTemplateVersion": (LAUNCH_TEMPLATE,),
    # CreateNodegroup with a launch template checks that the caller may launch instances with it
    # ("You are not authorized to launch instances with this launch template" otherwise): EKS asks on
    # the caller's behalf, so the grant only holds for calls made via EKS (condition below).
    "ec2:RunInstances": RUN_INSTANCES_RESOURCES,
}
# Conditions that narrow an action further (each becomes part of its statement).
ACTION_CONDITIONS: dict[str, dict[str, dict[str, Any]]] = {
    "ec2:CreateLaunchTemplate": {
        "StringEquals": {"aws:RequestTag/eks-fleet-upgrader/managed-by": "eks-fleet-upgrader"}
    },
    "ec2:CreateTags": {"StringEquals": {"ec2:CreateAction": "CreateLaunchTemplate"}},
    "ec2:RunInstances": {"ForAnyValue:StringEquals": {"aws:CalledVia": ["eks.amazonaws.com"]}},
}


class UnclassifiedActionError(ValueError):
    """A catalog action has no entry in this module's tables."""


@dataclass(frozen=True)
class ScopedActions:
    actions: tuple[str, ...]
    resources: tuple[str, ...]  # ARN patterns (CloudFormation tokens for partition/account) or ("*",)
    conditions: dict[str, dict[str, Any]] | None = None


def eks_arn(region: str, resource: EksResource) -> str:
    # Partition and account are the deploying stack's own pseudo parameters: the template names no account
    # and serves every fleet account (per-account stacks and the StackSet alike).
    return f"arn:{Aws.PARTITION}:eks:{region}:{Aws.ACCOUNT_ID}:{resource.value}"


def resource_arn(region: str, resource: Resource) -> str:
    if isinstance(resource, EksResource):
        return eks_arn(region, resource)
    account = Aws.ACCOUNT_ID if resource.in_account else ""
    return f"arn:{Aws.PARTITION}:{resource.service}:{region}:{account}:{resource.resource}"


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
    table: dict[str, tuple[Resource, ...]],
    *,
    unscoped: frozenset[str],
    kind: str,
) -> list[ScopedActions]:
    by_resources: dict[tuple[tuple[Resource, ...], str], list[str]] = {}
    wildcard: list[str] = []
    for action in actions:
        if action in table:
            conditions = json.dumps(ACTION_CONDITIONS.get(action), sort_keys=True)
            by_resources.setdefault((table[action], conditions), []).append(action)
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
            resources=tuple(resource_arn(region, resource) for resource in kinds for region in regions),
            conditions=json.loads(conditions),
        )
        for (kinds, conditions), grouped in by_resources.items()
    ]
    if wildcard:
        groups.append(ScopedActions(actions=tuple(sorted(wildcard)), resources=("*",)))
    return groups
