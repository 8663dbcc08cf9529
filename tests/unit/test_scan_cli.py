"""``fleetctl scan``: files, folders and stdin in; table, JSON or SARIF out; exit codes 0/1/2.

Runs in-process (``fleetctl.scan.main``), plus one run through ``fleetctl.cli.main`` to prove the
subcommand is registered there.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from fleetctl import scan

MANIFESTS = Path(__file__).resolve().parents[1] / "fixtures" / "manifests"
GITLAB = str(MANIFESTS / "ci" / "gitlab-runner.yaml")
KANIKO = str(MANIFESTS / "build" / "kaniko.yaml")
FINDING_KEYS = {
    "rule",
    "severity",
    "kind",
    "namespace",
    "name",
    "file",
    "line",
    "path",
    "value",
    "message",
    "remediation",
    "reference",
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = scan.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code, out, _ = run(capsys, "--format", "json", *argv)
    return code, json.loads(out)


# --- formats ------------------------------------------------------------------------------------------------
class TestJson:
    def test_findings_carry_file_line_and_field_path(self, capsys):
        code, report = run_json(capsys, GITLAB)
        assert code == 1
        (socket,) = [f for f in report["findings"] if f["rule"] == "DS001"]
        assert set(socket) == FINDING_KEYS
        assert (socket["file"], socket["line"], socket["path"], socket["value"]) == (
            GITLAB,
            43,
            "spec.template.spec.volumes[0].hostPath.path",
            "/var/run/docker.sock",
        )
        assert (socket["severity"], socket["kind"], socket["namespace"], socket["name"]) == (
            "blocking",
            "Deployment",
            "ci",
            "gitlab-runner",
        )

    def test_summary_counts_files_objects_and_what_was_not_evaluated(self, capsys):
        _, report = run_json(capsys, GITLAB, KANIKO)
        summary = report["summary"]
        assert (summary["filesScanned"], summary["objectsScanned"]) == (2, 3)
        assert summary["blocking"] == sum(f["severity"] == "blocking" for f in report["findings"]) == 1
        not_evaluated = {item["rule"]: item["missing"] for item in summary["notEvaluated"]}
        assert not_evaluated["DS010"] == ["kind:Node"]
        assert not_evaluated["GN001"] == ["cluster"]

    def test_a_line_inside_a_config_block_points_at_that_line(self, capsys):
        _, report = run_json(capsys, str(MANIFESTS / "logging" / "fluentd-docker.yaml"))
        (parser,) = [f for f in report["findings"] if f["rule"] == "DS009"]
        assert (parser["line"], parser["value"]) == (23, "@type json")


class TestTable:
    def test_grouped_by_severity_with_locations(self, capsys):
        code, out, _ = run(capsys, str(MANIFESTS / "ci"))
        assert code == 1
        assert out.index("BLOCKING (1)") < out.index("WARNING") < out.index("INFO")
        assert f"({GITLAB}:43)" in out
        assert "NOT EVALUATED" in out and "GN004" in out
        assert out.rstrip().endswith("blocked.")


class TestSarif:
    def test_structure_follows_sarif_2_1_0(self, capsys):
        code, out, _ = run(capsys, "--format", "sarif", str(MANIFESTS / "ci"), str(MANIFESTS / "logging"))
        log = json.loads(out)
        jsonschema.validate(log, SARIF_SUBSET)
        run_ = log["runs"][0]
        rules = run_["tool"]["driver"]["rules"]
        assert {r["id"] for r in rules} >= {"DS001", "DS009", "GN007", "SC001"}
        for result in run_["results"]:
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        levels = {r["ruleId"]: r["level"] for r in run_["results"]}
        assert levels["DS001"] == "error" and levels["DS006"] == "warning" and levels["DS004"] == "note"
        (socket,) = [r for r in run_["results"] if r["ruleId"] == "DS001"]
        physical = socket["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == Path(GITLAB).as_uri()
        assert physical["region"]["startLine"] == 43
        assert code == 1

    def test_relative_paths_stay_relative_uris(self, capsys, monkeypatch):
        monkeypatch.chdir(MANIFESTS)
        _, out, _ = run(capsys, "--format", "sarif", "ci/gitlab-runner.yaml")
        uris = {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in json.loads(out)["runs"][0]["results"]
        }
        assert uris == {"ci/gitlab-runner.yaml"}


# The parts of the SARIF 2.1.0 schema this output uses: required properties, enums, and no stray keys.
_MESSAGE = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string"}},
    "additionalProperties": False,
}
_MULTIFORMAT = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}},
    "additionalProperties": False,
}
SARIF_SUBSET = {
    "type": "object",
    "required": ["version", "runs"],
    "additionalProperties": False,
    "properties": {
        "$schema": {"type": "string"},
        "version": {"enum": ["2.1.0"]},
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["tool"],
                "additionalProperties": False,
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "additionalProperties": False,
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id"],
                                            "additionalProperties": False,
                                            "properties": {
                                                "id": {"type": "string"},
                                                "name": {"type": "string"},
                                                "shortDescription": _MULTIFORMAT,
                                                "fullDescription": _MULTIFORMAT,
                                                "help": _MULTIFORMAT,
                                                "helpUri": {"type": "string", "format": "uri"},
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "additionalProperties": False,
                                                    "properties": {
                                                        "level": {
                                                            "enum": ["none", "note", "warning", "error"]
                                                        }
                                                    },
                                                },
                                                "properties": {"type": "object"},
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "invocations": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["executionSuccessful"],
                            "properties": {"executionSuccessful": {"type": "boolean"}},
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message"],
                            "additionalProperties": False,
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": -1},
                                "level": {"enum": ["none", "note", "warning", "error"]},
                                "message": _MESSAGE,
                                "partialFingerprints": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "properties": {"type": "object"},
                                "locations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "additionalProperties": False,
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "additionalProperties": False,
                                                        "properties": {"uri": {"type": "string"}},
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "additionalProperties": False,
                                                        "properties": {
                                                            "startLine": {"type": "integer", "minimum": 1}
                                                        },
                                                    },
                                                },
                                            },
                                            "logicalLocations": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "additionalProperties": False,
                                                    "properties": {
                                                        "name": {"type": "string"},
                                                        "fullyQualifiedName": {"type": "string"},
                                                        "kind": {"type": "string"},
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    },
                    "properties": {"type": "object"},
                },
            },
        },
    },
}


# --- inputs ---------------------------------------------------------------------------------------------------
MULTI_DOC = """\
# rendered by helm template
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: web}
data: {mode: production}
---
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: log-agent, namespace: web}
spec:
  selector: {matchLabels: {app: log-agent}}
  template:
    metadata: {labels: {app: log-agent}}
    spec:
      containers: [{name: agent, image: registry.example.com/agent:1}]
      volumes:
        - name: sock
          hostPath:
            path: /var/run/docker.sock
