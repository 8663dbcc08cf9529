"""The orchestrator stack: state machines, step Lambdas, their roles, and the run data stores."""

from __future__ import annotations

import re
from typing import Any

import pytest
from upgrader.catalog import STEPS_BY_NAME
from upgrader.settings import Settings

from infra import constants
from infra.asl import load_definitions
from infra.catalog import STEPS
from infra.constructs.fleet_permissions import (
    HISTORY_READ_STEPS,
    REGISTRY_READ_STEPS,
    RUN_TABLE_ACTIONS,
    RUN_TABLE_STEPS,
)
from infra.constructs.run_data import IDEMPOTENCY_ACTIONS

DEFINITIONS = load_definitions()


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {lid: res for lid, res in template["Resources"].items() if res["Type"] == resource_type}


def function_by_step(template: dict[str, Any], config: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    functions = resources_of(template, "AWS::Lambda::Function")
    by_name = {res["Properties"]["FunctionName"]: (lid, res) for lid, res in functions.items()}
    return {step.name: by_name[config.step_resource_name(step.name)] for step in STEPS}


def state_machine_for(template: dict[str, Any], definition: Any) -> dict[str, Any]:
    machines = resources_of(template, "AWS::StepFunctions::StateMachine")
    [machine] = [res for res in machines.values() if res["Properties"]["DefinitionString"] == definition.text]
    return machine


def role_statements(template: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    statements = []
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        roles = [ref.get("Ref") for ref in policy["Properties"].get("Roles", [])]
        if role_logical_id in roles:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    role = template["Resources"][role_logical_id]["Properties"]
    for inline in role.get("Policies", []):
        statements += inline["PolicyDocument"]["Statement"]
    return statements


def test_each_asl_file_becomes_a_standard_state_machine_logging_all_without_data_and_traced(
    synthesized, fleet_config
):
    # Given the synthesized orchestrator template
    template = synthesized.orchestrator.to_json()
    machines = resources_of(template, "AWS::StepFunctions::StateMachine")
    # Then there is one state machine per statemachines/*.asl.json file
    assert len(machines) == len(DEFINITIONS) >= 1
    for definition in DEFINITIONS:
        props = state_machine_for(template, definition)["Properties"]
        # And each is STANDARD, logs level ALL without execution data, and traces with X-Ray
        assert props["StateMachineType"] == "STANDARD"
        assert (
            props["StateMachineName"] == f"{fleet_config.resource_prefix}-{definition.stem.replace('_', '-')}"
        )
        logging = props["LoggingConfiguration"]
        assert logging["Level"] == "ALL"
        assert logging["IncludeExecutionData"] is False
        assert props["TracingConfiguration"] == {"Enabled": True}
        # And logs to its own log group with the configured retention
        [destination] = logging["Destinations"]
        log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
        log_group = template["Resources"][log_group_id]["Properties"]
        assert log_group["RetentionInDays"] == fleet_config.log_retention_days
        assert log_group["LogGroupName"].startswith("/aws/vendedlogs/states/")


def test_definitions_are_inlined_and_substitutions_resolve_every_variable_to_a_catalog_function(
    synthesized, fleet_config
):
    template = synthesized.orchestrator.to_json()
    functions = function_by_step(template, fleet_config)
    referenced: set[str] = set()
    for definition in DEFINITIONS:
        # Given the state machine of one ASL file
        props = state_machine_for(template, definition)["Properties"]
        # Then its definition is the file's text inline (no S3 asset cfn-lint could not read)
        assert isinstance(props["DefinitionString"], str)
        assert "DefinitionS3Location" not in props
        # When CloudFormation applies the substitutions
        substitutions = props["DefinitionSubstitutions"]
        assert set(substitutions) == definition.substitution_names
        resolved = props["DefinitionString"]
        for variable, value in substitutions.items():
            logical_id, attribute = value["Fn::GetAtt"]
            assert attribute == "Arn"
            resolved = resolved.replace("${" + variable + "}", f"<{logical_id}.Arn>")
        # Then no substitution variable is left, and each names the ARN of its catalog step's function
        assert "${" not in resolved
        for step in definition.steps:
            assert substitutions[step.arn_variable] == {"Fn::GetAtt": [functions[step.name][0], "Arn"]}
            referenced.add(step.name)
    # And together the workflows use every catalog step (a step no workflow calls is dead code)
    assert referenced == {step.name for step in STEPS}


def test_state_machine_role_may_invoke_exactly_the_functions_its_definition_references(
    synthesized, fleet_config
):
    template = synthesized.orchestrator.to_json()
    functions = function_by_step(template, fleet_config)
    for definition in DEFINITIONS:
        props = state_machine_for(template, definition)["Properties"]
        role_id = props["RoleArn"]["Fn::GetAtt"][0]
        invoke_statements = [
            statement
            for statement in role_statements(template, role_id)
            if "lambda:InvokeFunction" in statement["Action"]
        ]
        # Then there is one explicit grant per referenced function, on its unqualified ARN only
        granted = [statement["Resource"] for statement in invoke_statements]
        expected = [{"Fn::GetAtt": [functions[step.name][0], "Arn"]} for step in definition.steps]
        assert sorted(map(str, granted)) == sorted(map(str, expected))
        assert all(statement["Action"] == "lambda:InvokeFunction" for statement in invoke_statements)


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_each_step_is_an_arm64_python313_traced_function_with_its_own_log_group(
    synthesized, fleet_config, step
):
    template = synthesized.orchestrator.to_json()
    logical_id, function = function_by_step(template, fleet_config)[step.name]
    props = function["Properties"]
    # Then the function runs the catalog handler on Python 3.13 / arm64, traced, with explicit sizing
    assert props["Handler"] == step.handler
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["MemorySize"] == constants.LAMBDA_MEMORY_MB
    assert props["Timeout"] == constants.LAMBDA_TIMEOUT.to_seconds()
    assert "DeadLetterConfig" not in props  # synchronous design, see the acknowledgment
    # And it has the dependency layer
    [layer] = props["Layers"]
    assert template["Resources"][layer["Ref"]]["Type"] == "AWS::Lambda::LayerVersion"
    # And it logs to a log group of its own, with the configured retention
    log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    log_group = template["Resources"][log_group_id]["Properties"]
    assert log_group["RetentionInDays"] == fleet_config.log_retention_days
    assert log_group["LogGroupName"] == f"/aws/lambda/{fleet_config.step_resource_name(step.name)}"
    others = [
        res["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        for lid, res in resources_of(template, "AWS::Lambda::Function").items()
        if lid != logical_id
    ]
    assert log_group_id not in others


def test_step_environment_is_what_the_settings_model_reads(synthesized, fleet_config):
    template = synthesized.orchestrator.to_json()
    settings_variables = {name.upper() for name in Settings.model_fields}
    for _, function in function_by_step(template, fleet_config).values():
        environment = function["Properties"]["Environment"]["Variables"]
        # Then every Settings field has its variable, and the real model accepts the values (a
        # CloudFormation reference, the bucket name, is a string once deployed)
        assert settings_variables <= set(environment)
        settings = Settings.load(
            {
                key: value if isinstance(value, str) else "resolved-at-deploy-time"
                for key, value in ((key, environment[key]) for key in settings_variables)
            }
        )
        assert settings.target_role_name == fleet_config.target_role_name
        assert settings.external_id == fleet_config.external_id
        # And the Powertools variables and the data store names are there for later steps
        assert environment["POWERTOOLS_SERVICE_NAME"] == "eks-fleet-upgrader"
        assert environment["POWERTOOLS_METRICS_NAMESPACE"] == "EksFleetUpgrader"
        assert environment["LOG_LEVEL"] == "INFO"
        assert template["Resources"][environment["RUN_TABLE_NAME"]["Ref"]]["Type"] == "AWS::DynamoDB::Table"
        assert template["Resources"][environment["REPORT_BUCKET_NAME"]["Ref"]]["Type"] == "AWS::S3::Bucket"
        assert (
            template["Resources"][environment["NOTIFICATION_TOPIC_ARN"]["Ref"]]["Type"] == "AWS::SNS::Topic"
        )


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_step_role_is_named_for_the_trust_and_assumes_only_the_configured_target_roles(
    synthesized, fleet_config, cfn, step
):
    template = synthesized.orchestrator.to_json()
    _, function = function_by_step(template, fleet_config)[step.name]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    # Then the role has the deterministic name the target-account role trusts, and no managed policy
    assert role["RoleName"] == f"{fleet_config.resource_prefix}-{step.name}"
    assert "ManagedPolicyArns" not in role
    statements = role_statements(template, role_id)
    sts = [
        statement
        for statement in statements
        if any(a.startswith("sts:") for a in cfn.as_list(statement["Action"]))
    ]
    if not step.assumes_target_role:
        # And a step that stays in the central account cannot assume anything
        assert sts == []
        return
    # And a step that assumes the target role may do exactly that, in each configured account
    [statement] = sts
    assert statement["Action"] == "sts:AssumeRole"
    assert sorted(cfn.render(cfn.as_list(statement["Resource"]))) == sorted(
        f"arn:aws:iam::{account}:role/{fleet_config.target_role_name}"
        for account in fleet_config.target_account_ids
    )


def test_only_report_writing_steps_may_write_reports_and_nothing_else_touches_the_data_stores(
    synthesized, fleet_config, cfn
):
    template = synthesized.orchestrator.to_json()
    [bucket_id] = [
        lid for lid, r in resources_of(template, "AWS::S3::Bucket").items() if "ReportsBucket" in lid
    ]
    [key_id] = resources_of(template, "AWS::KMS::Key")
    writers = {step.name for step in STEPS if step.writes_reports}
    # the readiness report, the upgrade report (VerifyUpgrade) and the fleet report
    assert writers <= {"ReadinessCheck", "VerifyUpgrade", "WriteFleetReport"}
    assert {"ReadinessCheck", "VerifyUpgrade"} <= writers
    for name, (_, function) in function_by_step(template, fleet_config).items():
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        statements = role_statements(template, role_id)
        actions = {a for s in statements for a in cfn.as_list(s["Action"])}
        # Then every role holds logging, tracing and (maybe) assume-role actions
        others = {a for a in actions if a.split(":")[0] not in {"logs", "xray", "sts"}}
        expected = set()
        if name in RUN_TABLE_STEPS:  # the fleet's locks, wave records and approvals: item access only
            expected |= set(RUN_TABLE_ACTIONS) | {"kms:Decrypt", "kms:GenerateDataKey"}
        if STEPS_BY_NAME[name].holds_cluster_lock:  # the fleet lease re-check: one GetItem
            expected |= {"dynamodb:GetItem", "kms:Decrypt"}
        if name in REGISTRY_READ_STEPS:  # a selector resolved against the fleet registry
            expected |= {"dynamodb:Scan", "kms:Decrypt"}
        if name in HISTORY_READ_STEPS:  # the fleet report's timeline: the cluster executions' histories
            expected |= {"states:GetExecutionHistory", "kms:Decrypt"}
        if STEPS_BY_NAME[name].looping:  # its own execution's history size (execution_history.py)
            expected |= {"states:GetExecutionHistory", "kms:Decrypt"}
            [history] = [s for s in statements if "states:GetExecutionHistory" in cfn.as_list(s["Action"])]
            assert cfn.render(history["Resource"]).endswith(
                f":execution:{fleet_config.resource_prefix}-cluster-upgrade:*"
            ), name
        if name in writers:
            expected |= {"s3:PutObject", "kms:GenerateDataKey"}
        if STEPS_BY_NAME[name].idempotent:  # its own idempotency records (test_infra_idempotency.py)
            expected |= set(IDEMPOTENCY_ACTIONS) | {"kms:Decrypt", "kms:GenerateDataKey"}
        assert others == expected, name
        if name not in writers:
            continue
        # And a report writer exactly s3:PutObject under reports/ of the reports bucket...
        [put] = [s for s in statements if "s3:PutObject" in cfn.as_list(s["Action"])]
        assert put["Action"] == "s3:PutObject"
        assert put["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/reports/*"]]}
        # ...and the data key SSE-KMS needs for it, only through S3 and for that bucket
        [kms] = [
            s
            for s in statements
            if "kms:GenerateDataKey" in cfn.as_list(s["Action"])
            and "kms:EncryptionContext:aws:s3:arn" in s.get("Condition", {}).get("StringEquals", {})
        ]
        assert kms["Action"] == "kms:GenerateDataKey"
        assert kms["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
        conditions = kms["Condition"]["StringEquals"]
        assert cfn.render(conditions["kms:ViaService"]) == "s3.${AWS::Region}.amazonaws.com"
        assert conditions["kms:EncryptionContext:aws:s3:arn"] == {"Fn::GetAtt": [bucket_id, "Arn"]}


def test_run_table_uses_string_keys_on_demand_pitr_customer_key_and_deletion_protection(synthesized):
    template = synthesized.orchestrator.to_json()
    [(_, table)] = resources_of(template, "AWS::DynamoDB::Table").items()
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {d["AttributeName"]: d["AttributeType"] for d in props["AttributeDefinitions"]} == {
        "pk": "S",
        "sk": "S",
    }
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["SSESpecification"]["SSEType"] == "KMS"
    key_id = props["SSESpecification"]["KMSMasterKeyId"]["Fn::GetAtt"][0]
    assert template["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def tls_only(template: dict[str, Any], policy_type: str, target_key: str, target_id: str, cfn: Any) -> bool:
    for policy in resources_of(template, policy_type).values():
        props = policy["Properties"]
        if target_id not in str(props[target_key]):
            continue
        for statement in cfn.as_list(props["PolicyDocument"]["Statement"]):
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                return True
    return False


def test_reports_bucket_is_kms_encrypted_private_versioned_tls_only_and_access_logged(synthesized, cfn):
    template = synthesized.orchestrator.to_json()
    buckets = resources_of(template, "AWS::S3::Bucket")
    [(reports_id, reports)] = [
        (lid, b) for lid, b in buckets.items() if "LoggingConfiguration" in b["Properties"]
    ]
    props = reports["Properties"]
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert "KMSMasterKeyID" in rule["ServerSideEncryptionByDefault"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert tls_only(template, "AWS::S3::BucketPolicy", "Bucket", reports_id, cfn)
    # And its access logs go to a separate bucket that is private and TLS-only as well
    logs_id = props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    assert logs_id != reports_id
    assert buckets[logs_id]["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert tls_only(template, "AWS::S3::BucketPolicy", "Bucket", logs_id, cfn)


def test_notification_topic_is_kms_encrypted_and_tls_only(synthesized, cfn):
    template = synthesized.orchestrator.to_json()
    [(topic_id, topic)] = resources_of(template, "AWS::SNS::Topic").items()
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert template["Resources"][key_id]["Type"] == "AWS::KMS::Key"
    assert tls_only(template, "AWS::SNS::TopicPolicy", "Topics", topic_id, cfn)


def test_outputs_name_each_state_machine_and_each_step_role(synthesized):
    outputs = synthesized.orchestrator.to_json()["Outputs"]
    for definition in DEFINITIONS:
        assert outputs[f"{definition.construct_id}StateMachineArn"]["Value"]["Ref"].startswith(
            definition.construct_id
        )
    for step in STEPS:
        role_ref = outputs[f"{step.name}RoleArn"]["Value"]["Fn::GetAtt"]
        assert re.match(rf"^{step.name}Role[0-9A-F]{{8}}$", role_ref[0]) and role_ref[1] == "Arn"


def test_stack_exposes_the_data_stores_for_later_steps(synthesized):
    orchestrator = synthesized.stacks.orchestrator
    assert orchestrator.run_table.table_name
    assert orchestrator.report_bucket.bucket_name
    assert orchestrator.notification_topic.topic_arn
