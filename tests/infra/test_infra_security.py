"""Least-privilege invariants over every policy document of every synthesized template."""

from __future__ import annotations

from infra.catalog import TARGET_MUTATING_ACTIONS
from infra.target_permissions import EKS_MUTATING_RESOURCES


def test_no_allow_statement_anywhere_has_a_star_or_service_star_action(synthesized, cfn):
    # Given every statement of every IAM policy, role, key policy, bucket and topic policy
    offenders = []
    for name, template in synthesized.all_templates():
        for logical_id, statement in cfn.policy_statements(template):
            # Then no Allow statement grants "*" or "<service>:*" (Deny "s3:*" for TLS-only is fine),
            # and none uses the inverted NotAction / NotResource forms
            assert "NotAction" not in statement and "NotResource" not in statement, (name, logical_id)
            if statement["Effect"] != "Allow":
                continue
            for action in cfn.as_list(statement["Action"]):
                if action == "*" or action.endswith(":*"):
                    offenders.append((name, logical_id, action))
    assert offenders == []


def test_no_mutating_eks_action_is_allowed_on_star(synthesized, cfn):
    mutating = set(TARGET_MUTATING_ACTIONS) | set(EKS_MUTATING_RESOURCES)
    for name, template in synthesized.all_templates():
        for logical_id, statement in cfn.policy_statements(template):
            actions = set(cfn.as_list(statement["Action"]))
            if statement["Effect"] == "Allow" and actions & mutating:
                assert "*" not in cfn.as_list(statement["Resource"]), (name, logical_id, statement)


def test_the_fixture_sees_the_policies_it_checks(synthesized, cfn):
    # Guard against the checks above passing vacuously: they must see the policies that matter.
    seen = {
        (name, statement["Effect"])
        for name, template in synthesized.all_templates()
        for _, statement in cfn.policy_statements(template)
    }
    assert {("orchestrator", "Allow"), ("orchestrator", "Deny"), ("stackset", "Allow")} <= seen
    actions = {
        a
        for _, t in synthesized.all_templates()
        for _, s in cfn.policy_statements(t)
        for a in cfn.as_list(s["Action"])
    }
    assert {"eks:UpdateClusterVersion", "sts:AssumeRole", "lambda:InvokeFunction", "kms:Decrypt"} <= actions
