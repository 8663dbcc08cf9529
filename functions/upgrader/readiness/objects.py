"""Walking Kubernetes objects as plain dicts (API JSON shape), with field paths.

Everything here works on what ``kubectl get -o json``, the API or a YAML manifest gives: no client
library, no typed models. Accessors are defensive (a ``null`` where a list is expected reads as an
empty list) because manifests in CI are often half-finished; a rule never crashes on them.

Field paths are tuples (``("spec", "template", "spec", "volumes", 0, "hostPath", "path")``) and
render as ``spec.template.spec.volumes[0].hostPath.path``; the offline scanner maps the same tuple
back to a line of the file it read.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

FieldPath = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def render_path(path: Iterable[str | int]) -> str:
    """``("spec", "volumes", 0, "hostPath")`` -> ``spec.volumes[0].hostPath``; odd keys are bracketed."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def dig(obj: Any, *path: str | int) -> Any:
    """The value at ``path`` or None; never raises on a missing or mistyped level."""
    node = obj
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or not -len(node) <= part < len(node):
                return None
        elif not isinstance(node, dict):
            return None
        node = node[part] if isinstance(part, int) else node.get(part)
    return node


# --- object identity -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectRef:
    """Where an object sits in the inventory (``index``) and how people name it."""

    index: int
    kind: str
    namespace: str
    name: str

    @property
    def display(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


def object_ref(index: int, obj: Mapping[str, Any]) -> ObjectRef:
    meta = as_dict(obj.get("metadata"))
    return ObjectRef(
        index=index,
        kind=as_str(obj.get("kind")),
        namespace=as_str(meta.get("namespace")),
        name=as_str(meta.get("name")) or as_str(meta.get("generateName")),
    )


def namespace_of(obj: Mapping[str, Any]) -> str:
    """The namespace used for matching (selectors, owners); a manifest without one lands in ``default``."""
    return as_str(dig(obj, "metadata", "namespace")) or "default"


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_dict(dig(obj, "metadata", "labels")).items()}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_dict(dig(obj, "metadata", "annotations")).items()}


