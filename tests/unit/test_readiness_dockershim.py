"""The dockershim pack against manifests modelled on common charts, with the near misses that must not fire.

Fixtures live in tests/fixtures/manifests/. Each rule has a positive and a negative case; the
negative ones are the realistic look-alikes (a volume *named* docker.sock, containerd's socket, an
emptyDir at /var/run/docker.sock, ``--docker-image`` flags, the VPC CNI's leftover mount).
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from upgrader.readiness import Inventory, ScanResult, evaluate
from upgrader.readiness.objects import argv_programs, command_words, normalize_host_path, parse_image

MANIFESTS = Path(__file__).resolve().parents[1] / "fixtures" / "manifests"


def manifests(*relative: str) -> list[dict[str, Any]]:
    objects = []
    for name in relative:
        for document in yaml.safe_load_all((MANIFESTS / name).read_text()):
            if isinstance(document, dict):
                objects.append(document)
    return objects


def scan(objects: list[dict[str, Any]], target: str = "1.24", **facts: Any) -> ScanResult:
    major, minor = target.split(".")
    return evaluate(Inventory(objects=objects, **facts), f"{major}.{int(minor) - 1}", target)


def hits(result: ScanResult, rule: str) -> list[tuple[str, str, str]]:
    """(severity, "Kind/name", field path) of each finding of ``rule``."""
    return [
        (f.severity, f"{f.evidence.kind}/{f.evidence.name}", f.evidence.field_path)
        for f in result.by_rule(rule)
    ]


def names(result: ScanResult, rule: str) -> set[str]:
    return {f"{f.evidence.kind}/{f.evidence.name}" for f in result.by_rule(rule)}


def pod(name: str, container: dict[str, Any], volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", **container}]}
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "t"}, "spec": spec}


def daemonset(name: str, namespace: str, image: str, **pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": image}], **pod_spec},
            },
        },
    }


# --- DS001: the Docker socket ----------------------------------------------------------------------
class TestDockerSocket:
    def test_every_workload_kind_is_reported_once_through_its_controller(self):
        # Given one object of every workload kind mounting the socket, plus a Deployment's
        # ReplicaSet and Pod that mount it too
        result = scan(manifests("workloads/every-kind.yaml"))

        # Then each workload is blocking exactly once; the owned ReplicaSet and Pod are not repeated
        assert sorted(hits(result, "DS001")) == sorted(
            [
                (
                    "blocking",
                    "CronJob/suspended",
                    "spec.jobTemplate.spec.template.spec.volumes[0].hostPath.path",
                ),
                ("blocking", "DaemonSet/daemon", "spec.template.spec.volumes[0].hostPath.path"),
                ("blocking", "DaemonSet/windows-exporter", "spec.template.spec.volumes[0].hostPath.path"),
                ("blocking", "Deployment/scaled-to-zero", "spec.template.spec.volumes[0].hostPath.path"),
                ("blocking", "Job/one-off", "spec.template.spec.volumes[0].hostPath.path"),
                ("blocking", "ReplicaSet/orphan-replicaset", "spec.template.spec.volumes[0].hostPath.path"),
                (
                    "blocking",
                    "ReplicationController/legacy-rc",
                    "spec.template.spec.volumes[0].hostPath.path",
                ),
                ("blocking", "StatefulSet/stateful", "spec.template.spec.volumes[0].hostPath.path"),
            ]
        )

    def test_a_pod_whose_controller_is_not_in_the_inventory_is_reported_itself(self):
        # Given only the Deployment's pod (its ReplicaSet was not collected)
        owned_pod = next(
            o
            for o in manifests("workloads/every-kind.yaml")
            if o["kind"] == "Pod" and "ownerReferences" in o["metadata"]
        )

        # Then the pod carries the finding rather than nobody
        assert names(scan([owned_pod]), "DS001") == {"Pod/scaled-to-zero-6d4cf56db6-x2vbn"}

    def test_the_same_mount_only_warns_when_the_target_still_has_dockershim(self):
        objects = manifests("ci/gitlab-runner.yaml")
        assert hits(scan(objects, target="1.24"), "DS001")[0][0] == "blocking"
        assert hits(scan(objects, target="1.23"), "DS001") == [
            ("warning", "Deployment/gitlab-runner", "spec.template.spec.volumes[0].hostPath.path")
        ]
        assert not scan(objects, target="1.23").has_blocking

    def test_socket_type_volume_says_the_pod_will_not_start(self):
        (finding,) = scan(manifests("ci/gitlab-runner.yaml")).by_rule("DS001")
        assert "will not even start" in finding.message
        assert finding.evidence.value == "/var/run/docker.sock"

    def test_a_parent_directory_narrowed_with_subpath_is_the_socket(self):
        result = scan(manifests("workloads/subpath-socket.yaml"))
        assert hits(result, "DS001") == [
            (
                "blocking",
                "Deployment/subpath-socket",
                "spec.template.spec.containers[0].volumeMounts[0].subPath",
            )
        ]

    def test_lookalikes_are_not_the_docker_socket(self):
        # Given a volume named docker.sock (a ConfigMap), containerd's socket, and an emptyDir
        # mounted at /var/run/docker.sock
        result = scan(manifests("nearmiss/socket-lookalikes.yaml"))

        # Then no socket, directory, DOCKER_HOST or CLI finding
        for rule in ("DS001", "DS002", "DS003", "DS004", "DS005", "DS006"):
            assert result.by_rule(rule) == [], rule

    @pytest.mark.parametrize(
        ("path", "normalised"),
        [
            ("/var/run/docker.sock", "/run/docker.sock"),
            ("/run/docker.sock", "/run/docker.sock"),
            ("//var/run//docker.sock/", "/run/docker.sock"),
            ("/var/run/../run/./docker.sock", "/run/docker.sock"),
            ("/var/", "/var"),
            ("/", "/"),
            (r"\\.\pipe\docker_engine", r"\\.\pipe\docker_engine"),
            ("//./pipe/docker_engine", r"\\.\pipe\docker_engine"),
            ("npipe:////./pipe/docker_engine", r"\\.\pipe\docker_engine"),
            ("/var/run/containerd/containerd.sock", "/run/containerd/containerd.sock"),
        ],
    )
    def test_host_paths_normalise(self, path, normalised):
        assert normalize_host_path(path) == normalised


# --- DS002: the VPC CNI's leftover -----------------------------------------------------------------
class TestVpcCniLeftover:
    def test_aws_node_dockershim_mount_is_info_not_blocking(self):
        result = scan(manifests("monitoring/aws-node.yaml"))
        assert hits(result, "DS002") == [
            ("info", "DaemonSet/aws-node", "spec.template.spec.volumes[1].hostPath.path")
        ]
        assert result.by_rule("DS001") == []
        assert not result.has_blocking

    def test_the_exemption_is_only_for_aws_node_in_kube_system(self):
        (aws_node,) = manifests("monitoring/aws-node.yaml")
        impostor = copy.deepcopy(aws_node)
        impostor["metadata"]["namespace"] = "default"
        result = scan([impostor])
        assert result.by_rule("DS002") == []
        assert hits(result, "DS001")[0][0] == "blocking"

    def test_a_cni_older_than_1_12_still_reads_the_socket(self):
        (aws_node,) = manifests("monitoring/aws-node.yaml")
        old = copy.deepcopy(aws_node)
        old["spec"]["template"]["spec"]["containers"][0]["image"] = (
            "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon-k8s-cni:v1.11.4-eksbuild.1"
        )
        (finding,) = scan([old]).by_rule("DS002")
        assert finding.severity == "warning"
        assert "1.12" in finding.remediation


# --- DS003 / DS008: directories --------------------------------------------------------------------
class TestExposingDirectories:
    def test_var_run_mount_is_a_possible_dependency(self):
        result = scan(manifests("workloads/every-kind.yaml"))
        assert hits(result, "DS003") == [("warning", "Pod/debug-pod", "spec.volumes[0].hostPath.path")]

    def test_node_exporter_root_mount_is_info_with_the_reason(self):
        result = scan(manifests("monitoring/node-exporter.yaml"))
        (finding,) = result.by_rule("DS003")
        assert finding.severity == "info"
        assert "node-exporter reads /proc" in finding.message
        assert [f for f in result.findings if f.severity != "info"] == []

    def test_the_same_root_mount_warns_for_an_unknown_image(self):
        (exporter,) = manifests("monitoring/node-exporter.yaml")
        other = copy.deepcopy(exporter)
        other["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example.com/host-agent:1.0"
        assert hits(scan([other]), "DS003") == [
            ("warning", "DaemonSet/node-exporter", "spec.template.spec.volumes[2].hostPath.path")
        ]

    def test_docker_log_directory_mount_warns_and_var_log_does_not(self):
        assert hits(scan(manifests("logging/fluentd-docker.yaml")), "DS008") == [
            ("warning", "DaemonSet/fluentd", "spec.template.spec.volumes[1].hostPath.path")
        ]
        result = scan(manifests("logging/fluentd-cri.yaml"))
        assert result.by_rule("DS008") == result.by_rule("DS003") == []


# --- DS004 / DS005 / DS006: talking to a daemon ------------------------------------------------------
HOST_RUN = [{"name": "run", "hostPath": {"path": "/var/run"}}]
SHARED_RUN = [{"name": "run", "emptyDir": {}}]
RUN_MOUNT = {"volumeMounts": [{"name": "run", "mountPath": "/var/run"}]}


class TestDockerHost:
    @pytest.mark.parametrize(
        ("container", "volumes", "severity"),
        [
            (
                {"env": [{"name": "DOCKER_HOST", "value": "unix:///var/run/docker.sock"}], **RUN_MOUNT},
                HOST_RUN,
                "blocking",
            ),
            (
                {"env": [{"name": "DOCKER_HOST", "value": "unix:///var/run/docker.sock"}], **RUN_MOUNT},
                SHARED_RUN,
                "info",
            ),
            ({"env": [{"name": "DOCKER_HOST", "value": "npipe:////./pipe/docker_engine"}]}, None, "blocking"),
            (
                {
                    "env": [
                        {"name": "NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                        {"name": "DOCKER_HOST", "value": "tcp://$(NODE_IP):2375"},
                    ]
                },
                None,
                "blocking",
            ),
            ({"env": [{"name": "DOCKER_HOST", "value": "tcp://build-daemon.ci.svc:2376"}]}, None, "info"),
            (
                {"env": [{"name": "DOCKER_HOST", "valueFrom": {"secretKeyRef": {"name": "d", "key": "h"}}}]},
                None,
                "warning",
            ),
        ],
        ids=["hostpath-socket", "shared-emptydir", "windows-pipe", "node-ip", "remote", "from-secret"],
    )
    def test_severity_follows_whose_daemon_it_is(self, container, volumes, severity):
        result = scan([pod("client", {"image": "docker:24-cli", **container}, volumes)])
        assert [f.severity for f in result.by_rule("DS004")] == [severity]

    def test_localhost_on_the_host_network_is_the_node(self):
        client = pod(
            "client",
            {"image": "docker:24-cli", "env": [{"name": "DOCKER_HOST", "value": "tcp://127.0.0.1:2375"}]},
        )
        assert [f.severity for f in scan([client]).by_rule("DS004")] == ["info"]
        client["spec"]["hostNetwork"] = True
        assert [f.severity for f in scan([client]).by_rule("DS004")] == ["blocking"]

    def test_ephemeral_container_pointing_at_the_node_is_blocking(self):
        result = scan(manifests("workloads/every-kind.yaml"))
        assert hits(result, "DS004") == [
            ("blocking", "Pod/debug-pod", "spec.ephemeralContainers[0].env[0].value")
        ]

    def test_dind_client_is_info(self):
        assert [h[0] for h in hits(scan(manifests("ci/jenkins-agent-dind.yaml")), "DS004")] == ["info"]


class TestDockerCli:
    def test_cli_against_the_node_socket_blocks_in_containers_and_init_containers(self):
        result = scan(manifests("build/image-prune-cronjob.yaml", "workloads/every-kind.yaml"))
        assert sorted(hits(result, "DS005")) == [
            (
                "blocking",
                "CronJob/image-prune",
                "spec.jobTemplate.spec.template.spec.containers[0].command[2]",
            ),
            ("blocking", "Job/one-off", "spec.template.spec.initContainers[0].command[0]"),
        ]

    def test_dockerize_flags_and_quoted_text_are_not_docker_calls(self):
        assert scan(manifests("build/nearmiss-commands.yaml")).by_rule("DS005") == []

    def test_cli_with_an_in_pod_daemon_is_info(self):
        result = scan(manifests("build/buildx-dind.yaml"))
        assert {f.severity for f in result.by_rule("DS005")} == {"info"}
        assert {f.evidence.value for f in result.by_rule("DS005")} == {
            "until docker info",
            "docker buildx create --name ci --use",
            "docker buildx build --push -t registry.example.com/app:latest /workspace",
        }

    def test_cli_with_the_node_socket_mounted_blocks_even_beside_a_dind_sidecar(self):
        (builder,) = manifests("build/buildx-dind.yaml")
        container = builder["spec"]["template"]["spec"]["containers"][0]
        del container["env"]
        container["volumeMounts"] = [{"name": "sock", "mountPath": "/var/run/docker.sock"}]
        builder["spec"]["template"]["spec"]["volumes"] = [
            {"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}
        ]
        assert {f.severity for f in scan([builder]).by_rule("DS005")} == {"blocking"}

    def test_probes_and_hooks_are_commands_too(self):
        container = {
            "image": "busybox",
            "livenessProbe": {"exec": {"command": ["sh", "-c", "sudo -u root docker ps -q | grep ."]}},
            "lifecycle": {"preStop": {"exec": {"command": ["docker", "stop", "sidecar"]}}},
        }
        result = scan([pod("probed", container)])
        assert sorted(h[2] for h in hits(result, "DS005")) == [
            "spec.containers[0].lifecycle.preStop.exec.command[0]",
            "spec.containers[0].livenessProbe.exec.command[2]",
        ]

    @pytest.mark.parametrize(
        ("script", "programs"),
        [
            ('docker ps && echo "docker ps"', ["docker", "echo"]),
            ("x=$(docker ps -q); echo `docker info`", ["docker", "echo", "docker"]),
            ("if true; then sudo -u root -E docker run a; fi", ["true", "docker", "fi"]),
            ("until docker info >/dev/null 2>&1; do sleep 1; done", ["docker", "sleep", "done"]),
            ("set -e\n# docker login in a comment\ndockerize -wait tcp://db:5432", ["set", "dockerize"]),
            ("docker run \\\n  -v /x:/y img", ["docker"]),
            ("timeout 30 docker info", ["docker"]),
        ],
    )
    def test_shell_scripts_parse_into_commands(self, script, programs):
        from upgrader.readiness.objects import executable

        assert [executable(words)[0] for words in command_words(script) if executable(words)] == programs

    def test_sh_dash_c_is_looked_into(self):
        found = [
            program
            for program, _, _ in argv_programs(["/bin/sh", "-ec", "apk add curl; docker buildx build ."])
        ]
        assert found == ["sh", "apk", "docker"]


class TestDockerInDocker:
    def test_dind_sidecars_warn(self):
        result = scan(manifests("ci/jenkins-agent-dind.yaml", "build/buildx-dind.yaml"))
        assert sorted(hits(result, "DS006")) == [
            ("warning", "Deployment/buildx-builder", "spec.template.spec.containers[1].image"),
            ("warning", "Pod/jenkins-agent-k8s-7h2lq", "spec.containers[1].image"),
        ]

    def test_kaniko_and_docker_cli_images_are_not_dind(self):
        result = scan(manifests("build/kaniko.yaml", "build/image-prune-cronjob.yaml"))
        assert result.by_rule("DS006") == []

    def test_a_container_starting_dockerd_is_dind_whatever_its_image(self):
        result = scan(
            [
                pod(
                    "daemon",
                    {
                        "image": "registry.example.com/builder:1",
                        "command": ["dockerd", "--host=tcp://0.0.0.0:2375"],
                    },
                )
            ]
        )
        assert [h[0] for h in hits(result, "DS006")] == ["warning"]

    def test_dind_is_info_before_1_24(self):
        assert [
            h[0] for h in hits(scan(manifests("ci/jenkins-agent-dind.yaml"), target="1.23"), "DS006")
        ] == ["info"]


# --- DS007: known agents ---------------------------------------------------------------------------------
def _with_env(obj: dict[str, Any], env: list[dict[str, Any]]) -> dict[str, Any]:
    obj["spec"]["template"]["spec"]["containers"][0]["env"] = env
    return obj


class TestKnownAgents:
    @pytest.mark.parametrize(
        ("image", "env", "severity"),
        [
            ("gcr.io/datadoghq/agent:7.26.0", None, "blocking"),
            (
                "gcr.io/datadoghq/agent:7.26.0",
                [{"name": "DD_CRI_SOCKET_PATH", "value": "/var/run/containerd/containerd.sock"}],
                None,
            ),
            ("gcr.io/datadoghq/agent:7.45.0", None, None),
            ("public.ecr.aws/datadog/agent:7", None, None),
            ("datadog/agent:latest", None, None),
            ("datadog/agent:stable", None, "warning"),
            ("datadog/docker-dd-agent:12.6.5223", None, "blocking"),
            ("falcosecurity/falco:0.14.0", None, "blocking"),
            ("falcosecurity/falco-no-driver:0.35.1", None, None),
            ("dynatrace/oneagent:1.265", None, "warning"),
            ("quay.io/sysdig/agent:12.0.0", None, "warning"),
            ("verizondigital/kubectl-flame:v0.2.4-jvm", None, "blocking"),
            ("fluent/fluentd-kubernetes-daemonset:v1.14-debian-elasticsearch7-1", None, "warning"),
            (
                "fluent/fluentd-kubernetes-daemonset:v1.14-debian-elasticsearch7-1",
                [{"name": "FLUENT_CONTAINER_TAIL_PARSER_TYPE", "value": "cri"}],
                None,
            ),
            ("quay.io/prometheus/node-exporter:v1.6.1", None, None),
        ],
    )
    def test_agent_table(self, image, env, severity):
        obj = daemonset("agent", "monitoring", image)
        if env:
            obj = _with_env(obj, env)
        assert [f.severity for f in scan([obj]).by_rule("DS007")] == ([severity] if severity else [])

    def test_fixture_agents(self):
        result = scan(manifests("monitoring/datadog-7.26.yaml", "monitoring/datadog-7.45.yaml"))
        assert hits(result, "DS007") == [
            ("blocking", "DaemonSet/datadog", "spec.template.spec.containers[0].image")
        ]
        assert "DD_CRI_SOCKET_PATH" in result.by_rule("DS007")[0].remediation
        # the current agent's containerd socket is no Docker socket either
        assert names(result, "DS001") == {"DaemonSet/datadog"}

    def test_image_references_parse(self):
        assert parse_image("gcr.io/datadoghq/agent:7.26.0-jmx").version == (7, 26, 0)
        assert parse_image("localhost:5000/a/b:1@sha256:ab").name == "localhost:5000/a/b"
        assert parse_image("docker:24-dind").name == "docker.io/library/docker"


# --- DS009: log collector configuration -----------------------------------------------------------------
def configmap(key: str, text: str, kind: str = "ConfigMap") -> dict[str, Any]:
    field = "data" if kind == "ConfigMap" else "stringData"
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": "cfg", "namespace": "logging"},
        field: {key: text},
    }


class TestLogConfiguration:
    def test_fluentd_json_parser_on_container_logs_blocks_at_its_line(self):
        (finding,) = scan(manifests("logging/fluentd-docker.yaml")).by_rule("DS009")
        assert (finding.severity, finding.evidence.field_path, finding.evidence.value) == (
            "blocking",
            'data["kubernetes.conf"]',
            "@type json",
        )
        assert finding.evidence.value_line == 8  # 0-based line inside kubernetes.conf

    def test_fluentd_cri_and_multi_format_parsers_are_fine(self):
        assert scan(manifests("logging/fluentd-cri.yaml")).by_rule("DS009") == []

    def test_fluent_bit_docker_parser_blocks_and_docker_mode_warns(self):
        result = scan(manifests("logging/fluent-bit-docker.yaml"))
        assert [(f.severity, f.evidence.value) for f in result.by_rule("DS009")] == [
            ("blocking", "Parser docker"),
            ("warning", "Docker_Mode On"),
        ]

    def test_fluent_bit_with_both_multiline_parsers_and_a_docker_filter_is_fine(self):
        assert scan(manifests("logging/fluent-bit-cri.yaml")).by_rule("DS009") == []

    @pytest.mark.parametrize(
        ("text", "severity"),
        [
            (
                "[INPUT]\n    Name tail\n    Path /var/log/containers/*.log\n    multiline.parser docker\n",
                "blocking",
            ),
            ("[INPUT]\n    Name tail\n    Path /var/log/syslog\n    Parser docker\n", None),
            (
                "<source>\n  @type tail\n  path /var/log/containers/*.log\n  <parse>\n"
                "    @type \"#{ENV['FLUENT_CONTAINER_TAIL_PARSER_TYPE'] || 'json'}\"\n  </parse>\n</source>\n",
                "warning",
            ),
            (
                "<source>\n  type tail\n  path /var/log/containers/*.log\n  format json\n</source>\n",
                "blocking",
            ),
            (
                "<source>\n  @type tail\n  path /var/log/app/*.log\n  <parse>\n    @type json\n  </parse>\n</source>\n",
                None,
            ),
            ("scrape_configs:\n  - job_name: pods\n    pipeline_stages:\n      - docker: {}\n", "blocking"),
            ("scrape_configs:\n  - job_name: pods\n    pipeline_stages:\n      - cri: {}\n", None),
            ("filebeat.inputs:\n- type: docker\n  containers.ids: ['*']\n", "blocking"),
            ("filebeat.inputs:\n- type: container\n  paths: [/var/log/containers/*.log]\n", None),
            ("monitors:\n  - type: docker-container-stats\n", "blocking"),
            ("paths:\n  - /var/lib/docker/containers/*/*.log\n", "blocking"),
            ("# paths: /var/lib/docker/containers/*/*.log\n", None),
        ],
        ids=[
            "fluent-bit-multiline-docker-only",
            "fluent-bit-not-container-logs",
            "fluentd-env-default-json",
            "fluentd-legacy-format-json",
            "fluentd-app-logs",
            "promtail-docker-stage",
            "promtail-cri-stage",
            "filebeat-docker-input",
            "filebeat-container-input",
            "signalfx-docker-monitor",
            "docker-log-glob",
            "commented-out",
        ],
    )
    def test_config_formats(self, text, severity):
        result = scan([configmap("agent.conf", text)])
        assert [f.severity for f in result.by_rule("DS009")] == ([severity] if severity else [])

    def test_config_in_a_secret_is_read_too(self):
        text = "[INPUT]\n    Name tail\n    Path /var/log/containers/*.log\n    Parser docker\n"
        encoded = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "cfg", "namespace": "logging"},
            "data": {"fluent-bit.conf": base64.b64encode(text.encode()).decode(), "not-base64": "%%%"},
        }
        plain = configmap("fluent-bit.conf", text, kind="Secret")
        assert [f.evidence.field_path for f in scan([encoded]).by_rule("DS009")] == [
            'data["fluent-bit.conf"]'
        ]
        assert [f.evidence.field_path for f in scan([plain]).by_rule("DS009")] == [
            'stringData["fluent-bit.conf"]'
        ]

    def test_fluent_operator_inputs(self):
        cluster_input = {
            "apiVersion": "fluentbit.fluent.io/v1alpha2",
            "kind": "ClusterInput",
            "metadata": {"name": "tail"},
            "spec": {"tail": {"path": "/var/log/containers/*.log", "parser": "docker"}},
        }
        assert hits(scan([cluster_input]), "DS009") == [("blocking", "ClusterInput/tail", "spec.tail.parser")]
        cluster_input["spec"]["tail"]["parser"] = "cri"
        assert scan([cluster_input]).by_rule("DS009") == []


# --- DS010: nodes -------------------------------------------------------------------------------------------
def node(
    name: str, runtime: str, labels: dict[str, str] | None = None, kubelet: str = "v1.23.17-eks-a59e1f0"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "status": {"nodeInfo": {"containerRuntimeVersion": runtime, "kubeletVersion": kubelet}},
    }


class TestNodeRuntime:
    def test_docker_nodes_are_grouped_by_node_group(self):
        group = {"eks.amazonaws.com/nodegroup": "general"}
        result = scan(
            [
                node("ip-10-0-1-1", "docker://20.10.17", group),
                node("ip-10-0-1-2", "docker://20.10.17", group),
                node("ip-10-0-1-3", "containerd://1.6.6", {"eks.amazonaws.com/nodegroup": "new"}),
            ]
        )
        (finding,) = result.by_rule("DS010")
        assert (finding.severity, finding.evidence.name, finding.evidence.value) == (
            "warning",
            "eks.amazonaws.com/nodegroup=general",
            "docker://20.10.17",
        )
        assert "2 node(s)" in finding.message

    def test_containerd_nodes_are_fine_and_no_nodes_means_not_evaluated(self):
        assert scan([node("n", "containerd://1.6.6")]).by_rule("DS010") == []
        result = scan([])
        assert "DS010" in [n.rule for n in result.not_evaluated]
        assert "DS010" not in result.evaluated


# --- DS011 / DS012: user data -----------------------------------------------------------------------------
MIME_USER_DATA = """MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="==BOUNDARY=="

