"""Configuration from the cdk context: cdk.json defaults, -c overrides, and errors that name the key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App

from infra.config import CONTEXT_KEY, ConfigError, load_config, parse_config

EXAMPLE: dict[str, Any] = {
    "orchestratorAccountId": "111111111111",
    "orchestratorRegion": "us-east-1",
    "targetAccountIds": ["222222222222"],
    "regions": ["us-east-1"],
    "externalId": "an-external-id",
    "orgId": None,
    "targetRoleName": "eks-fleet-upgrader-target",
    "resourcePrefix": "efu",
    "nodeRoleNamePattern": "eks-node-*",
    "logRetentionDays": 30,
}


def test_cdk_json_example_configuration_is_valid(fleet_config):
    assert fleet_config.orchestrator_account_id == "111111111111"
    assert fleet_config.target_account_ids == ("222222222222", "333333333333")
    assert fleet_config.org_id is None


def test_command_line_overrides_one_key_at_a_time_with_string_values():
    # Given cdk.json's object plus -c overrides (the CLI passes every value as a string)
    app = App(
        context={
            CONTEXT_KEY: EXAMPLE,
            f"{CONTEXT_KEY}.targetAccountIds": "444444444444, 555555555555",
            f"{CONTEXT_KEY}.regions": '["eu-west-1", "us-west-2"]',
            f"{CONTEXT_KEY}.orgId": "o-abcdefghij",
            f"{CONTEXT_KEY}.logRetentionDays": "365",
        }
    )
    # When the configuration is loaded
    config = load_config(app)
    # Then the overrides win, parsed to their types
    assert config.target_account_ids == ("444444444444", "555555555555")
    assert config.regions == ("eu-west-1", "us-west-2")
    assert config.org_id == "o-abcdefghij"
    assert config.log_retention_days == 365
    assert config.external_id == EXAMPLE["externalId"]


def test_command_line_can_replace_the_whole_object_as_json():
    app = App(context={CONTEXT_KEY: json.dumps({**EXAMPLE, "resourcePrefix": "other"})})
    assert load_config(app).resource_prefix == "other"


def test_missing_context_is_reported():
    with pytest.raises(ConfigError, match=CONTEXT_KEY):
        load_config(App())


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("orchestratorAccountId", "12345"),
        ("orchestratorRegion", "Mars-1"),
        ("targetAccountIds", []),
        ("targetAccountIds", ["222222222222", "222222222222"]),
        ("regions", ["us-east-1", "nowhere"]),
        ("externalId", "x"),
        ("orgId", "org-123"),
        ("targetRoleName", "has space"),
        ("resourcePrefix", "Upper_Case"),
        ("resourcePrefix", "a" * 41),
        ("nodeRoleNamePattern", "*"),
        ("logRetentionDays", 8),
        ("logRetentionDays", True),
    ],
)
def test_invalid_values_are_rejected_naming_their_key(key, value):
    with pytest.raises(ConfigError, match=rf"{CONTEXT_KEY}\.{key}:"):
        parse_config({**EXAMPLE, key: value})


def test_every_problem_is_reported_at_once_including_unknown_and_missing_keys():
    values = {k: v for k, v in EXAMPLE.items() if k != "externalId"}
    values["targetAccountId"] = "222222222222"  # a typo of targetAccountIds
    values["logRetentionDays"] = 2
    with pytest.raises(ConfigError) as error:
        parse_config(values)
    message = str(error.value)
    for expected in ("externalId: is required", "targetAccountId: unknown key", "logRetentionDays: must be"):
        assert expected in message


def test_step_names_and_arns_derive_from_the_prefix():
    config = parse_config(EXAMPLE)
    assert config.step_resource_name("Preflight") == "efu-Preflight"
    assert config.step_role_arn("Preflight", "aws") == "arn:aws:iam::111111111111:role/efu-Preflight"
    assert config.target_role_arn("222222222222", "aws") == (
        "arn:aws:iam::222222222222:role/eks-fleet-upgrader-target"
    )
