"""Step Functions ``RedriveExecution`` for the local engine (moto 5.2.5's interpreter has none).

What AWS does (RedriveExecution API reference): a FAILED, TIMED_OUT or ABORTED Standard execution
continues from its unsuccessful step with the same input; it keeps its ARN, name, input and definition;
the results of the steps that succeeded are kept and those steps are not run again; an inline Map or a
Parallel state reruns only the iterations and branches that did not succeed. The history gains an
``ExecutionRedriven`` event and goes on; DescribeExecution reports ``redriveCount`` and ``redriveDate``.
A RUNNING or SUCCEEDED execution answers ``ExecutionNotRedrivable``.

How the engine does it, by journal and replay (written by hand: no library emulates redrive):

* Every execution journals each state it completes: the key is the frame (the root, or a Map
  iteration: the Map state's name, which entry of that Map state in its frame, the item index), the
  state's name and which entry of that name in that frame; the value is what the state left behind
  (the next state's input and name), as JSON.
* A redrive restarts the same moto ``Execution`` (same ARN, name, input and start date) with the
  previous attempt's journal. A state with a journal entry is not evaluated: its recorded outcome is
  restored and it emits no history event, so no Lambda runs, no Wait waits, no child execution starts
  and no task token is issued again. The first state of a frame without an entry (the failed state,
  or a Map whose iterations did not all succeed) runs for real, and so does everything after it.
  A Map iteration that had succeeded replays entirely (its iteration events are not repeated either).
  The workflows are deterministic given their states' outcomes, so the replay retraces the original
  path exactly up to the point of failure.
* The history is the previous attempt's events, ``ExecutionRedriven`` (in place of the new attempt's
  ``ExecutionStarted``), then the new attempt's events, numbered on.

Patch points (checked by tests/integration/test_engine.py, like the engine's): ``CommonStateField.
_eval_body`` (journal / replay), ``Environment.open_frame`` / ``open_inner_frame`` (a frame knows its
parent), ``IterationWorker._eval_job`` (iteration frames get their key), ``EventManager.add_event``
(silent while a succeeded iteration replays), ``Execution.to_history_output`` (the merged history),
``StepFunctionResponse.describe_execution`` (redriveCount/redriveDate) and a new
``StepFunctionResponse.redrive_execution`` (the API, so boto3's ``redrive_execution`` works locally).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker import (
    IterationWorker,
)
from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.responses import StepFunctionResponse

REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")
# A Map iteration's own journal entry: recorded when the iteration succeeded.
_ITERATION = "#iteration"

Key = tuple[tuple[tuple[str, int, int], ...], str, int]


class ExecutionNotRedrivable(AWSError):
    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


@dataclass(frozen=True)
class Outcome:
    """What a completed state left for the next one."""

    output: str  # the next state's input (or the frame's output when it ended), as JSON
    next_state: str | None
    ended: bool = False  # the state ended its frame (End: true, Succeed)


class Journal:
    """Per execution ARN: the outcomes recorded by the running attempt and the ones it replays."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recording: dict[str, dict[Key, Outcome]] = {}
        self._replaying: dict[str, dict[Key, Outcome]] = {}

    def record(self, execution_arn: str, key: Key, outcome: Outcome) -> None:
        with self._lock:
            self._recording.setdefault(execution_arn, {})[key] = outcome

    def replayed(self, execution_arn: str, key: Key) -> Outcome | None:
        with self._lock:
            return self._replaying.get(execution_arn, {}).get(key)

    def begin_redrive(self, execution_arn: str) -> None:
        with self._lock:
            self._replaying[execution_arn] = self._recording.pop(execution_arn, {})


_silence = threading.local()  # .on: this thread is replaying a succeeded Map iteration


def _execution_arn(env: Environment) -> str:
    return str(env.states.context_object.context_object_data["Execution"]["Id"])


def _owner(env: Environment) -> Environment:
    """The frame whose states ``env`` evaluates: the root or a Map iteration (inner frames that a
    Task's timeout or a Map's evaluation opens belong to their owner)."""
    while not hasattr(env, "_redrive_path"):
        parent = getattr(env, "_redrive_parent", None)
        if parent is None:
            env._redrive_path = ()  # type: ignore[attr-defined]  # the root frame
            env._redrive_counts = {}  # type: ignore[attr-defined]
            break
        env = parent
    return env


