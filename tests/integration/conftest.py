"""Shared moto setup of the EKS extension's tests (test_eks_simulation, test_eks_nodegroups,
test_eks_addons): moto runs once per module, with one VPC whose subnets every cluster of the module uses;
each test makes its own clusters (unique names)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

REGION = "eu-west-1"
CLUSTER_ROLE_ARN = "arn:aws:iam::123456789012:role/eks-cluster-role"  # moto's default account

_cluster_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def subnets() -> Iterator[list[str]]:
    """A VPC with two subnets in moto, shared by every cluster of the module."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        yield [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in range(2)
        ]


@pytest.fixture
def eks(subnets: list[str]) -> Any:
    return boto3.client("eks", region_name=REGION)


@pytest.fixture
def make_cluster(eks: Any, subnets: list[str]) -> Callable[..., str]:
    """Create a cluster (and optionally a node group ``workers``) with moto's own API; returns its name."""

    def make(version: str = "1.23", nodegroup_version: str | None = None) -> str:
        name = f"cluster-{next(_cluster_numbers)}"
        eks.create_cluster(
            name=name, version=version, roleArn=CLUSTER_ROLE_ARN, resourcesVpcConfig={"subnetIds": subnets}
        )
        if nodegroup_version is not None:
            eks.create_nodegroup(
                clusterName=name,
                nodegroupName="workers",
                nodeRole=CLUSTER_ROLE_ARN,
                subnets=subnets,
                version=nodegroup_version,
            )
        return name

    return make
