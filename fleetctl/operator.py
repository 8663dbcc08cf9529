"""Operator commands against a deployed orchestrator (boto3): start, plan, status, watch, report, approve,
and the fleet registry (fleetctl/registry.py). docs/triggers.md has the IAM they need and CI examples.

Exit codes (``start --wait``, ``plan --wait``, ``watch``):
  0  the fleet succeeded and every cluster succeeded (or was planned, or skipped: locked / outside its window)
  1  a cluster failed or was blocked, or the fleet failed, was stopped or timed out
  2  invalid input (checked on this machine before any AWS call, or rejected by ValidateFleetInput) or usage
  3  ``--approval-timeout`` passed while a wave waited for its approval (the execution keeps waiting)
  4  fleetctl could not do its job: configuration, AWS error, no such execution
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError
from upgrader.errors import InvalidFleetInput, UpgradeError
from validate_fleet_input.rules import check_fleet_input, check_waves

from fleetctl import progress as fleet_progress
from fleetctl import registry
from fleetctl.deployment import CONSOLE, Deployment, OperatorError, add_common_options, say
from fleetctl.progress import CLUSTER_MILESTONES, FleetProgress

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_APPROVAL_TIMEOUT, EXIT_ERROR = 0, 1, 2, 3, 4
COMMANDS = ("start", "plan", "status", "watch", "report", "approve", "redrive", "fleet")
EXECUTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
APPROVAL_REJECTED = "FleetApprovalRejected"  # the error RecordRejection expects (docs/fleet.md)
OK_OUTCOMES = frozenset({"SUCCEEDED", "PLANNED", "SKIPPED"})
REDRIVABLE = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
# The fleet's own stops (docs/fleet.md): decisions, not outages. A redrive would replay them and stop again.
TERMINAL_FLEET_ERRORS = frozenset({"FleetToleranceExceeded", APPROVAL_REJECTED, "InvalidFleetInput"})


class InputProblem(Exception):
    """The input file or the options are wrong: exit code 2, nothing was started."""


# --- the input -----------------------------------------------------------------------------------------
def load_input(path: Path, mode: str | None = None) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise InputProblem(f"cannot read {path}: {error.strerror}") from error
    except ValueError as error:
        raise InputProblem(f"{path} is not JSON: {error}") from error
    if mode is not None and isinstance(document, dict):
        document = {**document, "mode": mode}
    try:
        check_waves(check_fleet_input(document))
    except InvalidFleetInput as error:
        raise InputProblem(f"{path}: {error.message}") from error
    return document


def canonical(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def execution_name(document: dict[str, Any], today: dt.date | None = None) -> str:
    """``fleet-<mode>-<toVersion>-<yyyymmdd>-<12 hex of the input's SHA-256>``: the same input started twice
    on one (UTC) day is one execution (StartExecution is idempotent for a running execution, and fleetctl
    follows a finished one instead of starting it again); give ``--name`` to choose another."""
    day = (today or dt.datetime.now(dt.UTC).date()).strftime("%Y%m%d")
    digest = hashlib.sha256(canonical(document).encode()).hexdigest()[:12]
    version = str(document.get("toVersion", "")).replace(".", "-")
    return f"fleet-{document.get('mode', 'upgrade')}-{version}-{day}-{digest}"


def start_execution(deployment: Deployment, document: dict[str, Any], name: str) -> tuple[str, bool]:
    """(execution ARN, False when an ended execution of that name and input is followed instead). A running
    one is returned by StartExecution itself (idempotent for the same name and input); the same name with
    another input is an input problem (choose another ``--name``)."""
    machine = deployment.state_machine_arn()
    sfn = deployment.client("stepfunctions")
    try:
        started = sfn.start_execution(stateMachineArn=machine, name=name, input=canonical(document))
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise OperatorError(f"StartExecution: {error}") from error
        arn = deployment.execution_arn(name)
        existing = sfn.describe_execution(executionArn=arn)
        if json.loads(existing.get("input") or "null") != document:
            raise InputProblem(
                f"an execution named {name} already exists with another input: give another --name"
            ) from error
        return arn, False
    return started["executionArn"], True


# --- reading an execution ------------------------------------------------------------------------------
def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])
    return events


def _child_step(sfn: Any, arn: str) -> str | None:
    """The child's newest main step (CLUSTER_MILESTONES), read newest events first."""
    pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=arn, reverseOrder=True, PaginationConfig={"PageSize": 100, "MaxItems": 300}
    )
    try:
        for page in pages:
            for event in page["events"]:
                name = (event.get("stateEnteredEventDetails") or {}).get("name")
                if name in CLUSTER_MILESTONES:
                    return str(name)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
            return None  # StartExecution not yet answered
        raise
    return None


