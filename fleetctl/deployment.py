"""Where the operator commands find the deployed orchestrator, and the one AWS session they use.

Each resource is taken from, in order: its flag, its environment variable, the orchestrator stack
(CloudFormation outputs, then the stack's resources by type). The fleet report's bucket is not configured:
the fleet execution's history says where WriteFleetReport wrote it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_STACK = "EksFleetUpgraderOrchestrator"  # infra/application.py ORCHESTRATOR_STACK_ID
FLEET_STATE_MACHINE_OUTPUT = "FleetUpgradeStateMachineArn"  # OrchestratorStack: <Workflow>StateMachineArn
RUN_TABLE_OUTPUT = "RunTableName"
# Standard retries, bounded timeouts: the operator's terminal must not hang on a dead connection.
BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=30)


class Console:
    """Where the commands write: sys.stdout and sys.stderr, unless captured. The e2e tests capture it rather
    than swap sys.stdout, because the local engine's in-process Lambda handlers swap sys.stdout (to their log)
    from other threads while fleetctl runs."""

    def __init__(self) -> None:
        self.out: TextIO | None = None
        self.err: TextIO | None = None

    @property
    def stdout(self) -> TextIO:
        return self.out or sys.stdout

    @property
    def stderr(self) -> TextIO:
        return self.err or sys.stderr

    @contextlib.contextmanager
    def capture(self, out: TextIO, err: TextIO) -> Iterator[None]:
        saved = self.out, self.err
        self.out, self.err = out, err
        try:
            yield
        finally:
            self.out, self.err = saved


CONSOLE = Console()


def say(*parts: object, end: str = "\n", flush: bool = False) -> None:
    print(*parts, end=end, flush=flush, file=CONSOLE.stdout)


class OperatorError(Exception):
    """The command could not do its job (configuration, AWS error, no such execution): exit code 4."""


@dataclass
class Deployment:
    session: boto3.Session
    stack: str = DEFAULT_STACK
    explicit_state_machine: str | None = None
    explicit_table: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict)
    _stack: dict[str, Any] | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Deployment:
        try:
            session = boto3.Session(profile_name=args.profile, region_name=args.region)
        except BotoCoreError as error:
            raise OperatorError(f"AWS session: {error}") from error
        return cls(
            session=session,
            stack=args.stack or os.environ.get("FLEETCTL_STACK") or DEFAULT_STACK,
            explicit_state_machine=getattr(args, "state_machine", None)
            or os.environ.get("FLEETCTL_STATE_MACHINE_ARN"),
            explicit_table=getattr(args, "table", None) or os.environ.get("FLEETCTL_RUN_TABLE"),
        )

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=BOTO_CONFIG)
        return self._clients[service]

    def _describe_stack(self) -> dict[str, Any]:
        if self._stack is None:
            try:
                self._stack = self.client("cloudformation").describe_stacks(StackName=self.stack)["Stacks"][0]
            except ClientError as error:
                raise OperatorError(
                    f"cannot read stack {self.stack} ({error.response['Error'].get('Message', error)}): "
                    "give --stack, or --state-machine / --table"
                ) from error
        return self._stack

    def _output(self, key: str) -> str | None:
        for output in self._describe_stack().get("Outputs", []):
            if output["OutputKey"] == key:
                return str(output["OutputValue"])
        return None

    def _only_resource(self, resource_type: str) -> str | None:
        found: list[str] = []
        paginator = self.client("cloudformation").get_paginator("list_stack_resources")
        try:
            for page in paginator.paginate(StackName=self.stack):
                found += [
                    r["PhysicalResourceId"]
                    for r in page["StackResourceSummaries"]
                    if r["ResourceType"] == resource_type
                ]
        except ClientError as error:
            raise OperatorError(f"cannot list the resources of stack {self.stack}: {error}") from error
        return found[0] if len(found) == 1 else None

    def state_machine_arn(self) -> str:
        arn = self.explicit_state_machine or self._output(FLEET_STATE_MACHINE_OUTPUT)
        if not arn:
            raise OperatorError(
                f"stack {self.stack} has no output {FLEET_STATE_MACHINE_OUTPUT}: give --state-machine"
            )
        return arn

    def run_table(self) -> str:
        if self.explicit_table:
            return self.explicit_table
        self._describe_stack()
        table = self._output(RUN_TABLE_OUTPUT) or self._only_resource("AWS::DynamoDB::Table")
        if not table:
            raise OperatorError(f"cannot tell the run table of stack {self.stack}: give --table")
        return table

    def execution_arn(self, execution: str) -> str:
        """An execution ARN, or a name of an execution of the fleet state machine."""
        if execution.startswith("arn:"):
            return execution
        machine = self.state_machine_arn()
        return machine.replace(":stateMachine:", ":execution:", 1) + f":{execution}"


def add_common_options(parser: argparse.ArgumentParser, *, state_machine: bool, table: bool) -> None:
    parser.add_argument("--profile", help="AWS profile (default: the usual AWS environment)")
    parser.add_argument("--region", help="the orchestrator's region (default: the profile's)")
    parser.add_argument(
        "--stack", help=f"the orchestrator stack (env FLEETCTL_STACK, default {DEFAULT_STACK})"
    )
    if state_machine:
        parser.add_argument(
            "--state-machine", help="the fleet state machine ARN (env FLEETCTL_STATE_MACHINE_ARN)"
        )
    if table:
        parser.add_argument("--table", help="the run table's name (env FLEETCTL_RUN_TABLE)")
