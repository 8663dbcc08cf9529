"""``fleetctl fleet add|remove|list``: the fleet registry in the run table (upgrader.gateways.registry), which a
fleet input's ``selector`` picks clusters from (docs/fleet.md, docs/triggers.md)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from upgrader.errors import InvalidInput
from upgrader.fleet.models import WEEKDAYS, FleetSelector, RegisteredCluster
from upgrader.gateways.registry import DynamoClusterRegistry

from fleetctl.deployment import CONSOLE, Deployment, add_common_options, say


class RegistryInputProblem(ValueError):
    pass


def _key(text: str) -> tuple[str, str, str]:
    parts = text.split("/")
    if len(parts) != 3 or not all(parts):
        raise RegistryInputProblem(f"{text!r}: a cluster is ACCOUNT/REGION/NAME")
    return parts[0], parts[1], parts[2]


def _tags(pairs: list[str] | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RegistryInputProblem(f"--tag {pair!r}: write KEY=VALUE")
        tags[key] = value
    return tags


def registered_cluster(args: argparse.Namespace) -> RegisteredCluster:
    account, region, name = _key(args.cluster)
    fields: dict[str, Any] = {
        "accountId": account,
        "region": region,
        "name": name,
        "tags": _tags(args.tag),
        "roleArn": args.role_arn,
        "externalId": args.external_id,
    }
    if args.window_start:
        days = tuple(d.strip().upper() for d in args.window_days.split(",")) if args.window_days else WEEKDAYS
        fields["maintenanceWindow"] = {
            "days": days,
            "start": args.window_start,
            "durationMinutes": args.window_duration,
            "timezone": args.window_timezone,
        }
    elif args.window_days:
        raise RegistryInputProblem("--window-days needs --window-start")
    try:
        return RegisteredCluster.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise RegistryInputProblem(f"{where}: {first['msg']}") from error
    except InvalidInput as error:
        raise RegistryInputProblem(error.message) from error


def _registry(args: argparse.Namespace) -> DynamoClusterRegistry:
    deployment = Deployment.from_args(args)
    return DynamoClusterRegistry(deployment.client("dynamodb"), deployment.run_table())


def cmd_add(args: argparse.Namespace) -> int:
    cluster = registered_cluster(args)  # checked before any AWS call
    created = _registry(args).put(cluster)
    say(f"{'registered' if created else 'updated'} {cluster.key}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    account, region, name = _key(args.cluster)
    if not _registry(args).remove(account, region, name):
        print(f"fleetctl: {args.cluster} is not registered", file=CONSOLE.stderr)
        return 1
    say(f"removed {args.cluster}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    selector = None
    if args.tag or args.account or args.region_filter:
        try:
            selector = FleetSelector(
                tags=_tags(args.tag),
                accounts=tuple(args.account or ()),
                regions=tuple(args.region_filter or ()),
            )
        except ValidationError as error:
            raise RegistryInputProblem(str(error.errors()[0]["msg"])) from error
    clusters = [c for c in _registry(args).clusters() if selector is None or selector.matches(c)]
    if args.json:
        say(json.dumps([c.dump() for c in clusters], indent=2))
        return 0
    for cluster in clusters:
        tags = ",".join(f"{k}={v}" for k, v in sorted(cluster.tags.items())) or "-"
        window = cluster.maintenance_window
        when = (
            f"{'/'.join(window.days)} {window.start}+{window.duration_minutes}m {window.timezone}"
            if window
            else "any time"
        )
        say(f"{cluster.key}\t{tags}\t{when}" + (f"\t{cluster.role_arn}" if cluster.role_arn else ""))
    print(f"{len(clusters)} cluster(s)", file=CONSOLE.stderr)
    return 0


def add_parser(commands: Any, run: Callable[[Callable[[argparse.Namespace], int]], Any]) -> None:
    """``fleetctl fleet ...``; ``run`` wraps each command with the exit codes of fleetctl/operator.py."""

    def checked(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        def wrapped(args: argparse.Namespace) -> int:
            try:
                return command(args)
            except RegistryInputProblem as error:
                print(f"fleetctl: invalid input: {error}", file=CONSOLE.stderr)
                return 2

        return wrapped

    fleet = commands.add_parser("fleet", help="the fleet registry a selector picks clusters from")
    actions = fleet.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="register (or update) a cluster")
    add.add_argument("cluster", help="ACCOUNT/REGION/NAME")
    add.add_argument("--tag", action="append", metavar="KEY=VALUE")
    add.add_argument(
        "--role-arn", help="role to assume instead of the target role (in the cluster's account)"
    )
    add.add_argument("--external-id")
    add.add_argument("--window-days", help="e.g. SAT,SUN (default: every day)")
    add.add_argument("--window-start", help="HH:MM local time of --window-timezone")
    add.add_argument("--window-duration", type=int, default=240, help="minutes (default 240)")
    add.add_argument("--window-timezone", default="UTC")
    add_common_options(add, state_machine=False, table=True)
    add.set_defaults(func=run(checked(cmd_add)))

    remove = actions.add_parser("remove", help="forget a cluster")
    remove.add_argument("cluster", help="ACCOUNT/REGION/NAME")
    add_common_options(remove, state_machine=False, table=True)
    remove.set_defaults(func=run(checked(cmd_remove)))

    listing = actions.add_parser("list", help="registered clusters (optionally those a selector would pick)")
    listing.add_argument("--tag", action="append", metavar="KEY=VALUE")
    listing.add_argument("--account", action="append")
    listing.add_argument("--in-region", dest="region_filter", action="append", metavar="REGION")
    listing.add_argument("--json", action="store_true")
    add_common_options(listing, state_machine=False, table=True)
    listing.set_defaults(func=run(checked(cmd_list)))