def snapshot(deployment: Deployment, arn: str, *, children: bool = True) -> FleetProgress:
    sfn = deployment.client("stepfunctions")
    try:
        described = sfn.describe_execution(executionArn=arn)
        events = _history(sfn, arn)
        return fleet_progress.read(
            arn, described, events, (lambda child: _child_step(sfn, child)) if children else None
        )
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in ("ExecutionDoesNotExist", "InvalidArn"):
            raise OperatorError(f"no fleet execution {arn}") from error
        raise OperatorError(f"reading {arn}: {error}") from error


def fetch_report(deployment: Deployment, progress: FleetProgress, fmt: str) -> bytes:
    if not progress.report:
        state = "still running" if progress.running else "ended without one"
        raise OperatorError(f"fleet {progress.name} has no report yet ({state})")
    key = str(progress.report["jsonKey"])
    if fmt == "md":
        key = str(progress.report["markdownKey"])
    elif fmt == "html":
        key = str(progress.report.get("htmlKey") or key.removesuffix(".json") + ".html")
    try:
        return bytes(
            deployment.client("s3").get_object(Bucket=progress.report["bucket"], Key=key)["Body"].read()
        )
    except ClientError as error:
        raise OperatorError(f"s3://{progress.report['bucket']}/{key}: {error}") from error


def finish(deployment: Deployment, progress: FleetProgress, err: TextIO) -> None:
    """The report's statuses replace what the history suggests (BLOCKED, NOT_STARTED)."""
    if progress.report and not progress.running:
        try:
            progress.finish_from_report(json.loads(fetch_report(deployment, progress, "json")))
        except OperatorError as error:
            print(f"fleetctl: {error} (statuses are from the execution history)", file=err)


def exit_code(progress: FleetProgress) -> int:
    if progress.running:
        return EXIT_OK
    if progress.status != "SUCCEEDED":
        return EXIT_INVALID if progress.error == "InvalidFleetInput" else EXIT_FAILED
    outcome = (progress.report or {}).get("outcome")
    statuses = {cluster.status for cluster in progress.clusters.values()}
    if outcome in ("SUCCEEDED", "PLANNED") and statuses <= OK_OUTCOMES:
        return EXIT_OK
    return EXIT_FAILED


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%H:%M:%S")


