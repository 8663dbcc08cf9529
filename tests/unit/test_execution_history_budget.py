"""The history budget every looping step checks first (upgrader/gateways/execution_history.py)."""

from __future__ import annotations

import pytest
from upgrader.catalog import STEPS
from upgrader.errors import ExecutionHistoryBudgetExhausted
from upgrader.gateways.execution_history import ensure_history_budget, events_so_far
from upgrader.models import RunRef
from upgrader.settings import Settings

ARN = "arn:aws:states:us-east-1:123456789012:execution:eks-fleet-upgrader-cluster-upgrade:run-1"
RUN = RunRef(execution_id=ARN, execution_name="run-1")


class FakeStepFunctions:
    """Answers GetExecutionHistory like Step Functions with reverseOrder and maxResults 1."""

    def __init__(self, events: int) -> None:
        self.events = events
        self.requests: list[dict] = []

    def get_execution_history(self, **request):
        self.requests.append(request)
        return {"events": [{"id": self.events, "type": "TaskStateEntered"}] if self.events else []}


def test_the_newest_event_id_is_the_history_size_read_in_one_small_request():
    client = FakeStepFunctions(1234)
    assert events_so_far(client, ARN) == 1234
    assert client.requests == [
        {"executionArn": ARN, "reverseOrder": True, "maxResults": 1, "includeExecutionData": False}
    ]


def test_under_the_budget_the_step_goes_on_and_at_it_the_named_error_says_what_to_do():
    settings = Settings(history_event_budget=20_000)
    ensure_history_budget("DrainNodes", RUN, settings, FakeStepFunctions(19_999))
    with pytest.raises(ExecutionHistoryBudgetExhausted, match="Run the upgrade again") as stopped:
        ensure_history_budget("DrainNodes", RUN, settings, FakeStepFunctions(20_000))
    assert stopped.value.details == {"step": "DrainNodes", "events": 20_000, "budget": 20_000}


def test_outside_an_execution_nothing_is_asked():
    client = FakeStepFunctions(99_999)
    ensure_history_budget("DrainNodes", None, Settings(), client)
    ensure_history_budget("DrainNodes", RunRef(execution_id="test", execution_name="t"), Settings(), client)
    assert client.requests == []


def test_the_budget_leaves_room_under_the_quota_and_every_loop_step_checks_it():
    assert Settings().history_event_budget == 20_000
    with pytest.raises(ValueError):
        Settings(history_event_budget=25_000)
    looping = {s.name for s in STEPS if s.looping}
    assert looping == {
        "PollReplacementNodegroup",
        "DrainNodes",
        "PollNodegroupDeletion",
        "PollControlPlaneUpdate",
        "UpdateAddons",
        "UpdateNodegroupVersions",
        "VerifyUpgrade",
    }


def _cycles_without_a_check(states: dict) -> list[set[str]]:
    """Strongly connected components of a states graph that loop but contain no looping step."""
    looping = {f"${{{s.arn_variable}}}" for s in STEPS if s.looping}
    edges: dict[str, set[str]] = {}
    for name, state in states.items():
        targets = {state.get("Next"), state.get("Default")}
        targets |= {c.get("Next") for c in state.get("Choices", []) + state.get("Catch", [])}
        edges[name] = {t for t in targets if t}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            loops = len(component) > 1 or node in edges[node]
            if loops and not any(states[m].get("Resource") in looping for m in component):
                found.append(component)

    for node in states:
        if node not in index:
            visit(node)
    return found


def test_every_loop_of_the_cluster_workflow_passes_a_step_that_checks_the_budget():
    import json
    from pathlib import Path

    definition = json.loads(
        (Path(__file__).resolve().parents[2] / "statemachines" / "cluster_upgrade.asl.json").read_text()
    )
    # The version chain (NextVersionStep back to Preflight) runs at most MAX_CHAIN_STEPS times (ValidateInput):
    # without it the workflow's own loops are separate components, each of which must hold a check.
    top = dict(definition["States"]) | {"NextVersionStep": {"Type": "Pass", "End": True}}
    graphs = [top] + [s["ItemProcessor"]["States"] for s in top.values() if s["Type"] == "Map"]
    assert all(_cycles_without_a_check(states) == [] for states in graphs)
    # And the check itself finds a loop without one
    assert _cycles_without_a_check(
        {"A": {"Type": "Wait", "Next": "B"}, "B": {"Type": "Choice", "Default": "A"}}
    )
