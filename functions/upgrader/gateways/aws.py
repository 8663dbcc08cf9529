"""The one AWS session factory and the one translation of AWS errors into the error tree.

Every client the steps use is created here: the target-account role is assumed with the
ExternalId and a session name carrying the execution, and every client shares one botocore
Config (standard retries, connect/read timeouts).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from upgrader.errors import (
    AwsAccessDenied,
    AwsThrottled,
    TargetRoleNotAssumable,
    TransientAwsError,
    UnexpectedAwsError,
    UpgradeError,
)
from upgrader.models import ClusterRef, RunRef
from upgrader.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_eks import EKSClient
    from mypy_boto3_s3 import S3Client

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
_SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")


class AlreadyExists(Exception):
    """A create found the name taken (EKS ResourceInUseException, EC2 ...AlreadyExistsException).

    Not part of the error tree: the domain decides whether what exists is its own to adopt.
    """


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def session_name(run: RunRef) -> str:
    """RoleSessionName shows in the target account's CloudTrail: it names the execution."""
    return _SESSION_NAME_UNSAFE.sub("-", f"eks-upgrade-{run.execution_name}")[:64]


def translate_client_error(error: ClientError, operation: str) -> UpgradeError:
    """Map an AWS error to the error tree; the caller adds service-specific cases first."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    details = {"operation": operation, "awsErrorCode": code, "awsMessage": message}
    if code in THROTTLING_CODES or status == 429:
        return AwsThrottled(f"{operation} throttled", **details)
    if code in ACCESS_DENIED_CODES:
        return AwsAccessDenied(f"{operation} denied to the target role", **details)
    if status >= 500 or code in {"ServiceUnavailable", "InternalFailure", "ServerException"}:
        return TransientAwsError(f"{operation} failed on the AWS side", httpStatus=status, **details)
    return UnexpectedAwsError(f"{operation} failed", httpStatus=status, **details)


def json_safe(value: Any) -> Any:
    """A botocore response in the API's JSON shape: timestamps (parsed into datetimes by botocore) back
    to ISO 8601, ``ResponseMetadata`` dropped. Facts handed to the rule engine and reports look like this."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


@contextmanager
def aws_errors(operation: str) -> Iterator[None]:
    """Translate botocore errors raised inside the block (ClientErrors already handled pass through)."""
    try:
        yield
    except ClientError as error:
        raise translate_client_error(error, operation) from error
    except (ConnectionError, ReadTimeoutError) as error:
        raise TransientAwsError(f"{operation}: {type(error).__name__}", operation=operation) from error
    except BotoCoreError as error:
        raise UnexpectedAwsError(f"{operation}: {error}", operation=operation) from error


@functools.cache
def _container_session() -> boto3.Session:
    """One base session per Lambda container: service models are loaded once, not per invocation.
    Assumed-role clients are made from it with explicit credentials, sharing its loader cache."""
    return boto3.Session()


class AwsSessionFactory:
    def __init__(self, settings: Settings, base_session: boto3.Session | None = None) -> None:
        self._settings = settings
        self._base = base_session or _container_session()
        self.config = Config(
            # total_max_attempts counts the first attempt too (max_attempts would count retries only).
            retries={"mode": "standard", "total_max_attempts": settings.aws_max_attempts},
            connect_timeout=settings.aws_connect_timeout,
            read_timeout=settings.aws_read_timeout,
            user_agent_extra="eks-fleet-upgrader",
        )

    def central_s3(self) -> S3Client:
        """S3 in the orchestrator's own account and region (the Lambda's credentials): run reports."""
        return self._base.client("s3", config=self.config)  # type: ignore[no-any-return]

    def central_stepfunctions(self) -> Any:
        """Step Functions in the orchestrator's own account (the Lambda's credentials): the run's history."""
        return self._base.client("stepfunctions", config=self.config)

    def target_role_arn(self, cluster: ClusterRef) -> str:
        if cluster.role_arn:
            return cluster.role_arn
        partition = partition_for(cluster.region)
        return f"arn:{partition}:iam::{cluster.account_id}:role/{self._settings.target_role_name}"

    def for_cluster(self, cluster: ClusterRef, run: RunRef) -> TargetAccount:
        """Assume the target-account role for this cluster's account (short-lived credentials)."""
        sts = self._base.client(
            "sts",
            region_name=cluster.region,
            endpoint_url=f"https://sts.{cluster.region}.amazonaws.com",
            config=self.config,
        )
        request: dict[str, Any] = {
            "RoleArn": self.target_role_arn(cluster),
            "RoleSessionName": session_name(run),
            "DurationSeconds": 900,
        }
        external_id = cluster.external_id or self._settings.external_id
        if external_id:
            request["ExternalId"] = external_id
        try:
            credentials = sts.assume_role(**request)["Credentials"]
        except ClientError as error:
            translated = translate_client_error(error, "sts:AssumeRole")
            if isinstance(translated, AwsAccessDenied):
                raise TargetRoleNotAssumable(
                    f"cannot assume {request['RoleArn']}: check its trust policy, ExternalId and org condition",
                    roleArn=request["RoleArn"],
                    awsErrorCode=translated.details.get("awsErrorCode"),
                ) from error
            raise translated from error
        return TargetAccount(self._base, credentials, cluster.region, self.config)


class TargetAccount:
    """Clients in one target account and region, all sharing the factory's Config."""

    def __init__(self, base: boto3.Session, credentials: dict[str, Any], region: str, config: Config) -> None:
        self._base = base
        self._credentials = credentials
        self.region = region
        self._config = config

    def client(self, service: str) -> Any:
        return self._base.client(
            service,  # type: ignore[call-overload]
            region_name=self.region,
            aws_access_key_id=self._credentials["AccessKeyId"],
            aws_secret_access_key=self._credentials["SecretAccessKey"],
            aws_session_token=self._credentials["SessionToken"],
            config=self._config,
        )

    def eks(self) -> EKSClient:
        return self.client("eks")  # type: ignore[no-any-return]

    def ec2(self) -> EC2Client:
        return self.client("ec2")  # type: ignore[no-any-return]
