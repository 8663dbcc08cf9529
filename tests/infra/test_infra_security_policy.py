"""Security review of the synthesized templates, as two checkers that return violations.

``policy_violations(template)``: no Allow statement with a wildcard action (``*``, ``service:*``) or the
inverted forms (``NotAction``, ``NotResource``, ``NotPrincipal``); no ``*`` principal; every mutating action
(Create/Update/Delete/Put/Run/Start/Pass/Tag/... ; eks:UpdateClusterVersion, ec2:RunInstances,
iam:PassRole, dynamodb:PutItem, s3:PutObject, states:StartExecution...) either names its resources or is
narrowed by a condition; the only exceptions are actions AWS offers no resource-level permission for,
each listed below with the reason.

``encryption_violations(template)``: every DynamoDB table, S3 bucket, SNS topic, log group and state
machine is encrypted with a customer-managed KMS key of the template whose rotation is on (the one
exception, a server access logs bucket, is SSE-S3 because S3 log delivery cannot write to SSE-KMS
buckets); every bucket and topic denies requests without TLS.

What other modules already prove is not repeated here: the target role's trust (orchestrator step roles,
``sts:ExternalId``, ``aws:PrincipalOrgID``) in test_infra_target_account.py; cdk-nag (both packs, no
finding, every acknowledgment a known rule with a reason) in test_infra_compliance.py.
Each checker is first shown to fail on a small bad template, so the clean result on the real ones means
something.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

# Verbs of actions that change something (the part of the action name after "service:").
MUTATING_VERBS = re.compile(
    r"^(Create|Update|Delete|Put|Run|Start|Stop|Pass|Associate|Disassociate|Attach|Detach|Tag|Untag|"
    r"Modify|Terminate|Publish|Send|Invoke|BatchWrite|Set|Restore|Register|Deregister|Enable|Disable|"
    r"Rotate|Reboot|Cancel|Schedule|Revoke|Authorize|Replace|Reset|Import|Copy|Upload|Add|Remove)"
)
# Mutating actions AWS supports no resource-level permission for (the Service Authorization Reference
# lists no resource type for them): "*" is the only possible resource.
UNSCOPABLE_ACTIONS: dict[str, str] = {
    **dict.fromkeys(
        (
            "logs:CreateLogDelivery",
            "logs:UpdateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:PutResourcePolicy",
        ),
        "Step Functions' vended log delivery to CloudWatch Logs: no resource type exists for these actions",
    ),
    **dict.fromkeys(
        ("xray:PutTraceSegments", "xray:PutTelemetryRecords"),
        "X-Ray active tracing: no resource type exists for these actions",
    ),
}
# Where a document's "*" resource means the resource the policy is attached to, not everything.
SELF_SCOPED_DOCUMENTS = frozenset({"KeyPolicy", "AssumeRolePolicyDocument"})
ENCRYPTED_TYPES = (
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::SNS::Topic",
    "AWS::Logs::LogGroup",
    "AWS::StepFunctions::StateMachine",
)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _documents(template: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(logical id, document kind, statement) for every statement of every policy document."""
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        for kind in ("PolicyDocument", "AssumeRolePolicyDocument", "KeyPolicy"):
            if isinstance(properties.get(kind), dict):
                for statement in _as_list(properties[kind].get("Statement", [])):
                    yield logical_id, kind, statement
        for inline in properties.get("Policies", []):
            for statement in _as_list(inline["PolicyDocument"].get("Statement", [])):
                yield logical_id, "PolicyDocument", statement


def is_mutating(action: str) -> bool:
    _, _, name = action.partition(":")
    return bool(MUTATING_VERBS.match(name))


def policy_violations(template: dict[str, Any]) -> list[str]:
    violations: list[str] = []
    for logical_id, kind, statement in _documents(template):
        where = f"{logical_id} ({kind}, Sid {statement.get('Sid', '-')})"
        for inverted in ("NotAction", "NotResource", "NotPrincipal"):
            if inverted in statement:
                violations.append(f"{where}: uses {inverted}")
        if statement.get("Effect") != "Allow":
            continue  # a Deny only takes away
        actions = [a for a in _as_list(statement.get("Action", [])) if isinstance(a, str)]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                violations.append(f"{where}: wildcard action {action}")
        principal = statement.get("Principal")
        principals = (
            _as_list(principal.get("AWS", [])) if isinstance(principal, dict) else _as_list(principal)
        )
        if "*" in principals and "Condition" not in statement:
            violations.append(f"{where}: any principal, without a condition")
        if kind in SELF_SCOPED_DOCUMENTS:
            continue
        resources = _as_list(statement.get("Resource", []))
        if "*" not in resources or "Condition" in statement:
            continue
        for action in actions:
            if is_mutating(action) and action not in UNSCOPABLE_ACTIONS:
                violations.append(f"{where}: mutating {action} on '*' without a condition")
    return violations


def _key_id(reference: Any) -> str | None:
    """The logical id of a KMS key a property refers to (Ref or Fn::GetAtt ... Arn)."""
    if isinstance(reference, dict):
        if "Ref" in reference:
            return str(reference["Ref"])
        if "Fn::GetAtt" in reference:
            return str(reference["Fn::GetAtt"][0])
    return None


