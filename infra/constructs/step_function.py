"""One catalog step as a Lambda function with its own role and log group.

* Role ``{resourcePrefix}-{StepName}``: a fixed name because the target-account role trusts this exact ARN.
  It starts empty (no managed policy); it gets: write to its own log group, X-Ray, and, only for steps that
  assume the target role, ``sts:AssumeRole`` on ``role/<targetRoleName>`` in each configured account.
* Function ``{resourcePrefix}-{StepName}``: Python 3.13 on arm64, X-Ray active, the shared code asset and
  dependency layer, its own log group with retention, encrypted with the run data key (RunData).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants
from infra.catalog import StepSpec
from infra.compliance import acknowledge


class StepFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        step: StepSpec,
        name: str,
        code: lambda_.Code,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        log_key: kms.IKey,
        target_role_arns: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.step = step

        self.role = iam.Role(
            self,
            "Role",
            role_name=name,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the {step.name} step of the EKS fleet upgrader",
        )
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=f"/aws/lambda/{name}",
            retention=log_retention,
            encryption_key=log_key,
        )
        self.log_group.grant_write(self.role)

        if step.assumes_target_role:
            if not target_role_arns:
                raise ValueError(
                    f"step {step.name} assumes the target role but no target account is configured"
                )
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="AssumeFleetTargetRole",
                    actions=["sts:AssumeRole"],
                    resources=list(target_role_arns),
                )
            )

        self.function = lambda_.Function(
            self,
            "Function",
            function_name=name,
            description=step.description[:256],
            runtime=constants.LAMBDA_RUNTIME,
            architecture=constants.LAMBDA_ARCHITECTURE,
            memory_size=constants.LAMBDA_MEMORY_MB,
            timeout=constants.LAMBDA_TIMEOUT,
            handler=step.handler,
            code=code,
            layers=list(layers),
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment=dict(environment),
        )

        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "xray:PutTraceSegments and xray:PutTelemetryRecords (added for active tracing) support no "
            "resource-level permissions; every other statement of this role names its resources.",
        )
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "Invoked only synchronously by Step Functions (Task state): a failure returns to the execution, "
            "which retries or fails it visibly; there is no asynchronous event a DLQ could keep.",
        )
        for rule in ("AwsSolutions-L1", "Serverless-LambdaLatestVersion"):
            acknowledge(
                self.function,
                rule,
                f"{constants.LAMBDA_RUNTIME.name} is deliberate: the dependency layer is built for cp"
                f"{constants.LAYER_PYTHON_VERSION} wheels and the suite is tested against it; moving to a newer "
                "runtime is a change of infra/constants.py (runtime and layer target together).",
            )
