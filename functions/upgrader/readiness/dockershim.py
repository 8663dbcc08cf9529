"""The dockershim pack (targets >= 1.24): everything that assumes Docker is the node's container runtime.

Kubernetes 1.24 removed dockershim and the EKS-optimized AMIs for 1.24 and later run containerd
only, so anything that talks to the node's Docker daemon, reads Docker's files or formats, or
configures Docker on the node breaks when its node is replaced. The pack also runs for a 1.22 ->
1.23 step (as the last step before the removal) with every severity one step milder: see
:meth:`Context.docker_severity`.

What counts as evidence, and what does not (each has a fixture in tests/fixtures/manifests):

* a hostPath *volume* path (never a container's mountPath: an emptyDir mounted at
  /var/run/docker.sock is a Docker-in-Docker sidecar's socket, not the node's), normalised so
  /run and /var/run, duplicate and trailing slashes all compare equal;
* commands parsed as shell, so ``sh -c "docker ps"`` is a docker call and ``dockerize`` or a
  ``--docker-image`` flag are not;
* configuration files parsed by format (fluentd, Fluent Bit), not grepped.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from upgrader.readiness.engine import (
    FACT_USER_DATA,
    Context,
    Evidence,
    Hit,
    Rule,
    RulePack,
    kind_fact,
    object_evidence,
    register_pack,
)
from upgrader.readiness.objects import (
    WINDOWS_DOCKER_PIPE,
    ContainerRef,
    PodTemplate,
    argv_programs,
    as_dict,
    as_list,
    as_str,
    container_argvs,
    dig,
    env_value,
    labels_of,
    mount_source_for,
    normalize_host_path,
    object_ref,
    parse_image,
    path_is_within,
)

DOCKERSHIM_REMOVED = "1.24"  # the first Kubernetes (and EKS AMI) version without Docker

EKS_DOCKERSHIM = "https://docs.aws.amazon.com/eks/latest/userguide/dockershim-deprecation.html"
K8S_CHECK_AFFECTED = (
    "https://kubernetes.io/docs/tasks/administer-cluster/migrating-from-dockershim/"
    "check-if-dockershim-removal-affects-you/"
)
K8S_AGENTS = (
    "https://kubernetes.io/docs/tasks/administer-cluster/migrating-from-dockershim/"
    "migrating-telemetry-and-security-agents/"
)
K8S_LOGGING = "https://kubernetes.io/docs/concepts/cluster-administration/logging/"
K8S_FIND_RUNTIME = (
    "https://kubernetes.io/docs/tasks/administer-cluster/migrating-from-dockershim/find-out-runtime-you-use/"
)
EKS_AMI_CONTAINERD_DEFAULT = "https://github.com/awslabs/amazon-eks-ami/issues/1024"
VPC_CNI_LEFTOVER = "https://github.com/aws/amazon-vpc-cni-k8s/issues/2316"
DOCKERSHIM_FAQ = "https://kubernetes.io/blog/2022/02/17/dockershim-faq/"

# --- node paths ------------------------------------------------------------------------------------
SOCKETS = {"docker.sock": "the Docker socket", "dockershim.sock": "the dockershim socket"}
# Directories whose mount exposes the Docker socket or Docker's own files: a *possible* dependency.
EXPOSING_DIRECTORIES = {
    "/": "the node's root filesystem (which holds /var/run/docker.sock)",
    "/var": "/var (which holds /var/run/docker.sock and /var/lib/docker)",
    "/run": "/var/run (which holds docker.sock)",
    "/run/docker": "Docker's runtime directory",
}
EXPOSING_TREES = {
    "/var/lib/docker": "Docker's data directory",
    "/etc/docker": "Docker's configuration directory (daemon.json)",
}
DOCKER_LOG_DIRECTORY = "/var/lib/docker/containers"
# Images known to mount the node's root filesystem without touching Docker: their parent-directory
# mounts are reported as info, with the reason, instead of a warning.
HOST_FILESYSTEM_READERS = {
    r"(^|/)prom(etheus)?/node-exporter$": "node-exporter reads /proc, /sys and filesystem statistics",
}


def classify_host_path(path: str) -> tuple[str, str] | None:
    """``("socket" | "exposes" | "logs", description)`` for a hostPath that matters here, else None."""
    norm = normalize_host_path(path)
    if norm == WINDOWS_DOCKER_PIPE:
        return "socket", "the Windows Docker pipe"
    base = norm.rsplit("/", 1)[-1]
    if base in SOCKETS:
        return "socket", SOCKETS[base]
    if path_is_within(norm, DOCKER_LOG_DIRECTORY):
        return "logs", "Docker's container log directory"
    if norm in EXPOSING_DIRECTORIES:
        return "exposes", EXPOSING_DIRECTORIES[norm]
    for tree, description in EXPOSING_TREES.items():
        if path_is_within(norm, tree):
            return "exposes", description
    return None


def _after_upgrade(ctx: Context) -> str:
    if ctx.at_least(DOCKERSHIM_REMOVED):
        return f"Kubernetes {ctx.target} nodes run containerd only"
    return f"nodes keep Docker on {ctx.target}, but 1.24 nodes run containerd only"


def _host_path_volumes(template: PodTemplate) -> Iterator[tuple[dict[str, Any], tuple[str | int, ...], str]]:
    for volume, path in template.volumes():
        host_path = dig(volume, "hostPath", "path")
        if isinstance(host_path, str) and host_path:
            yield volume, (*path, "hostPath", "path"), host_path


# --- DS001 / DS002: the Docker socket ---------------------------------------------------------------
def _is_vpc_cni(template: PodTemplate) -> bool:
    ref = template.ref
    return ref.kind == "DaemonSet" and ref.name == "aws-node" and ref.namespace == "kube-system"


def _socket_mounts(template: PodTemplate) -> Iterator[tuple[tuple[str | int, ...], str, str, str]]:
    """(field path, value, description, hostPath type) of every way the pod gets a node Docker socket."""
    for volume, path, host_path in _host_path_volumes(template):
        kind = classify_host_path(host_path)
        if kind and kind[0] == "socket":
            yield path, host_path, kind[1], as_str(dig(volume, "hostPath", "type"))
        elif kind and kind[0] == "exposes":
            # hostPath /var/run mounted with subPath docker.sock is the socket itself.
            for container in template.containers():
                for m, mount in enumerate(as_list(container.container.get("volumeMounts"))):
                    mount = as_dict(mount)
                    sub_path = as_str(mount.get("subPath"))
                    if mount.get("name") != volume.get("name") or not sub_path:
                        continue
                    joined = f"{host_path.rstrip('/')}/{sub_path.lstrip('/')}"
                    inner = classify_host_path(joined)
                    if inner and inner[0] == "socket":
                        yield (*container.path, "volumeMounts", m, "subPath"), joined, inner[1], ""


def check_docker_socket(ctx: Context) -> Iterable[Hit]:
    for template in ctx.index.pod_templates():
        for path, value, description, host_path_type in _socket_mounts(template):
            if _is_vpc_cni(template) and normalize_host_path(value).endswith("/dockershim.sock"):
                continue  # DS002
            starts = (
                " The volume has type Socket, so its pods will not even start."
                if host_path_type == "Socket" and ctx.at_least(DOCKERSHIM_REMOVED)
                else ""
            )
            yield Hit(
                severity=ctx.docker_severity(definite=True),
                evidence=object_evidence(template.ref, path, value),
                message=f"{template.ref.display} mounts {description} from the node (hostPath {value}); "
                f"{_after_upgrade(ctx)}, so nothing listens there.{starts}",
            )


def _cni_version(template: PodTemplate) -> tuple[int, ...] | None:
    for container in template.containers():
        image = parse_image(container.image)
        if container.list_name == "containers" and image.repository.endswith("amazon-k8s-cni"):
            return image.version
    return None


def check_vpc_cni_leftover(ctx: Context) -> Iterable[Hit]:
    for template in ctx.index.pod_templates():
        if not _is_vpc_cni(template):
            continue
        for path, value, _, _ in _socket_mounts(template):
            if not normalize_host_path(value).endswith("/dockershim.sock"):
                continue
            version = _cni_version(template)
            if version is not None and version < (1, 12):
                yield Hit(
                    severity=ctx.docker_severity(definite=False),
                    evidence=object_evidence(template.ref, path, value),
                    message=f"aws-node runs VPC CNI {'.'.join(map(str, version))}, which reads the CRI "
                    "socket through this dockershim.sock mount; VPC CNI 1.12 and later no longer need it.",
                    remediation="Update the vpc-cni add-on to 1.12 or later (the version EKS recommends "
                    "for the target) before the upgrade, then remove the mount.",
                )
                continue
            yield Hit(
                severity="info",
                evidence=object_evidence(template.ref, path, value),
                message="aws-node still declares the dockershim.sock hostPath volume. VPC CNI 1.12 and later "
                "do not use it: the managed add-on's server-side apply leaves fields it never owned, so "
                "the volume survives add-on updates. It is harmless and does not block the upgrade.",
            )


# --- DS003 / DS008: directories that expose Docker -------------------------------------------------
def _harmless_reader(template: PodTemplate) -> str | None:
    for container in template.containers():
        name = parse_image(container.image).name
        for pattern, reason in HOST_FILESYSTEM_READERS.items():
            if re.search(pattern, name):
                return reason
    return None


def check_exposing_mounts(ctx: Context) -> Iterable[Hit]:
    for template in ctx.index.pod_templates():
        reader = _harmless_reader(template)
        for _, path, host_path in _host_path_volumes(template):
            kind = classify_host_path(host_path)
            if not kind or kind[0] != "exposes":
                continue
            if reader:
                yield Hit(
                    severity="info",
                    evidence=object_evidence(template.ref, path, host_path),
                    message=f"{template.ref.display} mounts {kind[1]}, but {reader}; it does not use Docker.",
                    remediation="Nothing to do.",
                )
                continue
            yield Hit(
                severity=ctx.docker_severity(definite=False),
                evidence=object_evidence(template.ref, path, host_path),
                message=f"{template.ref.display} mounts {kind[1]} from the node (hostPath {host_path}). "
                f"If a container reaches Docker through it, that breaks: {_after_upgrade(ctx)}.",
            )


def check_docker_log_directory(ctx: Context) -> Iterable[Hit]:
    for template in ctx.index.pod_templates():
        for _, path, host_path in _host_path_volumes(template):
            kind = classify_host_path(host_path)
            if kind and kind[0] == "logs":
                yield Hit(
                    severity=ctx.docker_severity(definite=False),
                    evidence=object_evidence(template.ref, path, host_path),
                    message=f"{template.ref.display} mounts Docker's container log directory ({host_path}). "
                    "Under containerd, container logs live in /var/log/pods (linked from "
                    "/var/log/containers) and this directory stays empty; a collector reading it "
                    "directly loses every log.",
                )


# --- DS004 / DS005 / DS006: talking to a Docker daemon ------------------------------------------------
_DIND_DAEMON = {"dockerd", "dockerd-entrypoint.sh", "dockerd-rootless.sh"}


def _is_dind(container: ContainerRef) -> bool:
    image = parse_image(container.image)
    last = image.repository.rsplit("/", 1)[-1]
    if image.repository == "library/docker" and "dind" in image.tag:
        return True
    if "dind" in last:
        return True
    return any(
        program in _DIND_DAEMON
        for argv, _ in container_argvs(container.container)
        for program, _, _ in argv_programs(argv)
    )


def _dind_containers(template: PodTemplate) -> list[ContainerRef]:
    return [c for c in template.containers() if _is_dind(c)]


def _host_ip_variables(container: ContainerRef) -> set[str]:
    names = set()
    for entry in as_list(container.container.get("env")):
        entry = as_dict(entry)
        if dig(entry, "valueFrom", "fieldRef", "fieldPath") == "status.hostIP":
            names.add(as_str(entry.get("name")))
    return names


def _docker_host_target(
    template: PodTemplate, container: ContainerRef, value: str | None
) -> tuple[bool, str]:
    """(is the node's daemon, explanation) for a DOCKER_HOST value."""
    if value is None:
        return False, "comes from a reference, so its daemon cannot be determined from the spec"
    text = value.strip()
    if text.lower().startswith("npipe:") or normalize_host_path(text) == WINDOWS_DOCKER_PIPE:
        return True, "points at the node's Windows Docker pipe"
    if text.startswith("unix://") or text.startswith("/"):
        socket = text[len("unix://") :] if text.startswith("unix://") else text
        volume = mount_source_for(template, container, socket)
        if volume is not None and isinstance(volume.get("hostPath"), dict):
            return True, f"points at {socket}, which a hostPath volume brings from the node"
        if volume is not None:
            return False, f"points at {socket} on a pod volume (a sidecar's daemon, not the node's)"
        return False, f"points at {socket} inside the container itself (its own daemon, not the node's)"
    match = re.match(r"^(?:tcp|https?)://\[?([^\]/:]+)\]?", text)
    host = match.group(1) if match else text
    if any(f"$({name})" in text for name in _host_ip_variables(container)):
        return True, "points at the node's IP (status.hostIP), where the node's Docker daemon listens"
    local = host in ("localhost", "127.0.0.1", "::1")
    if local and template.spec.get("hostNetwork") is True and not _dind_containers(template):
        return True, f"points at {host} in the node's network namespace (hostNetwork), the node's daemon"
    if local or _dind_containers(template):
        return False, f"points at {host}, a Docker-in-Docker daemon in the same pod"
    return False, f"points at {host}, a remote Docker daemon (not the node's)"


def check_docker_host_env(ctx: Context) -> Iterable[Hit]:
    for template in ctx.index.pod_templates():
        for container in template.containers():
            found = env_value(container.container, "DOCKER_HOST")
            if found is None:
                continue
            value, i = found
            nodes_daemon, why = _docker_host_target(template, container, value)
            evidence = object_evidence(template.ref, (*container.path, "env", i, "value"), value)
            if nodes_daemon:
                yield Hit(
                    severity=ctx.docker_severity(definite=True),
                    evidence=evidence,
                    message=f"Container {container.name!r} sets DOCKER_HOST, which {why}; "
                    f"{_after_upgrade(ctx)}.",
                )
            else:
                yield Hit(
                    severity=ctx.docker_severity(definite=False) if value is None else "info",
                    evidence=evidence,
                    message=f"Container {container.name!r} sets DOCKER_HOST, which {why}. That daemon does "
                    "not depend on the node's runtime.",
                    remediation="Nothing to do for the runtime change if that daemon really is not the "
                    "node's; see DS006 for Docker-in-Docker.",
                )


def _argv_field(container: ContainerRef, suffix: tuple[str | int, ...], needle: str) -> tuple[str | int, ...]:
    """The path to the element of command/args holding ``needle`` (the docker call)."""
    if suffix != ("command",):
        elements = as_list(dig(container.container, *suffix))
        for i, element in enumerate(elements):
            if needle in str(element):
                return (*container.path, *suffix, i)
        return (*container.path, *suffix)
    for field in ("command", "args"):
        for i, element in enumerate(as_list(container.container.get(field))):
            if needle in str(element):
                return (*container.path, field, i)
    return (*container.path, "command")


def _cli_uses_another_daemon(template: PodTemplate, container: ContainerRef) -> bool:
    """Whether a docker CLI in ``container`` talks to a daemon other than the node's."""
    docker_host = env_value(container.container, "DOCKER_HOST")
    if docker_host is not None:
        return not _docker_host_target(template, container, docker_host[0])[0]
    volume = mount_source_for(template, container, "/var/run/docker.sock")  # the CLI's default
    if volume is not None:
        return not isinstance(volume.get("hostPath"), dict)
    return bool(_dind_containers(template))


def check_docker_cli(ctx: Context) -> Iterable[Hit]:
    for template in ctx.index.pod_templates():
        for container in template.containers():
            elsewhere = _cli_uses_another_daemon(template, container)
            for argv, suffix in container_argvs(container.container):
                for program, args, text in argv_programs(argv):
                    if program not in ("docker", "docker-compose"):
                        continue
                    call = " ".join([program, *args[:3]])
                    evidence = object_evidence(template.ref, _argv_field(container, suffix, program), text)
                    if elsewhere:
                        yield Hit(
                            severity="info",
                            evidence=evidence,
                            message=f"Container {container.name!r} runs `{call}` against a Docker daemon that "
                            "is not the node's (Docker-in-Docker or DOCKER_HOST).",
                            remediation="Nothing to do for the runtime change; see DS006 for Docker-in-Docker.",
                        )
                    else:
                        yield Hit(
                            severity=ctx.docker_severity(definite=True),
                            evidence=evidence,
                            message=f"Container {container.name!r} runs `{call}`, which needs the node's Docker "
                            f"daemon; {_after_upgrade(ctx)}.",
                        )


def check_docker_in_docker(ctx: Context) -> Iterable[Hit]:
    for template in ctx.index.pod_templates():
        for container in _dind_containers(template):
            yield Hit(
                severity=ctx.docker_severity(definite=False),
                evidence=object_evidence(template.ref, (*container.path, "image"), container.image),
                message=f"Container {container.name!r} runs its own Docker daemon (Docker-in-Docker). It does "
                "not use the node's Docker, but it needs a privileged container, nests overlay "
                "filesystems on containerd's, and what it builds is invisible to the node's runtime: "
                "test it on a containerd node group before the upgrade.",
            )


# --- DS007: agents known to have used Docker --------------------------------------------------------
@dataclass(frozen=True)
class KnownAgent:
    """A well-known image that used Docker. ``works_from`` is the first version that works without it.

    ``works_from=None`` with ``never=False`` means it depends on configuration we cannot see;
    ``never=True`` means the image cannot work without Docker at all.
    """

    name: str
    image: str  # regex on "registry/repository"
    advice: str
    reference: str
    works_from: tuple[int, ...] | None = None
    never: bool = False
    configured_by_env: tuple[str, ...] = ()
    depends_on: str = "its version and configuration"  # what decides it, when works_from is None


KNOWN_AGENTS: tuple[KnownAgent, ...] = (
    KnownAgent(
        name="Datadog Agent",
        image=r"(^|/)(datadog|datadoghq)/agent$",
        works_from=(7, 27),
        configured_by_env=("DD_CRI_SOCKET_PATH",),
        advice="Agents before 7.27 need DD_CRI_SOCKET_PATH (Helm: datadog.criSocketPath) set to "
        "/var/run/containerd/containerd.sock; 7.27 and later detect the runtime. Remove the Docker "
        "socket mount, and expect docker.* metrics to become containerd.*.",
        reference="https://docs.datadoghq.com/agent/guide/docker-deprecation/",
    ),
    KnownAgent(
        name="Datadog Agent 5 (docker-dd-agent)",
        image=r"(^|/)datadog/docker-dd-agent$",
        never=True,
        advice="Agent 5 predates containerd support; replace it with Agent 7.27 or later.",
        reference="https://docs.datadoghq.com/agent/guide/docker-deprecation/",
    ),
    KnownAgent(
        name="Dynatrace OneAgent",
        image=r"(^|/)dynatrace/oneagent$|/linux/oneagent$",
        advice="Make sure OneAgent collects generic container metrics rather than Docker-only ones "
        "(Dynatrace: 'Migrating from Docker-only to generic container metrics').",
        reference=K8S_AGENTS,
    ),
    KnownAgent(
        name="Sysdig agent",
        image=r"(^|/)sysdig/agent(-slim|-kmodule)?$",
        advice="Make sure the agent version supports containerd and that it is not configured for "
        "the Docker socket only.",
        reference=K8S_AGENTS,
    ),
    KnownAgent(
        name="Falco",
        image=r"(^|/)(falcosecurity|sysdig)/falco(-no-driver|-distroless)?$",
        works_from=(0, 15),
        advice="Falco supports containerd from 0.15.0; upgrade and pass --cri "
        "/run/containerd/containerd.sock (the Helm chart's default).",
        reference="https://github.com/falcosecurity/falco/releases/tag/0.15.0",
    ),
    KnownAgent(
        name="Prisma Cloud (Twistlock) Defender",
        image=r"(^|/)twistlock/defender$|^registry\.twistlock\.com/",
        advice="Redeploy the Defender DaemonSet from a YAML generated with the --cri flag.",
        reference=K8S_AGENTS,
    ),
    KnownAgent(
        name="SignalFx Smart Agent",
        image=r"(^|/)signalfx/signalfx-agent$",
        advice="Remove the docker-container-stats monitor and enable kubelet-metrics.",
        reference=K8S_AGENTS,
    ),
    KnownAgent(
        name="kubectl-flame",
        image=r"(^|/)verizondigital/kubectl-flame$",
        never=True,
        advice="kubectl-flame does not support runtimes other than dockershim (yahoo/kubectl-flame#51).",
        reference=K8S_AGENTS,
    ),
    KnownAgent(
        name="fluentd-kubernetes-daemonset",
        image=r"(^|/)fluent/fluentd-kubernetes-daemonset$",
        configured_by_env=("FLUENT_CONTAINER_TAIL_PARSER_TYPE",),
        depends_on="FLUENT_CONTAINER_TAIL_PARSER_TYPE, which is not set",
        advice="The image's built-in kubernetes.conf parses container logs as JSON (Docker's log "
        "format) unless FLUENT_CONTAINER_TAIL_PARSER_TYPE is set; set it to `cri` or a regexp for "
        "the CRI format (`<time> <stream> <P|F> <log>`).",
        reference="https://github.com/fluent/fluentd-kubernetes-daemonset/issues/412",
    ),
)


def _version_at_least(version: tuple[int, ...], minimum: tuple[int, ...]) -> bool:
    # A floating tag ("7") is taken as the newest release it names.
    return version >= minimum[: len(version)] if len(version) < len(minimum) else version >= minimum


def check_known_agents(ctx: Context) -> Iterable[Hit]:
    for template in ctx.index.pod_templates():
        for container in template.containers():
            image = parse_image(container.image)
            agent = next((a for a in KNOWN_AGENTS if re.search(a.image, image.name)), None)
            if agent is None:
                continue
            if any(env_value(container.container, name) for name in agent.configured_by_env):
                continue
            version = image.version
            floating = version is None and image.tag in ("", "latest")
            if agent.never:
                definite, state = True, f"{agent.name} cannot work without Docker"
            elif agent.works_from is not None and version is not None:
                if _version_at_least(version, agent.works_from):
                    continue
                definite = True
                state = (
                    f"{agent.name} {image.tag} is older than "
                    f"{'.'.join(map(str, agent.works_from))}, the first version that works without Docker"
                )
            elif agent.works_from is not None and floating:
                continue
            elif agent.works_from is not None:
                definite, state = False, f"{agent.name}'s version ({image.tag!r}) cannot be read from its tag"
            else:
                definite = False
                state = f"{agent.name} used Docker; whether this one still does depends on {agent.depends_on}"
            yield Hit(
                severity=ctx.docker_severity(definite=definite),
                evidence=object_evidence(template.ref, (*container.path, "image"), container.image),
                message=f"Container {container.name!r}: {state}.",
                remediation=agent.advice,
                reference=agent.reference,
            )


# --- DS009: log collector and agent configuration that assumes Docker ------------------------------
_CONTAINER_LOG_PATHS = ("/var/log/containers", "/var/log/pods", DOCKER_LOG_DIRECTORY)
_SECTION = re.compile(r"^<\s*(/?)\s*([A-Za-z_][\w.]*)([^>]*)>\s*$")


@dataclass(frozen=True)
class ConfigLine:
    line: int  # 0-based within the config text
    text: str
    message: str
    definite: bool


def _fluentd_sources(text: str) -> Iterator[dict[str, tuple[str, int]]]:
    """Each ``<source>`` block as {directive: (value, line)}; a nested ``<parse>``'s type is ``parse``."""
    stack: list[str] = []
    current: dict[str, tuple[str, int]] | None = None
    for number, raw in enumerate(text.splitlines()):
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith('@type "#{') else raw.strip()
        section = _SECTION.match(line)
        if section:
            closing, name = section.group(1), section.group(2).lower()
            if closing:
                if stack and stack[-1] == name:
                    stack.pop()
                if name == "source" and current is not None:
                    yield current
                    current = None
            else:
                stack.append(name)
                if name == "source":
                    current = {}
            continue
        if current is None or not line:
            continue
        key, _, value = line.partition(" ")
        value = value.strip()
        if stack[-1:] == ["parse"] and key in ("@type", "type"):
            current["parse"] = (value, number)
        elif stack[-1:] == ["source"] and key in ("@type", "type", "path", "format"):
            current["type" if key in ("@type", "type") else key] = (value, number)


def _fluentd_findings(text: str) -> Iterator[ConfigLine]:
    for source in _fluentd_sources(text):
        kind = source.get("type", ("", 0))[0].strip("\"'")
        path = source.get("path", ("", 0))[0]
        if kind != "tail" or not any(p in path for p in _CONTAINER_LOG_PATHS):
            continue
        parser = source.get("parse") or source.get("format")
        if parser is None:
            continue
        value, line = parser
        declared = value.strip("\"'")
        if declared == "json":
            yield ConfigLine(
                line,
                f"@type {declared}",
                "fluentd tails container logs with a JSON parser: "
                "Docker writes JSON lines, containerd writes CRI lines "
                "(`<time> <stream> <P|F> <log>`), so every line fails to parse.",
                True,
            )
        elif "ENV[" in value and "'json'" in value:
            yield ConfigLine(
                line,
                value,
                "fluentd's container log parser comes from an environment variable "
                "and falls back to JSON (Docker's format) when it is not set.",
                False,
            )


def _fluent_bit_findings(text: str) -> Iterator[ConfigLine]:
    section = ""
    block: dict[str, tuple[str, int]] = {}

    def finish() -> Iterator[ConfigLine]:
        if section != "INPUT" or block.get("name", ("", 0))[0].lower() != "tail":
            return
        path = block.get("path", ("", 0))[0]
        if not any(p in path for p in _CONTAINER_LOG_PATHS):
            return
        multiline = block.get("multiline.parser")
        if multiline is not None:
            parsers = {p.strip().lower() for p in multiline[0].split(",")}
            if "cri" not in parsers and "docker" in parsers:
                yield ConfigLine(
                    multiline[1],
                    f"multiline.parser {multiline[0]}",
                    "Fluent Bit reassembles "
                    "container logs with the docker multiline parser only; add cri "
                    "(`multiline.parser docker, cri`).",
                    True,
                )
            return
        parser = block.get("parser")
        if parser is not None and parser[0].lower() == "docker":
            yield ConfigLine(
                parser[1],
                f"Parser {parser[0]}",
                "Fluent Bit parses container logs with the "
                "docker (JSON) parser; containerd writes CRI lines, which it cannot parse.",
                True,
            )
        docker_mode = block.get("docker_mode")
        if docker_mode is not None and docker_mode[0].lower() in ("on", "true"):
            yield ConfigLine(
                docker_mode[1],
                f"Docker_Mode {docker_mode[0]}",
                "Docker_Mode joins lines Docker "
                "split; containerd splits long lines differently (P/F partials).",
                False,
            )

    for number, raw in enumerate(text.splitlines()):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            yield from finish()
            section, block = line[1:-1].strip().upper(), {}
            continue
        key, _, value = line.partition(" ")
        block[key.lower()] = (value.strip(), number)
    yield from finish()


_PROMTAIL_DOCKER_STAGE = re.compile(r"^\s*-\s*docker\s*:\s*(\{\s*\})?\s*$")
_FILEBEAT_DOCKER_INPUT = re.compile(r"^\s*-?\s*type\s*:\s*[\"']?docker[\"']?\s*$")
_SIGNALFX_DOCKER_MONITOR = re.compile(r"^\s*-?\s*type\s*:\s*[\"']?docker-container-stats[\"']?\s*$")
_DOCKER_LOG_GLOB = re.compile(r"/var/lib/docker/containers/\S*(\*|\.log)")


def _line_findings(text: str) -> Iterator[ConfigLine]:
    promtail = "scrape_configs" in text
    filebeat = "filebeat." in text
    for number, raw in enumerate(text.splitlines()):
        stripped = raw.strip()
        if stripped.startswith("#"):
            continue
        if promtail and _PROMTAIL_DOCKER_STAGE.match(raw):
            yield ConfigLine(
                number,
                stripped,
                "Promtail's docker pipeline stage parses Docker's JSON log "
                "lines; containerd writes CRI lines (use the cri stage).",
                True,
            )
        elif filebeat and _FILEBEAT_DOCKER_INPUT.match(raw):
            yield ConfigLine(
                number,
                stripped,
                "Filebeat's docker input reads Docker's JSON log files; use "
                "the container input for containerd.",
                True,
            )
        elif _SIGNALFX_DOCKER_MONITOR.match(raw):
            yield ConfigLine(
                number,
                stripped,
                "The SignalFx docker-container-stats monitor reads Docker; use kubelet-metrics.",
                True,
            )
        elif _DOCKER_LOG_GLOB.search(raw):
            yield ConfigLine(
                number,
                stripped,
                "The collector reads log files from Docker's log directory, "
                "which stays empty under containerd (logs are in /var/log/pods).",
                True,
            )


def config_findings(text: str) -> list[ConfigLine]:
    found = {(c.line, c.message): c for c in (*_fluentd_findings(text), *_fluent_bit_findings(text))}
    for c in _line_findings(text):
        found.setdefault((c.line, c.message), c)
    return sorted(found.values(), key=lambda c: c.line)


def _config_texts(obj: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(field, key, text) of every config file a ConfigMap or Secret holds."""
    kind = obj.get("kind")
    if kind == "ConfigMap":
        for key, value in as_dict(obj.get("data")).items():
            if isinstance(value, str):
                yield "data", str(key), value
    elif kind == "Secret":
        for key, value in as_dict(obj.get("stringData")).items():
            if isinstance(value, str):
                yield "stringData", str(key), value
        for key, value in as_dict(obj.get("data")).items():
            try:
                yield "data", str(key), base64.b64decode(str(value), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                continue


def check_log_configuration(ctx: Context) -> Iterable[Hit]:
    for index, obj in ctx.index.of_kind("ConfigMap", "Secret"):
        ref = object_ref(index, obj)
        for field, key, text in _config_texts(obj):
            for found in config_findings(text):
                yield Hit(
                    severity=ctx.docker_severity(definite=found.definite),
                    evidence=object_evidence(ref, (field, key), found.text, value_line=found.line),
                    message=f"{key}: {found.message}",
                )
    # Fluent Bit operator resources (fluentbit.fluent.io ClusterInput / Input) say the same in fields.
    for index, obj in ctx.index.of_kind("ClusterInput", "Input"):
        if not as_str(obj.get("apiVersion")).startswith("fluentbit.fluent.io/"):
            continue
        ref = object_ref(index, obj)
        parser = dig(obj, "spec", "tail", "parser")
        if isinstance(parser, str) and parser.lower() == "docker":
            yield Hit(
                severity=ctx.docker_severity(definite=True),
                evidence=object_evidence(ref, ("spec", "tail", "parser"), parser),
                message="The Fluent Bit tail input parses container logs with the docker (JSON) parser; "
                "containerd writes CRI lines.",
            )


# --- DS010: nodes running Docker ----------------------------------------------------------------------
_GROUP_LABELS = (
    "eks.amazonaws.com/nodegroup",
    "alpha.eksctl.io/nodegroup-name",
    "karpenter.sh/nodepool",
    "karpenter.sh/provisioner-name",
)


def check_node_runtime(ctx: Context) -> Iterable[Hit]:
    groups: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for index, node in ctx.index.of_kind("Node"):
        runtime = as_str(dig(node, "status", "nodeInfo", "containerRuntimeVersion"))
        if not runtime.startswith("docker://"):
            continue
        labels = labels_of(node)
        group = next((f"{label}={labels[label]}" for label in _GROUP_LABELS if label in labels), "")
        key = (group or as_str(dig(node, "metadata", "name")), runtime)
        groups.setdefault(key, []).append((index, node))
    for (group, runtime), nodes in sorted(groups.items()):
        names = [as_str(dig(node, "metadata", "name")) for _, node in nodes]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        yield Hit(
            severity=ctx.docker_severity(definite=False),
            evidence=Evidence(
                kind="Node",
                name=group,
                path=("status", "nodeInfo", "containerRuntimeVersion"),
                value=runtime,
                object_index=nodes[0][0],
            ),
            message=f"{len(nodes)} node(s) run {runtime} ({shown}). Their replacements for "
            f"{ctx.target} run containerd: workloads meet containerd for the first time when these "
            "nodes are replaced.",
        )


# --- DS011 / DS012: node user data -------------------------------------------------------------------
_RUNTIME_DOCKERD = re.compile(
    r"--container-runtime(?:\s+|=)[\"']?dockerd\b|\bCONTAINER_RUNTIME=[\"']?dockerd\b"
)
_DOCKER_ONLY_FLAGS = re.compile(r"--enable-docker-bridge\b|--docker-config-json\b|/etc/docker/daemon\.json")


def _user_data_text(value: str) -> str:
    compact = value.strip()
    if compact and not re.search(r"\s", compact) and len(compact) % 4 == 0:
        try:
            return base64.b64decode(compact, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return value
    return value


def _user_data_lines(ctx: Context, pattern: re.Pattern[str]) -> Iterator[tuple[str, int, str]]:
    for nodegroup, user_data in sorted((ctx.inventory.launch_template_user_data or {}).items()):
        for number, line in enumerate(_user_data_text(user_data).splitlines()):
            if not line.strip().startswith("#") and pattern.search(line):
                yield nodegroup, number, line.strip()


def _user_data_evidence(nodegroup: str, line: int, text: str) -> Evidence:
    return Evidence(
        kind="Nodegroup", name=nodegroup, path=("launchTemplate", "userData"), value=text, value_line=line
    )


def check_bootstrap_runtime(ctx: Context) -> Iterable[Hit]:
    for nodegroup, line, text in _user_data_lines(ctx, _RUNTIME_DOCKERD):
        effect = (
            "bootstrap.sh on the 1.24+ EKS AMIs exits with an error for any runtime but containerd, so "
            "new nodes never join"
            if ctx.at_least(DOCKERSHIM_REMOVED)
            else "fine on this target, but bootstrap.sh on the 1.24+ EKS AMIs refuses it and the nodes "
            "never join"
        )
        yield Hit(
            severity=ctx.docker_severity(definite=True),
            evidence=_user_data_evidence(nodegroup, line, text),
            message=f"Node group {nodegroup!r} bootstraps with the dockerd runtime: {effect}.",
        )


def check_docker_only_settings(ctx: Context) -> Iterable[Hit]:
    for nodegroup, line, text in _user_data_lines(ctx, _DOCKER_ONLY_FLAGS):
        yield Hit(
            severity=ctx.docker_severity(definite=False),
            evidence=_user_data_evidence(nodegroup, line, text),
            message=f"Node group {nodegroup!r} configures Docker ({text}). With containerd, bootstrap.sh "
            "ignores --enable-docker-bridge and --docker-config-json (it only logs a warning) and nothing "
            "reads /etc/docker/daemon.json: registry mirrors, insecure registries, log or bridge settings "
            "are silently lost.",
        )


DOCKERSHIM_RULES = (
    Rule(
        id="DS001",
        title="Docker socket mounted from the node",
        detects="A hostPath volume (or a hostPath directory with a subPath) whose path is docker.sock, "
        "dockershim.sock or the Windows pipe \\\\.\\pipe\\docker_engine, after normalising /var/run to "
        "/run and duplicate or trailing slashes. Container mountPaths are not evidence.",
        severity="blocking (target >= 1.24), warning below",
        remediation="Stop using the node's Docker: point CRI clients at /run/containerd/containerd.sock, "
        "build images with BuildKit, kaniko or buildah, read logs from /var/log/pods; then remove the "
        "volume and its mounts.",
        reference=K8S_AGENTS + "#identify-docker-dependency",
        check=check_docker_socket,
    ),
    Rule(
        id="DS002",
        title="VPC CNI's stale dockershim.sock mount",
        detects="The aws-node DaemonSet in kube-system still declaring the dockershim.sock hostPath "
        "volume. Harmless with VPC CNI 1.12+ (info); a warning when the CNI is older.",
        severity="info (warning when VPC CNI < 1.12 on a >= 1.24 target)",
        remediation="Optional clean-up: remove the `dockershim` volume and its volumeMount from the "
        "aws-node DaemonSet (kubectl -n kube-system edit daemonset aws-node); add-on updates do not "
        "remove it.",
        reference=VPC_CNI_LEFTOVER,
        check=check_vpc_cni_leftover,
    ),
    Rule(
        id="DS003",
        title="Host directory that exposes Docker",
        detects="A hostPath volume of /, /var, /run (/var/run), /var/run/docker, /var/lib/docker or "
        "/etc/docker: a possible route to the Docker socket or Docker's files. Known host readers "
        "(node-exporter) are info.",
        severity="warning (target >= 1.24), info below",
        remediation="Check whether the workload uses Docker through this mount; if not, nothing to do "
        "(mount a narrower path to make that obvious).",
        reference=K8S_AGENTS + "#identify-docker-dependency",
        check=check_exposing_mounts,
    ),
    Rule(
        id="DS004",
        title="DOCKER_HOST set",
        detects="A container's DOCKER_HOST: blocking when it reaches the node's daemon (a hostPath "
        "socket, npipe, or the node's IP from status.hostIP); info for a daemon in the pod or remote; "
        "a warning when the value comes from a reference.",
        severity="blocking (node's daemon, target >= 1.24), info otherwise",
        remediation="Remove the dependency on the node's Docker daemon (see DS001).",
        reference=K8S_CHECK_AFFECTED,
        check=check_docker_host_env,
    ),
    Rule(
        id="DS005",
        title="docker CLI invoked",
        detects="`docker` or `docker-compose` run by a container's command/args, probes or lifecycle "
        "hooks, including inside `sh -c` scripts (parsed as shell: `dockerize`, `--docker-image` or "
        '`echo "docker ps"` do not count). Info when the pod has its own daemon.',
        severity="blocking (target >= 1.24), warning below; info with Docker-in-Docker",
        remediation="Replace node Docker calls: crictl for inspection, the Kubernetes API for pods and "
        "logs, BuildKit/kaniko/buildah for builds.",
        reference=K8S_CHECK_AFFECTED,
        check=check_docker_cli,
    ),
    Rule(
        id="DS006",
        title="Docker-in-Docker",
        detects="A container running its own Docker daemon: docker:*-dind images, images named *dind*, "
        "or a container that starts dockerd.",
        severity="warning (target >= 1.24), info below",
        remediation="Test the pipeline on a containerd node group first, or move builds to rootless "
        "BuildKit, kaniko or buildah.",
        reference=DOCKERSHIM_FAQ,
        check=check_docker_in_docker,
    ),
    Rule(
        id="DS007",
        title="Agent known to have used Docker",
        detects="Images of monitoring, security and log agents that used Docker (a data table with the "
        "first version that works without it, where known): Datadog < 7.27 without "
        "DD_CRI_SOCKET_PATH, Datadog Agent 5, Falco < 0.15, kubectl-flame (blocking); Dynatrace "
        "OneAgent, Sysdig, Prisma Defender, SignalFx Smart Agent, fluentd-kubernetes-daemonset without "
        "FLUENT_CONTAINER_TAIL_PARSER_TYPE (warning: configuration-dependent).",
        severity="blocking or warning (target >= 1.24), one step milder below",
        remediation="Follow the vendor's migration note given in the finding.",
        reference=K8S_AGENTS,
        check=check_known_agents,
    ),
    Rule(
        id="DS008",
        title="Docker's container log directory mounted",
        detects="A hostPath volume at or below /var/lib/docker/containers.",
        severity="warning (target >= 1.24), info below",
        remediation="Collect container logs from /var/log/containers and /var/log/pods; drop the mount once "
        "no configuration reads it (see DS009).",
        reference=K8S_LOGGING,
        check=check_docker_log_directory,
    ),
    Rule(
        id="DS009",
        title="Log collector configured for Docker's log format",
        detects="ConfigMaps/Secrets holding collector configuration parsed by format: fluentd tail "
        "sources on container logs with a json parser; Fluent Bit tail inputs with `Parser docker` "
        "or `multiline.parser docker` without cri (and Docker_Mode, possible); Promtail's docker "
        "stage; Filebeat's docker input; SignalFx docker-container-stats; globs under "
        "/var/lib/docker/containers; Fluent Bit operator inputs with parser docker.",
        severity="blocking (target >= 1.24), warning below; Docker_Mode or an env-dependent fluentd "
        "parser are one step milder",
        remediation="Parse the CRI format: Fluent Bit `multiline.parser docker, cri` (or `Parser cri`), "
        "fluentd a CRI regexp or multi_format parser, Promtail `cri: {}`, Filebeat the container "
        "input.",
        reference="https://docs.fluentbit.io/manual/pipeline/inputs/tail",
        check=check_log_configuration,
    ),
    Rule(
        id="DS010",
        title="Node runs Docker",
        detects="Nodes whose status.nodeInfo.containerRuntimeVersion starts with docker://, grouped by "
        "node group.",
        severity="warning (target >= 1.24), info below",
        remediation="Replacing the nodes moves them to containerd (managed node groups: by this "
        "orchestrator; others: by you). Try workloads on a containerd node group first "
        "(bootstrap.sh --container-runtime containerd on 1.23).",
        reference=K8S_FIND_RUNTIME,
        check=check_node_runtime,
        needs=(kind_fact("Node"),),
    ),
    Rule(
        id="DS011",
        title="Node bootstrap asks for the dockerd runtime",
        detects="Launch template user data passing --container-runtime dockerd to bootstrap.sh (or "
        "exporting CONTAINER_RUNTIME=dockerd).",
        severity="blocking (target >= 1.24), warning below",
        remediation="Remove --container-runtime dockerd (containerd is the only, and default, runtime "
        "from 1.24) before the node group moves to the target.",
        reference=EKS_AMI_CONTAINERD_DEFAULT,
        check=check_bootstrap_runtime,
        needs=(FACT_USER_DATA,),
    ),
    Rule(
        id="DS012",
        title="Node bootstrap configures Docker",
        detects="Launch template user data using --enable-docker-bridge, --docker-config-json or "
        "editing /etc/docker/daemon.json.",
        severity="warning (target >= 1.24), info below",
        remediation="Move the settings to containerd: registry mirrors and insecure registries in "
        "/etc/containerd/config.toml (bootstrap.sh --containerd-config-file), log rotation in the "
        "kubelet configuration.",
        reference=EKS_AMI_CONTAINERD_DEFAULT,
        check=check_docker_only_settings,
        needs=(FACT_USER_DATA,),
    ),
)

# The pack runs for the last step before the removal too, so a 1.22 -> 1.23 upgrade already warns.
DOCKERSHIM_PACK = register_pack(
    RulePack(
        name="dockershim",
        description="Dependencies on Docker as the node runtime (removed in Kubernetes 1.24).",
        rules=DOCKERSHIM_RULES,
        min_target="1.23",
    )
)
