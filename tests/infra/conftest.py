"""One synthesis of the whole CDK app per test session, shared by every infra test.

The app is built exactly as app.py builds it (same cdk.json context, same cdk-nag packs) into a temporary
cloud assembly; templates come from ``Template.from_stack``. A second, deliberately small app (only the
target-account stack, with ``orgId`` set) covers the organization variant.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App
from aws_cdk.assertions import Template

from infra.application import FleetUpgraderApp, build_app
from infra.compliance import add_compliance_checks
from infra.config import CONTEXT_KEY, FleetUpgraderConfig, load_config, parse_config
from infra.paths import CDK_JSON
from infra.target_account_stack import TargetAccountStack

CDK_CONTEXT: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
EXAMPLE_ORG_ID = "o-exampleorg12"


@dataclass(frozen=True)
class Synthesized:
    stacks: FleetUpgraderApp
    outdir: Path
    orchestrator: Template
    targets: dict[str, Template]  # per-account stacks, by account id
    stackset: Template
    template_files: tuple[Path, ...]  # every template written to the cloud assembly (nested ones too)

    def all_templates(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "orchestrator", self.orchestrator.to_json()
        for account, template in self.targets.items():
            yield f"target-{account}", template.to_json()
        yield "stackset", self.stackset.to_json()


@pytest.fixture(scope="session")
def fleet_config() -> FleetUpgraderConfig:
    return parse_config(CDK_CONTEXT[CONTEXT_KEY])


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(context=CDK_CONTEXT, outdir=str(outdir))
    stacks = build_app(app, load_config(app))
    assembly = app.synth()  # runs cdk-nag: an unacknowledged finding raises here
    return Synthesized(
        stacks=stacks,
        outdir=outdir,
        orchestrator=Template.from_stack(stacks.orchestrator),
        targets={account: Template.from_stack(stack) for account, stack in stacks.targets.items()},
        stackset=Template.from_stack(stacks.stackset_target),
        template_files=tuple(Path(stack.template_full_path) for stack in assembly.stacks_recursively),
    )


@pytest.fixture(scope="session")
def example_org_id() -> str:
    return EXAMPLE_ORG_ID


@pytest.fixture(scope="session")
def org_target_template(
    tmp_path_factory: pytest.TempPathFactory, fleet_config: FleetUpgraderConfig
) -> Template:
    """The target-account stack alone, with an organization configured (cheap: no Lambda assets)."""
    app = App(context=CDK_CONTEXT, outdir=str(tmp_path_factory.mktemp("cdk.out-org")))
    add_compliance_checks(app)
    stack = TargetAccountStack(app, "OrgTarget", config=replace(fleet_config, org_id=EXAMPLE_ORG_ID))
    return Template.from_stack(stack)  # synthesizes with cdk-nag: the acknowledgments hold here too


# --- helpers shared as fixtures ----------------------------------------------------------------------


def render(value: Any, *, account: str = "${AWS::AccountId}") -> Any:
    """Resolve the intrinsics CDK emits for ARNs (Fn::Join of Ref AWS::Partition/AccountId) to text."""
    if isinstance(value, dict):
        if "Fn::Join" in value:
            delimiter, parts = value["Fn::Join"]
            return delimiter.join(str(render(part, account=account)) for part in parts)
        if value.get("Ref") == "AWS::Partition":
            return "aws"
        if value.get("Ref") == "AWS::AccountId":
            return account
        if value.get("Ref") == "AWS::Region":
            return "${AWS::Region}"
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            resource, attribute = value["Fn::GetAtt"]
            return f"<{resource}.{attribute}>"
    if isinstance(value, list):
        return [render(item, account=account) for item in value]
    return value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of every policy document in a template, with the logical id that holds it."""
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        documents = [
            properties.get(key)
            for key in ("PolicyDocument", "AssumeRolePolicyDocument", "KeyPolicy")
            if isinstance(properties.get(key), dict)
        ]
        documents += [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        for document in documents:
            for statement in as_list(document.get("Statement", [])):
                yield logical_id, statement


@pytest.fixture(scope="session")
def cfn() -> Any:
    """Template helpers (a fixture so test modules need no import path tricks)."""

    class Helpers:
        render = staticmethod(render)
        as_list = staticmethod(as_list)
        policy_statements = staticmethod(policy_statements)

    return Helpers
