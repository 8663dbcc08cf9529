"""The local engine: the only module that touches moto internals. A moto upgrade must fail here."""

from __future__ import annotations

import datetime
import inspect
import io
import json
import threading

import moto
import moto.stepfunctions.parser.asl.component.state.state as moto_state_module
import moto.stepfunctions.parser.backend.execution as moto_execution_module
import moto.stepfunctions.parser.models as moto_parser_models
import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend
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
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.responses import StepFunctionResponse
from upgrader.catalog import STEPS

from simulator.clock import VirtualClock
from simulator.engine import (
    PATCH_POINTS,
    PINNED_MOTO,
    EngineError,
    InProcessLambda,
    moto_patches,
    render_definition,
)


def test_moto_is_the_pinned_version():
    assert moto.__version__ == PINNED_MOTO


def test_patch_points_exist_with_the_expected_shape():
    # If moto moves any of these, the engine would silently stop dispatching, start sleeping in real
    # time, lose track of concurrent flows, or fail every startExecution task again.
    for owner, name in PATCH_POINTS:
        assert hasattr(owner, name), f"moto moved {getattr(owner, '__name__', owner)}.{name}"
    assert callable(LambdaSimpleBackend.invoke)
    assert callable(WaitFunction._wait_interval)
    assert hasattr(retrier_decl, "time") and hasattr(retrier_decl.time, "sleep")
    assert isinstance(EventManager.__dict__["_get_current_timestamp"], staticmethod)
    for module in (moto_state_module, moto_parser_models, moto_execution_module):
        assert module.datetime is datetime, f"{module.__name__} no longer stamps with datetime.datetime.now()"
    # The flows: moto's own thread entry points, whose names the patches call.
    assert list(inspect.signature(InlineIterationComponent._launch_worker).parameters) == [
        "self",
        "env",
        "eval_input",
        "job_pool",
    ]
    assert "_termination_event" in inspect.getsource(JobPool.__init__)
    assert "_termination_event" in inspect.getsource(BranchWorkerPool.__init__)
    assert "_execution_logic" in inspect.getsource(ExecutionWorker.start)
    assert "_thread_routine" in inspect.getsource(BranchWorker.start)
    # startExecution: the response/parameter hooks and the resolvers' signature.
    assert list(inspect.signature(StateTaskServiceSfn._build_sync2_resolver).parameters) == [
        "self",
        "env",
        "resource_runtime_part",
        "normalised_parameters",
        "state_credentials",
    ]
    assert "sync_resolver" in inspect.signature(StateTaskServiceSfn._eval_sync).parameters
    assert "_normalise_parameters" in inspect.getsource(StateTaskServiceSfn._normalise_parameters)
    assert list(inspect.signature(CallbackEndpoint.wait).parameters) == ["self", "timeout"]
    assert list(inspect.signature(CallbackEndpoint.notify).parameters) == ["self", "outcome"]
    # moto still drops SendTaskFailure's cause (if it stops doing so, the patch can go).
    assert "cause" not in inspect.getsource(StepFunctionResponse.send_task_failure)


def test_patches_are_applied_and_restored():
    originals = {(owner, name): owner.__dict__.get(name) for owner, name in PATCH_POINTS}
    clock = VirtualClock()
    with moto_patches(clock, InProcessLambda(clock, io.StringIO())):
        assert LambdaSimpleBackend.invoke is not originals[(LambdaSimpleBackend, "invoke")]
        assert "_eval_sync" in StateTaskServiceSfn.__dict__
        retrier_decl.time.sleep(7)
        WaitFunction._wait_interval(None, None, 30)
        assert clock.now() == 37
        assert EventManager._get_current_timestamp() == clock.datetime()
        assert moto_state_module.datetime.datetime.now(tz=datetime.UTC) == clock.datetime()
    assert {(owner, name): owner.__dict__.get(name) for owner, name in PATCH_POINTS} == originals
    assert "_eval_sync" not in StateTaskServiceSfn.__dict__  # inherited again, as shipped


def test_render_definition_fails_on_unsupplied_substitution():
    assert render_definition('{"R": "${A}"}', {"A": "arn:a"}) == '{"R": "arn:a"}'
    with pytest.raises(EngineError, match=r"\$\{B\}"):
        render_definition('{"R": "${A}", "S": "${B}"}', {"A": "arn:a"})


def test_in_process_lambda_reports_exceptions_as_lambda_does(monkeypatch):
    clock = VirtualClock()
    runtime = InProcessLambda(clock, io.StringIO())
    function = {
        "FunctionName": "ValidateInput",
        "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:ValidateInput",
        "Handler": STEPS[0].handler,
        "Environment": {"Variables": {"POWERTOOLS_TRACE_DISABLED": "true"}},
    }
    payload, errored = runtime.invoke(
        function, {"input": {"bad": 1}, "executionId": "e", "executionName": "e"}
    )
    body = json.loads(payload)
    assert errored is True
    assert body["errorType"] == "InvalidInput"
    assert "cluster" in body["errorMessage"]
    assert runtime.invocations[-1].error == "InvalidInput"


