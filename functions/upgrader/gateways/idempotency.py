"""Powertools idempotency for the steps that change something (catalog ``idempotent``), on the run table.

Key: one state entry. The ASL states invoking such a step pass ``{"state": <the state's input>,
"invocation": {"executionId", "stateName", "enteredTime"}}``; the key is the hash of ``[invocation, state]``
(the state too: parallel Map iterations can enter the same state at the same instant). Step Functions
keeps ``$$.State.EnteredTime`` across the Retry attempts of one entry, so an attempt retried after its
predecessor completed (the response was lost: ``Lambda.ServiceException``, ``Sandbox.Timedout``) gets
the saved result and acts no second time; a loop round or a redrive enters the state anew and runs.

Record: ``pk = idempotency#<function name>`` (what the role's ``dynamodb:LeadingKeys`` condition allows,
infra/constructs/run_data.py), ``sk = <step>#<md5>``, expiring after a day (``expiration``, the table's TTL
attribute). A step that raises leaves no record (Powertools deletes it), so its retry runs for real; an
attempt that died mid-step leaves an in-progress record until its Lambda deadline, which a retry meets as
``IdempotencyAlreadyInProgressError`` (retried by the state machine with a backoff that outlasts it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency import exceptions as powertools
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from upgrader.errors import (
    IdempotencyAlreadyInProgressError,
    StepMisconfigured,
    TransientAwsError,
    UnexpectedAwsError,
    UpgradeError,
)
from upgrader.gateways.aws import (
    ACCESS_DENIED_CODES,
    AwsSessionFactory,
    _container_session,
    translate_client_error,
)
from upgrader.settings import Settings

KEY_EXPRESSION = "[invocation, state]"
PARTITION_PREFIX = "idempotency#"
# The run table's TTL attribute (infra/constructs/run_data.py; a test keeps the two in step): DynamoDB
# deletes expired records. Powertools itself treats a record past it as absent, TTL lag or not.
EXPIRY_ATTRIBUTE = "expiration"
# A retry of one state entry comes within minutes (the Retry policies); a day is ample.
EXPIRES_AFTER_SECONDS = 24 * 60 * 60
OPERATION = "dynamodb (idempotency record)"

# One persistence layer (and DynamoDB client) per function and table, made on first use: a Lambda
# container runs one function; the local engine runs them all in one process.
_layers: dict[tuple[str, str], DynamoDBPersistenceLayer] = {}


def partition_key(function_name: str) -> str:
    return f"{PARTITION_PREFIX}{function_name}"


def persistence_layer(settings: Settings, function_name: str) -> DynamoDBPersistenceLayer:
    if not settings.run_table_name:
        raise StepMisconfigured("RUN_TABLE_NAME is not set: the step has no idempotency store")
    cache_key = (settings.run_table_name, function_name)
    if cache_key not in _layers:
        # The Lambda's own credentials (central account), with the one botocore Config of the session factory.
        client = _container_session().client("dynamodb", config=AwsSessionFactory(settings).config)
        _layers[cache_key] = DynamoDBPersistenceLayer(
            table_name=settings.run_table_name,
            key_attr="pk",
            sort_key_attr="sk",
            static_pk_value=partition_key(function_name),
            expiry_attr=EXPIRY_ATTRIBUTE,
            boto3_client=client,
        )
    return _layers[cache_key]


def run_once(
    step: str,
    envelope: dict[str, Any],
    context: Any,
    settings: Settings,
    run: Callable[[], dict[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """``run()`` under idempotency keyed by ``envelope``; returns its output and whether it was the saved
    output of an earlier completed attempt (``run`` not called). Errors of ``run`` propagate unchanged;
    the store's own are translated into the error tree."""
    config = IdempotencyConfig(
        event_key_jmespath=KEY_EXPRESSION,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=EXPIRES_AFTER_SECONDS,
    )
    # The in-progress window ends with this invocation's deadline: a crashed attempt blocks no longer.
    config.register_lambda_context(context)
    ran = False
    raised: Exception | None = None

    def once(envelope: dict[str, Any]) -> dict[str, Any]:
        nonlocal ran, raised
        ran = True
        try:
            return run()
        except Exception as error:
            raised = error
            raise

    guarded = idempotent_function(
        once,
        data_keyword_argument="envelope",
        persistence_store=persistence_layer(settings, context.function_name),
        config=config,
        key_prefix=step,
    )
    try:
        output: dict[str, Any] = guarded(envelope=envelope)
    except powertools.IdempotencyAlreadyInProgressError as error:
        raise IdempotencyAlreadyInProgressError(
            f"{step}: another attempt of this state entry is in progress (or died inside its window)",
            step=step,
            invocation=envelope.get("invocation"),
        ) from error
    except powertools.IdempotencyInconsistentStateError as error:
        raise TransientAwsError(
            f"{step}: the idempotency record changed while it was read", operation=OPERATION
        ) from error
    except powertools.IdempotencyPersistenceLayerError as error:
        if raised is not None:
            # The step failed and its in-progress record could not be deleted: the step's own error is
            # what the state machine must see; a retry waits out the record's window, then runs for real.
            raise raised from error
        raise _store_error(step, error) from error
    return output, not ran


def _store_error(step: str, error: powertools.IdempotencyPersistenceLayerError) -> UpgradeError:
    cause = error.__cause__
    if isinstance(cause, ClientError):
        code = cause.response.get("Error", {}).get("Code", "")
        if code in ACCESS_DENIED_CODES:
            return StepMisconfigured(
                f"{step} may not use its idempotency records in the run table",
                operation=OPERATION,
                awsErrorCode=code,
            )
        return translate_client_error(cause, OPERATION)
    if isinstance(cause, ConnectionError | ReadTimeoutError):
        return TransientAwsError(f"{OPERATION}: {type(cause).__name__}", operation=OPERATION)
    if isinstance(cause, BotoCoreError):
        return UnexpectedAwsError(f"{OPERATION}: {cause}", operation=OPERATION)
    return UnexpectedAwsError(f"{step}: {error}", operation=OPERATION)
