"""EventBridge Scheduler schedules from cdk.json: synthesized, least privilege, and validated at synth."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import CONTEXT_KEY, ConfigError, parse_config
from tests.infra.conftest import CDK_CONTEXT


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def test_each_configured_schedule_starts_the_fleet_workflow_with_its_input_and_mode(
    synthesized, fleet_config, cfn
):
    # Given cdk.json's example schedule (Saturday 22:00 Paris time, 15 minutes flexible, disabled)
    template = synthesized.orchestrator.to_json()
    [schedule] = resources(template, "AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    configured = fleet_config.schedules[0]
    # Then it is one AWS::Scheduler::Schedule with the cron, time zone, window and state
    assert props["ScheduleExpression"] == "cron(0 22 ? * SAT *)"
    assert props["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert props["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert props["State"] == "DISABLED"
    assert props["Name"] == f"{fleet_config.resource_prefix}-saturday-night"
    # And its target is the fleet state machine, given the fleet input with the schedule's mode
    [fleet_id] = [
        lid
        for lid, r in resources(template, "AWS::StepFunctions::StateMachine").items()
        if r["Properties"]["StateMachineName"] == f"{fleet_config.resource_prefix}-fleet-upgrade"
    ]
    assert props["Target"]["Arn"] == {"Ref": fleet_id}
    assert json.loads(props["Target"]["Input"]) == {**configured.input, "mode": "upgrade"}
    assert props["Target"]["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 3600


def test_the_scheduler_role_may_start_the_fleet_workflow_and_nothing_else(synthesized, cfn):
    template = synthesized.orchestrator.to_json()
    [schedule] = resources(template, "AWS::Scheduler::Schedule").values()
    role_id = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    # Then only EventBridge Scheduler of this account may assume it
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    # And its policy is StartExecution on the fleet state machine, plus the data key for that machine only
    statements = [
        s
        for lid, s in cfn.policy_statements(template)
        if template["Resources"][lid]["Type"] == "AWS::IAM::Policy"
        and role_id in json.dumps(template["Resources"][lid]["Properties"]["Roles"])
    ]
    actions = sorted(a for s in statements for a in cfn.as_list(s["Action"]))
    assert actions == ["kms:GenerateDataKey", "states:StartExecution"]
    [start] = [s for s in statements if s["Action"] == "states:StartExecution"]
    assert start["Resource"] == schedule["Properties"]["Target"]["Arn"]
    [key] = [s for s in statements if s["Action"] == "kms:GenerateDataKey"]
    assert (
        key["Condition"]["StringEquals"]["kms:EncryptionContext:aws:states:stateMachineArn"]
        == start["Resource"]
    )


def _with_schedule(**changes: Any) -> dict[str, Any]:
    values = json.loads(json.dumps(CDK_CONTEXT[CONTEXT_KEY]))
    values["schedules"][0].update(changes)
    return values


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"cron": "0 22 * * SAT *"},
            "schedules[0].cron: invalid cron expression '0 22 * * SAT *': exactly one of",
        ),
        ({"cron": "0 25 ? * SAT *"}, "schedules[0].cron: invalid cron expression '0 25 ? * SAT *': hours"),
        ({"cron": "0 22 ? * SAT"}, "needs 6 fields"),
        ({"timezone": "Europe/Atlantis"}, "schedules[0].timezone: unknown time zone 'Europe/Atlantis'"),
        ({"flexibleWindowMinutes": 2000}, "schedules[0].flexibleWindowMinutes: must be 0 (off) to 1440"),
        ({"mode": "yolo"}, "schedules[0].mode: must be 'upgrade' or 'plan'"),
        ({"input": {"toVersion": "1.24"}}, "schedules[0].input: needs clusters"),
        ({"name": "has space"}, "schedules[0].name: must be 1 to 64"),
        ({"crontab": "x"}, "schedules[0].crontab: unknown key"),
    ],
)
def test_a_bad_schedule_is_a_config_error_naming_it_at_synth(change, named):
    # Given cdk.json's schedule with one mistake / When the configuration is parsed
    with pytest.raises(ConfigError) as raised:
        parse_config(_with_schedule(**change))
    # Then the error names the schedule's key and what is wrong
    assert f"{CONTEXT_KEY}.{named}" in str(raised.value) or named in str(raised.value)


def test_two_schedules_with_one_name_are_refused_and_none_is_fine():
    values = json.loads(json.dumps(CDK_CONTEXT[CONTEXT_KEY]))
    values["schedules"].append(dict(values["schedules"][0]))
    with pytest.raises(
        ConfigError, match=r"schedules\[1\]\.name: 'saturday-night' is used by another schedule"
    ):
        parse_config(values)
    values.pop("schedules")
    assert parse_config(values).schedules == ()
