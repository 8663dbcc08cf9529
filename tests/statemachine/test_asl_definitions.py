"""Static checks of every statemachines/*.asl.json: structure, reachability, substitutions, asl-validator.

These run without CDK or moto: they read the files the stack inlines and the local engine executes.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from upgrader.errors import retryable_error_names, terminal_error_names

from infra.asl import (
    STEP_BY_ARN_VARIABLE,
    SUBSTITUTION,
    SUPPLIED_VARIABLES,
    definition_paths,
    load_definition,
)
from infra.paths import REPO_ROOT

PATHS = definition_paths()
ASL_VALIDATOR = REPO_ROOT / "node_modules" / ".bin" / "asl-validator"


def transitions(state: dict[str, Any]) -> Iterator[str]:
    """Every state name a state can move to (Next, Default, Choice rules, Catch handlers)."""
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for choice in state.get("Choices", []):
        if "Next" in choice:
            yield choice["Next"]
    for catcher in state.get("Catch", []):
        yield catcher["Next"]


def nested_scopes(state: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The sub-state-machines of Parallel branches and Map iterators, each with its own StartAt."""
    yield from state.get("Branches", [])
    for key in ("ItemProcessor", "Iterator"):
        if key in state:
            yield state[key]


def graph_problems(scope: dict[str, Any], where: str = "top level") -> list[str]:
    """Dangling transitions and unreachable states of one scope and, recursively, of its nested ones."""
    states: dict[str, Any] = scope.get("States", {})
    problems = []
    start = scope.get("StartAt")
    if start not in states:
        problems.append(f"{where}: StartAt {start!r} is not a state")
    for name, state in states.items():
        for target in transitions(state):
            if target not in states:
                problems.append(f"{where}: {name} -> {target!r}, which is not a state of this scope")
        for index, nested in enumerate(nested_scopes(state)):
            problems += graph_problems(nested, f"{where} / {name}[{index}]")
    reachable: set[str] = set()
    pending = [start] if start in states else []
    while pending:
        name = pending.pop()
        if name in reachable:
            continue
        reachable.add(name)
        pending += [target for target in transitions(states[name]) if target in states]
    problems += [f"{where}: {name} is unreachable from StartAt" for name in states if name not in reachable]
    return problems


def dummy_arn(variable: str) -> str:
    step = STEP_BY_ARN_VARIABLE[variable]
    return f"arn:aws:lambda:us-east-1:111111111111:function:eks-fleet-upgrader-{step.name}"


@pytest.fixture(params=PATHS, ids=[path.name for path in PATHS])
def asl_path(request: pytest.FixtureRequest) -> Path:
    return request.param


def test_there_is_at_least_one_definition():
    assert PATHS, "statemachines/ holds no *.asl.json"


def test_definition_is_a_json_object_with_states(asl_path):
    document = json.loads(asl_path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    assert isinstance(document.get("States"), dict) and document["States"]


def test_every_transition_target_exists_and_every_state_is_reachable(asl_path):
    definition = load_definition(asl_path)
    assert graph_problems(definition.document) == []


def test_every_substitution_is_one_the_stack_supplies(asl_path):
    definition = load_definition(asl_path)
    # Then every ${...} is well formed (a stray "${" would reach CloudFormation verbatim)
    assert definition.text.count("${") == len(SUBSTITUTION.findall(definition.text))
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name) for name in definition.substitution_names)
    # And each is a catalog function ARN the orchestrator stack substitutes
    assert definition.substitution_names <= SUPPLIED_VARIABLES, sorted(
        definition.substitution_names - SUPPLIED_VARIABLES
    )


@pytest.mark.skipif(
    not ASL_VALIDATOR.exists(),
    reason="node_modules/.bin/asl-validator is missing: run `make setup` (npm ci) to install it",
)
def test_asl_validator_accepts_the_definition_with_arns_substituted(asl_path, tmp_path):
    # Given the definition with each ${...} replaced by a well-formed Lambda ARN
    definition = load_definition(asl_path)
    text = SUBSTITUTION.sub(lambda match: dummy_arn(match.group(1)), definition.text)
    substituted = tmp_path / asl_path.name
    substituted.write_text(text, encoding="utf-8")
    # When the independent validator checks it (locally installed, no network)
    result = subprocess.run(
        [str(ASL_VALIDATOR), "--json-path", str(substituted)], capture_output=True, text=True, check=False
    )
    # Then it agrees the definition is valid
    assert result.returncode == 0, result.stdout + result.stderr


def test_target_account_tasks_share_one_retry_policy_covering_every_retryable_error(asl_path):
    # Given every Task state that runs a step assuming the target role
    definition = load_definition(asl_path)
    policies = {}
    for name, state in definition.document["States"].items():
        match = SUBSTITUTION.search(str(state.get("Resource", "")))
        if state.get("Type") != "Task" or not match:
            continue
        if STEP_BY_ARN_VARIABLE[match.group(1)].assumes_target_role:
            policies[name] = state.get("Retry", [])
    if not policies:
        pytest.skip("no target-account task in this definition")
    # Then they all retry the same way (AWS and Kubernetes throttles, transient errors, Lambda's own)
    assert len({json.dumps(retry, sort_keys=True) for retry in policies.values()}) == 1, sorted(policies)
    retried = {error for rule in next(iter(policies.values())) for error in rule["ErrorEquals"]}
    assert retryable_error_names() <= retried
    assert {"Sandbox.Timedout", "Runtime.ExitError"} <= retried
    # And no terminal error (ReadinessBlocked among them) is ever retried
    assert not retried & terminal_error_names()
    assert "ReadinessBlocked" in terminal_error_names()


# --- the checker itself must be able to fail ------------------------------------------------------------


def test_graph_check_reports_a_dangling_next_and_an_unreachable_state():
    broken = {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "Missing"}],
                "Default": "B",
            },
            "B": {"Type": "Succeed"},
            "Orphan": {"Type": "Pass", "Next": "B"},
            "P": {"Type": "Parallel", "End": True, "Branches": [{"StartAt": "Nope", "States": {}}]},
        },
    }
    problems = graph_problems(broken)
    assert any("A -> 'Missing'" in problem for problem in problems)
    assert any("Orphan is unreachable" in problem for problem in problems)
    assert any("P[0]: StartAt 'Nope'" in problem for problem in problems)


@pytest.mark.skipif(
    not ASL_VALIDATOR.exists(),
    reason="node_modules/.bin/asl-validator is missing: run `make setup` (npm ci) to install it",
)
def test_asl_validator_rejects_an_invalid_definition(tmp_path):
    invalid = tmp_path / "invalid.asl.json"
    invalid.write_text(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}))
    result = subprocess.run(
        [str(ASL_VALIDATOR), "--json-path", str(invalid)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