def follow(
    deployment: Deployment,
    arn: str,
    *,
    interval: float,
    approval_timeout: float | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """Prints every change of a wave or a cluster until the fleet ends; the exit code says how it ended."""
    said: dict[str, str] = {}  # the last line printed per wave and per cluster
    waiting_since: dict[str, float] = {}  # wave -> when this command first saw it wait for its approval
    while True:
        progress = snapshot(deployment, arn)
        if not progress.running:
            finish(deployment, progress, err)
        changes = [(f"wave:{w.name}", f"wave {w.name}: {w.status}") for w in progress.waves]
        changes += [(key, cluster.line()) for key, cluster in progress.clusters.items()]
        for key, line in changes:
            if said.get(key) != line:
                said[key] = line
                print(f"{_stamp()} {line}", file=out, flush=True)
        if not progress.running:
            _print_end(progress, out)
            return exit_code(progress)
        for wave in progress.pending_approvals():
            if wave.name not in waiting_since:
                waiting_since[wave.name] = time.monotonic()
                print(
                    f"   approve: fleetctl approve {progress.name} --wave {wave.name}", file=out, flush=True
                )
            if (
                approval_timeout is not None
                and time.monotonic() - waiting_since[wave.name] >= approval_timeout
            ):
                print(
                    f"fleetctl: wave {wave.name} still waits for its approval after {approval_timeout:g} s; "
                    f"the execution keeps waiting (fleetctl approve {progress.name} --wave {wave.name})",
                    file=err,
                )
                return EXIT_APPROVAL_TIMEOUT
        time.sleep(interval)


def cause_text(cause: str | None) -> str:
    """An execution's cause, readable: a Lambda error's message without its JSON details."""
    try:
        parsed = json.loads(cause or "")
    except ValueError:
        parsed = None
    message = parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
    return str(message or "").split(" | ")[0][:500]


def _print_end(progress: FleetProgress, out: TextIO) -> None:
    counts = ", ".join(f"{n} {status.lower()}" for status, n in progress.counts().items()) or "no cluster"
    line = f"fleet {progress.name}: {progress.status}"
    if progress.error:
        line += f" ({progress.error}: {cause_text(progress.cause)})"
    print(f"{line}; {counts}", file=out)
    if progress.report:
        print(f"report: s3://{progress.report['bucket']}/{progress.report['markdownKey']}", file=out)


def _follow(deployment: Deployment, arn: str, args: argparse.Namespace) -> int:
    """``follow`` with the command's --interval and --approval-timeout, on the console."""
    return follow(
        deployment,
        arn,
        interval=args.interval,
        approval_timeout=args.approval_timeout,
        out=CONSOLE.stdout,
        err=CONSOLE.stderr,
    )


# --- commands ------------------------------------------------------------------------------------------
def cmd_start(args: argparse.Namespace, mode: str | None = None) -> int:
    document = load_input(args.input, mode)  # before any AWS call
    name = args.name or execution_name(document)
    if not EXECUTION_NAME.match(name):
        raise InputProblem(f"--name {name!r}: 1-80 characters among A-Z a-z 0-9 _ -")
    deployment = Deployment.from_args(args)
    arn, started = start_execution(deployment, document, name)
    say(f"{'execution' if started else 'following the ended execution'} {arn}", flush=True)
    if not args.wait:
        return EXIT_OK
    code = _follow(deployment, arn, args)
    if mode == "plan" and code in (EXIT_OK, EXIT_FAILED):
        print_plan(snapshot(deployment, arn, children=False), deployment)
    return code


def print_plan(progress: FleetProgress, deployment: Deployment) -> None:
    finish(deployment, progress, CONSOLE.stderr)
    say(f"\nplan of {progress.name} (to {progress.to_version}):")
    for wave in progress.waves:
        say(f"wave {wave.name}:")
        for key in wave.clusters:
            cluster = progress.clusters[key]
            say(f"  {key}: {cluster.status}" + (f": {cluster.detail}" if cluster.detail else ""))


def cmd_status(args: argparse.Namespace) -> int:
    deployment = Deployment.from_args(args)
    progress = snapshot(deployment, deployment.execution_arn(args.execution))
    finish(deployment, progress, CONSOLE.stderr)
    if args.json:
        say(json.dumps(fleet_progress.summary(progress), indent=2, default=str))
        return EXIT_OK
    say(f"fleet {progress.name}: {progress.status}" + (f" ({progress.error})" if progress.error else ""))
    for wave in progress.waves:
        say(f"wave {wave.name}: {wave.status}")
        for key in wave.clusters:
            say(f"  {progress.clusters[key].line()}")
    if progress.clusters:
        say(", ".join(f"{n} {status.lower()}" for status, n in progress.counts().items()))
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    deployment = Deployment.from_args(args)
    arn = deployment.execution_arn(args.execution)
    last = ""
    while True:
        progress = snapshot(deployment, arn)
        if not progress.running:
            finish(deployment, progress, CONSOLE.stderr)
        frame = fleet_progress.render(progress)
        if args.once:
            say(frame)
            return EXIT_OK
        if frame != last:
            if CONSOLE.stdout.isatty():
                say("\x1b[H\x1b[2J", end="")  # clear the terminal: one live frame
            say(frame + ("" if CONSOLE.stdout.isatty() else "\n"), flush=True)
            last = frame
        if not progress.running:
            return exit_code(progress)
        time.sleep(args.interval)


def cmd_report(args: argparse.Namespace) -> int:
    deployment = Deployment.from_args(args)
    progress = snapshot(deployment, deployment.execution_arn(args.execution), children=False)
    body = fetch_report(deployment, progress, args.format)
    if args.out is None:
        CONSOLE.stdout.write(body.decode())
        return EXIT_OK
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"fleet-report.{args.format}"
    path.write_bytes(body)
    say(path)
    return EXIT_OK


def _describe(deployment: Deployment, execution: str) -> tuple[Any, str, dict[str, Any]]:
    """The Step Functions client, the execution's ARN (from a name or an ARN) and DescribeExecution."""
    arn = deployment.execution_arn(execution)
    sfn = deployment.client("stepfunctions")
    try:
        return sfn, arn, sfn.describe_execution(executionArn=arn)
    except ClientError as error:
        raise OperatorError(f"no fleet execution {arn}: {error}") from error


def cmd_approve(args: argparse.Namespace) -> int:
    if args.reject and not args.reason:
        raise InputProblem("--reject needs --reason (it is recorded as the wave's rejection)")
    deployment = Deployment.from_args(args)
    sfn, _, described = _describe(deployment, args.execution)
    if described["status"] != "RUNNING":
        raise OperatorError(f"fleet {described['name']} is {described['status']}: nothing waits for approval")
    fleet, table = described["name"], deployment.run_table()
    dynamodb = deployment.client("dynamodb")
    key = {"pk": {"S": f"APPROVAL#{fleet}"}, "sk": {"S": f"WAVE#{args.wave}"}}
    item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    if not item:
        raise OperatorError(f"fleet {fleet} has not asked for the approval of a wave {args.wave!r} (yet)")
    if item.get("status", {}).get("S") != "PENDING":
        raise OperatorError(f"wave {args.wave} of {fleet} was already answered: {item['status']['S']}")
    by = args.by or deployment.client("sts").get_caller_identity()["Arn"]
    token = item["taskToken"]["S"]
    try:
        if args.reject:
            sfn.send_task_failure(taskToken=token, error=APPROVAL_REJECTED, cause=args.reason)
        else:
            answer = {"approvedBy": by, "reason": args.reason or ""}
            sfn.send_task_success(taskToken=token, output=json.dumps(answer))
    except ClientError as error:
        raise OperatorError(f"wave {args.wave} of {fleet} no longer waits for an answer: {error}") from error
    status = "REJECTED" if args.reject else "APPROVED"
    try:  # the item records who answered; the token is spent either way
        dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET #status = :status, answeredBy = :by, answeredAt = :at",
            ConditionExpression="#status = :pending",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":status": {"S": status},
                ":by": {"S": by},
                ":at": {"S": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
                ":pending": {"S": "PENDING"},
            },
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
    say(f"wave {args.wave} of {fleet}: {status.lower()} by {by}")
    return EXIT_OK


def cmd_redrive(args: argparse.Namespace) -> int:
    """RedriveExecution: a fleet FAILED by an outage (a step's retries exhausted) continues at the failed
    step; the clusters it had finished are not touched again (docs/operations.md, "Redrive")."""
    deployment = Deployment.from_args(args)
    sfn, arn, described = _describe(deployment, args.execution)
    if described["status"] not in REDRIVABLE:
        raise OperatorError(
            f"fleet {described['name']} is {described['status']}: only a FAILED, TIMED_OUT or ABORTED "
            "execution can be redriven"
        )
    if described.get("error") in TERMINAL_FLEET_ERRORS:
        raise OperatorError(
            f"fleet {described['name']} stopped on purpose ({described['error']}): a redrive would stop "
            "again; start a new fleet run for the clusters that are left"
        )
    try:
        sfn.redrive_execution(executionArn=arn)
    except ClientError as error:
        raise OperatorError(f"fleet {described['name']} cannot be redriven: {error}") from error
    say(f"redriven {arn}", flush=True)
    return _follow(deployment, arn, args) if args.wait else EXIT_OK


# --- the parser ----------------------------------------------------------------------------------------
def _run(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(handler(args))
        except InputProblem as error:
            print(f"fleetctl: invalid input: {error}", file=CONSOLE.stderr)
            return EXIT_INVALID
        except (OperatorError, UpgradeError) as error:
            print(f"fleetctl: {error}", file=CONSOLE.stderr)
            return EXIT_ERROR
        except ClientError as error:
            print(f"fleetctl: AWS: {error}", file=CONSOLE.stderr)
            return EXIT_ERROR

    return run


def _follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="follow the execution to its end (exit code)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between polls (default 10)")
    parser.add_argument(
        "--approval-timeout",
        type=float,
        help="with --wait: exit 3 when a wave has waited this many seconds for its approval",
    )


def add_parsers(commands: Any) -> None:
    start = commands.add_parser(
        "start", help="start the fleet workflow with an input file (docs/triggers.md)"
    )
    start.add_argument("--input", type=Path, required=True)
    start.add_argument("--name", help="execution name (default: derived from the input and the day)")
    _follow_options(start)
    add_common_options(start, state_machine=True, table=False)
    start.set_defaults(func=_run(cmd_start))

    plan = commands.add_parser("plan", help='start the input with "mode": "plan" and print the plan')
    plan.add_argument("--input", type=Path, required=True)
    plan.add_argument("--name")
    _follow_options(plan)
    add_common_options(plan, state_machine=True, table=False)
    plan.set_defaults(func=_run(lambda args: cmd_start(args, mode="plan")))

    status = commands.add_parser("status", help="a fleet execution's waves and clusters")
    status.add_argument("execution", help="execution ARN, or name of a fleet execution")
    status.add_argument("--json", action="store_true")
    add_common_options(status, state_machine=True, table=False)
    status.set_defaults(func=_run(cmd_status))

    watch = commands.add_parser("watch", help="live per-cluster progress bars until the fleet ends")
    watch.add_argument("execution")
    watch.add_argument("--once", action="store_true", help="print one frame and exit")
    watch.add_argument("--interval", type=float, default=10.0)
    add_common_options(watch, state_machine=True, table=False)
    watch.set_defaults(func=_run(cmd_watch))

    report = commands.add_parser("report", help="fetch the fleet report WriteFleetReport wrote to S3")
    report.add_argument("execution")
    report.add_argument("--format", choices=("json", "md", "html"), default="md")
    report.add_argument("--out", type=Path, help="directory to write fleet-report.<format> (default: stdout)")
    add_common_options(report, state_machine=True, table=False)
    report.set_defaults(func=_run(cmd_report))

    approve = commands.add_parser("approve", help="answer a wave's approval gate")
    approve.add_argument("execution")
    approve.add_argument("--wave", required=True)
    approve.add_argument("--reject", action="store_true")
    approve.add_argument("--reason", help="recorded with the answer (required with --reject)")
    approve.add_argument("--by", help="who answers (default: the caller's AWS identity)")
    add_common_options(approve, state_machine=True, table=True)
    approve.set_defaults(func=_run(cmd_approve))

    redrive = commands.add_parser(
        "redrive", help="continue a fleet execution that an outage failed, from the failed step"
    )
    redrive.add_argument("execution")
    _follow_options(redrive)
    add_common_options(redrive, state_machine=True, table=False)
    redrive.set_defaults(func=_run(cmd_redrive))

    registry.add_parser(commands, _run)
