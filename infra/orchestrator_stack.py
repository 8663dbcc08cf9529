"""The central-account stack: one Lambda per catalog step, one state machine per ASL file, run data."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import constants
from infra.asl import AslDefinition, load_definitions
from infra.bundling import dependency_layer_code, function_code
from infra.catalog import STEPS
from infra.config import FleetUpgraderConfig
from infra.constructs.dashboard import FleetDashboard
from infra.constructs.fleet_permissions import (
    HISTORY_READ_STEPS,
    REGISTRY_READ_STEPS,
    RUN_TABLE_STEPS,
    cluster_state_machine_arn,
    grant_child_executions,
    grant_child_history_reads,
    grant_lease_reads,
    grant_registry_reads,
    grant_run_table,
)
from infra.constructs.notifications import FleetNotifications
from infra.constructs.run_data import RunData
from infra.constructs.schedules import FleetSchedules
from infra.constructs.step_function import StepFunction
from infra.constructs.workflow import Workflow


class OrchestratorStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FleetUpgraderConfig,
        definitions: tuple[AslDefinition, ...] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retention = constants.RETENTION_DAYS[config.log_retention_days]

        self.run_data = RunData(
            self, "RunData", resource_prefix=config.resource_prefix, log_expiry_days=config.log_retention_days
        )

        dependencies = lambda_.LayerVersion(
            self,
            "DependenciesLayer",
            code=dependency_layer_code(),
            compatible_runtimes=[constants.LAMBDA_RUNTIME],
            compatible_architectures=[constants.LAMBDA_ARCHITECTURE],
            description="Pinned runtime dependencies of the upgrader steps (functions/requirements.txt)",
        )
        code = function_code()
        environment = {
            **constants.POWERTOOLS_ENVIRONMENT,
            **constants.STEP_SETTINGS_DEFAULTS,
            "TARGET_ROLE_NAME": config.target_role_name,
            "EXTERNAL_ID": config.external_id,
            "RUN_TABLE_NAME": self.run_table.table_name,
            "REPORT_BUCKET_NAME": self.report_bucket.bucket_name,
            "NOTIFICATION_TOPIC_ARN": self.notification_topic.topic_arn,
            # The fleet workflow's child executions (infra/constructs/fleet_permissions.py): the name is
            # known before the state machine exists, so no step depends on it.
            "CLUSTER_STATE_MACHINE_ARN": cluster_state_machine_arn(
                f"{config.resource_prefix}-cluster-upgrade"
            ),
        }
        target_role_arns = [
            config.target_role_arn(account, Aws.PARTITION) for account in config.target_account_ids
        ]

        self.steps: dict[str, StepFunction] = {}
        for step in STEPS:
            self.steps[step.name] = StepFunction(
                self,
                step.name,
                step=step,
                name=config.step_resource_name(step.name),
                code=code,
                layers=[dependencies],
                environment=environment,
                log_retention=retention,
                log_key=self.run_data.key,
                target_role_arns=target_role_arns if step.assumes_target_role else (),
            )
            CfnOutput(
                self,
                f"{step.name}RoleArn",
                value=self.steps[step.name].role.role_arn,
                description=f"Role of the {step.name} step (trusted by the target role: {step.assumes_target_role})",
            )

        for step in STEPS:
            if step.writes_reports:
                self.run_data.grant_report_writes(self.steps[step.name].role)
            if step.idempotent:  # its Powertools idempotency records (upgrader/gateways/idempotency.py)
                self.run_data.grant_idempotency_records(
                    self.steps[step.name].role, config.step_resource_name(step.name)
                )

        functions_by_arn_variable = {step.arn_variable: self.steps[step.name].function for step in STEPS}
        self.workflows: dict[str, Workflow] = {}
        for definition in load_definitions() if definitions is None else definitions:
            workflow = Workflow(
                self,
                definition.construct_id,
                definition=definition,
                state_machine_name=f"{config.resource_prefix}-{definition.stem.replace('_', '-')}",
                functions_by_arn_variable=functions_by_arn_variable,
                log_retention=retention,
                log_key=self.run_data.key,
                data_key=self.run_data.key,
            )
            self.workflows[definition.stem] = workflow
            CfnOutput(
                self,
                f"{definition.construct_id}StateMachineArn",
                value=workflow.state_machine.state_machine_arn,
                description=f"State machine of statemachines/{definition.path.name}",
            )

        if "fleet_upgrade" in self.workflows and "cluster_upgrade" in self.workflows:
            grant_child_executions(
                self.workflows["fleet_upgrade"].state_machine,
                self.workflows["cluster_upgrade"].state_machine,
                f"{config.resource_prefix}-cluster-upgrade",
                self.run_data.key,
            )
            grant_child_history_reads(
                (self.steps[name].role for name in HISTORY_READ_STEPS if name in self.steps),
                f"{config.resource_prefix}-cluster-upgrade",
                self.run_data.key,
            )
        if "cluster_upgrade" in self.workflows:
            # The loops' steps read their own execution's history size (upgrader/gateways/execution_history.py).
            grant_child_history_reads(
                (self.steps[step.name].role for step in STEPS if step.looping),
                f"{config.resource_prefix}-cluster-upgrade",
                self.run_data.key,
            )
        grant_run_table(
            (self.steps[name].role for name in RUN_TABLE_STEPS if name in self.steps),
            self.run_table,
            self.run_data.key,
        )
        grant_lease_reads(
            (self.steps[step.name].role for step in STEPS if step.holds_cluster_lock),
            self.run_table,
            self.run_data.key,
        )
        grant_registry_reads(
            (self.steps[name].role for name in REGISTRY_READ_STEPS if name in self.steps),
            self.run_table,
            self.run_data.key,
        )

        # Signals, schedules and the dashboard (docs/events.md, docs/deployment.md).
        self.notifications: FleetNotifications | None = None
        self.schedules: FleetSchedules | None = None
        if "fleet_upgrade" in self.workflows:
            fleet = self.workflows["fleet_upgrade"].state_machine
            self.notifications = FleetNotifications(
                self,
                "FleetNotifications",
                fleet=fleet,
                fleet_state_machine_name=f"{config.resource_prefix}-fleet-upgrade",
                topic=self.run_data.notifications_topic,
                key=self.run_data.key,
            )
            self.schedules = FleetSchedules(
                self,
                "FleetSchedules",
                schedules=config.schedules,
                fleet=fleet,
                data_key=self.run_data.key,
                name_prefix=config.resource_prefix,
            )
        self.dashboard = FleetDashboard(
            self,
            "Dashboard",
            dashboard_name=config.resource_prefix,
            workflows={stem: workflow.state_machine for stem, workflow in self.workflows.items()},
            functions={name: step.function for name, step in self.steps.items()},
        )

    # Data stores: granted narrowly, per catalog flag (writes_reports), above; the rest for later steps.
    @property
    def run_table(self) -> dynamodb.ITable:
        return self.run_data.table

    @property
    def report_bucket(self) -> s3.IBucket:
        return self.run_data.reports_bucket

    @property
    def notification_topic(self) -> sns.ITopic:
        return self.run_data.notifications_topic
