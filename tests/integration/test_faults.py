"""The AWS call recorder and fault injector (simulator/faults.py), on moto with a hand-built setup.

Every test makes its own :class:`AwsFaults` and its own boto3 session (created after the faults
module registered its botocore hook), inside one module-wide moto.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from simulator.clock import VirtualClock
from simulator.eks import EksSimulation, eks_extension
from simulator.faults import AwsFaults, RecordedCall, ThrottleRule, aws_faults

ORCHESTRATOR = "123456789012"  # moto's default account
FLEET_ACCOUNT = "111111111111"
REGION = "eu-west-1"
ROLE_NAME = "eks-fleet-upgrader-target"
ROLE_ARN = f"arn:aws:iam::{FLEET_ACCOUNT}:role/{ROLE_NAME}"
EXTERNAL_ID = "the-right-external-id"
# One attempt per call: every injected fault reaches the test, and botocore never sleeps.
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture(scope="module")
def subnets() -> Iterator[list[str]]:
    """moto and the EKS extension for the whole module, with a VPC in the fleet account."""
    with mock_aws(), eks_extension(EksSimulation(VirtualClock())):
        ec2 = _fleet_session().client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        yield [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in range(2)
        ]


@pytest.fixture(scope="module")
def cluster(subnets: list[str]) -> str:
    """One 1.23 cluster in the fleet account, shared by the tests that only read it."""
    return _create_cluster("payments", subnets)


def _create_cluster(name: str, subnets: list[str]) -> str:
    _fleet_session().client("eks", region_name=REGION).create_cluster(
        name=name,
        version="1.23",
        roleArn=f"arn:aws:iam::{FLEET_ACCOUNT}:role/eks-cluster-role",
        resourcesVpcConfig={"subnetIds": subnets},
    )
    return name


def _fleet_session() -> boto3.Session:
    """Credentials in the fleet account (moto maps an assumed role's keys to the role's account)."""
    credentials = (
        boto3.Session()
        .client("sts", region_name=REGION, config=NO_RETRIES)
        .assume_role(RoleArn=f"arn:aws:iam::{FLEET_ACCOUNT}:role/setup", RoleSessionName="setup")[
            "Credentials"
        ]
    )
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def _client(service: str, session: boto3.Session | None = None) -> Any:
    return (session or boto3.Session()).client(service, region_name=REGION, config=NO_RETRIES)


def _response_error(call: Any) -> dict[str, Any] | None:
    """The parsed error response a call raised, or None when it succeeded."""
    try:
        call()
    except ClientError as error:
        return error.response
    return None


def _code(call: Any) -> str | None:
    """The botocore error code a call raised, or None when it succeeded."""
    error = _response_error(call)
    return error["Error"]["Code"] if error else None


def _ops(calls: list[RecordedCall]) -> list[str]:
    return [f"{c.service}:{c.operation}" for c in calls]


# -- throttling --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("service", "operation", "call"),
    [
        ("sts", "GetCallerIdentity", lambda sts: sts.get_caller_identity()),  # query protocol (XML errors)
        ("eks", "ListClusters", lambda eks: eks.list_clusters()),  # rest-json protocol (JSON errors)
    ],
)
def test_the_first_n_matching_calls_are_throttled_then_calls_pass(cluster, service, operation, call):
    # Given a rule throttling the first 2 calls of one operation
    faults = AwsFaults(clock=VirtualClock(), throttles=[ThrottleRule(service, operation, first=2)])
    client = _client(service)

    # When a step makes that call four times
    with aws_faults(faults), faults.step("Preflight"):
        outcomes = [_response_error(lambda: call(client)) for _ in range(4)]

    # Then exactly the first two raised ThrottlingException (HTTP 400), parsed by botocore from
    # that protocol's error format, and were recorded as throttled
    codes = [
        (o["Error"]["Code"], o["Error"]["Message"], o["ResponseMetadata"]["HTTPStatusCode"]) if o else None
        for o in outcomes
    ]
    assert codes == [("ThrottlingException", "Rate exceeded", 400)] * 2 + [None, None]
    assert [c.throttled for c in faults.calls] == [True, True, False, False]
    assert _ops(faults.calls) == [f"{service}:{operation}"] * 4


def test_a_rule_for_one_operation_leaves_the_others_alone(cluster):
    # Given a rule throttling every DescribeUpdate of EKS
    faults = AwsFaults(clock=VirtualClock(), throttles=[ThrottleRule("eks", "DescribeUpdate", first=100)])
    eks = _client("eks", _fleet_session())

    # When a step makes other EKS calls
    with aws_faults(faults), faults.step("Preflight"):
        codes = [_code(lambda: eks.describe_cluster(name=cluster)), _code(eks.list_clusters)]
        throttled = _code(lambda: eks.describe_update(name=cluster, updateId="any"))

    # Then only DescribeUpdate was throttled
    assert codes == [None, None]
    assert throttled == "ThrottlingException"
    assert faults.throttles[0].seen == 1


def _throttle_pattern(seed: int) -> list[bool]:
    faults = AwsFaults(clock=VirtualClock(), throttles=[ThrottleRule("sts", rate=0.5)], seed=seed)
    sts = _client("sts")
    with aws_faults(faults), faults.step("Preflight"):
        for _ in range(24):
            _code(sts.get_caller_identity)
    return [c.throttled for c in faults.calls]


def test_rate_based_throttling_is_repeatable_for_a_seed(cluster):
    # Given a rule throttling each sts call with probability 0.5
    # When the same 24 calls run twice with the same seed, and once with another seed
    first, again, other = _throttle_pattern(7), _throttle_pattern(7), _throttle_pattern(8)

    # Then the same seed throttles exactly the same calls, some but not all of them
    assert first == again
    assert 0 < sum(first) < len(first)
    # And another seed gives another pattern
    assert other != first


def test_a_service_whose_id_differs_from_its_client_name_can_be_throttled(cluster):
    # Given a rule naming Auto Scaling by its boto3 client name (botocore's events say "auto-scaling")
    autoscaling = _client("autoscaling")
    faults = AwsFaults(clock=VirtualClock(), throttles=[ThrottleRule("autoscaling", first=1)])

    # When a step calls it
    with aws_faults(faults), faults.step("Preflight"):
        code = _code(autoscaling.describe_auto_scaling_groups)

    # Then the call fails with ThrottlingException, as for eks or sts, and is recorded as throttled
    assert code == "ThrottlingException"
    assert [(c.service, c.throttled) for c in faults.calls] == [("auto-scaling", True)]


def test_an_unknown_service_in_a_rule_is_refused():
    with pytest.raises(ValueError, match="unknown AWS service 'autoscalingz'"):
        AwsFaults(clock=VirtualClock(), throttles=[ThrottleRule("autoscalingz", first=1)])


# -- recording ---------------------------------------------------------------------------------
def test_calls_outside_a_step_are_neither_recorded_nor_throttled(cluster):
    # Given active faults with a rule throttling every sts call
    faults = AwsFaults(clock=VirtualClock(), throttles=[ThrottleRule("sts", first=100)])
    sts = _client("sts")

    # When the engine (no step) calls sts
    with aws_faults(faults):
        code = _code(sts.get_caller_identity)

    # Then the call went through and nothing was recorded or counted
    assert code is None
    assert faults.calls == []
    assert faults.throttles[0].seen == 0


def test_calls_inside_a_step_are_recorded_with_step_service_account_region_and_time(cluster):
    # Given faults on a virtual clock at t=42 and a session in the fleet account
    clock = VirtualClock()
    clock.sleep(42)
    faults = AwsFaults(clock=clock)
    eks = _client("eks", _fleet_session())
    sts = _client("sts")

    # When two steps make calls
    with aws_faults(faults):
        with faults.step("Preflight"):
            sts.get_caller_identity()
            eks.describe_cluster(name=cluster)
        with faults.step("PollControlPlaneUpdate"):
            eks.list_updates(name=cluster)

    # Then each call is recorded with its step, service, operation, account and region
    assert faults.calls == [
        RecordedCall("Preflight", "sts", "GetCallerIdentity", ORCHESTRATOR, REGION, 42.0),
        RecordedCall("Preflight", "eks", "DescribeCluster", FLEET_ACCOUNT, REGION, 42.0),
        RecordedCall("PollControlPlaneUpdate", "eks", "ListUpdates", FLEET_ACCOUNT, REGION, 42.0),
    ]
    assert _ops(faults.calls_to("eks")) == ["eks:DescribeCluster", "eks:ListUpdates"]


def test_a_call_from_another_thread_while_a_step_runs_is_not_recorded(cluster):
    """The engine polls DescribeExecution on the main thread while moto runs the Lambda tasks on its
    own thread: those polls are the engine's calls, not the step's."""
    # Given a step running in another thread (as moto runs the Lambda tasks of an execution)
    faults = AwsFaults(clock=VirtualClock())
    sts = _client("sts")
    inside, finish = threading.Event(), threading.Event()

    def lambda_thread() -> None:
        with faults.step("Preflight"):
            inside.set()
            finish.wait(10)

    with aws_faults(faults):
        worker = threading.Thread(target=lambda_thread)
        worker.start()
        assert inside.wait(10)
        # When this thread, outside any step, makes a call meanwhile
        try:
            sts.get_caller_identity()
        finally:
            finish.set()
            worker.join(10)

    # Then it is not recorded
    assert faults.calls == []


def test_mutating_calls_are_the_changes_made_not_reads_or_assume_role(cluster):
    # Given a rule throttling the first UpdateClusterVersion
    faults = AwsFaults(clock=VirtualClock(), throttles=[ThrottleRule("eks", "UpdateClusterVersion", first=1)])
    session = _fleet_session()
    eks = _client("eks", session)

    # When a step assumes a role, reads, and updates the cluster (throttled once, then accepted,
    # with the same clientRequestToken as the workflow uses)
    with aws_faults(faults), faults.step("StartControlPlaneUpdate"):
        _client("sts").assume_role(RoleArn=ROLE_ARN, RoleSessionName="session")
        eks.describe_cluster(name=cluster)
        eks.list_updates(name=cluster)
        _client("ec2", session).describe_subnets()
        update = {"name": cluster, "version": "1.24", "clientRequestToken": "start-1"}
        throttled = _code(lambda: eks.update_cluster_version(**update))
        update_id = eks.update_cluster_version(**update)["update"]["id"]
        eks.describe_update(name=cluster, updateId=update_id)

    # Then every call is recorded, but the mutating calls are only the accepted UpdateClusterVersion
    assert throttled == "ThrottlingException"
    assert len(faults.calls) == 7
    assert [(c.step, c.service, c.operation, c.account) for c in faults.mutating_calls()] == [
        ("StartControlPlaneUpdate", "eks", "UpdateClusterVersion", FLEET_ACCOUNT)
    ]


def test_a_throttled_call_changes_nothing(subnets):
    # Given a cluster with no update, and a rule throttling the first UpdateClusterVersion
    name = _create_cluster("throttled-once", subnets)
    eks = _client("eks", _fleet_session())
    faults = AwsFaults(clock=VirtualClock(), throttles=[ThrottleRule("eks", "UpdateClusterVersion", first=1)])

    # When a step's UpdateClusterVersion is throttled
    with aws_faults(faults), faults.step("StartControlPlaneUpdate"):
        code = _code(lambda: eks.update_cluster_version(name=name, version="1.24"))
    assert code == "ThrottlingException"

    # Then, as in AWS, no update was started and the cluster is untouched
    assert eks.list_updates(name=name)["updateIds"] == []
    assert eks.describe_cluster(name=name)["cluster"]["status"] == "ACTIVE"


# -- ExternalId --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("external_id", "expected"),
    [
        (None, "AccessDenied"),
        ("a-wrong-external-id", "AccessDenied"),
        (EXTERNAL_ID, None),
    ],
)
def test_assume_role_needs_the_external_id_the_role_requires(cluster, external_id, expected):
    # Given a fleet role whose trust policy requires an ExternalId
    faults = AwsFaults(clock=VirtualClock(), external_ids={(FLEET_ACCOUNT, ROLE_NAME): EXTERNAL_ID})
    sts = _client("sts")
    request: dict[str, str] = {"RoleArn": ROLE_ARN, "RoleSessionName": "eks-upgrade-test"}
    if external_id is not None:
        request["ExternalId"] = external_id

    # When a step assumes it with no, a wrong, or the right ExternalId
    with aws_faults(faults), faults.step("Preflight"):
        try:
            credentials = sts.assume_role(**request)["Credentials"]
            code, status = None, 200
        except ClientError as error:
            credentials = None
            code = error.response["Error"]["Code"]
            status = error.response["ResponseMetadata"]["HTTPStatusCode"]

    # Then only the right one gets credentials; the others get AccessDenied (403) from STS
    assert code == expected
    assert status == (403 if expected else 200)
    assert (credentials is not None) == (expected is None)


def test_a_role_with_no_external_id_rule_is_assumable_without_one(cluster):
    # Given faults that require an ExternalId for one role only
    faults = AwsFaults(clock=VirtualClock(), external_ids={(FLEET_ACCOUNT, ROLE_NAME): EXTERNAL_ID})
    sts = _client("sts")

    # When a step assumes another role, and the same role name in another account, without one
    with aws_faults(faults), faults.step("Preflight"):
        codes = [
            _code(
                lambda: sts.assume_role(
                    RoleArn=f"arn:aws:iam::{FLEET_ACCOUNT}:role/other", RoleSessionName="session"
                )
            ),
            _code(
                lambda: sts.assume_role(
                    RoleArn=f"arn:aws:iam::222222222222:role/{ROLE_NAME}", RoleSessionName="session"
                )
            ),
        ]

    # Then both succeed
    assert codes == [None, None]
