"""Logger, Tracer and Metrics (Powertools), and the decorator every step handler uses.

Correlation: every log line carries the execution id and the cluster key. Never log credentials,
tokens or kubeconfigs: models passed to the logger hold none.
"""

from __future__ import annotations

import functools
import io
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from upgrader.catalog import STEPS_BY_NAME
from upgrader.errors import IdempotencyEnvelopeMissing, InvalidInput, UpgradeError
from upgrader.leases import ensure_lease_held
from upgrader.models import Invocation, StateModel
from upgrader.settings import Settings

SERVICE = "eks-fleet-upgrader"


class _CurrentStdout(io.TextIOBase):
    """Writes to whatever ``sys.stdout`` is at write time (Lambda: the process's stdout; the local
    engine: the run's log), rather than the stream bound when the module was imported."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


logger = Logger(service=SERVICE, logger_handler=logging.StreamHandler(_CurrentStdout()))
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace="EksFleetUpgrader")

In = TypeVar("In", bound=StateModel)
ENVELOPE_KEYS = frozenset({"state", "invocation"})


def state_of(step: str, event: Any) -> Any:
    """The state input inside the invocation envelope of a step that changes something (catalog
    ``idempotent``); such a step never runs without the idempotency the envelope keys."""
    if not isinstance(event, dict) or set(event) != ENVELOPE_KEYS:
        raise IdempotencyEnvelopeMissing(
            f"{step} changes something and runs only under idempotency: its ASL state must pass "
            '{"state.$": "$", "invocation": {executionId, stateName, enteredTime}}',
            step=step,
            received=sorted(event) if isinstance(event, dict) else type(event).__name__,
        )
    try:
        Invocation.model_validate(event["invocation"])
    except ValidationError as error:
        raise IdempotencyEnvelopeMissing(
            f"{step} received an invocation envelope without its state entry",
            step=step,
            errors=error.errors(include_url=False, include_input=False),
        ) from error
    return event["state"]


def step_handler(
    step: str, input_model: type[In]
) -> Callable[[Callable[[In], StateModel]], Callable[..., Any]]:
    """Wrap a step: parse the state input into ``input_model``, correlate logs, record the outcome.

    The wrapped function receives the parsed model and returns an output model; the handler
    returns it dumped to JSON. Errors from the error tree propagate with their class name, which
    is what the ASL's Retry/Catch match.

    A step the catalog marks ``looping`` first checks its execution's history is under its budget
    (upgrader/gateways/execution_history.py). A step the catalog marks ``idempotent`` takes its state inside the invocation envelope and runs
    under Powertools idempotency keyed by the state entry (upgrader/gateways/idempotency.py): a retry
    of an entry whose attempt completed returns that attempt's output and changes nothing again.
    """
    spec = STEPS_BY_NAME.get(step)
    idempotent = spec is not None and spec.idempotent
    looping = spec is not None and spec.looping

    def decorate(fn: Callable[[In], StateModel]) -> Callable[..., Any]:
        @functools.wraps(fn)
        @logger.inject_lambda_context(clear_state=True)
        @tracer.capture_lambda_handler(capture_response=False)
        @metrics.log_metrics
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            try:
                state = state_of(step, event) if idempotent else event
            except IdempotencyEnvelopeMissing as error:
                # A deployment error (state machine and functions out of step): visible on the dashboard.
                logger.error("step refused", extra={"error": type(error).__name__, "details": error.details})
                metrics.add_metric(name=f"{step}Error", unit=MetricUnit.Count, value=1)
                raise
            try:
                parsed = input_model.model_validate(state)
            except ValidationError as error:
                raise InvalidInput(
                    f"{step} received a state that does not match {input_model.__name__}",
                    errors=error.errors(include_url=False, include_input=False),
                ) from error
            run = getattr(parsed, "run", None)
            cluster = getattr(parsed, "cluster", None)
            logger.append_keys(
                step=step,
                execution_id=getattr(run, "execution_id", None),
                cluster=getattr(cluster, "key", None),
            )
            tracer.put_annotation("step", step)

            def call_step() -> dict[str, Any]:
                if looping:
                    # Imported here: only the loops' steps read their execution's history.
                    from upgrader.gateways.execution_history import ensure_history_budget

                    ensure_history_budget(step, getattr(parsed, "run", None), Settings.load())
                ensure_lease_held(step, parsed)
                return fn(parsed).dump()

            try:
                if idempotent:
                    # Imported here: only the steps that change something pay for it (boto3, DynamoDB).
                    from upgrader.gateways.idempotency import run_once

                    output, replayed = run_once(step, event, context, Settings.load(), call_step)
                    if replayed:
                        logger.info("returned the saved output of this state entry's completed attempt")
                        metrics.add_metric(name=f"{step}Replayed", unit=MetricUnit.Count, value=1)
                else:
                    output = call_step()
            except UpgradeError as error:
                logger.warning(
                    "step stopped", extra={"error": type(error).__name__, "details": error.details}
                )
                metrics.add_metric(name=f"{step}Error", unit=MetricUnit.Count, value=1)
                raise
            except Exception:
                logger.exception("step failed unexpectedly")
                metrics.add_metric(name=f"{step}UnhandledError", unit=MetricUnit.Count, value=1)
                raise
            metrics.add_metric(name=f"{step}Ok", unit=MetricUnit.Count, value=1)
            return output

        return handler

    return decorate
