"""The target-account role: who may assume it, what it may do, and its StackSet-ready template."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.catalog import TARGET_MUTATING_ACTIONS, TARGET_READ_ACTIONS, TARGET_ROLE_STEPS
from infra.paths import REPO_ROOT
from infra.target_permissions import UnclassifiedActionError, scoped_mutations, scoped_reads


def the_role(template: dict[str, Any]) -> dict[str, Any]:
    [role] = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    return role["Properties"]


def permission_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    [policy] = the_role(template)["Policies"]
    return policy["PolicyDocument"]["Statement"]


def test_trust_allows_exactly_the_orchestrator_step_roles_with_the_external_id(
    synthesized, fleet_config, cfn
):
    for name, template in [("stackset", synthesized.stackset.to_json())] + [
        (account, t.to_json()) for account, t in synthesized.targets.items()
    ]:
        # Given the target role's trust policy
        [statement] = the_role(template)["AssumeRolePolicyDocument"]["Statement"]
        # Then only sts:AssumeRole is allowed (no session tags, no other action)
        assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole", name
        # And the principals are exactly the roles of the steps that assume the target role
        principals = sorted(cfn.render(cfn.as_list(statement["Principal"]["AWS"])))
        assert principals == sorted(
            f"arn:aws:iam::{fleet_config.orchestrator_account_id}:role/{fleet_config.resource_prefix}-{step.name}"
            for step in TARGET_ROLE_STEPS
        ), name
        assert not any(p.endswith(":root") for p in principals)
        # And the configured ExternalId is required; without orgId there is no organization condition
        assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": fleet_config.external_id}}, name


def test_trust_also_requires_the_organization_when_org_id_is_configured(
    org_target_template, example_org_id, fleet_config
):
    # Given the target stack synthesized with orgId set
    [statement] = the_role(org_target_template.to_json())["AssumeRolePolicyDocument"]["Statement"]
    # Then the principals must also belong to that organization
    assert statement["Condition"] == {
        "StringEquals": {"sts:ExternalId": fleet_config.external_id, "aws:PrincipalOrgID": example_org_id}
    }


def test_role_grants_every_catalog_action(synthesized, cfn):
    statements = permission_statements(synthesized.stackset.to_json())
    granted = {action for statement in statements for action in cfn.as_list(statement["Action"])}
    assert set(TARGET_READ_ACTIONS) | set(TARGET_MUTATING_ACTIONS) <= granted


def test_mutating_actions_are_scoped_to_eks_arns_of_this_account_in_the_configured_regions(
    synthesized, fleet_config, cfn
):
    statements = permission_statements(synthesized.stackset.to_json())
    mutating = [s for s in statements if set(cfn.as_list(s["Action"])) & set(TARGET_MUTATING_ACTIONS)]
    assert mutating
    regions_seen = set()
    for statement in mutating:
        # Then no mutating statement mixes in other actions or reaches beyond ARNs of this account (EKS;
        # EC2 for the node group migration's launch templates and the instances EKS launches with them)
        assert set(cfn.as_list(statement["Action"])) <= set(TARGET_MUTATING_ACTIONS)
        for arn in cfn.render(cfn.as_list(statement["Resource"])):
            match = re.fullmatch(
                r"arn:aws:eks:([a-z0-9-]+):\$\{AWS::AccountId\}:(cluster|nodegroup|addon)/.+", arn
            ) or re.fullmatch(r"arn:aws:ec2:([a-z0-9-]+):(\$\{AWS::AccountId\})?:[a-z-]+/\*", arn)
            assert match, arn
            assert ":image/" in arn or "${AWS::AccountId}" in arn, arn  # only public AMIs name no account
            regions_seen.add(match.group(1))
    assert regions_seen == set(fleet_config.regions)


def test_launch_template_and_instance_permissions_are_narrowed_by_conditions(synthesized, cfn):
    statements = permission_statements(synthesized.stackset.to_json())

    def statement_of(action: str) -> dict:
        [statement] = [s for s in statements if action in cfn.as_list(s["Action"])]
        return statement

    # Launch templates are created only tagged as ours, and tagged only at creation
    assert statement_of("ec2:CreateLaunchTemplate")["Condition"] == {
        "StringEquals": {"aws:RequestTag/eks-fleet-upgrader/managed-by": "eks-fleet-upgrader"}
    }
    assert statement_of("ec2:CreateTags")["Condition"] == {
        "StringEquals": {"ec2:CreateAction": "CreateLaunchTemplate"}
    }
    # Instances are launched only by EKS on the role's behalf (CreateNodegroup's launch template check)
    run = statement_of("ec2:RunInstances")
    assert cfn.as_list(run["Action"]) == ["ec2:RunInstances"]
    assert run["Condition"] == {"ForAnyValue:StringEquals": {"aws:CalledVia": ["eks.amazonaws.com"]}}
    # And the AMI parameters are the public EKS ones only
    parameters = cfn.render(cfn.as_list(statement_of("ssm:GetParameter")["Resource"]))
    assert parameters and all(
        re.fullmatch(r"arn:aws:ssm:[a-z0-9-]+::parameter/aws/service/eks/optimized-ami/\*", arn)
        for arn in parameters
    )


def test_pass_role_reaches_only_node_roles_and_only_eks(synthesized, fleet_config, cfn):
    statements = permission_statements(synthesized.stackset.to_json())
    [pass_role] = [s for s in statements if "iam:PassRole" in cfn.as_list(s["Action"])]
    assert pass_role["Action"] == "iam:PassRole"
    assert cfn.render(pass_role["Resource"]) == (
        f"arn:aws:iam::${{AWS::AccountId}}:role/{fleet_config.node_role_name_pattern}"
    )
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "eks.amazonaws.com"}}


def test_stackset_template_is_environment_agnostic_and_needs_no_cdk_bootstrap(synthesized, fleet_config):
    template = synthesized.stackset.to_json()
    text = json.dumps(template)
    # Then no fleet account id appears (only the orchestrator's, in the trusted principals)
    assert set(re.findall(r"\b\d{12}\b", text)) == {fleet_config.orchestrator_account_id}
    # And nothing refers to CDK bootstrap resources (StackSet accounts are not bootstrapped)
    assert "BootstrapVersion" not in template.get("Parameters", {})
    assert "Rules" not in template
    assert "CDKMetadata" not in template["Resources"]
    assert [r["Type"] for r in template["Resources"].values()] == ["AWS::IAM::Role"]


def test_deployment_guide_names_the_stackset_template_the_synth_writes(synthesized):
    [stackset_file] = [p for p in synthesized.template_files if p.parent.name == "assembly-StackSet"]
    guide = (REPO_ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    assert f"cdk.out/assembly-StackSet/{stackset_file.name}" in guide


def test_per_account_stacks_deploy_the_same_role_as_the_stackset(synthesized, fleet_config):
    # Given one stack per configured target account
    assert set(synthesized.targets) == set(fleet_config.target_account_ids)
    for account, stack in synthesized.stacks.targets.items():
        assert stack.account == account
    # Then each deploys exactly the StackSet's role (same properties, no account-specific value)
    expected = the_role(synthesized.stackset.to_json())
    for template in synthesized.targets.values():
        assert the_role(template.to_json()) == expected


def test_per_account_stacks_deploy_after_the_orchestrator_whose_roles_they_trust(synthesized):
    orchestrator = synthesized.stacks.orchestrator
    for stack in synthesized.stacks.targets.values():
        assert orchestrator in stack.dependencies
    # And the StackSet copy stays independent (it is deployed by CloudFormation, not by cdk deploy)
    assert synthesized.stacks.stackset_target.dependencies == []


@pytest.mark.parametrize("grouping", [scoped_reads, scoped_mutations])
def test_an_unclassified_catalog_action_stops_the_synth_instead_of_falling_back_to_star(grouping):
    with pytest.raises(UnclassifiedActionError, match="eks:DeleteCluster"):
        grouping(["eks:DeleteCluster"], ["us-east-1"])


def test_reads_iam_cannot_scope_are_the_only_ones_on_star():
    groups = scoped_reads(["eks:DescribeCluster", "eks:ListClusters"], ["us-east-1"])
    star = [g for g in groups if g.resources == ("*",)]
    assert [g.actions for g in star] == [("eks:ListClusters",)]


def test_readiness_reads_are_scoped_as_iam_allows_and_only_unscopable_ones_use_star(synthesized, cfn):
    statements = permission_statements(synthesized.stackset.to_json())

    def resources_of(action: str) -> list[str]:
        [statement] = [s for s in statements if action in cfn.as_list(s["Action"])]
        return cfn.render(cfn.as_list(statement["Resource"]))

    # Then the cluster-level reads name cluster ARNs of this account, add-on reads add-on ARNs
    for action in ("eks:ListAddons", "eks:ListInsights", "eks:DescribeInsight"):
        resources = resources_of(action)
        assert resources and all(
            re.fullmatch(r"arn:aws:eks:[a-z0-9-]+:\$\{AWS::AccountId\}:cluster/\*", arn) for arn in resources
        ), action
    assert all(arn.endswith(":addon/*/*/*") for arn in resources_of("eks:DescribeAddon"))
    # And "*" is used exactly for the reads IAM cannot scope, nothing else
    [star] = [s for s in statements if s["Resource"] == "*"]
    assert sorted(cfn.as_list(star["Action"])) == [
        "ec2:DescribeImages",
        "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribeSubnets",
        "eks:DescribeAddonVersions",
    ]
    assert star["Effect"] == "Allow" and "Condition" not in star
