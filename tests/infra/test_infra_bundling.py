"""Offline packaging: the code asset, the arm64/cp313 dependency layer, and its build/ cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import constants
from infra.bundling import PipLayerBundler, layer_cache_key
from infra.catalog import STEPS
from infra.paths import FUNCTION_REQUIREMENTS


def asset_dir(synthesized: Any, resource_type: str) -> Path:
    """The staged asset directory (cdk.out/asset.<hash>) behind a resource's S3Key <hash>.zip."""
    resources = synthesized.orchestrator.to_json()["Resources"].values()
    keys = {
        r["Properties"].get("Code", r["Properties"].get("Content"))["S3Key"]
        for r in resources
        if r["Type"] == resource_type
    }
    [key] = keys  # every function shares one code asset; there is one layer
    return synthesized.outdir / f"asset.{key.removesuffix('.zip')}"


def test_layer_holds_the_pinned_dependencies_built_for_linux_arm64_cpython_313(synthesized):
    site = asset_dir(synthesized, "AWS::Lambda::LayerVersion") / "python"
    # Then the layer has the Lambda layout (python/...) with every pinned distribution at its pin
    for line in FUNCTION_REQUIREMENTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            dist = name.lower().replace("-", "_")
            assert list(site.glob(f"{dist}-{version}.dist-info")), line
    # And compiled extensions target the Lambda interpreter and CPU, not this machine's
    extensions = [p.name for p in site.rglob("*.so")]
    assert any(name.endswith(".cpython-313-aarch64-linux-gnu.so") for name in extensions)
    assert not [name for name in extensions if "x86_64" in name or "cpython-311" in name]


def test_code_asset_is_the_functions_directory_without_caches(synthesized):
    code = asset_dir(synthesized, "AWS::Lambda::Function")
    for step in STEPS:
        assert (code / step.package / "handler.py").is_file()
    assert (code / "upgrader" / "catalog.py").is_file()
    assert not list(code.rglob("__pycache__"))
    assert not list(code.rglob("*.pyc"))
    assert not (code / "tests").exists()


def test_layer_target_matches_the_lambda_runtime_and_architecture():
    assert constants.LAMBDA_RUNTIME.name == f"python{constants.LAYER_PYTHON_VERSION}"
    assert constants.LAMBDA_ARCHITECTURE.name == "arm64"
    assert constants.LAYER_PIP_PLATFORM.endswith("_aarch64")


def test_cache_key_follows_requirements_platform_and_python_version(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pydantic==2.14.4\n")
    key = layer_cache_key(requirements, "manylinux2014_aarch64", "3.13")
    assert key == layer_cache_key(requirements, "manylinux2014_aarch64", "3.13")
    assert key != layer_cache_key(requirements, "manylinux2014_x86_64", "3.13")
    assert key != layer_cache_key(requirements, "manylinux2014_aarch64", "3.12")
    requirements.write_text("pydantic==2.14.5\n")
    assert key != layer_cache_key(requirements, "manylinux2014_aarch64", "3.13")


def test_a_cached_layer_is_reused_without_running_pip(tmp_path, monkeypatch):
    # Given a cache entry for the current key
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("fastjsonschema==2.22.3\n")
    bundler = PipLayerBundler(requirements=requirements, cache_dir=tmp_path / "cache")
    cached = tmp_path / "cache" / bundler.cache_key / "python"
    cached.mkdir(parents=True)
    (cached / "marker.py").write_text("")

    def no_pip(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pip must not run when the cache holds the layer")

    monkeypatch.setattr(subprocess, "run", no_pip)
    # When the bundler fills an asset directory
    output = tmp_path / "asset"
    assert bundler.try_bundle(str(output), image=None) is True
    # Then it copied the cache
    assert (output / "python" / "marker.py").is_file()


def test_a_pip_failure_stops_the_synth_with_pips_output_and_leaves_no_cache_entry(tmp_path, monkeypatch):
    # Given pip fails (simulated: the test stays off the network)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("no-such-distribution==0.0.0\n")
    bundler = PipLayerBundler(requirements=requirements, cache_dir=tmp_path / "cache")
    commands: list[list[str]] = []

    def failing_pip(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return subprocess.CompletedProcess(command, 1, stdout="", stderr="ERROR: No matching distribution")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    # When the layer is built, then the error carries pip's message
    with pytest.raises(RuntimeError, match="No matching distribution"):
        bundler.ensure_cached()
    # And pip was the venv's, asked for Linux arm64 CPython 3.13 wheels only
    [command] = commands
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    for flag in ("--platform", "manylinux2014_aarch64", "--python-version", "3.13", "--only-binary=:all:"):
        assert flag in command
    # And no half-built entry is left to be mistaken for a cache hit
    assert list((tmp_path / "cache").iterdir()) == []
