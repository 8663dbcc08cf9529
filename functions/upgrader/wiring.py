"""Builds the gateways a step needs from Settings (the composition root of the Lambda steps)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from upgrader.errors import StepMisconfigured, UnexpectedAwsError
from upgrader.gateways.aws import AwsSessionFactory, TargetAccount
from upgrader.gateways.cluster_nodes import ApiClusterNodesGateway, ClusterNodesGateway
from upgrader.gateways.ec2 import BotoEc2Gateway, Ec2Gateway, LaunchTemplateGateway
from upgrader.gateways.eks import BotoEksGateway, ClusterInfo, EksGateway, NodegroupLifecycle
from upgrader.gateways.kubernetes import (
    ApiKubernetesGateway,
    KubernetesGateway,
    TokenRefresher,
    api_client,
    eks_token,
    retry_policy,
)
from upgrader.gateways.reports import ReportStore, S3ReportStore
from upgrader.gateways.ssm import BotoSsmGateway, ParameterGateway
from upgrader.models import ClusterRef, RunRef
from upgrader.settings import Settings

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


def eks_for(cluster: ClusterRef, run: RunRef, settings: Settings) -> EksGateway:
    account = AwsSessionFactory(settings).for_cluster(cluster, run)
    return BotoEksGateway(account.eks())


def cluster_api(
    cluster_info: ClusterInfo, target_account: TargetAccount, *, max_retries: int | None = None
) -> ApiClient:
    """The cluster's API server as the target role: DescribeCluster's endpoint and CA, and an EKS token
    signed by the role's credentials (re-minted as the step goes on; tokens live 60 s)."""
    if not cluster_info.endpoint:
        raise UnexpectedAwsError(
            f"DescribeCluster gave cluster {cluster_info.name} no API endpoint", cluster=cluster_info.name
        )
    mint = functools.partial(eks_token, target_account.client("sts"), cluster_info.name)
    retry = retry_policy(max_retries) if max_retries is not None else None
    api = api_client(cluster_info.endpoint, cluster_info.certificate_authority, mint(), retry=retry)
    api.configuration.refresh_api_key_hook = TokenRefresher(mint)
    return api


def kubernetes_for(cluster_info: ClusterInfo, target_account: TargetAccount) -> KubernetesGateway:
    return ApiKubernetesGateway(cluster_api(cluster_info, target_account))


def report_store(settings: Settings) -> ReportStore:
    if not settings.report_bucket_name:
        raise StepMisconfigured("REPORT_BUCKET_NAME is not set: the step has nowhere to write its report")
    return S3ReportStore(AwsSessionFactory(settings).central_s3(), settings.report_bucket_name)


@dataclass(frozen=True)
class ReadinessGateways:
    eks: EksGateway
    ec2: Ec2Gateway
    kubernetes: Callable[[ClusterInfo], KubernetesGateway]
    store: ReportStore


def readiness_gateways(cluster: ClusterRef, run: RunRef, settings: Settings) -> ReadinessGateways:
    store = report_store(settings)  # a misconfigured step fails before it assumes any role
    account = AwsSessionFactory(settings).for_cluster(cluster, run)
    return ReadinessGateways(
        eks=BotoEksGateway(account.eks()),
        ec2=BotoEc2Gateway(account.ec2()),
        kubernetes=functools.partial(kubernetes_for, target_account=account),
        store=store,
    )


@dataclass(frozen=True)
class MigrationGateways:
    """The node group migration's gateways; the Kubernetes one is built on first use, so steps that
    never talk to the cluster do not pay for it (nor for its DescribeCluster)."""

    eks: NodegroupLifecycle
    ec2: LaunchTemplateGateway
    ssm: ParameterGateway
    account: TargetAccount
    cluster: str
    kubernetes_max_retries: int

    @functools.cached_property
    def kube(self) -> ClusterNodesGateway:
        info = self.eks.describe_cluster(self.cluster)
        return ApiClusterNodesGateway(
            cluster_api(info, self.account, max_retries=self.kubernetes_max_retries)
        )


def migration_gateways(cluster: ClusterRef, run: RunRef, settings: Settings) -> MigrationGateways:
    account = AwsSessionFactory(settings).for_cluster(cluster, run)
    return MigrationGateways(
        eks=BotoEksGateway(account.eks()),
        ec2=BotoEc2Gateway(account.ec2()),
        ssm=BotoSsmGateway(account.client("ssm")),
        account=account,
        cluster=cluster.name,
        kubernetes_max_retries=settings.kubernetes_max_retries,
    )
