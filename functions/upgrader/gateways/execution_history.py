"""The execution's own history size, checked before each round of the cluster workflow's loops.

Step Functions fails an execution that reaches 25,000 history events. That is a quota, not a state
error: no Catch runs, so a drain stopped that way would leave its nodes cordoned with nothing rolled
back. Every loop has its own cap, but the caps multiply with the input (long deadlines, many node
groups, a three-step version chain), so the guarantee is made here, exactly: a looping step (catalog
``looping``) first reads how many events its execution has (one GetExecutionHistory call, newest event
first, one event: its id is the count) and, at ``Settings.history_event_budget`` (20,000), raises
:class:`ExecutionHistoryBudgetExhausted`, which the drain's Catch rolls back like any drain failure.
"""

from __future__ import annotations

from typing import Any

from upgrader.errors import ExecutionHistoryBudgetExhausted
from upgrader.gateways.aws import AwsSessionFactory, aws_errors
from upgrader.models import RunRef
from upgrader.settings import Settings

OPERATION = "states:GetExecutionHistory"


def events_so_far(stepfunctions: Any, execution_arn: str) -> int:
    """How many events the execution's history holds (the newest event's id)."""
    with aws_errors(OPERATION):
        page = stepfunctions.get_execution_history(
            executionArn=execution_arn, reverseOrder=True, maxResults=1, includeExecutionData=False
        )
    return max((int(event["id"]) for event in page.get("events", [])), default=0)


def ensure_history_budget(
    step: str, run: RunRef | None, settings: Settings, stepfunctions: Any = None
) -> None:
    """Raise :class:`ExecutionHistoryBudgetExhausted` when ``run``'s execution has used its budget."""
    if run is None or not run.execution_id.startswith("arn:"):
        return  # invoked outside an execution (a test event, the console's test button)
    client = stepfunctions or AwsSessionFactory(settings).central_stepfunctions()
    used = events_so_far(client, run.execution_id)
    if used >= settings.history_event_budget:
        raise ExecutionHistoryBudgetExhausted(
            f"{step}: this execution's history has {used} events, its budget is "
            f"{settings.history_event_budget} (Step Functions fails an execution at 25,000, with nothing rolled "
            "back): stopped here instead. Run the upgrade again: a new execution continues from the cluster as "
            "it is",
            step=step,
            events=used,
            budget=settings.history_event_budget,
        )