def patches(
    journal: Journal, restart: Callable[[str], None], now: Callable[[], dt.datetime]
) -> list[tuple[Any, str, Any]]:
    """The replacements for :func:`simulator.engine.moto_patches`. ``restart(arn)`` is called just
    before a redriven execution's worker starts (the engine forgets that the execution had ended);
    ``now()`` is the engine's (virtual) time."""
    original_eval_body = CommonStateField._eval_body
    original_open_frame = Environment.open_frame
    original_open_inner_frame = Environment.open_inner_frame
    original_eval_job = IterationWorker._eval_job
    original_add_event = EventManager.add_event
    original_to_history = Execution.to_history_output
    original_describe = StepFunctionResponse.describe_execution

    def eval_body(self: CommonStateField, env: Environment) -> None:
        owner = _owner(env)
        counts: dict[str, int] = owner._redrive_counts  # type: ignore[attr-defined]
        counts[self.name] = counts.get(self.name, 0) + 1
        key: Key = (owner._redrive_path, self.name, counts[self.name])  # type: ignore[attr-defined]
        arn = _execution_arn(env)
        outcome = journal.replayed(arn, key)
        if outcome is not None:
            # Completed in an earlier attempt: keep its result, run nothing, record nothing in history.
            env.states.reset(input_value=json.loads(outcome.output))
            if outcome.ended:
                env.set_ended()
            else:
                env.next_state_name = outcome.next_state  # type: ignore[assignment]
            journal.record(arn, key, outcome)
            return
        original_eval_body(self, env)
        if env.is_running():
            journal.record(arn, key, Outcome(json.dumps(env.states.get_input()), env.next_state_name))
        elif isinstance(env.program_state(), ProgramEnded):
            journal.record(arn, key, Outcome(json.dumps(env.states.get_input()), None, ended=True))

    def open_frame(self: Environment, *args: Any, **kwargs: Any) -> Environment:
        frame = original_open_frame(self, *args, **kwargs)
        frame._redrive_parent = self  # type: ignore[attr-defined]
        return frame

    def open_inner_frame(self: Environment, *args: Any, **kwargs: Any) -> Environment:
        frame = original_open_inner_frame(self, *args, **kwargs)
        frame._redrive_parent = self  # type: ignore[attr-defined]
        return frame

    def eval_job(self: IterationWorker, env: Environment, job: Any) -> None:
        owner = _owner(env._redrive_parent)  # type: ignore[attr-defined]
        map_name = self._work_name
        entry = owner._redrive_counts.get(map_name, 0)  # type: ignore[attr-defined]
        env._redrive_path = (*owner._redrive_path, (map_name, entry, job.job_index))  # type: ignore[attr-defined]
        env._redrive_counts = {}  # type: ignore[attr-defined]
        arn = _execution_arn(env)
        key: Key = (env._redrive_path, _ITERATION, 1)  # type: ignore[attr-defined]
        succeeded_before = journal.replayed(arn, key)
        previous, _silence.on = getattr(_silence, "on", False), succeeded_before is not None
        try:
            original_eval_job(self, env, job)
        finally:
            _silence.on = previous
        if not isinstance(job.job_output, Exception):
            journal.record(arn, key, succeeded_before or Outcome("null", None))

    def add_event(self: EventManager, context: Any, *args: Any, **kwargs: Any) -> int:
        if getattr(_silence, "on", False):
            return int(context.last_published_event_id or 0)
        return int(original_add_event(self, context, *args, **kwargs))

    def to_history_output(self: Execution) -> Any:
        output = original_to_history(self)
        previous: list[dict[str, Any]] | None = getattr(self, "_redrive_previous_events", None)
        if previous is None:
            return output
        offset = len(previous)
        events = list(previous)
        for event in output["events"]:
            event = dict(event)
            event["id"] += offset
            if event.get("previousEventId"):
                event["previousEventId"] += offset
            if event["type"] == "ExecutionStarted":
                event = {
                    "id": event["id"],
                    "previousEventId": offset,
                    "timestamp": event["timestamp"],
                    "type": "ExecutionRedriven",
                    "executionRedrivenEventDetails": {"redriveCount": self._redrive_count},  # type: ignore[attr-defined]
                }
            events.append(event)
        output["events"] = events
        return output

    def describe_execution(self: StepFunctionResponse) -> ActionResult:
        result = original_describe(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        described = result.result
        if isinstance(described, dict):
            described["redriveCount"] = getattr(execution, "_redrive_count", 0)
            if hasattr(execution, "_redrive_date"):
                described["redriveDate"] = execution._redrive_date
            described["redriveStatus"] = "REDRIVABLE" if execution.status in REDRIVABLE else "NOT_REDRIVABLE"
        return result

    def redrive_execution(self: StepFunctionResponse) -> ActionResult:
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        return ActionResult({"redriveDate": redrive(execution, journal, restart, now())})

    return [
        (CommonStateField, "_eval_body", eval_body),
        (Environment, "open_frame", open_frame),
        (Environment, "open_inner_frame", open_inner_frame),
        (IterationWorker, "_eval_job", eval_job),
        (EventManager, "add_event", add_event),
        (Execution, "to_history_output", to_history_output),
        (StepFunctionResponse, "describe_execution", describe_execution),
        (StepFunctionResponse, "redrive_execution", redrive_execution),
    ]


# What the patches above replace or rely on in the pinned moto (redrive_execution is new).
PATCH_POINTS: tuple[tuple[Any, str], ...] = (
    (CommonStateField, "_eval_body"),
    (Environment, "open_frame"),
    (Environment, "open_inner_frame"),
    (IterationWorker, "_eval_job"),
    (EventManager, "add_event"),
    (Execution, "to_history_output"),
    (Execution, "start"),
    (StepFunctionResponse, "describe_execution"),
)


def redrive(
    execution: Execution, journal: Journal, restart: Callable[[str], None], at: dt.datetime
) -> dt.datetime:
    """Restart ``execution`` from its unsuccessful steps at ``at``; returns the redrive date."""
    if execution.status not in REDRIVABLE:
        raise ExecutionNotRedrivable(f"Execution is {execution.status} and cannot be redriven.")
    definition = json.dumps(json.loads(execution.state_machine.definition))
    if '"Type": "Parallel"' in definition or '"Mode": "DISTRIBUTED"' in definition:
        # Branches and Map Runs would need their own frame keys; none of our workflows has one.
        raise ExecutionNotRedrivable(
            "the local engine redrives inline Map states only, not Parallel or Map Runs"
        )
    arn = execution.exec_arn
    previous = execution.to_history_output()["events"]
    journal.begin_redrive(arn)
    execution._redrive_previous_events = previous  # type: ignore[attr-defined]
    execution._redrive_count = getattr(execution, "_redrive_count", 0) + 1  # type: ignore[attr-defined]
    execution._redrive_date = at  # type: ignore[attr-defined]
    execution.exec_worker = None
    execution.error = execution.cause = execution.stop_date = execution.output = None
    restart(arn)
    execution.start()
    return execution._redrive_date  # type: ignore[attr-defined,no-any-return]