"""


class TestInputs:
    def test_stdin_with_several_documents(self, capsys, monkeypatch):
        # Given `helm template ... | fleetctl scan -`
        monkeypatch.setattr("sys.stdin", io.StringIO(MULTI_DOC))
        code, report = run_json(capsys, "-")
        (socket,) = [f for f in report["findings"] if f["rule"] == "DS001"]
        # Then the finding points into stdin at the line of the path (line 21 of the stream)
        assert (code, socket["file"], socket["line"]) == (1, "<stdin>", 21)
        assert (report["summary"]["filesScanned"], report["summary"]["objectsScanned"]) == (1, 2)

    def test_list_kinds_are_unwrapped_and_json_has_line_numbers(self, capsys):
        _, report = run_json(capsys, str(MANIFESTS / "workloads" / "list.json"))
        (socket,) = [f for f in report["findings"] if f["rule"] == "DS001"]
        assert (socket["name"], socket["line"]) == ("listed-agent", 15)
        assert report["summary"]["objectsScanned"] == 2

    def test_typed_lists_give_their_items_a_kind(self, capsys, tmp_path):
        listing = tmp_path / "deployments.yaml"
        listing.write_text(
            "apiVersion: apps/v1\nkind: DeploymentList\nitems:\n"
            "  - metadata: {name: solo, namespace: a}\n"
            "    spec:\n      replicas: 1\n      template: {spec: {containers: [{name: c, image: i}]}}\n"
        )
        _, report = run_json(capsys, str(listing))
        assert [(f["rule"], f["kind"], f["line"]) for f in report["findings"]] == [("GN008", "Deployment", 6)]

    def test_folders_are_searched_recursively_for_manifest_suffixes_only(self, capsys, tmp_path):
        (tmp_path / "a" / "b").mkdir(parents=True)
        (tmp_path / "a" / "b" / "agent.yml").write_text(MULTI_DOC)
        (tmp_path / "README.md").write_text("kind: Pod\nthis is not a manifest: [")
        (tmp_path / "values.yaml").write_text("replicaCount: 1\nimage: {tag: latest}\n")
        code, report = run_json(capsys, str(tmp_path))
        assert report["summary"]["filesScanned"] == 2
        assert report["summary"]["objectsScanned"] == 2
        assert code == 1

    def test_no_kubernetes_objects_is_not_an_error_but_is_said(self, capsys, tmp_path):
        values = tmp_path / "values.yaml"
        values.write_text("replicaCount: 1\n")
        code, _, err = run(capsys, str(values))
        assert code == 0
        assert "no Kubernetes objects" in err


# --- exit codes ---------------------------------------------------------------------------------------------
class TestExitCodes:
    def test_zero_without_blocking_findings(self, capsys):
        assert run(capsys, KANIKO)[0] == 0

    def test_one_with_a_blocking_finding_and_zero_when_the_target_keeps_docker(self, capsys):
        assert run(capsys, GITLAB)[0] == 1
        code, report = run_json(capsys, "--target-version", "1.23", GITLAB)
        assert code == 0
        assert [(f["rule"], f["severity"]) for f in report["findings"] if f["rule"] == "DS001"] == [
            ("DS001", "warning")
        ]
        assert (report["fromVersion"], report["toVersion"]) == ("1.22", "1.23")

    @pytest.mark.parametrize(
        ("name", "content", "expected"),
        [
            (
                "broken.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n",
                "broken.yaml:5: not valid YAML",
            ),
            ("tabs.yaml", "apiVersion: v1\nkind: Pod\n\tname: x\n", "tabs.yaml:3: not valid YAML"),
            ("broken.json", '{\n  "kind": "Pod",\n  "metadata": {\n}\n', "broken.json:5: not valid JSON"),
            ("latin1.yaml", b"kind: ConfigMap\ndata:\n  a: caf\xe9\n", "latin1.yaml:3: not UTF-8 text"),
        ],
    )
    def test_two_for_unreadable_input_with_file_and_line(self, capsys, tmp_path, name, content, expected):
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        code, out, err = run(capsys, GITLAB, str(path))
        assert (code, out) == (2, "")
        assert expected in err

    def test_yaml_errors_also_say_where_the_broken_construct_started(self, capsys, tmp_path):
        path = tmp_path / "broken.yaml"
        path.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n")
        _, _, err = run(capsys, str(path))
        assert "while parsing a flow sequence started at line 4" in err

    def test_two_for_a_missing_path_and_for_a_bad_version_step(self, capsys, tmp_path):
        code, _, err = run(capsys, str(tmp_path / "nope.yaml"))
        assert code == 2 and "nope.yaml: no such file or directory" in err
        code, _, err = run(capsys, "--target-version", "1.26", "--from-version", "1.24", GITLAB)
        assert code == 2 and "one minor version at a time" in err


def test_fleetctl_registers_the_scan_subcommand(capsys):
    from fleetctl.cli import main

    assert main(["scan", "--format", "json", KANIKO]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["blocking"] == 0
