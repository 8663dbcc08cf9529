"""``fleetctl scan``: the offline readiness scan of Kubernetes manifests, for CI.

    fleetctl scan [--format table|json|sarif] [--target-version 1.24] [--from-version 1.23] PATH...
    helm template my-chart | fleetctl scan -

PATHs are files or folders (searched recursively for .yaml, .yml and .json); ``-`` reads standard
input. Documents are parsed (multi-document YAML, ``List`` kinds unwrapped), never grepped, and
every finding carries its file and the line of the offending field: the loader records the line
of every node while it parses.

Exit codes: 0 no blocking finding; 1 at least one blocking finding; 2 unreadable input or a bad
version step (the message on stderr names the file and line).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import yaml
from upgrader.errors import UnsupportedVersionStep
from upgrader.readiness import REGISTRY, SEVERITIES, Finding, Inventory, ScanResult, evaluate
from upgrader.readiness.engine import Rule
from upgrader.versions import KubeVersion
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SARIF_LEVELS = {"blocking": "error", "warning": "warning", "info": "note"}
TOOL_NAME = "fleetctl scan"

LineTable = dict[tuple[str | int, ...], tuple[int, int | None]]  # path -> (line, first line of a | block)


class InputError(Exception):
    """Input that cannot be read or parsed; ``str()`` is ``file:line: problem``."""

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        super().__init__(f"{file}:{line}: {problem}" if line else f"{file}: {problem}")
        self.file, self.line, self.problem = file, line, problem


@dataclass(frozen=True)
class Origin:
    """Where an object came from: the file, and the line of every field of the document holding it."""

    file: str
    uri: str
    lines: LineTable
    prefix: tuple[str | int, ...] = ()

    def line_of(self, path: tuple[str | int, ...], value_line: int | None = None) -> int | None:
        full = (*self.prefix, *path)
        for length in range(len(full), -1, -1):
            entry = self.lines.get(full[:length])
            if entry is not None:
                line, block_start = entry
                if length == len(full) and value_line is not None and block_start is not None:
                    return block_start + value_line
                return line
        return None


@dataclass
class Manifests:
    objects: list[dict[str, Any]] = field(default_factory=list)
    origins: list[Origin] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def origin(self, finding: Finding) -> Origin | None:
        index = finding.evidence.object_index
        return self.origins[index] if index is not None and 0 <= index < len(self.origins) else None

    def location(self, finding: Finding) -> tuple[str | None, int | None]:
        origin = self.origin(finding)
        if origin is None:
            return None, None
        return origin.file, origin.line_of(finding.evidence.path, finding.evidence.value_line)


# --- loading --------------------------------------------------------------------------------------------
def _index_lines(node: Node, path: tuple[str | int, ...], lines: LineTable) -> None:
    if isinstance(node, MappingNode):
        children = [(k.value, v, k) for k, v in node.value if isinstance(k, ScalarNode) and k.value != "<<"]
    elif isinstance(node, SequenceNode):
        children = [(i, v, v) for i, v in enumerate(node.value)]
    else:
        return
    for key, value, anchor in children:
        child = (*path, key)
        block = value.start_mark.line + 2 if isinstance(value, ScalarNode) and value.style == "|" else None
        lines.setdefault(child, (anchor.start_mark.line + 1, block))
        _index_lines(value, child, lines)


# libyaml's parser (PyYAML's C binding, when built with it) gives the same nodes and line marks as the
# pure-Python one, about ten times faster: the parse is most of an offline scan's time.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_CORE + t for t in ("null", "bool", "int", "float", "timestamp", "binary"))
_MISSING, _IN_PROGRESS = object(), object()


class _Unusual(Exception):
    """A document the fast path leaves to PyYAML's constructor: merge keys, recursive aliases,
    non-core tags, unhashable keys (same result, same errors)."""


def _build(node: Node, loader: Any, memo: dict[int, Any]) -> Any:
    """A document's data from its composed nodes, as PyYAML's SafeConstructor builds it, without its
    two-phase generator machinery (which costs as much as the parse itself): plain mappings,
    sequences and core scalars, each scalar converted by SafeConstructor's own function for its
    tag; an alias returns the object built for its node. Anything else raises :class:`_Unusual`."""
    known = memo.get(id(node), _MISSING)
    if known is _IN_PROGRESS:
        raise _Unusual  # a recursive structure
    if known is not _MISSING:
        return known
    tag = node.tag
    if isinstance(node, ScalarNode):
        if tag == _CORE + "str":
            value: Any = node.value
        elif tag in _SCALAR_TAGS:
            value = loader.yaml_constructors[tag](loader, node)
        else:
            raise _Unusual
    elif isinstance(node, SequenceNode) and tag == _CORE + "seq":
        memo[id(node)] = _IN_PROGRESS
        value = [_build(child, loader, memo) for child in node.value]
    elif isinstance(node, MappingNode) and tag == _CORE + "map":
        memo[id(node)] = _IN_PROGRESS
        value = {}
        for key_node, value_node in node.value:
            key = _build(key_node, loader, memo)
            if key_node.tag == _CORE + "merge" or not isinstance(key, Hashable):
                raise _Unusual
            value[key] = _build(value_node, loader, memo)
    else:
        raise _Unusual
    memo[id(node)] = value
    return value


def _construct(node: Node, loader: Any) -> Any:
    try:
        return _build(node, loader, {})
    except _Unusual:
        return loader.construct_document(node)


def _documents(text: str, file: str) -> Iterator[tuple[Any, LineTable]]:
    loader = _LOADER(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: LineTable = {(): (node.start_mark.line + 1, None)}
            _index_lines(node, (), lines)
            yield _construct(node, loader), lines
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "invalid YAML"
        if error.context and error.context_mark and error.problem_mark:
            problem += f" ({error.context} started at line {error.context_mark.line + 1})"
        raise InputError(file, mark.line + 1 if mark else None, f"not valid YAML: {problem}") from error
    except yaml.YAMLError as error:
        raise InputError(file, None, f"not valid YAML: {error}") from error
    finally:
        loader.dispose()


def _kubernetes_objects(
    data: Any, prefix: tuple[str | int, ...] = ()
) -> Iterator[tuple[dict[str, Any], tuple[str | int, ...]]]:
    """Objects with a kind; ``List`` (and typed ``*List``) items unwrapped; a top-level sequence too."""
    if isinstance(data, list):
        for i, item in enumerate(data):
            yield from _kubernetes_objects(item, (*prefix, i))
        return
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return  # values files, empty documents: not Kubernetes objects
    kind = data["kind"]
    if kind.endswith("List") and isinstance(data.get("items"), list):
        item_kind = kind[: -len("List")] if kind != "List" else None
        for i, item in enumerate(data["items"]):
            if isinstance(item, dict) and item_kind and "kind" not in item:
                item = {"kind": item_kind, **item}
            yield from _kubernetes_objects(item, (*prefix, "items", i))
        return
    yield data, prefix


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(file, raw.count(b"\n", 0, error.start) + 1, "not UTF-8 text") from error


def load_text(text: str, file: str, uri: str, into: Manifests) -> None:
    try:
        documents = list(_documents(text, file))
    except InputError:
        if not file.lower().endswith(".json"):
            raise
        try:  # JSON that YAML 1.1 rejects (tabs, for one) still reads, without line numbers
            documents = [(json.loads(text), {})]
        except json.JSONDecodeError as error:
            raise InputError(file, error.lineno, f"not valid JSON: {error.msg}") from error
    for data, lines in documents:
        for obj, prefix in _kubernetes_objects(data):
            into.objects.append(obj)
            into.origins.append(Origin(file=file, uri=uri, lines=lines, prefix=prefix))
    into.files.append(file)


def _files(argument: str) -> list[Path]:
    path = Path(argument)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if path.is_file():
        return [path]
    raise InputError(argument, None, "no such file or directory")


def _uri(path: Path) -> str:
    return path.resolve().as_uri() if path.is_absolute() else quote(path.as_posix(), safe="/:@")


def load_paths(arguments: list[str], stdin: TextIO | None = None) -> Manifests:
    manifests = Manifests()
    for argument in arguments:
        if argument == STDIN:
            load_text((stdin or sys.stdin).read(), "<stdin>", "stdin", manifests)
            continue
        for path in _files(argument):
            try:
                raw = path.read_bytes()
            except OSError as error:
                raise InputError(str(path), None, error.strerror or "cannot be read") from error
            load_text(_decode(raw, str(path)), str(path), _uri(path), manifests)
    return manifests


# --- output -------------------------------------------------------------------------------------------
def render_json(result: ScanResult, manifests: Manifests) -> dict[str, Any]:
    findings = []
    for finding in result.findings:
        file, line = manifests.location(finding)
        e = finding.evidence
        findings.append(
            {
                "rule": finding.rule,
                "severity": finding.severity,
                "kind": e.kind,
                "namespace": e.namespace,
                "name": e.name,
                "file": file,
                "line": line,
                "path": e.field_path,
                "value": e.value,
                "message": finding.message,
                "remediation": finding.remediation,
                "reference": finding.reference,
            }
        )
    return {
        "fromVersion": result.from_version,
        "toVersion": result.to_version,
        "findings": findings,
        "summary": {
            "blocking": result.count("blocking"),
            "warning": result.count("warning"),
            "info": result.count("info"),
            "filesScanned": len(manifests.files),
            "objectsScanned": result.objects_scanned,
            "notEvaluated": [n.dump() for n in result.not_evaluated],
        },
    }


def _rule_level(rule: Rule) -> str:
    first = rule.severity.split()[0].rstrip(";,")
    return SARIF_LEVELS.get(first, "warning")


def _rule_name(rule: Rule) -> str:
    return "".join(
        word[:1].upper() + word[1:] for word in rule.title.replace("'", "").split() if word.isalnum()
    )


def _tool_version() -> str | None:
    try:
        return metadata.version("eks-fleet-upgrader")
    except metadata.PackageNotFoundError:
        return None


def render_sarif(result: ScanResult, manifests: Manifests) -> dict[str, Any]:
    target = KubeVersion.parse(result.to_version)
    rules = [rule for pack in REGISTRY.applicable(target) for rule in pack.rules if rule.applies(target)]
    rule_index = {rule.id: i for i, rule in enumerate(rules)}
    driver: dict[str, Any] = {
        "name": TOOL_NAME,
        "rules": [
            {
                "id": rule.id,
                "name": _rule_name(rule),
                "shortDescription": {"text": rule.title},
                "fullDescription": {"text": rule.detects},
                "help": {
                    "text": f"{rule.remediation} See {rule.reference}",
                    "markdown": f"**Severity:** {rule.severity}\n\n{rule.remediation}\n\n[Reference]({rule.reference})",
                },
                "helpUri": rule.reference,
                "defaultConfiguration": {"level": _rule_level(rule)},
                "properties": {"severity": rule.severity},
            }
            for rule in rules
        ],
    }
    version = _tool_version()
    if version:
        driver["version"] = version
    results = []
    for finding in result.findings:
        e = finding.evidence
        origin = manifests.origin(finding)
        qualified = "/".join(part for part in (e.namespace, e.kind, e.name) if part)
        location: dict[str, Any] = {
            "logicalLocations": [
                {"name": e.name or e.kind, "fullyQualifiedName": qualified, "kind": "resource"}
            ]
        }
        if origin is not None:
            physical: dict[str, Any] = {"artifactLocation": {"uri": origin.uri}}
            line = origin.line_of(e.path, e.value_line)
            if line:
                physical["region"] = {"startLine": line}
            location["physicalLocation"] = physical
        entry: dict[str, Any] = {
            "ruleId": finding.rule,
            "level": SARIF_LEVELS[finding.severity],
            "message": {"text": f"{finding.message} Fix: {finding.remediation}"},
            "locations": [location],
            "partialFingerprints": {"readinessFinding/v1": f"{finding.rule}|{qualified}|{e.field_path}"},
            "properties": {"severity": finding.severity, "path": e.field_path, "value": e.value},
        }
        if finding.rule in rule_index:
            entry["ruleIndex"] = rule_index[finding.rule]
        results.append(entry)
    summary = render_json(result, manifests)["summary"]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "invocations": [{"executionSuccessful": True}],
                "results": results,
                "properties": {
                    "fromVersion": result.from_version,
                    "toVersion": result.to_version,
                    "summary": summary,
                },
            }
        ],
    }


def render_table(result: ScanResult, manifests: Manifests) -> str:
    out = [
        f"Readiness {result.from_version} -> {result.to_version}: {len(manifests.files)} file(s), "
        f"{result.objects_scanned} object(s)."
    ]
    for severity in SEVERITIES:
        findings = [f for f in result.findings if f.severity == severity]
        if not findings:
            continue
        out.append(f"\n{severity.upper()} ({len(findings)})")
        for finding in findings:
            e = finding.evidence
            file, line = manifests.location(finding)
            where = f"{file}:{line}" if file and line else (file or "")
            subject = f"{e.kind} {e.namespace + '/' if e.namespace else ''}{e.name}".strip()
            out.append(f"  {finding.rule}  {finding.title}: {subject}" + (f"  ({where})" if where else ""))
            if e.field_path or e.value:
                out.append(f"      {e.field_path}{' = ' if e.field_path and e.value else ''}{e.value or ''}")
            out.append(f"      {finding.message}")
            out.append(f"      Fix: {finding.remediation}")
            out.append(f"      See: {finding.reference}")
    if result.not_evaluated:
        out.append("\nNOT EVALUATED (the input lacks what these rules need)")
        for item in result.not_evaluated:
            out.append(f"  {item.rule}  {item.title}: needs {', '.join(item.missing)}")
    verdict = "blocked" if result.has_blocking else "no blocking finding"
    out.append(
        f"\n{result.count('blocking')} blocking, {result.count('warning')} warning, {result.count('info')} info: "
        f"{verdict}."
    )
    return "\n".join(out)


# --- command --------------------------------------------------------------------------------------------
def _default_from(target: str) -> str:
    version = KubeVersion.parse(target)
    return str(KubeVersion(version.major, version.minor - 1))


def run(args: argparse.Namespace) -> int:
    try:
        manifests = load_paths(args.paths)
        from_version = args.from_version or _default_from(args.target_version)
        result = evaluate(Inventory(objects=manifests.objects), from_version, args.target_version)
    except InputError as error:
        print(f"fleetctl scan: {error}", file=sys.stderr)
        return 2
    except UnsupportedVersionStep as error:
        print(f"fleetctl scan: {error.message}", file=sys.stderr)
        return 2
    if not manifests.objects:
        print("fleetctl scan: no Kubernetes objects found in the input", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(render_json(result, manifests), indent=2))
    elif args.format == "sarif":
        print(json.dumps(render_sarif(result, manifests), indent=2))
    else:
        print(render_table(result, manifests))
    return 1 if result.has_blocking else 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "scan",
        help="check Kubernetes manifests for upgrade blockers (dockershim and more), offline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders of YAML/JSON; - for stdin")
    parser.add_argument("--format", choices=("table", "json", "sarif"), default="table")
    parser.add_argument(
        "--target-version", default="1.24", help="Kubernetes version to upgrade to (default 1.24)"
    )
    parser.add_argument(
        "--from-version", default=None, help="current version (default: one minor below the target)"
    )
    parser.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m fleetctl.scan``: the scan alone, without the simulator's imports."""
    parser = argparse.ArgumentParser(prog="fleetctl")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["scan", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
