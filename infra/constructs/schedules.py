"""EventBridge Scheduler schedules that start the fleet workflow (cdk.json ``eksFleetUpgrader.schedules``).

Each configured schedule (infra/config.py validates cron, time zone, window, mode and input at synth)
becomes one ``AWS::Scheduler::Schedule`` whose target is the fleet state machine, with the fleet input
and the schedule's mode. One role for all of them, assumable by EventBridge Scheduler for this account
only, may start executions of the fleet state machine and nothing else (plus the data key Step Functions
needs to encrypt the input of a state machine under a customer-managed key).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import FleetSchedule

# A start that Scheduler could not make is retried for at most an hour, then dropped (and counted in
# the AWS/Scheduler TargetErrorCount metric): a fleet upgrade started hours late is worse than none.
RETRY_ATTEMPTS = 3
RETRY_MAX_EVENT_AGE_SECONDS = 3600


class FleetSchedules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        schedules: Sequence[FleetSchedule],
        fleet: sfn.IStateMachine,
        data_key: kms.IKey,
        name_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.schedules: dict[str, scheduler.CfnSchedule] = {}
        if not schedules:
            self.role = None
            return
        self.role = iam.Role(
            self,
            "Role",
            description="EventBridge Scheduler: starts the fleet upgrade workflow on the configured schedules",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="StartFleetUpgrade",
                actions=["states:StartExecution"],
                resources=[fleet.state_machine_arn],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="FleetUpgradeInputKey",
                actions=["kms:GenerateDataKey"],
                resources=[data_key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:EncryptionContext:aws:states:stateMachineArn": fleet.state_machine_arn
                    }
                },
            )
        )
        for schedule in schedules:
            window = (
                scheduler.CfnSchedule.FlexibleTimeWindowProperty(
                    mode="FLEXIBLE", maximum_window_in_minutes=schedule.flexible_window_minutes
                )
                if schedule.flexible_window_minutes
                else scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF")
            )
            self.schedules[schedule.name] = scheduler.CfnSchedule(
                self,
                f"Schedule-{schedule.name}",
                name=f"{name_prefix}-{schedule.name}"[:64],
                description=(schedule.description or f"Fleet upgrade ({schedule.mode})")[:512],
                schedule_expression=schedule.expression,
                schedule_expression_timezone=schedule.timezone,
                flexible_time_window=window,
                state="ENABLED" if schedule.enabled else "DISABLED",
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=fleet.state_machine_arn,
                    role_arn=self.role.role_arn,
                    input=json.dumps(schedule.execution_input(), sort_keys=True),
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_retry_attempts=RETRY_ATTEMPTS,
                        maximum_event_age_in_seconds=RETRY_MAX_EVENT_AGE_SECONDS,
                    ),
                ),
            )
