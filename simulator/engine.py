"""The local engine: the real ``statemachines/*.asl.json`` executed by moto's Step Functions interpreter.

This is the ONLY module that touches moto internals (moto is pinned exactly in requirements-dev.txt;
tests/integration/test_engine.py fails loudly if a patched attribute moves). It makes four changes:

1. Lambda tasks are dispatched in-process to the real handlers (moto without Docker only echoes
   the payload): ``LambdaSimpleBackend.invoke`` looks up the function's ``Handler`` and calls it.
2. Wait states advance the :class:`VirtualClock` instead of blocking.
3. Retry intervals advance the clock instead of ``time.sleep``.
4. History event timestamps come from the clock, so the history reads in virtual time.

Everything else (JSONPath, Choice, Retry/Catch matching, error names from Lambda's ``errorType``,
the history) is moto's interpreter, a port of LocalStack's, unchanged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import io
import json
import logging
import os
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import moto
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from upgrader.catalog import STEPS

from simulator.clock import VirtualClock

PINNED_MOTO = "5.2.5"
ROOT = Path(__file__).resolve().parent.parent
STATEMACHINE_DIR = ROOT / "statemachines"
ORCHESTRATOR_ACCOUNT = "123456789012"  # moto's default account plays the central account
ORCHESTRATOR_REGION = "us-east-1"
# The orchestrator stack's reports bucket (RunData.reports_bucket): ReadinessCheck writes its reports here.
REPORT_BUCKET_NAME = f"eks-fleet-upgrader-reports-{ORCHESTRATOR_ACCOUNT}"
LAMBDA_RUNTIME = "python3.13"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


class EngineError(RuntimeError):
    """The local engine itself failed (not the workflow): a moto change, a hung execution."""


@dataclass
class Invocation:
    function: str
    started_at: float  # virtual seconds
    wall_seconds: float
    error: str | None


@dataclass
class ExecutionResult:
    arn: str
    name: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]
    started_at: float
    stopped_at: float
    invocations: list[Invocation] = field(default_factory=list)

    @property
    def virtual_duration_seconds(self) -> float:
        return self.stopped_at - self.started_at

    @property
    def state_transitions(self) -> int:
        """Billed transitions: every state entered, plus every retry attempt (AWS bills retries)."""
        entered = sum(1 for e in self.history if e["type"].endswith("StateEntered"))
        return entered + self.retries

    @property
    def retries(self) -> int:
        scheduled = sum(1 for e in self.history if e["type"] in ("LambdaFunctionScheduled", "TaskScheduled"))
        task_entries = sum(1 for e in self.history if e["type"] == "TaskStateEntered")
        return max(0, scheduled - task_entries)

    @property
    def lambda_invocations(self) -> int:
        return len(self.invocations)

    def states(self) -> list[tuple[dt.datetime, str]]:
        """(virtual timestamp, state name) for every state entered, in order."""
        rows = []
        for event in self.history:
            if event["type"].endswith("StateEntered"):
                details = next(v for k, v in event.items() if k.endswith("EventDetails"))
                rows.append((event["timestamp"], details["name"]))
        return rows


class _LambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    def __init__(self, function: dict[str, Any], clock: VirtualClock) -> None:
        self.function_name = function["FunctionName"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = function["FunctionArn"]
        self.memory_limit_in_mb = function.get("MemorySize", 256)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local-engine"
        self._timeout = function.get("Timeout", 60)

    def get_remaining_time_in_millis(self) -> int:
        return int(self._timeout * 1000)


Handler = Callable[[dict[str, Any], Any], Any]


class InProcessLambda:
    """Runs a Lambda function's handler in this process with the function's environment.

    Invocations are serialised by one lock: handlers run one at a time with their own environment
    variables applied, which keeps virtual time deterministic.
    """

    def __init__(self, clock: VirtualClock, log: io.TextIOBase) -> None:
        self.clock = clock
        self.log = log
        self.invocations: list[Invocation] = []
        # Context managers entered around each invocation, given the function name (fault
        # injection, call recording).
        self.around_invoke: list[Callable[[str], contextlib.AbstractContextManager[Any]]] = []
        # Called after each successful invocation with (function name, event, result): what a step
        # returned, as the state machine receives it (the simulator reads declared plans from it).
        self.after_invoke: list[Callable[[str, Any, Any], None]] = []
        self._lock = threading.RLock()
        self._handlers: dict[str, Handler] = {}

    def _resolve(self, handler_path: str) -> Handler:
        if handler_path not in self._handlers:
            module_name, _, attribute = handler_path.rpartition(".")
            self._handlers[handler_path] = getattr(importlib.import_module(module_name), attribute)
        return self._handlers[handler_path]

    def invoke(self, function: dict[str, Any], event: Any) -> tuple[bytes, bool]:
        """Returns (payload, errored). An exception becomes Lambda's Unhandled error payload."""
        with self._lock, _environment(function.get("Environment", {}).get("Variables", {})):
            started, wall = self.clock.now(), time.perf_counter()
            error: str | None = None
            try:
                with contextlib.ExitStack() as around:
                    for wrapper in self.around_invoke:
                        around.enter_context(wrapper(function["FunctionName"]))
                    around.enter_context(contextlib.redirect_stdout(self.log))  # type: ignore[type-var]
                    result = self._resolve(function["Handler"])(event, _LambdaContext(function, self.clock))
                payload = json.dumps(result).encode()
                for observer in self.after_invoke:
                    observer(function["FunctionName"], event, result)
            except Exception as exc:  # every handler failure is reported, as Lambda does
                error = getattr(exc, "lambda_error_type", type(exc).__name__)
                payload = json.dumps(
                    {
                        "errorType": error,
                        "errorMessage": str(exc),
                        "stackTrace": traceback.format_exception(exc)[-5:],
                    }
                ).encode()
            self.invocations.append(
                Invocation(function["FunctionName"], started, time.perf_counter() - wall, error)
            )
            return payload, error is not None


