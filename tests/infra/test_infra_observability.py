"""Signals in the stack: the fleet workflow's events and notifications, and the CloudWatch dashboard."""

from __future__ import annotations

import json
import re
from typing import Any

from upgrader.fleet.html import PHASE_COLOURS
from upgrader.fleet.report import fleet_metrics

from infra.asl import load_definitions


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def fleet_role_statements(template: dict[str, Any], prefix: str, cfn: Any) -> list[dict[str, Any]]:
    [machine] = [
        r
        for r in resources(template, "AWS::StepFunctions::StateMachine").values()
        if r["Properties"]["StateMachineName"] == f"{prefix}-fleet-upgrade"
    ]
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    return [
        s
        for lid, s in cfn.policy_statements(template)
        if template["Resources"][lid]["Type"] == "AWS::IAM::Policy"
        and role_id in json.dumps(template["Resources"][lid]["Properties"]["Roles"])
    ]


def test_the_fleet_workflow_may_put_events_on_the_default_bus_and_publish_to_the_topic(
    synthesized, fleet_config, cfn
):
    template = synthesized.orchestrator.to_json()
    statements = {s.get("Sid"): s for s in fleet_role_statements(template, fleet_config.resource_prefix, cfn)}
    assert statements["FleetEvents"]["Action"] == "events:PutEvents"
    assert cfn.render(statements["FleetEvents"]["Resource"]) == (
        "arn:aws:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
    )
    [topic_id] = resources(template, "AWS::SNS::Topic")
    assert statements["FleetNotifications"] == {
        "Sid": "FleetNotifications",
        "Effect": "Allow",
        "Action": "sns:Publish",
        "Resource": {"Ref": topic_id},
    }


def test_the_topic_is_named_as_the_fleet_asl_derives_it_from_its_own_arn(synthesized, fleet_config):
    # Given the fleet ASL's NotifyFleet* states, which build the topic ARN from $$.StateMachine.Id
    [fleet] = [d for d in load_definitions() if d.stem == "fleet_upgrade"]
    text = fleet.path.read_text()
    formats = set(re.findall(r"States\.Format\('arn:\{\}:sns:\{\}:\{\}:\{\}-notifications'", text))
    assert formats, "the fleet ASL publishes to <state machine name>-notifications"
    # Then the stack's topic has exactly that name
    template = synthesized.orchestrator.to_json()
    [topic] = resources(template, "AWS::SNS::Topic").values()
    assert topic["Properties"]["TopicName"] == f"{fleet_config.resource_prefix}-fleet-upgrade-notifications"


def test_the_dashboard_shows_the_executions_outcomes_durations_and_phases(synthesized, fleet_config):
    template = synthesized.orchestrator.to_json()
    [dashboard] = resources(template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert dashboard["Properties"]["DashboardName"] == fleet_config.resource_prefix
    for metric in (
        "ClustersUpgraded",
        "ClustersFailed",
        "ClustersBlocked",
        "ClusterUpgradeSeconds",
        "DrainSeconds",
    ):
        assert metric in body
    for phase in PHASE_COLOURS:
        assert phase in body
    assert "ExecutionsFailed" in body and "EksFleetUpgrader" in body


def test_the_report_becomes_the_metrics_the_dashboard_reads():
    # Given a fleet report with one upgraded cluster whose timeline has a drain and one blocked cluster
    report = {
        "counts": {"SUCCEEDED": 1, "BLOCKED": 1},
        "clusters": [
            {
                "startedAt": "2026-01-05T09:00:00Z",
                "finishedAt": "2026-01-05T09:30:00Z",
                "timeline": [
                    {"phase": "drain", "seconds": 120.0},
                    {"phase": "control plane", "seconds": 480.0},
                    {"phase": "drain", "seconds": 60.0},
                ],
            },
            {"startedAt": "2026-01-05T09:00:00Z", "finishedAt": "2026-01-05T09:00:05Z"},
        ],
    }
    # When it becomes metrics / Then the counts, durations, per-phase and drain seconds are there
    metrics = fleet_metrics(report)
    assert ("ClustersUpgraded", "Count", 1.0, {}) in metrics
    assert ("ClustersBlocked", "Count", 1.0, {}) in metrics
    assert ("ClustersFailed", "Count", 0.0, {}) in metrics
    assert [m[2] for m in metrics if m[0] == "ClusterUpgradeSeconds"] == [1800.0, 5.0]
    assert ("PhaseSeconds", "Seconds", 180.0, {"Phase": "drain"}) in metrics
    assert ("DrainSeconds", "Seconds", 180.0, {}) in metrics