def _key_reference(resource_type: str, properties: dict[str, Any]) -> Any:
    if resource_type == "AWS::DynamoDB::Table":
        sse = properties.get("SSESpecification") or {}
        return sse.get("KMSMasterKeyId") if sse.get("SSEEnabled") and sse.get("SSEType") == "KMS" else None
    if resource_type == "AWS::S3::Bucket":
        rules = (properties.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration") or []
        defaults = [rule.get("ServerSideEncryptionByDefault") or {} for rule in rules]
        kms = [d for d in defaults if d.get("SSEAlgorithm") == "aws:kms"]
        return kms[0].get("KMSMasterKeyID") if kms else None
    if resource_type == "AWS::SNS::Topic":
        return properties.get("KmsMasterKeyId")
    if resource_type == "AWS::Logs::LogGroup":
        return properties.get("KmsKeyId")
    configuration = properties.get("EncryptionConfiguration") or {}  # AWS::StepFunctions::StateMachine
    return configuration.get("KmsKeyId") if configuration.get("Type") == "CUSTOMER_MANAGED_KMS_KEY" else None


def _server_access_log_targets(resources: dict[str, Any]) -> set[str]:
    targets = set()
    for resource in resources.values():
        if resource["Type"] == "AWS::S3::Bucket":
            logging = resource.get("Properties", {}).get("LoggingConfiguration") or {}
            if target := _key_id(logging.get("DestinationBucketName")):
                targets.add(target)
    return targets


def _denies_plain_http(resources: dict[str, Any], policy_type: str, target_key: str, target: str) -> bool:
    for resource in resources.values():
        if resource["Type"] != policy_type:
            continue
        properties = resource.get("Properties", {})
        if target not in {_key_id(t) for t in _as_list(properties.get(target_key))}:
            continue
        for statement in _as_list(properties["PolicyDocument"].get("Statement", [])):
            if statement.get("Effect") == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                return True
    return False


def encryption_violations(template: dict[str, Any]) -> list[str]:
    resources: dict[str, Any] = template.get("Resources", {})
    log_targets = _server_access_log_targets(resources)
    violations: list[str] = []
    for logical_id, resource in resources.items():
        resource_type, properties = resource["Type"], resource.get("Properties", {})
        if resource_type == "AWS::S3::Bucket" and not _denies_plain_http(
            resources, "AWS::S3::BucketPolicy", "Bucket", logical_id
        ):
            violations.append(f"{logical_id}: bucket policy does not deny requests without TLS")
        if resource_type == "AWS::SNS::Topic" and not _denies_plain_http(
            resources, "AWS::SNS::TopicPolicy", "Topics", logical_id
        ):
            violations.append(f"{logical_id}: topic policy does not deny requests without TLS")
        if resource_type not in ENCRYPTED_TYPES:
            continue
        key_id = _key_id(_key_reference(resource_type, properties))
        if key_id is None:
            if resource_type == "AWS::S3::Bucket" and logical_id in log_targets:
                continue  # S3 server access log delivery cannot write to SSE-KMS buckets (SSE-S3 instead)
            violations.append(f"{logical_id} ({resource_type}): not encrypted with a customer-managed key")
            continue
        key = resources.get(key_id) or {}
        if key.get("Type") != "AWS::KMS::Key":
            violations.append(f"{logical_id} ({resource_type}): key {key_id} is not a KMS key of this stack")
        elif key.get("Properties", {}).get("EnableKeyRotation") is not True:
            violations.append(f"{logical_id} ({resource_type}): key {key_id} has rotation off")
    return violations


# --- the checkers fail on what they must catch ----------------------------------------------------------

ROTATED_KEY = {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True, "KeyPolicy": {}}}


def role_with(statement: dict[str, Any]) -> dict[str, Any]:
    return {
        "Resources": {
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"PolicyDocument": {"Statement": [{"Effect": "Allow", **statement}]}},
            }
        }
    }


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Action": "*", "Resource": "arn:aws:s3:::b"}, "wildcard action *"),
        (
            {"Action": ["eks:Describe*", "eks:*"], "Resource": "arn:aws:eks:*:1:cluster/x"},
            "wildcard action eks:*",
        ),
        ({"Action": "eks:UpdateClusterVersion", "Resource": "*"}, "mutating eks:UpdateClusterVersion on '*'"),
        ({"Action": "ec2:RunInstances", "Resource": ["*"]}, "mutating ec2:RunInstances on '*'"),
        ({"Action": "iam:PassRole", "Resource": "*"}, "mutating iam:PassRole on '*'"),
        ({"Action": "dynamodb:PutItem", "Resource": "*"}, "mutating dynamodb:PutItem on '*'"),
        ({"Action": "s3:PutObject", "Resource": "*"}, "mutating s3:PutObject on '*'"),
        ({"Action": "states:StartExecution", "Resource": "*"}, "mutating states:StartExecution on '*'"),
        (
            {"Action": "ec2:CreateLaunchTemplate*", "Resource": "*"},
            "mutating ec2:CreateLaunchTemplate* on '*'",
        ),
        ({"NotAction": "iam:*", "Resource": "arn:aws:s3:::b"}, "uses NotAction"),
        ({"Action": "s3:GetObject", "NotResource": "arn:aws:s3:::b"}, "uses NotResource"),
        (
            {"Action": "sts:AssumeRole", "Principal": {"AWS": "*"}, "Resource": "arn:aws:iam::1:role/r"},
            "any principal",
        ),
    ],
)
def test_policy_checker_reports_each_kind_of_overreach(statement, expected):
    # Given a template with one offending statement, when checked, then the violation is named
    violations = policy_violations(role_with(statement))
    assert len(violations) == 1 and expected in violations[0], violations


