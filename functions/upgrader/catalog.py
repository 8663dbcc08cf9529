"""The catalog of Lambda steps: the one list shared by the CDK app, the ASL and the local engine.

Each step is one Lambda function. The CDK app creates one function per entry (handler, role, log group)
and supplies ``arn_variable`` as a definition substitution; the local engine registers the same
handlers in moto and substitutes the same variables, so both run the identical ``*.asl.json``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepSpec:
    name: str  # PascalCase, used for construct ids and function names
    package: str  # directory under functions/ holding handler.py
    description: str
    assumes_target_role: bool  # needs sts:AssumeRole into fleet accounts
    writes_reports: bool = False  # puts its report under reports/ in the orchestrator's reports bucket

    @property
    def handler(self) -> str:
        return f"{self.package}.handler.lambda_handler"

    @property
    def arn_variable(self) -> str:
        """Name of the ``${...}`` substitution in the ASL files."""
        return f"{self.name}FunctionArn"


STEPS: tuple[StepSpec, ...] = (
    StepSpec(
        name="ValidateInput",
        package="validate_input",
        description="Validates the execution input against the JSON schema; makes no AWS call.",
        assumes_target_role=False,
    ),
    StepSpec(
        name="Preflight",
        package="preflight",
        description="Assumes the target role and checks the cluster is ACTIVE, on the source version, "
        "with no update in progress.",
        assumes_target_role=True,
    ),
    StepSpec(
        name="ReadinessCheck",
        package="readiness_check",
        description="Scans the cluster (Kubernetes objects, EKS and EC2 facts) with the readiness rules; "
        "blocking findings the input did not acknowledge stop the cluster before any change.",
        assumes_target_role=True,
        writes_reports=True,
    ),
    StepSpec(
        name="StartControlPlaneUpdate",
        package="start_control_plane_update",
        description="Starts (or adopts) the one-minor control plane version update.",
        assumes_target_role=True,
    ),
    StepSpec(
        name="PollControlPlaneUpdate",
        package="poll_control_plane_update",
        description="Describes the control plane update and computes the next wait.",
        assumes_target_role=True,
    ),
)

STEPS_BY_NAME = {step.name: step for step in STEPS}

# EKS / EC2 actions the steps that assume the target role perform in fleet accounts.
# The target-account role grants exactly these (infra/target_account_stack.py reads this list).
TARGET_READ_ACTIONS: tuple[str, ...] = (
    "eks:DescribeCluster",
    "eks:ListUpdates",
    "eks:DescribeUpdate",
    "eks:ListNodegroups",
    "eks:DescribeNodegroup",
    # ReadinessCheck: add-ons and their versions for the target, upgrade insights, free IPs of the
    # cluster's subnets, node groups' launch template user data.
    "eks:ListAddons",
    "eks:DescribeAddon",
    "eks:DescribeAddonVersions",
    "eks:ListInsights",
    "eks:DescribeInsight",
    "ec2:DescribeSubnets",
    "ec2:DescribeLaunchTemplateVersions",
)
TARGET_MUTATING_ACTIONS: tuple[str, ...] = ("eks:UpdateClusterVersion",)
