"""The fleet-account stack: the role the orchestrator's steps assume in every account holding clusters.

Trust: only the orchestrator roles of the steps that assume it (exact role ARNs, never the account root),
only with the configured ``sts:ExternalId``, and, when ``orgId`` is configured, only from principals of
that organization (``aws:PrincipalOrgID``).

Permissions: the catalog's read and mutating actions, each on EKS ARNs of the configured regions in this
account (infra/target_permissions.py), and ``iam:PassRole`` of node roles to EKS only. No ``*`` action.

The template names no fleet account (ARNs use ``AWS::AccountId``/``AWS::Partition``), so the same
template serves ``cdk deploy`` per account and a CloudFormation StackSet (application.py synthesizes one
environment-agnostic copy for that).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.catalog import TARGET_MUTATING_ACTIONS, TARGET_READ_ACTIONS, TARGET_ROLE_STEPS
from infra.compliance import acknowledge, wildcard_resource_findings
from infra.config import FleetUpgraderConfig
from infra.target_permissions import node_role_arn, scoped_mutations, scoped_reads

# The node group migration's CreateReplacementNodegroup passes the node role to EKS.
NODE_ROLE_PASSED_TO = "eks.amazonaws.com"


def _conditions(conditions: dict[str, Any] | None) -> dict[str, Any]:
    return {"conditions": conditions} if conditions else {}


class TargetAccountStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: FleetUpgraderConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)

        self.trusted_role_arns: tuple[str, ...] = tuple(
            config.step_role_arn(step.name, Aws.PARTITION) for step in TARGET_ROLE_STEPS
        )
        if not self.trusted_role_arns:
            raise ValueError("no catalog step assumes the target role: the target stack would trust nobody")

        conditions: dict[str, Any] = {"StringEquals": {"sts:ExternalId": config.external_id}}
        if config.org_id:
            conditions["StringEquals"]["aws:PrincipalOrgID"] = config.org_id

        document, reasons_by_finding = self._permissions(config)
        self.role = iam.Role(
            self,
            "TargetRole",
            role_name=config.target_role_name,
            description="Assumed by the EKS fleet upgrader's steps (central account) to upgrade EKS clusters",
            assumed_by=iam.CompositePrincipal(
                *(iam.ArnPrincipal(arn).with_conditions(conditions) for arn in self.trusted_role_arns)
            ),
            inline_policies={"EksFleetUpgrade": document},
        )
        for finding, reasons in reasons_by_finding.items():
            acknowledge(self.role, finding, " ".join(reasons))
        CfnOutput(
            self, "TargetRoleArn", value=self.role.role_arn, description="Role the orchestrator assumes"
        )

    def _permissions(self, config: FleetUpgraderConfig) -> tuple[iam.PolicyDocument, dict[str, list[str]]]:
        """The role's policy, and the reason for each wildcard-resource finding cdk-nag will report."""
        statements: list[iam.PolicyStatement] = []
        reasons_by_finding: dict[str, list[str]] = {}

        def add(
            sid: str, actions: Sequence[str], resources: Sequence[str], reason: str, **extra: Any
        ) -> None:
            statements.append(
                iam.PolicyStatement(sid=sid, actions=list(actions), resources=list(resources), **extra)
            )
            for finding in wildcard_resource_findings(self, resources):
                reasons_by_finding.setdefault(finding, []).append(reason)

        for index, group in enumerate(scoped_reads(TARGET_READ_ACTIONS, config.regions)):
            if group.resources == ("*",):
                # Reads IAM cannot scope to a resource (no resource type in the Service Authorization
                # Reference): Resource "*" is the only value IAM accepts for them.
                reason = (
                    f"{', '.join(group.actions)}: read-only and without resource-level permissions in IAM."
                )
            else:
                reason = (
                    f"{', '.join(group.actions)}: read-only, on EKS resources (and the public EKS AMI "
                    "parameters) of the configured regions."
                )
            add(f"Read{index}", group.actions, group.resources, reason, **_conditions(group.conditions))
        for index, group in enumerate(scoped_mutations(TARGET_MUTATING_ACTIONS, config.regions)):
            add(
                f"UpgradeEks{index}",
                group.actions,
                group.resources,
                f"{', '.join(group.actions)}: on resources of this account in the configured regions only; "
                "the '*' stands for cluster/node group/add-on/launch template names and for the instances, "
                "volumes and interfaces EKS launches for a node group, which are not known at deploy time"
                + (f"; narrowed by conditions {sorted(group.conditions)}" if group.conditions else "")
                + ".",
                **_conditions(group.conditions),
            )

        # CreateReplacementNodegroup creates node groups, which needs the node role passed to EKS. Only roles
        # matching nodeRoleNamePattern, and only to EKS.
        add(
            "PassNodeRoleToEks",
            ["iam:PassRole"],
            [node_role_arn(config.node_role_name_pattern)],
            f"iam:PassRole: node roles are matched by the configured name pattern "
            f"'{config.node_role_name_pattern}' (they differ per cluster) and may be passed to "
            f"{NODE_ROLE_PASSED_TO} only (iam:PassedToService).",
            conditions={"StringEquals": {"iam:PassedToService": NODE_ROLE_PASSED_TO}},
        )
        return iam.PolicyDocument(statements=statements), reasons_by_finding