@pytest.mark.parametrize(
    "statement",
    [
        {"Action": "eks:UpdateClusterVersion", "Resource": "arn:aws:eks:eu-west-1:1:cluster/*"},
        {
            "Action": "iam:PassRole",
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:PassedToService": "eks"}},
        },
        {"Action": ["eks:DescribeAddonVersions", "ec2:DescribeSubnets"], "Resource": "*"},
        {"Action": ["xray:PutTraceSegments", "logs:CreateLogDelivery"], "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
    ],
)
def test_policy_checker_accepts_scoped_conditioned_read_only_unscopable_and_deny(statement):
    assert policy_violations(role_with(statement)) == []


def test_policy_checker_reads_key_trust_and_inline_policies_too():
    # Given "*" as a key policy's resource (the key itself) and an inline role policy on "*"
    template = {
        "Resources": {
            "Key": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "KeyPolicy": {
                        "Statement": [
                            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}
                        ]
                    }
                },
            },
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {"Statement": []},
                    "Policies": [
                        {
                            "PolicyDocument": {
                                "Statement": [
                                    {"Effect": "Allow", "Action": "eks:DeleteCluster", "Resource": "*"}
                                ]
                            }
                        }
                    ],
                },
            },
        }
    }
    violations = policy_violations(template)
    assert any("Key (KeyPolicy" in v and "wildcard action kms:*" in v for v in violations)
    assert any("Key (KeyPolicy" in v and "any principal" in v for v in violations)
    assert any("Role (PolicyDocument" in v and "eks:DeleteCluster" in v for v in violations)
    assert not any("Key (KeyPolicy" in v and "on '*'" in v for v in violations)  # "*" is the key itself


def test_encryption_checker_reports_aws_owned_keys_rotation_off_and_plain_http():
    template = {
        "Resources": {
            "Rotated": ROTATED_KEY,
            "Unrotated": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {}}},
            "Table": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {"SSESpecification": {"SSEEnabled": True}},  # AWS-owned key
            },
            "Logs": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"KmsKeyId": {"Fn::GetAtt": ["Unrotated", "Arn"]}},
            },
            "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {}},
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {
                                "ServerSideEncryptionByDefault": {
                                    "SSEAlgorithm": "aws:kms",
                                    "KMSMasterKeyID": {"Fn::GetAtt": ["Rotated", "Arn"]},
                                }
                            }
                        ]
                    }
                },
            },
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"KmsMasterKeyId": {"Ref": "Rotated"}}},
        }
    }
    violations = encryption_violations(template)
    assert sorted(violations) == [
        "Bucket: bucket policy does not deny requests without TLS",
        "Logs (AWS::Logs::LogGroup): key Unrotated has rotation off",
        "Machine (AWS::StepFunctions::StateMachine): not encrypted with a customer-managed key",
        "Table (AWS::DynamoDB::Table): not encrypted with a customer-managed key",
        "Topic: topic policy does not deny requests without TLS",
    ]


# --- the real templates ---------------------------------------------------------------------------------


def test_no_template_grants_wildcards_or_unscoped_mutations(synthesized):
    for name, template in synthesized.all_templates():
        assert policy_violations(template) == [], name


def test_every_data_store_log_group_and_state_machine_uses_a_rotated_customer_key_and_tls(synthesized):
    for name, template in synthesized.all_templates():
        assert encryption_violations(template) == [], name


def test_the_encryption_check_sees_every_kind_it_is_about(synthesized):
    # Guard against a vacuous pass: the orchestrator has each kind of resource the check reads
    types = {r["Type"] for r in synthesized.orchestrator.to_json()["Resources"].values()}
    assert set(ENCRYPTED_TYPES) <= types


def test_unscopable_exceptions_are_exactly_what_the_templates_use(synthesized):
    # An exception nobody needs any more is a hole waiting to be used: the list stays what is used
    used = {
        action
        for _, template in synthesized.all_templates()
        for _, kind, statement in _documents(template)
        if kind == "PolicyDocument"
        and statement.get("Effect") == "Allow"
        and "*" in _as_list(statement["Resource"])
        for action in _as_list(statement["Action"])
        if is_mutating(action)
    }
    assert used == set(UNSCOPABLE_ACTIONS)
