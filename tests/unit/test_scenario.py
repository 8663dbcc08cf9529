"""Scenario files (simulator/scenario.py): the demo loads; every bad file names itself and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator.scenario import ScenarioError, load_scenario

DEMO = Path(__file__).resolve().parents[2] / "examples" / "fleets" / "demo.yaml"

VALID = {
    "name": "small",
    "upgrade": {"toVersion": "1.24"},
    "accounts": [
        {
            "id": "111111111111",
            "clusters": [{"name": "web", "region": "eu-west-1", "version": "1.23"}],
        }
    ],
}


def _write(tmp_path: Path, content: object, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def _scenario(**changes: object) -> dict[str, object]:
    """A fresh copy of VALID with top-level keys replaced."""
    return yaml.safe_load(yaml.safe_dump(VALID)) | changes


def _cluster(**fields: object) -> dict[str, object]:
    return {"name": "web", "region": "eu-west-1", "version": "1.23"} | fields


def _error(path: Path) -> str:
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(path)
    return str(excinfo.value)


def test_the_demo_fleet_loads():
    # Given the demo scenario shipped in examples/
    # When it is loaded
    scenario = load_scenario(DEMO)

    # Then its fleet, target, expectation and faults are as written
    assert scenario.name == "demo"
    assert scenario.external_id == "demo-external-id"
    assert scenario.upgrade.to_version == "1.24"
    clusters = scenario.clusters()
    # 3 accounts, 2 regions, 6 clusters on 1.23, each with Docker-runtime managed node groups
    assert len({a.id for a, _ in clusters}) == 3
    assert {c.region for _, c in clusters} == {"eu-west-1", "us-east-1"}
    assert len(clusters) == 6
    assert {c.version for _, c in clusters} == {"1.23"}
    assert all(c.nodegroups and all(ng.ami_type == "AL2_x86_64" for ng in c.nodegroups) for _, c in clusters)
    starved = next(c for _, c in clusters if c.name == "analytics-prod")
    assert starved.expect == "FAILED"
    assert [(f.cluster, f.error_code) for f in scenario.faults.fail_control_plane_update] == [
        ("analytics-prod", "IpNotAvailable")
    ]
    # one DaemonSet mounts the Docker socket
    socket_users = [
        w.name for _, c in clusters for w in c.workloads if "/var/run/docker.sock" in w.host_paths
    ]
    assert socket_users == ["fluentd"]
    assert [(t.service, t.operation, t.first) for t in scenario.faults.throttle] == [
        ("eks", "DescribeUpdate", 2)
    ]


def test_defaults_fill_what_a_minimal_scenario_leaves_out(tmp_path):
    # Given a scenario with only the required keys
    path = _write(tmp_path, VALID)

    # When it is loaded
    scenario = load_scenario(path)

    # Then the documented defaults apply
    cluster = scenario.clusters()[0][1]
    assert (cluster.free_ips, cluster.subnets, cluster.expect) == (None, 3, None)
    assert scenario.external_id == "sim-external-id"
    assert scenario.target_role_name == "eks-fleet-upgrader-target"
    assert scenario.timings.control_plane_update_seconds == 480.0
    assert scenario.poll_strategy == "adaptive"
    assert scenario.faults.throttle == [] and scenario.faults.fail_control_plane_update == []


def test_a_missing_file_is_named(tmp_path):
    # Given a path with no file
    path = tmp_path / "nowhere.yaml"
    # When it is loaded / Then the error names the file and why it cannot be read
    message = _error(path)
    assert str(path) in message
    assert "cannot read scenario" in message
    assert "No such file" in message


def test_a_file_that_is_not_yaml_is_named(tmp_path):
    # Given a file with broken YAML
    path = _write(tmp_path, "name: demo\naccounts: [unclosed\n")
    # When it is loaded / Then the error names the file and says it is not YAML
    message = _error(path)
    assert message.startswith(f"{path}: not valid YAML")


@pytest.mark.parametrize("content", ["- a\n- list\n", "just a string\n", ""])
def test_the_top_level_must_be_a_mapping(tmp_path, content):
    # Given a YAML file whose top level is a list, a scalar, or nothing
    path = _write(tmp_path, content)
    # When it is loaded / Then the error names the file and the expected shape
    assert _error(path) == f"{path}: a scenario is a mapping at the top level"


@pytest.mark.parametrize(
    ("scenario", "field"),
    [
        (_scenario(upgrde={"toVersion": "1.24"}), "upgrde"),
        (_scenario(upgrade={"toVersion": "1.24", "fromVersion": "1.23"}), "upgrade.fromVersion"),
        (
            _scenario(accounts=[{"id": "111111111111", "clusters": [_cluster(freeIP=3)]}]),
            "accounts.0.clusters.0.freeIP",
        ),
        (_scenario(accounts=[{"id": "111111111111", "clustres": []}]), "accounts.0.clustres"),
        (_scenario(faults={"throttle": [{"service": "eks", "frist": 2}]}), "faults.throttle.0.frist"),
        (_scenario(timings={"controlPlaneUpdate": 60}), "timings.controlPlaneUpdate"),
    ],
    ids=["top", "upgrade", "cluster", "account", "throttle", "timings"],
)
def test_an_unknown_key_anywhere_is_an_error_naming_it(tmp_path, scenario, field):
    # Given a scenario with a typo in one key
    path = _write(tmp_path, scenario)
    # When it is loaded
    message = _error(path)
    # Then the error names the file and the misspelt key's full path
    assert message.startswith(f"{path}: invalid scenario: ")
    assert f"{field}: Extra inputs are not permitted" in message


@pytest.mark.parametrize("account_id", ["11111111111", "1111111111111", "11111111111a", 111111111111])
def test_an_account_id_must_be_twelve_digits_in_quotes(tmp_path, account_id):
    # Given an account id that is too short, too long, not all digits, or an unquoted number
    path = _write(tmp_path, _scenario(accounts=[{"id": account_id, "clusters": [_cluster()]}]))
    # When it is loaded / Then the error names the file and the field
    message = _error(path)
    assert str(path) in message
    assert "accounts.0.id:" in message


@pytest.mark.parametrize(
    ("scenario", "field"),
    [
        (_scenario(upgrade={"toVersion": "v1.24"}), "upgrade.toVersion"),
        (_scenario(upgrade={"toVersion": "1.2"}), "upgrade.toVersion"),
        (
            _scenario(accounts=[{"id": "111111111111", "clusters": [_cluster(version="2.23")]}]),
            "accounts.0.clusters.0.version",
        ),
        # Unquoted, YAML reads 1.30 as the float 1.3: refused rather than guessed at.
        (
            _scenario(accounts=[{"id": "111111111111", "clusters": [_cluster(version=1.30)]}]),
            "accounts.0.clusters.0.version",
        ),
    ],
    ids=["prefixed", "one-digit-minor", "major", "unquoted-float"],
)
def test_a_bad_version_is_named(tmp_path, scenario, field):
    # Given a version that is not like "1.24"
    path = _write(tmp_path, scenario)
    # When it is loaded / Then the error names the file and the field
    message = _error(path)
    assert message.startswith(f"{path}: invalid scenario: {field}: ")


def test_a_cluster_twice_in_one_account_and_region_is_an_error(tmp_path):
    # Given one account listing the same cluster twice in one region
    path = _write(
        tmp_path, _scenario(accounts=[{"id": "111111111111", "clusters": [_cluster(), _cluster(freeIps=3)]}])
    )
    # When it is loaded / Then the error names the file, the cluster and the account
    message = _error(path)
    assert str(path) in message
    assert "cluster web appears twice in account 111111111111" in message


def test_the_same_cluster_name_in_another_region_or_account_is_allowed(tmp_path):
    # Given "web" in two regions of one account, and in a second account
    path = _write(
        tmp_path,
        _scenario(
            accounts=[
                {"id": "111111111111", "clusters": [_cluster(), _cluster(region="us-east-1")]},
                {"id": "222222222222", "clusters": [_cluster()]},
            ]
        ),
    )
    # When it is loaded / Then all three clusters are in the fleet
    assert [(a.id, c.region) for a, c in load_scenario(path).clusters()] == [
        ("111111111111", "eu-west-1"),
        ("111111111111", "us-east-1"),
        ("222222222222", "eu-west-1"),
    ]


def test_a_fault_naming_an_unknown_cluster_is_an_error(tmp_path):
    # Given a failControlPlaneUpdate fault for a cluster the fleet does not have
    path = _write(tmp_path, _scenario(faults={"failControlPlaneUpdate": [{"cluster": "wbe"}]}))
    # When it is loaded / Then the error names the file, the fault list and the unknown cluster
    message = _error(path)
    assert str(path) in message
    assert "faults.failControlPlaneUpdate names unknown cluster wbe" in message


@pytest.mark.parametrize("rate", [-0.1, 0.95, 1.0])
def test_a_throttle_rate_out_of_range_is_named(tmp_path, rate):
    # Given a throttle rate below 0 or above the 0.9 ceiling
    path = _write(tmp_path, _scenario(faults={"throttle": [{"service": "eks", "rate": rate}]}))
    # When it is loaded / Then the error names the file and the field
    message = _error(path)
    assert message.startswith(f"{path}: invalid scenario: faults.throttle.0.rate: ")


def test_the_highest_allowed_rate_loads(tmp_path):
    # Given a throttle rate exactly at the ceiling / When loaded / Then it is kept
    path = _write(tmp_path, _scenario(faults={"throttle": [{"service": "sts", "rate": 0.9}]}))
    assert load_scenario(path).faults.throttle[0].rate == 0.9


def test_every_problem_in_a_file_is_reported_at_once(tmp_path):
    # Given a scenario with two independent mistakes
    path = _write(
        tmp_path,
        _scenario(upgrade={"toVersion": "1.x"}, accounts=[{"id": "42", "clusters": [_cluster()]}]),
    )
    # When it is loaded / Then both fields are named in one error
    message = _error(path)
    assert "upgrade.toVersion:" in message
    assert "accounts.0.id:" in message


def test_a_file_that_is_not_utf8_text_is_named(tmp_path):
    # Given a binary file (a UTF-16 byte-order mark, say) passed as a scenario
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfen\x00a\x00m\x00e\x00")
    # When it is loaded / Then the error is a ScenarioError naming the file
    message = _error(path)
    assert str(path) in message


def test_a_throttle_rule_naming_an_unknown_service_is_named(tmp_path):
    # Given a scenario whose throttle fault names a service boto3 does not know
    path = tmp_path / "bad-service.yaml"
    path.write_text(
        "name: x\nupgrade: {toVersion: '1.24'}\n"
        "accounts: [{id: '111111111111', clusters: [{name: c, region: eu-west-1, version: '1.23'}]}]\n"
        "faults: {throttle: [{service: eksz, first: 1}]}\n"
    )
    # When it is loaded, Then the error names the file, the field and the service
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(path) in str(caught.value)
    assert "faults.throttle.0" in str(caught.value)
    assert "eksz" in str(caught.value)
