"""The local engine: the real ``statemachines/*.asl.json`` executed by moto's Step Functions interpreter.

This is the ONLY module that touches moto internals (moto is pinned exactly in requirements-dev.txt;
tests/integration/test_engine.py fails loudly if a patched attribute moves). Its patch points:

1. ``LambdaSimpleBackend.invoke``: Lambda tasks are dispatched in-process to the real handlers (moto
   without Docker only echoes the payload); the function's ``Handler`` is imported and called.
2. ``WaitFunction._wait_interval``: Wait states sleep on the :class:`VirtualClock` (cancelled when
   their execution stops) instead of blocking.
3. ``retrier_decl.time``: Retry intervals sleep on the clock instead of ``time.sleep``.
4. ``EventManager._get_current_timestamp``: history timestamps come from the clock.
5. ``datetime`` in ``...asl.component.state.state``, ``...parser.models`` and ``...backend.execution``:
   ``$$.State.EnteredTime`` and the executions' start and stop dates (DescribeExecution, the sync:2
   output) are virtual too.
6. Flows for the discrete-event clock (see simulator/clock.py): ``ExecutionWorker.start`` (each
   execution is a flow; its end releases the tasks waiting for it), ``InlineIterationComponent.
   _launch_worker`` with ``JobPool.close_job`` / ``JobPool.await_jobs`` (each Map worker is a flow,
   the Map state waits parked), ``BranchWorker.start`` with ``BranchWorkerPool.on_terminated`` /
   ``BranchWorkerPool.wait`` (the same for Parallel branches).
7. ``StateTaskServiceSfn``: ``arn:aws:states:::states:startExecution`` (request-response, ``.sync`` and
   ``.sync:2``), which fails as shipped (moto dropped the PascalCase-to-API parameter translation):
   ``_normalise_parameters`` / ``_normalise_response`` translate through botocore's model as Step
   Functions does, ``_build_sync_resolver`` / ``_build_sync2_resolver`` / ``_eval_sync`` wait for the
   child parked on the clock (no real-time polling) and return AWS's output (``Output`` parsed as JSON
   for sync:2, dates as epoch milliseconds), or fail with ``States.TaskFailed`` and the child's
   describe output as the cause.
8. ``CallbackEndpoint.wait`` / ``CallbackEndpoint.notify``: a task waiting for its task token
   (``lambda:invoke.waitForTaskToken``, which moto supports) is parked on the clock until
   SendTaskSuccess/SendTaskFailure; ``StepFunctionResponse.send_task_failure`` passes the ``cause``
   on (moto drops it).

9. ``StepFunctionResponse.get_execution_history``: pages as Step Functions does (``reverseOrder``,
   ``maxResults``, ``nextToken``); moto returns the whole history to every request.
10. Redrive (simulator/redrive.py, its own patch points): ``RedriveExecution`` by journal and replay,
   which moto's interpreter does not have.

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
import types
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import moto
import moto.stepfunctions.parser.asl.component.state.state as moto_state_module
import moto.stepfunctions.parser.backend.execution as moto_execution_module
import moto.stepfunctions.parser.models as moto_parser_models
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.responses import ActionResult, EmptyResult
from moto.stepfunctions.parser.api import DescribeExecutionOutput, HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.inline_iteration_component import (
    InlineIterationComponent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.job import JobPool
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker import BranchWorker
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl import BranchWorkerPool
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.utils import TMP_THREADS
from moto.stepfunctions.responses import StepFunctionResponse
from moto.utilities.collections import select_from_typed_dict
from upgrader.catalog import STEPS

from simulator import redrive
from simulator.clock import Gate, VirtualClock

PINNED_MOTO = "5.2.5"
ROOT = Path(__file__).resolve().parent.parent
STATEMACHINE_DIR = ROOT / "statemachines"
ORCHESTRATOR_ACCOUNT = "123456789012"  # moto's default account plays the central account
ORCHESTRATOR_REGION = "us-east-1"
# The orchestrator stack's reports bucket (RunData.reports_bucket): ReadinessCheck writes its reports here.
REPORT_BUCKET_NAME = f"eks-fleet-upgrader-reports-{ORCHESTRATOR_ACCOUNT}"
# The orchestrator stack's run table (RunData.table): the fleet's locks, wave records and approvals.
RUN_TABLE_NAME = "eks-fleet-upgrader-runs"
# What the stack names the cluster workflow's state machine here (one per statemachines/*.asl.json).
CLUSTER_STATE_MACHINE_ARN = (
    f"arn:aws:states:{ORCHESTRATOR_REGION}:{ORCHESTRATOR_ACCOUNT}:stateMachine:cluster_upgrade"
)
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
    # Only what differs is applied and restored: a variable already set to the function's value (the
    # engine sets the common function environment process-wide) is never removed under another thread.
    variables = {key: value for key, value in variables.items() if os.environ.get(key) != value}
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


class ExecutionEnds:
    """Which executions have ended, and the flows parked until one does (sync and sync:2 tasks)."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._ended: set[str] = set()
        self._waiting: dict[str, list[tuple[Gate, threading.Event]]] = {}

    def ended(self, execution_arn: str) -> None:
        with self._lock:
            self._ended.add(execution_arn)
            waiting = self._waiting.pop(execution_arn, [])
        for gate, event in waiting:
            self._clock.open(gate)  # the waiter is runnable before this execution's flow ends
            event.set()

    def restarted(self, execution_arn: str) -> None:
        """A redriven execution runs again: sync tasks wait for its new end."""
        with self._lock:
            self._ended.discard(execution_arn)

    def wait(self, execution_arn: str) -> None:
        with self._lock:
            if execution_arn in self._ended:
                return
            gate, event = self._clock.gate(), threading.Event()
            self._waiting.setdefault(execution_arn, []).append((gate, event))
        self._clock.park(gate, event.wait)


