"""Where upgrade runs keep their state, reports, notifications and logs, all under one customer-managed key.

* Run table (DynamoDB): run state and per-cluster locks; ``pk``/``sk`` strings, on-demand, point-in-time
  recovery, deletion protection. The idempotency records of the steps that change something live there too
  (``pk = idempotency#<function name>``), deleted by DynamoDB's TTL on ``expiration`` a day after they are
  written (only those records carry that attribute).
* Reports bucket (S3): KMS, TLS only, public access blocked, versioned, server access logs to a separate
  logs bucket (SSE-S3, because S3 log delivery cannot write to SSE-KMS buckets).
* Notifications topic (SNS): KMS, TLS only.
* The key (rotated) also encrypts the state machines (definition and execution history) and every log group
  of the app: its policy lets the regional CloudWatch Logs service use it for this app's log groups only
  (``log_group_name_patterns``), as CloudWatch Logs requires for a KMS-encrypted log group.

Data stores are retained when the stack is deleted. Nothing is granted by default: a step that needs one of
them gets a grant in orchestrator_stack.py when it starts using it, through the narrow ``grant_*`` methods here.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.compliance import acknowledge, wildcard_resource_findings

# The account's IAM policies decide who may use the key (the usual delegation to the account), but with
# the key-administrator and key-user actions spelled out instead of kms:*.
KEY_ADMINISTRATION_ACTIONS = (
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
)
KEY_USAGE_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
)
# What CloudWatch Logs does with a log group's key (AWS: "Encrypt log data in CloudWatch Logs using KMS").
LOGS_SERVICE_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:Describe*",
)
REPORTS_PREFIX = "reports/"  # where steps put run reports (upgrader.readiness_check.report_location)
# The run table's TTL attribute: the idempotency records' expiry (upgrader.gateways.idempotency.EXPIRY_ATTRIBUTE;
# tests/infra/test_infra_idempotency.py keeps the two in step).
TTL_ATTRIBUTE = "expiration"
IDEMPOTENCY_PARTITION_PREFIX = "idempotency#"  # upgrader.gateways.idempotency.PARTITION_PREFIX
IDEMPOTENCY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


def log_group_name_patterns(resource_prefix: str) -> tuple[str, ...]:
    """The log groups the key may encrypt: the steps' and the state machines' (StepFunction, Workflow)."""
    return (f"/aws/lambda/{resource_prefix}-*", f"/aws/vendedlogs/states/{resource_prefix}-*")


class RunData(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, resource_prefix: str, log_expiry_days: int
    ) -> None:
        super().__init__(scope, construct_id)

        account_iam = iam.AccountRootPrincipal()
        log_group_arns = [
            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{pattern}"
            for pattern in log_group_name_patterns(resource_prefix)
        ]
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the EKS fleet upgrader's run table, reports, notifications, workflows and logs",
            alias=f"alias/{resource_prefix}/run-data",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="KeyAdministrationThroughAccountIam",
                        principals=[account_iam],
                        actions=list(KEY_ADMINISTRATION_ACTIONS),
                        resources=["*"],  # in a key policy "*" means this key
                    ),
                    iam.PolicyStatement(
                        sid="KeyUseThroughAccountIam",
                        principals=[account_iam],
                        actions=list(KEY_USAGE_ACTIONS),
                        resources=["*"],
                    ),
                    iam.PolicyStatement(
                        sid="CloudWatchLogsForThisAppsLogGroups",
                        principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                        actions=list(LOGS_SERVICE_ACTIONS),
                        resources=["*"],
                        conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_group_arns}},
                    ),
                ]
            ),
        )

        self.table = dynamodb.Table(
            self,
            "RunTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            time_to_live_attribute=TTL_ATTRIBUTE,
        )

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(log_expiry_days))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        # No AwsSolutions-S1 finding here: cdk-nag exempts a bucket that is another bucket's log target.

        self.reports_bucket = s3.Bucket(
            self,
            "ReportsBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="reports-bucket/",
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.notifications_topic = sns.Topic(
            self,
            "NotificationsTopic",
            display_name="EKS fleet upgrader notifications",
            master_key=self.key,
            enforce_ssl=True,
        )

    def grant_idempotency_records(self, role: iam.IRole, function_name: str) -> None:
        """Item access to the function's own idempotency records in the run table, nothing else of it: the
        ``dynamodb:LeadingKeys`` condition pins the partition key to ``idempotency#<function name>`` (Powertools'
        static partition key with a sort key). And the table's key, only through DynamoDB."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="IdempotencyRecords",
                actions=list(IDEMPOTENCY_ACTIONS),
                resources=[self.table.table_arn],
                conditions={
                    "ForAllValues:StringEquals": {
                        "dynamodb:LeadingKeys": [f"{IDEMPOTENCY_PARTITION_PREFIX}{function_name}"]
                    }
                },
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="IdempotencyRecordsKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com"}},
            )
        )

    def grant_report_writes(self, role: iam.IRole) -> None:
        """Write-only access to ``reports/`` of the reports bucket: ``s3:PutObject`` there, and the one KMS
        action SSE-KMS needs for it (``kms:GenerateDataKey``), only through S3 and only for this bucket
        (with an S3 Bucket Key the encryption context is the bucket ARN). No read, no delete, no listing."""
        objects = self.reports_bucket.arn_for_objects(f"{REPORTS_PREFIX}*")
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="WriteRunReports", actions=["s3:PutObject"], resources=[objects])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EncryptRunReports",
                actions=["kms:GenerateDataKey"],
                resources=[self.key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com",
                        "kms:EncryptionContext:aws:s3:arn": self.reports_bucket.bucket_arn,
                    }
                },
            )
        )
        for finding in wildcard_resource_findings(role, [objects]):
            acknowledge(
                role,
                finding,
                "s3:PutObject on the reports/ prefix of the run reports bucket: object keys carry the execution "
                "and cluster (reports/<execution>/<account>/<region>/<cluster>/...), unknown at deploy time.",
            )