# --- pod specs of every workload kind --------------------------------------------------------------
# Where each built-in kind keeps its pod spec. Any other kind with spec.template.spec.containers
# (Argo Rollouts, for instance) is walked the same way as a Deployment.
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "PodTemplate": ("template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def pod_spec_path(obj: Mapping[str, Any]) -> tuple[str, ...] | None:
    kind = as_str(obj.get("kind"))
    path = _POD_SPEC_PATHS.get(kind)
    if path is not None:
        return path if isinstance(dig(obj, *path), dict) else None
    for candidate in (("spec", "template", "spec"), ("spec", "jobTemplate", "spec", "template", "spec")):
        if isinstance(dig(obj, *candidate, "containers"), list):
            return candidate
    return None


@dataclass(frozen=True)
class ContainerRef:
    container: dict[str, Any]
    path: FieldPath  # to the container object
    list_name: str  # containers, initContainers or ephemeralContainers

    @property
    def name(self) -> str:
        return as_str(self.container.get("name"))

    @property
    def image(self) -> str:
        return as_str(self.container.get("image"))


@dataclass(frozen=True)
class PodTemplate:
    """One pod spec to report on: a workload's template, or a bare Pod's own spec."""

    ref: ObjectRef
    obj: dict[str, Any]
    spec: dict[str, Any]
    path: FieldPath  # to the pod spec

    def containers(self) -> Iterator[ContainerRef]:
        for list_name in CONTAINER_LISTS:
            for i, container in enumerate(as_list(self.spec.get(list_name))):
                if isinstance(container, dict):
                    yield ContainerRef(container, (*self.path, list_name, i), list_name)

    def volumes(self) -> Iterator[tuple[dict[str, Any], FieldPath]]:
        for i, volume in enumerate(as_list(self.spec.get("volumes"))):
            if isinstance(volume, dict):
                yield volume, (*self.path, "volumes", i)

    def volume(self, name: str) -> dict[str, Any] | None:
        return next((v for v, _ in self.volumes() if v.get("name") == name), None)

    @property
    def replicas(self) -> int | None:
        """Desired pods for kinds with a replica count (absent means 1, as the API defaults it)."""
        if self.ref.kind in ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"):
            value = dig(self.obj, "spec", "replicas")
            return value if isinstance(value, int) else 1
        return None


def is_mirror_pod(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Pod" and "kubernetes.io/config.mirror" in annotations_of(obj)


def controller_owner(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The controlling owner reference (``controller: true``), or the only owner when none is flagged."""
    owners = [o for o in as_list(dig(obj, "metadata", "ownerReferences")) if isinstance(o, dict)]
    flagged = [o for o in owners if o.get("controller") is True]
    if flagged:
        return flagged[0]
    return owners[0] if len(owners) == 1 else None


class ObjectIndex:
    """Lookups over the inventory's objects, built once per evaluation."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects
        self._by_kind: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._by_key: dict[tuple[str, str, str], int] = {}
        self._by_uid: dict[str, int] = {}
        for index, obj in enumerate(objects):
            if not isinstance(obj, dict):
                continue
            kind = as_str(obj.get("kind"))
            self._by_kind.setdefault(kind, []).append((index, obj))
            name = as_str(dig(obj, "metadata", "name"))
            self._by_key[(kind, namespace_of(obj), name)] = index
            uid = as_str(dig(obj, "metadata", "uid"))
            if uid:
                self._by_uid[uid] = index
        self._templates = [t for t in self._all_templates() if not self._reported_through_owner(t.obj)]

    def of_kind(self, *kinds: str) -> Iterator[tuple[int, dict[str, Any]]]:
        for kind in kinds:
            yield from self._by_kind.get(kind, [])

    def kinds(self) -> set[str]:
        return set(self._by_kind)

    def find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        index = self._by_key.get((kind, namespace, name))
        return self.objects[index] if index is not None else None

    def owner_of(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """The controlling owner object when the inventory holds it (by uid, else kind + name)."""
        owner = controller_owner(obj)
        if owner is None:
            return None
        uid = as_str(owner.get("uid"))
        if uid and uid in self._by_uid:
            return self.objects[self._by_uid[uid]]
        return self.find(as_str(owner.get("kind")), namespace_of(obj), as_str(owner.get("name")))

    def _reported_through_owner(self, obj: Mapping[str, Any]) -> bool:
        # A pod (or ReplicaSet, or Job) whose controller is in the inventory is reported once,
        # through that controller. Mirror pods are owned by their Node, which holds no pod spec,
        # and pods of controllers we cannot see are reported themselves rather than not at all.
        owner = self.owner_of(obj)
        return owner is not None and pod_spec_path(owner) is not None

    def _all_templates(self) -> Iterator[PodTemplate]:
        for index, obj in enumerate(self.objects):
            if not isinstance(obj, dict):
                continue
            path = pod_spec_path(obj)
            if path is None:
                continue
            yield PodTemplate(object_ref(index, obj), obj, dig(obj, *path), path)

    def pod_templates(self) -> list[PodTemplate]:
        """Every pod spec once: controllers' templates, and pods/ReplicaSets/Jobs without a known controller."""
        return list(self._templates)


# --- host paths --------------------------------------------------------------------------------------
_WINDOWS_DOCKER_PIPE = re.compile(
    r"^(?:npipe:)?[\\/]{2,}\.[\\/]+pipe[\\/]+docker_engine[\\/]*$", re.IGNORECASE
)
WINDOWS_DOCKER_PIPE = r"\\.\pipe\docker_engine"


def normalize_host_path(path: str) -> str:
    r"""Canonical form for comparing node paths.

    Duplicate and trailing slashes go, ``.``/``..`` segments resolve, ``/var/run`` becomes ``/run``
    (a symlink on every current distribution), and every spelling of the Windows Docker pipe
    (``\\.\pipe\docker_engine``, ``//./pipe/docker_engine``, ``npipe:////./pipe/docker_engine``)
    becomes ``\\.\pipe\docker_engine``.
    """
    text = path.strip()
    if _WINDOWS_DOCKER_PIPE.match(text):
        return WINDOWS_DOCKER_PIPE
    text = re.sub(r"/+", "/", text.replace("\\", "/"))
    if text.startswith("/"):
        text = posixpath.normpath(text)
        text = re.sub(r"^/+", "/", text)  # normpath keeps a leading '//'
    elif len(text) > 1:
        text = text.rstrip("/")
    if text == "/var/run" or text.startswith("/var/run/"):
        text = "/run" + text[len("/var/run") :]
    return text


def path_is_within(path: str, directory: str) -> bool:
    """True when the normalised ``path`` is ``directory`` or below it."""
    return path == directory or directory == "/" or path.startswith(directory.rstrip("/") + "/")


def mount_source_for(template: PodTemplate, container: ContainerRef, path: str) -> dict[str, Any] | None:
    """The volume backing ``path`` inside ``container`` (longest matching mountPath), if any."""
    target = normalize_host_path(path)
    best: tuple[int, dict[str, Any]] | None = None
    for mount in as_list(container.container.get("volumeMounts")):
        if not isinstance(mount, dict):
            continue
        mount_path = normalize_host_path(as_str(mount.get("mountPath")))
        if mount_path and path_is_within(target, mount_path):
            volume = template.volume(as_str(mount.get("name")))
            if volume is not None and (best is None or len(mount_path) > best[0]):
                best = (len(mount_path), volume)
    return best[1] if best else None


# --- commands and shell scripts ----------------------------------------------------------------------
SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"})
# Words that run the next word as a command (their own flags and VAR=value words are skipped).
_PREFIX_WORDS = frozenset(
    {"sudo", "exec", "env", "nohup", "time", "command", "nice", "timeout", "xargs", "stdbuf", "watch"}
)
_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "time"})
_TAKES_VALUE = {"sudo": {"-u", "-g", "-C", "-h", "-p", "-r", "-t", "-U"}, "timeout": {"-s", "-k"}}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_DURATION = re.compile(r"^\d+(\.\d+)?[smhd]?$")


def _is_separator(token: str) -> bool:
    return bool(token) and all(c in "();|&" for c in token)


def _is_redirection(token: str) -> bool:
    return bool(token) and all(c in "<>&" for c in token) and ("<" in token or ">" in token)


def command_words(script: str) -> list[list[str]]:
    """The simple commands of a shell script, as word lists (a best-effort parse, never an eval).

    ``a && b | c; $(d) `e` `` gives ``[[a], [b], [c], [d], [e]]``. Quoted strings stay one word, so
    ``echo "docker ps"`` is an ``echo``, not a ``docker`` call.
    """
    commands: list[list[str]] = []
    for line in script.replace("\\\n", " ").splitlines():
        commands.extend(_line_commands(line.replace("`", " ; ").replace("$(", " ; (")))
    return commands


def _line_commands(text: str) -> list[list[str]]:
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: fall back to whitespace words
        tokens = re.split(r"\s+|(?=[;|&()])|(?<=[;|&()])", text.split(" #", 1)[0])
    commands: list[list[str]] = []
    current: list[str] = []
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
            continue
        if _is_separator(token):
            if current:
                commands.append(current)
            current = []
        elif _is_redirection(token):
            if current and current[-1].isdigit():  # the fd of "2>&1"
                current.pop()
            skip_next = True
        elif token:
            current.append(token)
    if current:
        commands.append(current)
    return commands


def executable(words: list[str]) -> tuple[str, list[str]] | None:
    """The program a simple command runs (basename) and its arguments, past env/sudo/exec wrappers."""
    i = 0
    while i < len(words):
        word = words[i]
        base = posixpath.basename(word)
        if _ASSIGNMENT.match(word) or base in _KEYWORDS:
            i += 1
            continue
        if base in _PREFIX_WORDS:
            i += 1
            while i < len(words) and (
                words[i].startswith("-")
                or _ASSIGNMENT.match(words[i])
                or (base == "timeout" and _DURATION.match(words[i]))
            ):
                i += 2 if words[i] in _TAKES_VALUE.get(base, ()) else 1
            continue
        return base, words[i + 1 :]
    return None


def argv_programs(argv: list[str], depth: int = 0) -> Iterator[tuple[str, list[str], str]]:
    """Every (program, args, source text) an exec argv runs, looking inside ``sh -c`` scripts."""
    found = executable([str(a) for a in argv])
    if found is None or depth > 3:
        return
    program, args = found
    yield program, args, " ".join(str(a) for a in argv)
    if program in SHELLS:
        for i, arg in enumerate(args):
            if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:] and i + 1 < len(args):
                for words in command_words(args[i + 1]):
                    found_inner = executable(words)
                    if found_inner:
                        yield found_inner[0], found_inner[1], " ".join(words)
                        if found_inner[0] in SHELLS:
                            yield from argv_programs(words, depth + 1)
                break


def container_argvs(container: Mapping[str, Any]) -> Iterator[tuple[list[str], tuple[str | int, ...]]]:
    """Every argv a container runs (command + args, probes, lifecycle hooks), with its field path suffix."""
    command = [str(a) for a in as_list(container.get("command"))]
    args = [str(a) for a in as_list(container.get("args"))]
    if command:
        yield command + args, ("command",)
    elif args:
        # No command: the image's entrypoint runs the args, which are often a command themselves.
        yield args, ("args",)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        exec_command = as_list(dig(container, probe, "exec", "command"))
        if exec_command:
            yield [str(a) for a in exec_command], (probe, "exec", "command")
    for hook in ("postStart", "preStop"):
        exec_command = as_list(dig(container, "lifecycle", hook, "exec", "command"))
        if exec_command:
            yield [str(a) for a in exec_command], ("lifecycle", hook, "exec", "command")


def env_value(container: Mapping[str, Any], name: str) -> tuple[str | None, int] | None:
    """``(value, index)`` of env var ``name`` (value None when it comes from valueFrom), or None."""
    for i, entry in enumerate(as_list(container.get("env"))):
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get("value")
            return (str(value) if value is not None else None), i
    return None


# --- images ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str
    digest: str

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def version(self) -> tuple[int, ...] | None:
        match = re.match(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", self.tag)
        if not match:
            return None
        return tuple(int(part) for part in match.groups() if part is not None)


def parse_image(reference: str) -> ImageRef:
    """Docker reference rules: the first component is a registry only when it looks like a host."""
    ref = reference.strip()
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = ""
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref, tag = ref.rsplit(":", 1)
    parts = ref.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry, repository = parts[0], "/".join(parts[1:])
    else:
        registry, repository = "docker.io", ref
    if registry == "docker.io" and "/" not in repository:
        repository = f"library/{repository}"
    return ImageRef(registry.lower(), repository.lower(), tag, digest)


# --- label selectors ---------------------------------------------------------------------------------
def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels/matchExpressions) or a plain map (ReplicationController)."""
    if not isinstance(selector, dict):
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return all(labels.get(k) == str(v) for k, v in selector.items()) if selector else True
    for key, value in as_dict(selector.get("matchLabels")).items():
        if labels.get(key) != str(value):
            return False
    for expression in as_list(selector.get("matchExpressions")):
        expression = as_dict(expression)
        key, operator = as_str(expression.get("key")), as_str(expression.get("operator"))
        values = [str(v) for v in as_list(expression.get("values"))]
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def template_labels(template: PodTemplate) -> dict[str, str]:
    if template.ref.kind == "Pod":
        return labels_of(template.obj)
    parent = template.path[:-1]  # the template object holding metadata + spec
    return {str(k): str(v) for k, v in as_dict(dig(template.obj, *parent, "metadata", "labels")).items()}
