"""One contract, two implementations of Ec2Gateway: the in-memory fake and BotoEc2Gateway on moto."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws
from upgrader.errors import AwsResourceNotFound
from upgrader.gateways.ec2 import BotoEc2Gateway, Ec2Gateway, decode_user_data

from tests.fakes import FakeEc2Gateway

BOOTSTRAP = "#!/bin/bash\n/etc/eks/bootstrap.sh payments --container-runtime dockerd\n"


@dataclass
class Harness:
    gateway: Ec2Gateway
    add_subnet: Callable[[], str]  # -> subnet id
    add_template: Callable[..., dict[str, str]]  # (name, user_data, versions=1) -> {"id", "name", "version"}


def _fake() -> Iterator[Harness]:
    fake = FakeEc2Gateway()
    count = iter(range(1, 100))

    def add_subnet() -> str:
        subnet = f"subnet-{next(count):017x}"
        fake.add_subnet(subnet, 251)
        return subnet

    yield Harness(fake, add_subnet, fake.add_launch_template)


def _real() -> Iterator[Harness]:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="eu-west-1")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        count = iter(range(100))

        def add_subnet() -> str:
            return ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{next(count)}.0/24")["Subnet"]["SubnetId"]

        def add_template(name: str, user_data: str | None, versions: int = 1) -> dict[str, str]:
            data = (
                {"UserData": base64.b64encode(user_data.encode()).decode()} if user_data is not None else {}
            )
            created = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
            template_id = created["LaunchTemplate"]["LaunchTemplateId"]
            for _ in range(versions - 1):
                ec2.create_launch_template_version(LaunchTemplateId=template_id, LaunchTemplateData=data)
            return {"id": template_id, "name": name, "version": str(versions)}

        yield Harness(BotoEc2Gateway(ec2), add_subnet, add_template)


@pytest.fixture(params=["fake", "real"])
def harness(request) -> Iterator[Harness]:
    yield from (_fake() if request.param == "fake" else _real())


def test_subnets_report_their_free_addresses(harness):
    first, second = harness.add_subnet(), harness.add_subnet()
    subnets = harness.gateway.describe_subnets([first, second])
    assert sorted(s["SubnetId"] for s in subnets) == sorted([first, second])
    assert all(s["AvailableIpAddressCount"] == 251 for s in subnets)  # a /24 less the 5 AWS keeps
    assert harness.gateway.describe_subnets([]) == []


def test_a_missing_subnet_is_resource_not_found(harness):
    known = harness.add_subnet()
    with pytest.raises(AwsResourceNotFound):
        harness.gateway.describe_subnets([known, "subnet-0123456789abcdef0"])


def test_user_data_of_a_launch_template_version_is_decoded_text(harness):
    ref = harness.add_template("payments-general", BOOTSTRAP, versions=2)
    by_id = harness.gateway.launch_template_user_data(template_id=ref["id"], template_name=None, version="2")
    by_name = harness.gateway.launch_template_user_data(
        template_id=None, template_name="payments-general", version="$Latest"
    )
    default = harness.gateway.launch_template_user_data(
        template_id=ref["id"], template_name=None, version=None
    )
    assert by_id == by_name == default == BOOTSTRAP


def test_a_template_without_user_data_has_none(harness):
    ref = harness.add_template("bare", None)
    assert (
        harness.gateway.launch_template_user_data(template_id=ref["id"], template_name=None, version="1")
        is None
    )


def test_a_missing_template_or_version_is_resource_not_found(harness):
    ref = harness.add_template("one-version", BOOTSTRAP)
    with pytest.raises(AwsResourceNotFound):
        harness.gateway.launch_template_user_data(template_id=ref["id"], template_name=None, version="7")
    with pytest.raises(AwsResourceNotFound):
        harness.gateway.launch_template_user_data(
            template_id="lt-0123456789abcdef0", template_name=None, version="1"
        )


def test_user_data_that_is_not_base64_is_kept_as_it_is():
    assert decode_user_data("#!/bin/bash\necho hi\n") == "#!/bin/bash\necho hi\n"
    assert decode_user_data(base64.b64encode(b"echo hi").decode()) == "echo hi"