def _virtual_datetime_module(clock: VirtualClock) -> Any:
    """Stands in for the ``datetime`` module in moto modules that stamp ``datetime.now()``."""

    class VirtualDatetime(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
            now = clock.datetime()
            return now.astimezone(tz) if tz is not None else now.replace(tzinfo=None)

    return types.SimpleNamespace(datetime=VirtualDatetime, timezone=dt.timezone, timedelta=dt.timedelta)


_SFN_MODEL = botocore.session.get_session().get_service_model("stepfunctions")


def _sfn_operation(snake_action: str) -> Any:
    return _SFN_MODEL.operation_model("".join(part.capitalize() for part in snake_action.split("_")))


def _gate_of(owner: Any, clock: VirtualClock) -> Gate:
    """One gate per moto object that a flow waits on (a Map's job pool, a task token's endpoint)."""
    gate: Gate = owner.__dict__.setdefault("_virtual_clock_gate", clock.gate())
    return gate


@contextlib.contextmanager
def moto_patches(
    clock: VirtualClock, runtime: InProcessLambda, ends: ExecutionEnds | None = None
) -> Iterator[None]:
    """Apply the patches described in the module docstring; restore them on exit."""
    if moto.__version__ != PINNED_MOTO:
        raise EngineError(
            f"simulator/engine.py is written against moto {PINNED_MOTO}, found {moto.__version__}"
        )
    ends = ends or ExecutionEnds(clock)

    # 1. Lambda ---------------------------------------------------------------------------------
    def invoke(self: LambdaSimpleBackend, function_name, qualifier, body, headers, response_headers):  # type: ignore[no-untyped-def]
        function = self.get_function(function_name, qualifier).get_configuration()
        payload, errored = runtime.invoke(function, json.loads(body) if body else {})
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        return payload

    # 2-5. Time -----------------------------------------------------------------------------------
    def wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
        cancelled = (lambda: not env.is_running()) if env is not None else None
        clock.sleep(max(0, wait_seconds), why="Wait state", cancelled=cancelled)

    class _RetryTime:
        @staticmethod
        def sleep(seconds: float) -> None:
            clock.sleep(seconds, why="Retry interval")

    def timestamp() -> dt.datetime:
        return clock.datetime()

    virtual_datetime = _virtual_datetime_module(clock)

    # 6. Flows ------------------------------------------------------------------------------------
    def start_execution_worker(self: ExecutionWorker) -> None:
        execution_arn = self._evaluation_details.execution_details.arn
        clock.flow_started()

        def run() -> None:
            try:
                self._execution_logic()
            finally:
                ends.ended(execution_arn)
                clock.flow_finished()

        thread = threading.Thread(target=run, daemon=True)
        TMP_THREADS.append(thread)
        thread.start()

    def launch_map_worker(
        self: InlineIterationComponent, env: Any, eval_input: Any, job_pool: JobPool
    ) -> Any:
        worker = self._create_worker(env=env, eval_input=eval_input, job_pool=job_pool)
        clock.flow_started()

        def run() -> None:
            try:
                worker.eval()
            finally:
                clock.flow_finished()

        thread = threading.Thread(target=run, daemon=True)
        TMP_THREADS.append(thread)
        thread.start()
        return worker

    original_close_job = JobPool.close_job

    def close_job(self: JobPool, job: Any) -> None:
        original_close_job(self, job)
        if self._is_terminated():
            clock.open(_gate_of(self, clock))

    def await_jobs(self: JobPool) -> None:
        if not self._is_terminated():
            clock.park(_gate_of(self, clock), self._termination_event.wait)

    def start_branch(self: BranchWorker) -> None:
        if self._worker_thread is not None:
            raise RuntimeError(f"Attempted to rerun BranchWorker for program ${self._program}.")
        clock.flow_started()

        def run() -> None:
            try:
                self._thread_routine()
            finally:
                clock.flow_finished()

        self._worker_thread = threading.Thread(target=run, name=f"BranchWorker_${self._program}", daemon=True)
        TMP_THREADS.append(self._worker_thread)
        self._worker_thread.start()

    original_on_terminated = BranchWorkerPool.on_terminated

    def on_branch_terminated(self: BranchWorkerPool, env: Any) -> None:
        original_on_terminated(self, env)
        if self._termination_event.is_set():
            clock.open(_gate_of(self, clock))

    def await_branches(self: BranchWorkerPool) -> None:
        clock.park(_gate_of(self, clock), self._termination_event.wait)

    # 7. states:startExecution ----------------------------------------------------------------------
    original_sfn_normalise_parameters = StateTaskServiceSfn._normalise_parameters

    def sfn_normalise_parameters(
        self: StateTaskServiceSfn,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        original_sfn_normalise_parameters(self, parameters, boto_service_name, service_action_name)
        action = self._get_boto_service_action(service_action_name)
        self._to_boto_request(parameters, _sfn_operation(action).input_shape)

    def sfn_normalise_response(
        self: StateTaskServiceSfn,
        response: Any,
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        if not isinstance(response, dict):
            return
        response.pop("ResponseMetadata", None)
        action = self._get_boto_service_action(service_action_name)
        self._from_boto_response(response, _sfn_operation(action).output_shape)
        for key in ("StartDate", "StopDate"):  # Step Functions renders timestamps as epoch milliseconds
            if isinstance(response.get(key), dt.datetime):
                response[key] = int(response[key].timestamp() * 1000)

    def sfn_resolver(sync2: bool) -> Callable[..., Callable[[], Any]]:
        def build(
            self: StateTaskServiceSfn,
            env: Any,
            resource_runtime_part: Any,
            normalised_parameters: dict[str, Any],
            state_credentials: Any,
        ) -> Callable[[], Any]:
            sfn_client = boto_client_for(
                region=resource_runtime_part.region,
                service="stepfunctions",
                state_credentials=state_credentials,
            )
            execution_arn: str = env.stack.pop()["ExecutionArn"]

            def resolve() -> Any:
                ends.wait(execution_arn)  # parked on the clock until the child's flow ends
                described = select_from_typed_dict(
                    DescribeExecutionOutput, sfn_client.describe_execution(executionArn=execution_arn)
                )
                if sync2:
                    self._sync2_api_output_of(typ=DescribeExecutionOutput, value=described)
                self._normalise_response(response=described, service_action_name="describe_execution")
                if described["Status"] == "SUCCEEDED":
                    return described
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(
                            taskFailedEventDetails=TaskFailedEventDetails(
                                resource=self._get_sfn_resource(),
                                resourceType=self._get_sfn_resource_type(),
                                error=StatesErrorNameType.StatesTaskFailed.to_name(),
                                cause=to_json_str(described),
                            )
                        ),
                    )
                )

            return resolve

        return build

    def sfn_eval_sync(self: StateTaskServiceSfn, env: Any, sync_resolver: Callable[[], Any], **_: Any) -> Any:
        # moto polls every 0.5 s of real time and listens for a task token on a helper thread; the
        # resolver above blocks (parked) until the child ends, so one call is the whole wait.
        return sync_resolver() if env.is_running() else None

    # 8. Task tokens ------------------------------------------------------------------------------
    original_endpoint_wait = CallbackEndpoint.wait
    original_endpoint_notify = CallbackEndpoint.notify

    def endpoint_wait(self: CallbackEndpoint, timeout: float | None = None) -> Any:
        return clock.park(_gate_of(self, clock), lambda: original_endpoint_wait(self, timeout))

    def endpoint_notify(self: CallbackEndpoint, outcome: Any) -> None:
        clock.open(_gate_of(self, clock))
        original_endpoint_notify(self, outcome)

    def send_task_failure(self: StepFunctionResponse) -> EmptyResult:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    # 10. GetExecutionHistory pages ------------------------------------------------------------------
    def get_execution_history(self: StepFunctionResponse) -> ActionResult:
        """moto returns the whole history whatever the request; Step Functions honours ``reverseOrder``,
        ``maxResults`` and ``nextToken``. The loops' history-size check asks for the newest event only,
        which must stay one small page here too (a whole history per poll made runs quadratic)."""
        history = self.stepfunction_backend.get_execution_history(self._get_param("executionArn"))
        events = list(history["events"])
        if self._get_param("reverseOrder"):
            events.reverse()
        start = int(self._get_param("nextToken") or 0)
        size = int(self._get_param("maxResults") or 0) or len(events) or 1
        page: dict[str, Any] = {"events": events[start : start + size]}
        if start + size < len(events):
            page["nextToken"] = str(start + size)
        return ActionResult(page)

    replacements: list[tuple[Any, str, Any]] = [
        (LambdaSimpleBackend, "invoke", invoke),
        (WaitFunction, "_wait_interval", wait_interval),
        (retrier_decl, "time", _RetryTime),
        (EventManager, "_get_current_timestamp", staticmethod(timestamp)),
        (moto_state_module, "datetime", virtual_datetime),
        (moto_parser_models, "datetime", virtual_datetime),
        (moto_execution_module, "datetime", virtual_datetime),
        (ExecutionWorker, "start", start_execution_worker),
        (InlineIterationComponent, "_launch_worker", launch_map_worker),
        (JobPool, "close_job", close_job),
        (JobPool, "await_jobs", await_jobs),
        (BranchWorker, "start", start_branch),
        (BranchWorkerPool, "on_terminated", on_branch_terminated),
        (BranchWorkerPool, "wait", await_branches),
        (StateTaskServiceSfn, "_normalise_parameters", sfn_normalise_parameters),
        (StateTaskServiceSfn, "_normalise_response", sfn_normalise_response),
        (StateTaskServiceSfn, "_build_sync_resolver", sfn_resolver(sync2=False)),
        (StateTaskServiceSfn, "_build_sync2_resolver", sfn_resolver(sync2=True)),
        (StateTaskServiceSfn, "_eval_sync", sfn_eval_sync),
        (CallbackEndpoint, "wait", endpoint_wait),
        (CallbackEndpoint, "notify", endpoint_notify),
        (StepFunctionResponse, "send_task_failure", send_task_failure),
        (StepFunctionResponse, "get_execution_history", get_execution_history),
        # 9. Redrive
        *redrive.patches(redrive.Journal(), ends.restarted, clock.datetime),
    ]
    # Saved from the class __dict__ (not getattr) so staticmethods and inherited attributes come back
    # exactly as they were: an attribute a class did not define itself is deleted again on exit.
    saved = [(owner, name, owner.__dict__.get(name, _ABSENT)) for owner, name, _ in replacements]
    for owner, name, replacement in replacements:
        setattr(owner, name, replacement)
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            if original is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


_ABSENT = object()
# Every (owner, attribute) the engine replaces: tests/integration/test_engine.py checks each exists in
# the pinned moto with the shape the patch expects.
PATCH_POINTS: tuple[tuple[Any, str], ...] = (
    (LambdaSimpleBackend, "invoke"),
    (WaitFunction, "_wait_interval"),
    (retrier_decl, "time"),
    (EventManager, "_get_current_timestamp"),
    (moto_state_module, "datetime"),
    (moto_parser_models, "datetime"),
    (moto_execution_module, "datetime"),
    (ExecutionWorker, "start"),
    (ExecutionWorker, "_execution_logic"),
    (InlineIterationComponent, "_launch_worker"),
    (InlineIterationComponent, "_create_worker"),
    (JobPool, "close_job"),
    (JobPool, "await_jobs"),
    (JobPool, "_is_terminated"),
    (BranchWorker, "start"),
    (BranchWorker, "_thread_routine"),
    (BranchWorkerPool, "on_terminated"),
    (BranchWorkerPool, "wait"),
    (StateTaskServiceSfn, "_normalise_parameters"),
    (StateTaskServiceSfn, "_normalise_response"),
    (StateTaskServiceSfn, "_build_sync_resolver"),
    (StateTaskServiceSfn, "_build_sync2_resolver"),
    (StateTaskServiceSfn, "_eval_sync"),
    (StateTaskServiceSfn, "_sync2_api_output_of"),
    (CallbackEndpoint, "wait"),
    (CallbackEndpoint, "notify"),
    (StepFunctionResponse, "send_task_failure"),
    (StepFunctionResponse, "get_execution_history"),
    *redrive.PATCH_POINTS,
)


def create_run_table(client: Any, name: str) -> None:
    """The orchestrator's run table as the stack declares it (infra/constructs/run_data.py): string
    ``pk``/``sk``, on demand. Used by the engine's deployment and by the gateways' contract tests."""
    client.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


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
        self.ends = ExecutionEnds(self.clock)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> LocalEngine:
        # moto's interpreter logs every failed state at ERROR with its whole parse tree; the
        # workflow's own failures are reported by us, from the execution history.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        self._stack.enter_context(mock_aws(config=MOTO_CONFIG))
        # The interpreter's own threads read the default region (moto's ServiceResource) while Lambda
        # handlers run with their environment applied and restored around them: keep the process's
        # region set for the engine's lifetime, so restoring a handler's environment never removes it
        # under a concurrent execution (it would fail that task with States.Runtime 'AWS_DEFAULT_REGION',
        # or 'AWS_REGION': seen once in a hundred concurrent children of bench-fleet).
        # Likewise every function's common environment (REPORT_BUCKET_NAME, RUN_TABLE_NAME...): a handler's
        # Settings.load() reads a variable twice (get, then []) and must never see it vanish in between.
        self._stack.enter_context(_environment(self.function_variables))
        self._stack.enter_context(moto_patches(self.clock, self.runtime, self.ends))
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
            "RUN_TABLE_NAME": RUN_TABLE_NAME,
            "CLUSTER_STATE_MACHINE_ARN": CLUSTER_STATE_MACHINE_ARN,
            **self.function_environment,
        }

    def _deploy(self) -> None:
        """Create what the CDK stack creates, as far as executing the workflows needs."""
        self.client("s3").create_bucket(Bucket=self.report_bucket)
        create_run_table(self.client("dynamodb"), RUN_TABLE_NAME)
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
            # The execution's own (virtual) stop date: other flows may have moved the clock since.
            stopped_at=self.virtual_seconds(described["stopDate"]),
        )

    def virtual_seconds(self, moment: dt.datetime) -> float:
        """A virtual datetime (history, DescribeExecution) as seconds on the clock, to the millisecond."""
        return round((moment - self.clock.to_datetime(0)).total_seconds(), 3)

    def run(
        self, machine: str, name: str, execution_input: Any, real_timeout: float = 120.0
    ) -> ExecutionResult:
        started_at = self.clock.now()
        first_invocation = len(self.runtime.invocations)
        result = self.wait(self.start(machine, name, execution_input), started_at, real_timeout)
        result.invocations = self.runtime.invocations[first_invocation:]
        return result

    def redrive(self, execution_arn: str, real_timeout: float = 120.0) -> ExecutionResult:
        """RedriveExecution (simulator/redrive.py) and wait: the result's history is the whole
        history (every attempt); its invocations are the redriven attempt's."""
        started_at = self.clock.now()
        first_invocation = len(self.runtime.invocations)
        self.client("stepfunctions").redrive_execution(executionArn=execution_arn)
        result = self.wait(execution_arn, started_at, real_timeout)
        result.invocations = self.runtime.invocations[first_invocation:]
        return result

    def run_together(
        self, runs: list[tuple[str, str, Any]], real_timeout: float = 120.0
    ) -> list[ExecutionResult]:
        """Start several executions at the same virtual instant (the clock is held until all have
        started) and wait for all. Invocations are not attributed per execution when they overlap."""
        started_at = self.clock.now()
        with self.clock.hold():
            arns = [self.start(machine, name, execution_input) for machine, name, execution_input in runs]
        return [self.wait(arn, started_at, real_timeout) for arn in arns]
