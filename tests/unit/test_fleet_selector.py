"""The fleet input's selector: resolved from the fleet registry into the explicit cluster list; the fleet input
checks shared by ValidateFleetInput and fleetctl; the example inputs of docs/triggers.md; the progress bars'
milestones against the cluster workflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from upgrader.errors import InvalidFleetInput
from upgrader.fleet.models import RegisteredCluster
from upgrader.gateways.registry import InMemoryClusterRegistry
from validate_fleet_input.handler import FleetValidationEnvelope, validate_fleet
from validate_fleet_input.rules import check_fleet_input, check_waves, resolve_selector

from fleetctl.progress import CLUSTER_MILESTONES, ClusterProgress, bar

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "inputs").glob("*.json"))


def registered(key: str, **fields) -> RegisteredCluster:
    account, region, name = key.split("/")
    return RegisteredCluster.model_validate({"accountId": account, "region": region, "name": name, **fields})


REGISTRY = [
    registered("222222222222/us-east-1/orders", tags={"env": "prod", "team": "shop"}),
    registered(
        "111111111111/eu-west-1/pay",
        tags={"env": "prod"},
        roleArn="arn:aws:iam::111111111111:role/custom",
        externalId="pay-ext",
        maintenanceWindow={
            "days": ["SAT"],
            "start": "22:00",
            "durationMinutes": 240,
            "timezone": "Europe/Paris",
        },
    ),
    registered("111111111111/eu-west-1/sandbox", tags={"env": "dev"}),
    registered("111111111111/us-east-1/search", tags={"env": "prod"}),
]


def test_a_selector_becomes_the_explicit_cluster_list_in_key_order_with_the_registry_s_details():
    # Given four registered clusters and a selector for prod clusters of account 111111111111
    fleet = check_fleet_input(
        {
            "toVersion": "1.24",
            "fromVersion": "1.23",
            "selector": {"tags": {"env": "prod"}, "accounts": ["111111111111"]},
        }
    )
    # When it is resolved
    resolved = resolve_selector(fleet, InMemoryClusterRegistry(REGISTRY))
    # Then exactly the matching clusters are listed, ordered by key, with role, external id and window
    assert [c.key for c in resolved.clusters] == [
        "111111111111/eu-west-1/pay",
        "111111111111/us-east-1/search",
    ]
    pay = resolved.clusters[0]
    assert (pay.role_arn, pay.external_id, pay.maintenance_window.start) == (
        "arn:aws:iam::111111111111:role/custom",
        "pay-ext",
        "22:00",
    )
    # and the selector stays in the input, beside what it chose
    assert resolved.dump()["selector"] == {
        "tags": {"env": "prod"},
        "accounts": ["111111111111"],
        "regions": [],
    }


def test_every_criterion_must_hold():
    fleet = check_fleet_input({"toVersion": "1.24", "selector": {"tags": {"env": "prod", "team": "shop"}}})
    assert [c.key for c in resolve_selector(fleet, InMemoryClusterRegistry(REGISTRY)).clusters] == [
        "222222222222/us-east-1/orders"
    ]
    fleet = check_fleet_input({"toVersion": "1.24", "selector": {"regions": ["eu-west-1"]}})
    assert [c.key for c in resolve_selector(fleet, InMemoryClusterRegistry(REGISTRY)).clusters] == [
        "111111111111/eu-west-1/pay",
        "111111111111/eu-west-1/sandbox",
    ]


def test_a_selector_that_selects_nothing_is_invalid_fleet_input():
    fleet = check_fleet_input({"toVersion": "1.24", "selector": {"tags": {"env": "staging"}}})
    with pytest.raises(InvalidFleetInput) as rejected:
        resolve_selector(fleet, InMemoryClusterRegistry(REGISTRY))
    assert rejected.value.details["path"] == "$.selector"
    assert rejected.value.details["registered"] == 4
    assert "selects none of the 4 registered clusters" in rejected.value.message


def test_the_step_records_the_selector_and_the_clusters_it_chose(monkeypatch):
    # Given the step's registry is the in-memory one
    monkeypatch.setattr(
        "validate_fleet_input.handler.cluster_registry", lambda settings: InMemoryClusterRegistry(REGISTRY)
    )
    envelope = FleetValidationEnvelope(
        input={"toVersion": "1.24", "fromVersion": "1.23", "selector": {"tags": {"team": "shop"}}},
        execution_id="arn:aws:states:us-east-1:123456789012:execution:fleet:f1",
        execution_name="f1",
    )
    # When ValidateFleetInput runs, Then its output carries both
    output = validate_fleet(envelope).dump()
    assert output["fleet"]["selector"]["tags"] == {"team": "shop"}
    assert [c["name"] for c in output["fleet"]["clusters"]] == ["orders"]


def test_an_input_with_clusters_makes_no_registry_call(monkeypatch):
    def no_registry(settings):
        raise AssertionError("the registry was read")

    monkeypatch.setattr("validate_fleet_input.handler.cluster_registry", no_registry)
    envelope = FleetValidationEnvelope(
        input={
            "toVersion": "1.24",
            "clusters": [{"accountId": "111111111111", "region": "eu-west-1", "name": "a"}],
        },
        execution_id="arn",
        execution_name="f1",
    )
    assert "selector" not in validate_fleet(envelope).dump()["fleet"]


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        ({"toVersion": "1.24"}, "$", "clusters[] or a selector"),
        (
            {
                "toVersion": "1.24",
                "clusters": [{"accountId": "1", "region": "x", "name": "a"}],
                "selector": {"regions": ["eu-west-1"]},
            },
            "$.selector",
            "not both",
        ),
        ({"toVersion": "1.24", "selector": {}}, "$.selector", "must contain at least 1 properties"),
        (
            {"toVersion": "1.24", "selector": {"accounts": ["12"]}},
            "$.selector.accounts[0]",
            "must match pattern",
        ),
        ({"toVersion": "1.24", "selector": {"tagz": {"a": "b"}}}, "$.selector", "must not contain"),
        (
            {
                "toVersion": "1.24",
                "clusters": [{"accountId": "111111111111", "region": "eu-west-1", "name": "a"}] * 2,
            },
            "$.clusters[1]",
            "appears twice",
        ),
    ],
)
def test_bad_fleet_inputs_name_their_json_path(document, path, words):
    with pytest.raises(InvalidFleetInput) as rejected:
        check_fleet_input(document)
    assert rejected.value.details["path"] == path
    assert words in rejected.value.message


def test_the_wave_rules_are_checked_for_listed_clusters():
    fleet = check_fleet_input(
        {
            "toVersion": "1.24",
            "fromVersion": "1.23",
            "clusters": [{"accountId": "111111111111", "region": "eu-west-1", "name": n} for n in "ab"],
        }
    )
    with pytest.raises(InvalidFleetInput, match="in no wave"):
        check_waves(fleet)


def test_registered_clusters_refuse_bad_tags_and_foreign_roles():
    with pytest.raises(ValueError, match="tag"):
        registered("111111111111/eu-west-1/a", tags={"": "x"})
    with pytest.raises(Exception, match=r"roleArn must be a role in cluster\.accountId"):
        registered("111111111111/eu-west-1/a", roleArn="arn:aws:iam::999999999999:role/r")


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_input_is_valid(example):
    # Given an example of docs/triggers.md, When the fleet input checks read it, Then it passes them
    fleet = check_fleet_input(json.loads(example.read_text()))
    check_waves(fleet)  # and its waves, for an input that lists its clusters
    assert fleet.clusters or fleet.selector is not None


def test_there_are_examples_for_clusters_selector_and_plan():
    documents = [json.loads(p.read_text()) for p in EXAMPLES]
    assert any("clusters" in d for d in documents)
    assert any("selector" in d for d in documents)
    assert any(d.get("mode") == "plan" for d in documents)


def test_progress_milestones_are_states_of_the_cluster_workflow():
    states = json.loads((ROOT / "statemachines" / "cluster_upgrade.asl.json").read_text())["States"]
    assert [m for m in CLUSTER_MILESTONES if m not in states] == []


def test_a_running_cluster_s_bar_grows_with_its_step():
    early = ClusterProgress(key="k", wave="w", status="RUNNING", step="Preflight")
    late = ClusterProgress(key="k", wave="w", status="RUNNING", step="VerifyUpgrade")
    assert 0 < early.fraction < late.fraction < 1
    assert ClusterProgress(key="k", wave="w", status="FAILED").fraction == 1.0
    assert bar(0.5, width=10) == "[#####-----]"