@contextlib.contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def moto_patches(clock: VirtualClock, runtime: InProcessLambda) -> Iterator[None]:
    """Apply the four patches described in the module docstring; restore them on exit."""
    if moto.__version__ != PINNED_MOTO:
        raise EngineError(
            f"simulator/engine.py is written against moto {PINNED_MOTO}, found {moto.__version__}"
        )

    def invoke(self: LambdaSimpleBackend, function_name, qualifier, body, headers, response_headers):  # type: ignore[no-untyped-def]
        function = self.get_function(function_name, qualifier).get_configuration()
        payload, errored = runtime.invoke(function, json.loads(body) if body else {})
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        return payload

    def wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
        clock.sleep(max(0, wait_seconds), why="Wait state")

    class _RetryTime:
        @staticmethod
        def sleep(seconds: float) -> None:
            clock.sleep(seconds, why="Retry interval")

    def timestamp() -> dt.datetime:
        return clock.datetime()

    saved = [
        (LambdaSimpleBackend, "invoke", LambdaSimpleBackend.invoke),
        (WaitFunction, "_wait_interval", WaitFunction._wait_interval),
        (retrier_decl, "time", retrier_decl.time),
        (EventManager, "_get_current_timestamp", EventManager.__dict__["_get_current_timestamp"]),
    ]
    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]
    retrier_decl.time = _RetryTime  # type: ignore[assignment]
    EventManager._get_current_timestamp = staticmethod(timestamp)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def render_definition(text: str, substitutions: Mapping[str, str]) -> str:
    """Apply definition substitutions as CloudFormation does for ``DefinitionSubstitutions``."""
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", value)
    if "${" in text:
        start = text.index("${")
        raise EngineError(f"unsupplied substitution {text[start : text.index('}', start) + 1]}")
    return text


