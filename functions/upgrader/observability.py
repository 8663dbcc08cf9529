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

from upgrader.errors import InvalidInput, UpgradeError
from upgrader.leases import ensure_lease_held
from upgrader.models import StateModel

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


def step_handler(
    step: str, input_model: type[In]
) -> Callable[[Callable[[In], StateModel]], Callable[..., Any]]:
    """Wrap a step: parse the state input into ``input_model``, correlate logs, record the outcome.

    The wrapped function receives the parsed model and returns an output model; the handler
    returns it dumped to JSON. Errors from the error tree propagate with their class name, which
    is what the ASL's Retry/Catch match.
    """

    def decorate(fn: Callable[[In], StateModel]) -> Callable[..., Any]:
        @functools.wraps(fn)
        @logger.inject_lambda_context(clear_state=True)
        @tracer.capture_lambda_handler(capture_response=False)
        @metrics.log_metrics
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            try:
                parsed = input_model.model_validate(event)
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
            try:
                ensure_lease_held(step, parsed)
                result = fn(parsed)
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
            return result.dump()

        return handler

    return decorate