--==BOUNDARY==
Content-Type: text/x-shellscript; charset="us-ascii"

#!/bin/bash
set -ex
cat <<'EOF' > /etc/docker/daemon.json
{"registry-mirrors": ["https://mirror.example.com"]}
EOF
/etc/eks/bootstrap.sh payments-prod --container-runtime dockerd --enable-docker-bridge true
--==BOUNDARY==--
"""


class TestUserData:
    def test_dockerd_runtime_blocks_and_docker_settings_warn(self):
        result = scan([], launch_template_user_data={"ci-runners": MIME_USER_DATA})
        assert [(f.severity, f.evidence.value_line) for f in result.by_rule("DS011")] == [("blocking", 11)]
        assert [(f.severity, f.evidence.value) for f in result.by_rule("DS012")] == [
            ("warning", "cat <<'EOF' > /etc/docker/daemon.json"),
            (
                "warning",
                "/etc/eks/bootstrap.sh payments-prod --container-runtime dockerd --enable-docker-bridge true",
            ),
        ]

    def test_base64_user_data_is_decoded(self):
        encoded = base64.b64encode(
            b"#!/bin/bash\n/etc/eks/bootstrap.sh c --container-runtime=dockerd\n"
        ).decode()
        assert [
            f.evidence.name for f in scan([], launch_template_user_data={"g": encoded}).by_rule("DS011")
        ] == ["g"]

    def test_containerd_and_comments_are_fine(self):
        user_data = "#!/bin/bash\n# was: --container-runtime dockerd\n/etc/eks/bootstrap.sh c --container-runtime containerd\n"
        result = scan([], launch_template_user_data={"g": user_data})
        assert result.by_rule("DS011") == result.by_rule("DS012") == []

    def test_on_1_23_the_flag_warns(self):
        result = scan([], target="1.23", launch_template_user_data={"ci-runners": MIME_USER_DATA})
        assert [f.severity for f in result.by_rule("DS011")] == ["warning"]
        assert {f.severity for f in result.by_rule("DS012")} == {"info"}

    def test_without_user_data_the_rules_are_not_evaluated(self):
        missing = {n.rule: n.missing for n in scan([]).not_evaluated}
        assert missing["DS011"] == missing["DS012"] == ("launchTemplateUserData",)


# --- what the simulator writes ------------------------------------------------------------------------------
def test_the_demo_fleets_log_agent_is_what_blocks_platform_tools():
    # Given the demo fleet's clusters, as the simulator turns their workloads into manifests
    from simulator.scenario import load_scenario
    from simulator.workloads import manifests as expand

    scenario = load_scenario(Path(__file__).resolve().parents[2] / "examples" / "fleets" / "demo.yaml")
    blocked = {}
    for _, cluster in scenario.clusters():
        objects = [m for w in cluster.workloads for m in expand(w)] + list(cluster.manifests)
        result = evaluate(Inventory(objects=objects), cluster.version, scenario.upgrade.to_version)
        blocked[cluster.name] = sorted({f.rule for f in result.findings if f.severity == "blocking"})

    # Then only platform-tools is blocked: its fluentd mounts the socket and parses Docker's JSON logs
    assert blocked.pop("platform-tools") == ["DS001", "DS009"]
    assert all(rules == [] for rules in blocked.values())
