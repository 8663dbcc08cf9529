"""SSM behind a small interface: the public parameters EKS publishes its optimized AMIs under.

The domain talks to :class:`ParameterGateway`; tests use the fake in tests/fakes.py, and
tests/integration/test_migration_gateway_contract.py proves the two agree."""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import ClientError

from upgrader.gateways.aws import aws_errors, translate_client_error


class ParameterGateway(Protocol):
    def get_parameter(self, name: str) -> str | None:
        """The parameter's value, None when there is no such parameter."""
        ...


class BotoSsmGateway:
    def __init__(self, client: Any) -> None:
        self._client = client

    def get_parameter(self, name: str) -> str | None:
        with aws_errors("ssm:GetParameter"):
            try:
                return str(self._client.get_parameter(Name=name)["Parameter"]["Value"])
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
                    return None
                raise translate_client_error(error, "ssm:GetParameter") from error