def test_in_process_lambda_applies_and_restores_the_function_environment(monkeypatch):
    monkeypatch.delenv("TARGET_ROLE_NAME", raising=False)
    seen = {}

    def handler(event, context):
        import os

        seen["role"] = os.environ.get("TARGET_ROLE_NAME")
        seen["function"] = context.function_name
        return {"ok": True}

    clock = VirtualClock()
    runtime = InProcessLambda(clock, io.StringIO())
    runtime._handlers["x.handler"] = handler
    payload, errored = runtime.invoke(
        {
            "FunctionName": "F",
            "FunctionArn": "arn:f",
            "Handler": "x.handler",
            "Environment": {"Variables": {"TARGET_ROLE_NAME": "r1"}},
        },
        {},
    )
    assert (json.loads(payload), errored) == ({"ok": True}, False)
    assert seen == {"role": "r1", "function": "F"}
    import os

    assert "TARGET_ROLE_NAME" not in os.environ


# -- the discrete-event clock ---------------------------------------------------------------------
def _in_flows(clock: VirtualClock, *bodies) -> None:
    """Run each body as a flow on its own thread, all started at the same instant."""
    threads = []
    with clock.hold():
        for body in bodies:
            clock.flow_started()

            def run(body=body):
                try:
                    body()
                finally:
                    clock.flow_finished()

            threads.append(threading.Thread(target=run, daemon=True))
            threads[-1].start()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_flows_waiting_side_by_side_cost_the_longest_wait_not_the_sum():
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    def waiter(name, seconds):
        def body():
            clock.sleep(seconds)
            woke.append((name, clock.now()))

        return body

    _in_flows(clock, waiter("a", 400), waiter("b", 400), waiter("c", 100))
    assert clock.now() == 400
    assert sorted(woke, key=lambda w: (w[1], w[0])) == [("c", 100), ("a", 400), ("b", 400)]


def test_a_flow_in_sequence_adds_its_waits_up():
    clock = VirtualClock()

    def body():
        clock.sleep(30)
        clock.sleep(90)

    _in_flows(clock, body)
    assert clock.now() == 120


def test_outside_any_flow_sleep_moves_time_at_once():
    clock = VirtualClock()
    clock.sleep(332, why="world setup")
    assert clock.now() == 332
    assert clock.census() == {"runnable": 0, "sleeping": 0, "parked": 0}


def test_time_stands_still_while_a_flow_runs_and_a_parked_flow_is_handed_back():
    clock = VirtualClock()
    gate = clock.gate()
    event = threading.Event()
    seen = {}

    def parked():
        clock.park(gate, event.wait)
        seen["parked_woke_at"] = clock.now()

    def opener():
        clock.sleep(50)
        clock.open(gate)  # the parked flow is runnable before this one goes on
        event.set()
        clock.sleep(10)
        seen["opener_done_at"] = clock.now()

    def sleeper():
        clock.sleep(500)

    _in_flows(clock, parked, opener, sleeper)
    assert seen == {"parked_woke_at": 50, "opener_done_at": 60}
    assert clock.now() == 500


def test_a_stopped_flow_is_woken_without_moving_time():
    clock = VirtualClock()
    stopped = threading.Event()
    stopped.set()
    _in_flows(clock, lambda: clock.sleep(9999, cancelled=stopped.is_set))
    assert clock.now() == 0


# -- child executions, concurrency and task tokens on the local engine ------------------------------
ROLE = "arn:aws:iam::123456789012:role/local-engine"
CHILD = {
    "StartAt": "Work",
    "States": {
        "Work": {"Type": "Wait", "SecondsPath": "$.seconds", "Next": "Fails?"},
        "Fails?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Broken"}],
            "Default": "Done",
        },
        "Broken": {"Type": "Fail", "Error": "ClusterBroke", "Cause": "the child failed on purpose"},
        "Done": {"Type": "Pass", "Parameters": {"worked.$": "$.seconds"}, "End": True},
    },
}


def _machine(engine, name: str, definition: dict) -> str:
    sfn = engine.client("stepfunctions")
    engine.state_machines[name] = sfn.create_state_machine(
        name=name, roleArn=ROLE, definition=json.dumps(definition)
    )["stateMachineArn"]
    return engine.state_machines[name]


def _parent(child_arn: str, max_concurrency: int) -> dict:
    return {
        "StartAt": "Clusters",
        "States": {
            "Clusters": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": max_concurrency,
                "Iterator": {
                    "StartAt": "RunChild",
                    "States": {
                        "RunChild": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::states:startExecution.sync:2",
                            "Parameters": {
                                "StateMachineArn": child_arn,
                                "Name.$": "States.Format('{}-{}', $$.Execution.Name, $.name)",
                                "Input.$": "$",
                            },
                            "Catch": [
                                {
                                    "ErrorEquals": ["States.TaskFailed"],
                                    "ResultPath": "$.failure",
                                    "Next": "Failed",
                                }
                            ],
                            "End": True,
                        },
                        "Failed": {"Type": "Pass", "End": True},
                    },
                },
                "End": True,
            }
        },
    }


