"""EKS bearer tokens: made by the product (upgrader.gateways.kubernetes.eks_token), checked by the
emulated API server (simulator/kube/tokens.py) the way the EKS authenticator reads them."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws
from upgrader.gateways.kubernetes import eks_token

from simulator.kube.tokens import check_token, moto_secret_key, token_checker

REGION = "eu-west-1"
ACCOUNT = "111111111111"
CLUSTER = "payments-prod"
FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@pytest.fixture(scope="module")
def sts() -> Iterator[Any]:
    """An STS client signing as a role in the target account (moto)."""
    with mock_aws():
        creds = boto3.client("sts", region_name=REGION).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/eks-fleet-upgrader-target", RoleSessionName="unit-test"
        )["Credentials"]
        yield boto3.client(
            "sts",
            region_name=REGION,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )


def url_of(token: str) -> str:
    encoded = token.removeprefix("k8s-aws-v1.")
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()


def token_of(url: str) -> str:
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def signed_at(token: str) -> float:
    date = parse_qs(urlsplit(url_of(token)).query)["X-Amz-Date"][0]
    return dt.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC).timestamp()


def check(token: str, **overrides: Any) -> bool | str:
    """check_token for CLUSTER in ACCOUNT, one second after the token was signed unless told."""
    arguments: dict[str, Any] = {"expected_cluster": CLUSTER, "expected_account": ACCOUNT, **overrides}
    if "now" not in arguments:
        arguments["now"] = signed_at(token) + 1
    return check_token(token, **arguments)


def test_the_product_token_is_a_presigned_get_caller_identity_url_signing_the_cluster_header(sts):
    token = eks_token(sts, CLUSTER)
    # Then it has the EKS shape: prefix, unpadded base64url of a regional STS URL
    assert token.startswith("k8s-aws-v1.") and not token.endswith("=")
    url = urlsplit(url_of(token))
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == ("https", f"sts.{REGION}.amazonaws.com", "/")
    assert query["Action"] == ["GetCallerIdentity"] and query["Version"] == ["2011-06-15"]
    assert query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
    # And the cluster name is signed, not carried
    assert CLUSTER not in url_of(token)
    # And making a second token does not stack the event handlers
    assert check(eks_token(sts, CLUSTER)) is True


def test_round_trip_accepts_the_token_for_its_cluster_and_account(sts):
    token = eks_token(sts, CLUSTER)
    assert check(token) is True
    # With the secret key the signature is recomputed, which proves the cluster name too
    assert check(token, secret_key_for=moto_secret_key) is True
    checker = token_checker({"c1": (CLUSTER, ACCOUNT)})
    assert checker("c1", token) is True
    assert checker("c2", token) == "unknown cluster c2"


def test_a_token_without_the_prefix_is_refused(sts):
    token = eks_token(sts, CLUSTER)
    assert check(token.removeprefix("k8s-aws-v1."), now=None) == "token does not start with k8s-aws-v1."
    assert check("Bearer " + token, now=None) == "token does not start with k8s-aws-v1."
    assert check("k8s-aws-v1.%%%", now=None) == "token is not base64url-encoded"


def test_a_presigned_url_for_another_action_or_host_is_refused(sts):
    token = eks_token(sts, CLUSTER)
    other_action = token_of(url_of(token).replace("Action=GetCallerIdentity", "Action=GetSessionToken"))
    assert check(other_action) == "unexpected action in the presigned URL (want GetCallerIdentity)"
    other_host = token_of(url_of(token).replace(f"sts.{REGION}.amazonaws.com", "sts.evil.example"))
    assert "presigned https://sts.<region>.amazonaws.com/ URL" in str(check(other_host))


def test_a_token_that_does_not_sign_the_cluster_header_is_refused(sts):
    # A plain presigned GetCallerIdentity (no x-k8s-aws-id) would open every cluster of the account
    url = sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    assert check(token_of(url)) == "the x-k8s-aws-id header is not signed"


def test_an_expired_token_is_refused(sts):
    token = eks_token(sts, CLUSTER)
    assert check(token, now=signed_at(token) + 60) is True
    assert str(check(token, now=signed_at(token) + 61)).startswith("token expired at ")
    long_lived = eks_token(sts, CLUSTER, expires_seconds=900)
    assert check(long_lived) == "X-Amz-Expires must be between 1 and 60 (got 900)"


def test_a_token_signed_in_another_account_is_refused(sts):
    token = eks_token(sts, CLUSTER)
    assert check(token, expected_account="222222222222") == (
        f"token was signed by account {ACCOUNT}; the cluster is in account 222222222222"
    )


def test_a_token_made_for_another_cluster_fails_the_signature_check(sts):
    token = eks_token(sts, "another-cluster")
    assert check(token) is True  # from the URL alone the cluster name cannot be told
    assert check(token, secret_key_for=moto_secret_key) == (
        f"signature does not match (was the token made for cluster {CLUSTER}?)"
    )


def test_eks_token_rejects_a_lifetime_eks_would_not_accept(sts):
    with pytest.raises(ValueError):
        eks_token(sts, CLUSTER, expires_seconds=3600)


def test_importing_the_gateway_does_not_import_kubernetes():
    # Cold start: only the steps that build a client pay for the kubernetes package
    code = "import sys, upgrader.gateways.kubernetes; print('kubernetes' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(FUNCTIONS)},
    )
    assert result.stdout.strip() == "False"
