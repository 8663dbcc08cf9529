"""Builds the node group migration's gateways from Settings (its part of the composition root)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from upgrader.gateways.aws import AwsSessionFactory
from upgrader.gateways.cluster_nodes import ApiClusterNodesGateway, ClusterNodesGateway
from upgrader.gateways.kubernetes import api_client, eks_token
from upgrader.gateways.nodegroups import (
    BotoLaunchTemplateGateway,
    BotoNodegroupGateway,
    BotoParameterGateway,
    LaunchTemplateGateway,
    NodegroupGateway,
    ParameterGateway,
)
from upgrader.models import ClusterRef, RunRef
from upgrader.settings import Settings

if TYPE_CHECKING:
    from upgrader.gateways.aws import TargetAccount


@dataclass(frozen=True)
class MigrationGateways:
    eks: NodegroupGateway
    ec2: LaunchTemplateGateway
    ssm: ParameterGateway
    _account: TargetAccount
    _cluster: str

    @functools.cached_property
    def kube(self) -> ClusterNodesGateway:
        """The cluster's API server as the target role (DescribeCluster's endpoint and CA, an EKS
        token signed by the role): built on first use, so steps that never talk to it do not pay."""
        access = self.eks.describe_cluster_access(self._cluster)
        token = eks_token(self._account.client("sts"), self._cluster)
        return ApiClusterNodesGateway(api_client(access.endpoint, access.certificate_authority, token))


def migration_gateways(cluster: ClusterRef, run: RunRef, settings: Settings) -> MigrationGateways:
    account = AwsSessionFactory(settings).for_cluster(cluster, run)
    return MigrationGateways(
        eks=BotoNodegroupGateway(account.eks()),
        ec2=BotoLaunchTemplateGateway(account.client("ec2")),
        ssm=BotoParameterGateway(account.client("ssm")),
        _account=account,
        _cluster=cluster.name,
    )
