"""The local engine: the only module that touches moto internals. A moto upgrade must fail here."""

from __future__ import annotations

import io
import json

import moto
import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from upgrader.catalog import STEPS

from simulator.clock import VirtualClock
from simulator.engine import PINNED_MOTO, EngineError, InProcessLambda, moto_patches, render_definition


def test_moto_is_the_pinned_version():
    assert moto.__version__ == PINNED_MOTO


def test_patch_points_exist_with_the_expected_shape():
    # If moto moves any of these, the engine would silently stop dispatching or start sleeping.
    assert callable(LambdaSimpleBackend.invoke)
    assert callable(WaitFunction._wait_interval)
    assert hasattr(retrier_decl, "time") and hasattr(retrier_decl.time, "sleep")
    assert isinstance(EventManager.__dict__["_get_current_timestamp"], staticmethod)


def test_patches_are_applied_and_restored():
    originals = (LambdaSimpleBackend.invoke, WaitFunction._wait_interval, retrier_decl.time)
    clock = VirtualClock()
    with moto_patches(clock, InProcessLambda(clock, io.StringIO())):
        assert LambdaSimpleBackend.invoke is not originals[0]
        retrier_decl.time.sleep(7)
        WaitFunction._wait_interval(None, None, 30)
        assert clock.now() == 37
        assert EventManager._get_current_timestamp() == clock.datetime()
    assert (LambdaSimpleBackend.invoke, WaitFunction._wait_interval, retrier_decl.time) == originals


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
