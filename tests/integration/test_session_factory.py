"""The one session factory: assume the target role with ExternalId and a traceable session name."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from upgrader.errors import TargetRoleNotAssumable
from upgrader.gateways.aws import AwsSessionFactory, partition_for, session_name
from upgrader.models import ClusterRef, RunRef
from upgrader.settings import Settings

from simulator.clock import VirtualClock
from simulator.faults import AwsFaults, aws_faults

RUN = RunRef(execution_id="arn:aws:states:us-east-1:123456789012:execution:m:run/1", execution_name="run/1 x")
CLUSTER = ClusterRef(account_id="111111111111", region="eu-west-1", name="payments-prod")


@pytest.fixture
def faults():
    clock = VirtualClock()
    recorder = AwsFaults(clock=clock, external_ids={("111111111111", "eks-fleet-upgrader-target"): "ext-123"})
    with mock_aws(), aws_faults(recorder), recorder.step("Preflight"):
        yield recorder


def test_assumes_the_default_target_role_with_external_id_and_named_session(faults):
    factory = AwsSessionFactory(Settings(external_id="ext-123"), base_session=boto3.Session())
    account = factory.for_cluster(CLUSTER, RUN)
    identity = account.client("sts").get_caller_identity()
    # Then the clients act in the target account, as the role, under a session naming the run
    assert identity["Account"] == "111111111111"
    assert identity["Arn"].endswith(f"assumed-role/eks-fleet-upgrader-target/{session_name(RUN)}")
    assert next(c.operation for c in faults.calls if c.service == "sts") == "AssumeRole"


def test_session_name_is_sanitised_and_bounded():
    name = session_name(RunRef(execution_id="x", execution_name="a" * 100 + "/b"))
    assert len(name) <= 64 and "/" not in name
    assert session_name(RUN) == "eks-upgrade-run-1-x"


def test_wrong_external_id_is_a_named_terminal_error(faults):
    factory = AwsSessionFactory(Settings(external_id="wrong"), base_session=boto3.Session())
    with pytest.raises(TargetRoleNotAssumable) as caught:
        factory.for_cluster(CLUSTER, RUN)
    assert caught.value.details["roleArn"] == "arn:aws:iam::111111111111:role/eks-fleet-upgrader-target"


def test_per_cluster_role_and_external_id_override(faults):
    faults.external_ids[("111111111111", "custom")] = "cluster-specific"
    cluster = CLUSTER.model_copy(
        update={"role_arn": "arn:aws:iam::111111111111:role/custom", "external_id": "cluster-specific"}
    )
    factory = AwsSessionFactory(Settings(external_id="ext-123"), base_session=boto3.Session())
    identity = factory.for_cluster(cluster, RUN).client("sts").get_caller_identity()
    assert "assumed-role/custom/" in identity["Arn"]


def test_one_client_config_with_standard_retries_and_timeouts():
    factory = AwsSessionFactory(Settings(aws_max_attempts=3, aws_read_timeout=7))
    assert factory.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert factory.config.read_timeout == 7
    assert factory.config.connect_timeout == 5


@pytest.mark.parametrize(
    ("region", "partition"), [("eu-west-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")]
)
def test_role_arn_uses_the_regions_partition(region, partition):
    factory = AwsSessionFactory(Settings())
    arn = factory.target_role_arn(CLUSTER.model_copy(update={"region": region}))
    assert arn.startswith(f"arn:{partition}:iam::111111111111:role/")
    assert partition_for(region) == partition
