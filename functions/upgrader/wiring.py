"""Builds the gateways a step needs from Settings (the composition root of the Lambda steps)."""

from __future__ import annotations

from upgrader.gateways.aws import AwsSessionFactory
from upgrader.gateways.eks import BotoEksGateway, EksGateway
from upgrader.models import ClusterRef, RunRef
from upgrader.settings import Settings


def eks_for(cluster: ClusterRef, run: RunRef, settings: Settings) -> EksGateway:
    account = AwsSessionFactory(settings).for_cluster(cluster, run)
    return BotoEksGateway(account.eks())
