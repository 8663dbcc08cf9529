"""cdk-nag: zero unacknowledged findings, and every acknowledgment narrow and explained."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Annotations, Match

from infra.compliance import add_compliance_checks

# The only rules this app acknowledges; anything else needs a decision (and this list updated).
ACKNOWLEDGEABLE = re.compile(
    r"^(AwsSolutions-IAM5\[Resource::.+\]|AwsSolutions-L1|Serverless-LambdaLatestVersion|Serverless-LambdaDLQ)$"
)


def test_synthesis_reports_no_nag_finding_and_no_annotation(synthesized):
    # Given the app synthesized with the AwsSolutions and Serverless packs (it would have raised on an
    # unacknowledged finding), then the validation report lists no violation either
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]
    assert violations == []
    # And no stack carries an error or warning annotation
    stacks = [
        synthesized.stacks.orchestrator,
        synthesized.stacks.stackset_target,
        *synthesized.stacks.targets.values(),
    ]
    for stack in stacks:
        annotations = Annotations.from_stack(stack)
        assert annotations.find_error("*", Match.any_value()) == [], stack.stack_name
        assert annotations.find_warning("*", Match.any_value()) == [], stack.stack_name


def test_both_packs_really_run_and_fail_the_synth_on_a_finding(tmp_path):
    # Given an app wired like ours, with a queue and a function that break rules of each pack
    app = App(outdir=str(tmp_path))
    add_compliance_checks(app)
    stack = Stack(app, "Canary")
    sqs.Queue(stack, "PlainQueue")
    lambda_.Function(
        stack,
        "PlainFunction",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
    )
    # When it is synthesized, then both packs report and the synthesis fails
    with pytest.raises(Exception, match="ValidationFailed") as failure:
        app.synth()
    report = (tmp_path / "validation-report.json").read_text()
    assert "AwsSolutions-SQS4" in report
    assert "Serverless-LambdaTracing" in report
    assert failure.value is not None


def test_every_acknowledgment_is_an_expected_rule_with_a_specific_reason(synthesized):
    acknowledgments = []
    for _, template in synthesized.all_templates():
        for resource in template["Resources"].values():
            acknowledgments += resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    assert acknowledgments, "write_suppressions_to_cloud_formation should record acknowledgments"
    for acknowledgment in acknowledgments:
        # Then each names one known rule (IAM5 always with the exact resource, never the whole rule)
        assert ACKNOWLEDGEABLE.match(acknowledgment["id"]), acknowledgment
        # And gives a reason worth reading
        assert len(acknowledgment["reason"]) >= 60, acknowledgment
