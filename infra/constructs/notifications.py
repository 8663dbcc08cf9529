"""Signals of the fleet workflow: its EventBridge events (docs/events.md) and its SNS notifications.

The fleet state machine emits both itself, with Step Functions' optimized integrations: every cluster state
change, and the fleet's start and finish, go to the default event bus (``events:putEvents``); the fleet's
start and finish, each failed or blocked cluster and each wave waiting for approval are published to the
stack's notifications topic (``sns:publish``). The ASL finds the topic from its own ARN
(``<fleet state machine name>-notifications`` in its account, region and partition), so this construct
names the topic so (statemachines/fleet_upgrade.asl.json cannot take a substitution the local engine lacks)
and grants the state machine exactly those two targets and the key the topic is encrypted with.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

EVENT_SOURCE = "eks-fleet-upgrader"
FLEET_STATE_CHANGE = "EKS Fleet Upgrade State Change"
CLUSTER_STATE_CHANGE = "EKS Fleet Upgrade Cluster State Change"
APPROVAL_PENDING = "EKS Fleet Upgrade Approval Pending"


def notifications_topic_name(fleet_state_machine_name: str) -> str:
    """The name the fleet ASL derives from its own ARN (the NotifyFleet* states)."""
    return f"{fleet_state_machine_name}-notifications"


class FleetNotifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        fleet: sfn.StateMachine,
        fleet_state_machine_name: str,
        topic: sns.Topic,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic_name = notifications_topic_name(fleet_state_machine_name)
        cfn_topic = topic.node.default_child
        assert isinstance(cfn_topic, sns.CfnTopic)
        cfn_topic.topic_name = self.topic_name
        bus = f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:event-bus/default"
        fleet.add_to_role_policy(
            iam.PolicyStatement(sid="FleetEvents", actions=["events:PutEvents"], resources=[bus])
        )
        fleet.add_to_role_policy(
            iam.PolicyStatement(
                sid="FleetNotifications", actions=["sns:Publish"], resources=[topic.topic_arn]
            )
        )
        # Publishing to a topic under a customer-managed key: SNS asks for a data key on the caller's behalf.
        fleet.add_to_role_policy(
            iam.PolicyStatement(
                sid="FleetNotificationsKey",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sns.{Aws.REGION}.amazonaws.com"}},
            )
        )
