"""What the fleet workflow (statemachines/fleet_upgrade.asl.json) needs beyond invoking its Lambdas.

* Its state machine starts the cluster workflow as child executions and waits for them
  (``states:startExecution.sync:2``): ``states:StartExecution`` on the cluster state machine,
  ``states:DescribeExecution`` / ``states:StopExecution`` on its executions, and the EventBridge managed
  rule Step Functions uses to learn that a child ended (``events:PutTargets``, ``PutRule``,
  ``DescribeRule`` on ``StepFunctionsGetEventsForStepFunctionsExecutionRule``), as the AWS documentation
  of the sync integration lists them. The child's state machine is encrypted with the run data key, so
  starting and describing it needs that key, for that state machine only (encryption context).
* The fleet steps that keep the run table (locks, wave records, approvals) get item-level access to it.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Aws
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn

from infra.compliance import acknowledge

# The fleet steps that read and write the run table (upgrader.gateways.locks).
RUN_TABLE_STEPS = (
    "AcquireClusterLock",
    "ReleaseClusterLock",
    "RequestWaveApproval",
    "EvaluateWave",
    "WriteFleetReport",
)
RUN_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query")
SYNC_RULE = "StepFunctionsGetEventsForStepFunctionsExecutionRule"


def cluster_state_machine_arn(state_machine_name: str) -> str:
    return f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:stateMachine:{state_machine_name}"


def grant_child_executions(
    fleet: sfn.StateMachine, cluster: sfn.StateMachine, cluster_name: str, key: kms.IKey
) -> None:
    fleet.add_to_role_policy(
        iam.PolicyStatement(
            sid="StartClusterUpgrade",
            actions=["states:StartExecution"],
            resources=[cluster.state_machine_arn],
        )
    )
    executions = f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:execution:{cluster_name}:*"
    fleet.add_to_role_policy(
        iam.PolicyStatement(
            sid="FollowClusterUpgrades",
            actions=["states:DescribeExecution", "states:StopExecution"],
            resources=[executions],
        )
    )
    rule = f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/{SYNC_RULE}"
    fleet.add_to_role_policy(
        iam.PolicyStatement(
            sid="SyncExecutionEvents",
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[rule],
        )
    )
    fleet.add_to_role_policy(
        iam.PolicyStatement(
            sid="ClusterUpgradeData",
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=[key.key_arn],
            conditions={
                "StringEquals": {
                    "kms:EncryptionContext:aws:states:stateMachineArn": cluster.state_machine_arn
                }
            },
        )
    )
    acknowledge(
        fleet.role,
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{cluster_name}:*]",
        "The child executions' names are chosen at run time (<fleet execution>-<cluster hash>): the grant is "
        "DescribeExecution/StopExecution on the executions of the cluster state machine only.",
    )


def _grant_table(
    roles: Iterable[iam.IRole],
    table: dynamodb.ITable,
    key: kms.IKey,
    *,
    sid: str,
    actions: Iterable[str],
    key_actions: Iterable[str],
) -> None:
    """``actions`` on the run table and ``key_actions`` on its key, the latter only through DynamoDB."""
    for role in roles:
        role.add_to_principal_policy(
            iam.PolicyStatement(sid=sid, actions=list(actions), resources=[table.table_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid=f"{sid}Key",
                actions=list(key_actions),
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com"}},
            )
        )


def grant_run_table(roles: Iterable[iam.IRole], table: dynamodb.ITable, key: kms.IKey) -> None:
    _grant_table(
        roles,
        table,
        key,
        sid="FleetRunTable",
        actions=RUN_TABLE_ACTIONS,
        key_actions=("kms:Decrypt", "kms:GenerateDataKey"),
    )


def grant_lease_reads(roles: Iterable[iam.IRole], table: dynamodb.ITable, key: kms.IKey) -> None:
    """The cluster steps that change a cluster re-check the fleet's lease first (upgrader/leases.py):
    one strongly consistent GetItem on the run table, and the key to decrypt it, nothing more."""
    _grant_table(
        roles, table, key, sid="FleetLeaseRead", actions=("dynamodb:GetItem",), key_actions=("kms:Decrypt",)
    )


# The step that resolves a fleet input's selector against the registry (upgrader.gateways.registry).
REGISTRY_READ_STEPS = ("ValidateFleetInput",)


def grant_registry_reads(roles: Iterable[iam.IRole], table: dynamodb.ITable, key: kms.IKey) -> None:
    """ValidateFleetInput turns a selector into clusters: a filtered Scan of the registry items of the run
    table (DynamoDB cannot scope a Scan to a key prefix), and the key to decrypt them; no write."""
    _grant_table(
        roles, table, key, sid="FleetRegistryRead", actions=("dynamodb:Scan",), key_actions=("kms:Decrypt",)
    )


# The step that draws each cluster's phases in the fleet report from its child execution's history.
HISTORY_READ_STEPS = ("WriteFleetReport",)


def grant_child_history_reads(roles: Iterable[iam.IRole], cluster_name: str, key: kms.IKey) -> None:
    """GetExecutionHistory on the cluster workflow's executions (read-only), and the data key for that
    state machine only (its history is encrypted with it). The state machine is named, not referenced:
    the cluster workflow's own looping steps get this grant too (their execution's history size,
    upgrader/gateways/execution_history.py), and a reference would make a cycle (state machine ->
    function -> role policy -> state machine)."""
    executions = f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:execution:{cluster_name}:*"
    for role in roles:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ClusterHistories", actions=["states:GetExecutionHistory"], resources=[executions]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ClusterHistoriesKey",
                actions=["kms:Decrypt"],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:EncryptionContext:aws:states:stateMachineArn": cluster_state_machine_arn(
                            cluster_name
                        )
                    }
                },
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"{cluster_name}:*]",
            "The child executions' names are chosen at run time (<fleet execution>-<cluster hash>): the grant is "
            "GetExecutionHistory (read-only) on the executions of the cluster state machine only.",
        )
