"""One statemachines/*.asl.json file as a Standard state machine.

The definition is the file's text, inlined into the template (``DefinitionString``), with the Lambda ARNs
as ``DefinitionSubstitutions`` that CloudFormation applies; so cfn-lint reads the real workflow and the
local engine runs the very same file. The role may invoke exactly the functions this file references.
Logging: level ALL without execution data (payloads can carry cluster details) to a log group with
retention; X-Ray tracing on. The log group, the definition and the execution history are encrypted with
the run data key (customer-managed, rotated: RunData), not an AWS-owned one.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants
from infra.asl import AslDefinition
from infra.compliance import acknowledge


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definition: AslDefinition,
        state_machine_name: str,
        functions_by_arn_variable: Mapping[str, lambda_.IFunction],
        log_retention: logs.RetentionDays,
        log_key: kms.IKey,
        data_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.definition = definition

        missing = sorted(definition.substitution_names - set(functions_by_arn_variable))
        if missing:
            raise ValueError(
                f"{definition.path.name} uses substitutions the stack does not supply: {missing}. "
                f"Supplied: {sorted(functions_by_arn_variable)} (one <StepName>FunctionArn per catalog step)."
            )
        invoked = {
            variable: function
            for variable, function in functions_by_arn_variable.items()
            if variable in definition.substitution_names
        }

        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            # The /aws/vendedlogs/ prefix keeps CloudWatch Logs' resource policy small (AWS guidance for
            # Step Functions log destinations).
            log_group_name=f"/aws/vendedlogs/states/{state_machine_name}",
            retention=log_retention,
            encryption_key=log_key,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(definition.text),
            definition_substitutions={variable: fn.function_arn for variable, fn in invoked.items()},
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
            tracing_enabled=True,
            encryption_configuration=sfn.CustomerManagedEncryptionConfiguration(
                data_key, constants.STATE_MACHINE_DATA_KEY_REUSE
            ),
        )
        # Explicit invoke grants, one statement per function, on the unqualified ARN the Task states use
        # (grant_invoke would also allow every version and alias, ARN:*, which nothing here invokes).
        for variable in sorted(invoked):
            self.state_machine.add_to_role_policy(
                iam.PolicyStatement(
                    sid=f"Invoke{variable.removesuffix('Arn')}",
                    actions=["lambda:InvokeFunction"],
                    resources=[invoked[variable].function_arn],
                )
            )

        acknowledge(
            self.state_machine.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only the actions that support no resource-level permissions use '*': X-Ray trace segments "
            "(tracing) and the CloudWatch Logs delivery actions (logs:CreateLogDelivery, "
            "PutResourcePolicy, DescribeLogGroups, ...) Step Functions needs to log; Lambda invoke is per ARN.",
        )
