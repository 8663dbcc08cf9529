"""The idempotency records of the steps that change something (catalog ``idempotent``): each such function's
role may use exactly its own records in the run table (``dynamodb:LeadingKeys`` = ``idempotency#<function
name>``, the partition key Powertools writes), with the table's key through DynamoDB; no other role may; and
the table's TTL attribute is the records' expiry attribute."""

from __future__ import annotations

from typing import Any

import pytest
from upgrader.catalog import STEPS
from upgrader.gateways.idempotency import EXPIRY_ATTRIBUTE, PARTITION_PREFIX, partition_key

from infra.constructs.run_data import IDEMPOTENCY_ACTIONS, IDEMPOTENCY_PARTITION_PREFIX, TTL_ATTRIBUTE


def _resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == resource_type}


def _role_statements(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in _resources(template, "AWS::IAM::Policy").values()
        if role_id in [ref.get("Ref") for ref in policy["Properties"].get("Roles", [])]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _roles_by_step(template: dict[str, Any], fleet_config: Any) -> dict[str, str]:
    functions = {
        r["Properties"]["FunctionName"]: r for r in _resources(template, "AWS::Lambda::Function").values()
    }
    roles = {}
    for step in STEPS:
        function = functions[fleet_config.step_resource_name(step.name)]
        roles[step.name] = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return roles


def test_the_stack_and_the_gateway_agree_on_the_records_key_and_expiry():
    assert IDEMPOTENCY_PARTITION_PREFIX == PARTITION_PREFIX
    assert TTL_ATTRIBUTE == EXPIRY_ATTRIBUTE


def test_the_run_table_expires_items_by_the_records_expiry_attribute(synthesized):
    template = synthesized.orchestrator.to_json()
    [table] = _resources(template, "AWS::DynamoDB::Table").values()
    assert table["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": EXPIRY_ATTRIBUTE,
        "Enabled": True,
    }


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_each_idempotent_step_may_use_exactly_its_own_records_and_no_other_step_any(
    synthesized, fleet_config, step
):
    template = synthesized.orchestrator.to_json()
    [table_id] = _resources(template, "AWS::DynamoDB::Table")
    [key_id] = _resources(template, "AWS::KMS::Key")
    role_id = _roles_by_step(template, fleet_config)[step.name]
    statements = _role_statements(template, role_id)
    scoped = [s for s in statements if "dynamodb:LeadingKeys" in str(s.get("Condition", {}))]
    key_grants = [s for s in statements if s.get("Sid") == "IdempotencyRecordsKey"]
    if not step.idempotent:
        assert scoped == [] and key_grants == [], step.name
        return
    # Then one statement: Get/Put/Update/DeleteItem on the run table, for its own partition key only
    [records] = scoped
    assert records["Effect"] == "Allow"
    assert sorted(records["Action"]) == sorted(IDEMPOTENCY_ACTIONS)
    assert records["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
    function_name = fleet_config.step_resource_name(step.name)
    assert records["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [partition_key(function_name)]}
    }
    # And the table's key, only through DynamoDB
    [key] = key_grants
    assert sorted(key["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert key["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
    via = key["Condition"]["StringEquals"]["kms:ViaService"]
    assert via == {"Fn::Join": ["", ["dynamodb.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    # And every other run table statement of the role is one it has for another reason (locks, lease
    # re-check, registry): none reaches the idempotency records without the condition
    for statement in statements:
        if statement is records or statement.get("Resource") != {"Fn::GetAtt": [table_id, "Arn"]}:
            continue
        assert statement.get("Sid", "").startswith("Fleet"), statement