@pytest.fixture
def engine():
    from simulator.engine import LocalEngine

    with LocalEngine() as local:
        yield local


def test_sync2_child_output_has_aws_shape_and_a_failed_child_fails_the_task(engine):
    # Given a parent that starts one child per item and waits for it (startExecution.sync:2)
    child = _machine(engine, "child", CHILD)
    _machine(engine, "parent", _parent(child, max_concurrency=0))

    # When one child succeeds and one fails
    result = engine.run(
        "parent",
        "fleet-1",
        {"items": [{"name": "a", "seconds": 60}, {"name": "b", "seconds": 30, "fail": True}]},
    )

    # Then the successful child's output is AWS's sync:2 shape, Output parsed as JSON
    assert result.status == "SUCCEEDED"
    ok, failed = result.output
    assert ok["Status"] == "SUCCEEDED"
    assert ok["Output"] == {"worked": 60}
    assert ok["Name"] == "fleet-1-a"
    assert ok["ExecutionArn"].endswith(":execution:child:fleet-1-a")
    assert ok["StopDate"] - ok["StartDate"] == 60_000  # epoch milliseconds, in virtual time
    # and the failed child fails the task with States.TaskFailed and its describe output as the cause
    assert failed["failure"]["Error"] == "States.TaskFailed"
    cause = json.loads(failed["failure"]["Cause"])
    assert (cause["Status"], cause["Error"], cause["Cause"]) == (
        "FAILED",
        "ClusterBroke",
        "the child failed on purpose",
    )
    assert cause["Name"] == "fleet-1-b"
    sfn = engine.client("stepfunctions")
    described = sfn.describe_execution(executionArn=ok["ExecutionArn"])
    assert described["status"] == "SUCCEEDED"


@pytest.mark.parametrize(("max_concurrency", "makespan"), [(4, 400), (2, 800), (1, 1600)])
def test_children_in_a_map_wait_side_by_side_in_virtual_time(engine, max_concurrency, makespan):
    # Given four children that each wait 400 s, run by a Map with MaxConcurrency N
    child = _machine(engine, "child", CHILD)
    _machine(engine, "parent", _parent(child, max_concurrency))
    items = [{"name": f"c{i}", "seconds": 400} for i in range(4)]

    # When the parent runs
    result = engine.run("parent", f"fleet-{max_concurrency}", {"items": items})

    # Then the makespan is 400 s per batch of N, not 400 s per child
    assert result.status == "SUCCEEDED"
    assert result.virtual_duration_seconds == makespan
    assert [child["Output"] for child in result.output] == [{"worked": 400}] * 4


def test_parallel_branches_wait_side_by_side(engine):
    wait = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 300, "End": True}}}
    _machine(
        engine,
        "parallel",
        {"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [wait, wait], "End": True}}},
    )
    result = engine.run("parallel", "p-1", {})
    assert result.status == "SUCCEEDED"
    assert result.virtual_duration_seconds == 300


def _approval_machine(engine, seen):
    def request_approval(event, context):
        seen.append(event)
        return {"requested": True}

    engine.runtime._handlers["approval_test.handler"] = request_approval
    lam = engine.client("lambda")
    function_arn = lam.create_function(
        FunctionName="ApprovalTest",
        Runtime="python3.13",
        Role=ROLE,
        Handler="approval_test.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )["FunctionArn"]
    return _machine(
        engine,
        "approval",
        {
            "StartAt": "Soak",
            "States": {
                "Soak": {"Type": "Wait", "Seconds": 120, "Next": "Approve"},
                "Approve": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {"FunctionName": function_arn, "Payload": {"token.$": "$$.Task.Token"}},
                    "End": True,
                },
            },
        },
    )


def _wait_for(predicate, seconds=10.0):
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting in real time"
        time.sleep(0.01)


@pytest.mark.parametrize("approve", [True, False])
def test_a_task_token_parks_the_execution_until_someone_answers(engine, approve):
    # Given an execution waiting for a task token after a 120 s soak
    seen: list[dict] = []
    _approval_machine(engine, seen)
    sfn = engine.client("stepfunctions")
    arn = engine.start("approval", f"approve-{approve}", {})
    _wait_for(lambda: seen)

    # Then time stands still at the end of the soak while nobody answers
    assert engine.clock.now() == 120
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"

    # When the operator answers
    if approve:
        sfn.send_task_success(taskToken=seen[0]["token"], output=json.dumps({"approvedBy": "ops"}))
    else:
        sfn.send_task_failure(taskToken=seen[0]["token"], error="FleetApprovalRejected", cause="not tonight")
    result = engine.wait(arn, started_at=0)

    # Then the execution goes on with the answer (or fails with the rejection's error and cause)
    if approve:
        assert (result.status, result.output) == ("SUCCEEDED", {"approvedBy": "ops"})
    else:
        assert (result.status, result.error) == ("FAILED", "FleetApprovalRejected")
        assert "not tonight" in result.cause
    assert result.virtual_duration_seconds == 120
