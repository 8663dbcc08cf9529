"""cdk-nag (3.x) in every synth, and the one way this app acknowledges a finding.

Packs run as CDK validation plugins: any unacknowledged finding fails ``cdk synth`` and
``Template.from_stack``. An acknowledgment names one rule (or one finding of a multi-finding rule such as
``AwsSolutions-IAM5[Resource::*]``) on the narrowest construct it concerns, with the specific reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, App, Aspects, Stack, Stage, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks, WriteNagSuppressionsToCloudFormationAspect
from constructs import IConstruct


def add_compliance_checks(app: App) -> None:
    # write_suppressions_to_cloud_formation: each acknowledgment (rule + reason) is also written into the
    # resource's template Metadata, so a reviewer of the template (e.g. the StackSet) sees them.
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True),
        ServerlessChecks(app, verbose=True, write_suppressions_to_cloud_formation=True),
    )


def write_acknowledgments_in_nested_stage(stage: Stage) -> None:
    """The packs check nested stages too, but the metadata aspect registered on the app does not reach
    into them: register it on the stage (its templates, e.g. the StackSet one, then carry the reasons)."""
    Aspects.of(stage).add(WriteNagSuppressionsToCloudFormationAspect())


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def wildcard_resource_findings(scope: IConstruct, resources: Iterable[Any]) -> list[str]:
    """The ``AwsSolutions-IAM5[Resource::...]`` finding ids cdk-nag reports for these resources.

    cdk-nag names one finding per wildcard resource after the flattened CloudFormation value
    (``arn:<AWS::Partition>:eks:...``); this renders the same name from the value the policy was given,
    so an acknowledgment never covers a resource it was not written for.
    """
    stack = Stack.of(scope)
    findings = []
    for resource in resources:
        flat = _flatten(stack.resolve(resource))
        if "*" in flat:
            findings.append(f"AwsSolutions-IAM5[Resource::{flat}]")
    return findings


def _flatten(node: Any) -> str:
    """Python twin of cdk-nag's ``flattenCfnReference`` (utils/flatten-cfn-reference.ts)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return delimiter.join(_flatten(item) for item in items)
        if "Fn::Sub" in node:
            return _flatten(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if "Fn::ImportValue" in node:
            return _flatten(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