class LocalEngine:
    """moto (every AWS service) + the patched interpreter + the catalog's functions and state machines.

    Use as a context manager; inside it, boto3 calls in this process go to moto.
    """

    def __init__(
        self,
        clock: VirtualClock | None = None,
        function_environment: Mapping[str, str] | None = None,
        log: io.TextIOBase | None = None,
    ) -> None:
        self.clock = clock or VirtualClock()
        self.function_environment = dict(function_environment or {})
        self.runtime = InProcessLambda(self.clock, log or io.StringIO())
        self.state_machines: dict[str, str] = {}
        self.function_arns: dict[str, str] = {}
        self.report_bucket = REPORT_BUCKET_NAME
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> LocalEngine:
        # moto's interpreter logs every failed state at ERROR with its whole parse tree; the
        # workflow's own failures are reported by us, from the execution history.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        self._stack.enter_context(mock_aws(config=MOTO_CONFIG))
        self._stack.enter_context(moto_patches(self.clock, self.runtime))
        self._deploy()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=ORCHESTRATOR_REGION)

    @property
    def function_variables(self) -> dict[str, str]:
        """Every function's environment: the caller's, plus what the stack and Lambda itself set
        (the reports bucket; Lambda's region variables, which the central-account clients read)."""
        return {
            "AWS_REGION": ORCHESTRATOR_REGION,
            "AWS_DEFAULT_REGION": ORCHESTRATOR_REGION,
            "REPORT_BUCKET_NAME": self.report_bucket,
            **self.function_environment,
        }

    def _deploy(self) -> None:
        """Create what the CDK stack creates, as far as executing the workflows needs."""
        self.client("s3").create_bucket(Bucket=self.report_bucket)
        iam = self.client("iam")
        role_arn = iam.create_role(RoleName="local-engine", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("README", "code runs in-process from functions/")
        lam = self.client("lambda")
        for step in STEPS:
            created = lam.create_function(
                FunctionName=step.name,
                Runtime=LAMBDA_RUNTIME,
                Role=role_arn,
                Handler=step.handler,
                Code={"ZipFile": archive.getvalue()},
                Timeout=60,
                Environment={"Variables": self.function_variables},
            )
            self.function_arns[step.arn_variable] = created["FunctionArn"]
        sfn = self.client("stepfunctions")
        for path in sorted(STATEMACHINE_DIR.glob("*.asl.json")):
            name = path.name.removesuffix(".asl.json")
            definition = render_definition(path.read_text(), self.function_arns)
            self.state_machines[name] = sfn.create_state_machine(
                name=name, definition=definition, roleArn=role_arn
            )["stateMachineArn"]

    def start(self, machine: str, name: str, execution_input: Any) -> str:
        return self.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machines[machine], name=name, input=json.dumps(execution_input)
        )["executionArn"]

    def wait(self, execution_arn: str, started_at: float, real_timeout: float = 120.0) -> ExecutionResult:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + real_timeout
        pause = 0.001
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                raise EngineError(f"{execution_arn} still RUNNING after {real_timeout}s of real time")
            time.sleep(pause)  # real time: the execution runs in moto's thread meanwhile
            pause = min(pause * 2, 0.025)
        history: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn}
        while True:
            page = sfn.get_execution_history(**kwargs)
            history.extend(page["events"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        output = described.get("output")
        return ExecutionResult(
            arn=execution_arn,
            name=described["name"],
            status=described["status"],
            output=json.loads(output) if output else None,
            error=described.get("error"),
            cause=described.get("cause"),
            history=history,
            started_at=started_at,
            stopped_at=self.clock.now(),
        )

    def run(self, machine: str, name: str, execution_input: Any) -> ExecutionResult:
        started_at = self.clock.now()
        first_invocation = len(self.runtime.invocations)
        result = self.wait(self.start(machine, name, execution_input), started_at)
        result.invocations = self.runtime.invocations[first_invocation:]
        return result
