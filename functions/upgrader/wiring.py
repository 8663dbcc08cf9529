"""Builds the gateways a step needs from Settings (the composition root of the Lambda steps)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from upgrader.errors import StepMisconfigured, UnexpectedAwsError
from upgrader.gateways.aws import AwsSessionFactory, TargetAccount
from upgrader.gateways.ec2 import BotoEc2Gateway, Ec2Gateway
from upgrader.gateways.eks import BotoEksGateway, ClusterInfo, EksGateway
from upgrader.gateways.kubernetes import (
    ApiKubernetesGateway,
    KubernetesGateway,
    TokenRefresher,
    api_client,
    eks_token,
)
from upgrader.gateways.reports import ReportStore, S3ReportStore
from upgrader.models import ClusterRef, RunRef
from upgrader.settings import Settings


def eks_for(cluster: ClusterRef, run: RunRef, settings: Settings) -> EksGateway:
    account = AwsSessionFactory(settings).for_cluster(cluster, run)
    return BotoEksGateway(account.eks())


def kubernetes_for(cluster_info: ClusterInfo, target_account: TargetAccount) -> KubernetesGateway:
    """The cluster's API server as the target role: DescribeCluster's endpoint and CA, and an EKS token
    signed by the role's credentials (re-minted as the scan goes on; tokens live 60 s)."""
    if not cluster_info.endpoint:
        raise UnexpectedAwsError(
            f"DescribeCluster gave cluster {cluster_info.name} no API endpoint", cluster=cluster_info.name
        )
    mint = functools.partial(eks_token, target_account.client("sts"), cluster_info.name)
    api = api_client(cluster_info.endpoint, cluster_info.certificate_authority, mint())
    api.configuration.refresh_api_key_hook = TokenRefresher(mint)
    return ApiKubernetesGateway(api)


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
