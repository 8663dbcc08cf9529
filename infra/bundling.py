"""Offline Lambda packaging, no Docker: the code asset and a pip-built dependency layer.

* Code: the ``functions/`` directory as is (the handlers import ``upgrader`` from the asset root).
* Dependencies: one layer built from ``functions/requirements.txt`` by the venv's pip, downloading
  Linux/arm64 CPython 3.13 wheels (``--platform manylinux2014_aarch64 --only-binary=:all:``), so it
  runs on a machine of any architecture. CDK local bundling calls :class:`PipLayerBundler`; the Docker
  image named in the bundling options is never pulled because ``try_bundle`` always succeeds.

The pip output is cached in ``build/lambda-layer/<key>/`` where the key hashes the requirements file, the
platform and the Python version: repeated synths (and every test session) copy the cache instead of
running pip. CDK also skips bundling entirely when ``cdk.out`` already holds the asset of that key.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.constants import LAYER_PIP_PLATFORM, LAYER_PYTHON_VERSION
from infra.paths import BUILD_DIR, FUNCTION_REQUIREMENTS, FUNCTIONS_DIR

LAYER_CACHE_DIR = BUILD_DIR / "lambda-layer"
# Never run: local bundling always succeeds. CDK requires an image in BundlingOptions regardless.
UNUSED_BUNDLING_IMAGE = "unused-local-bundling"
CODE_EXCLUDES = ("__pycache__", "*.pyc", "tests", "*.egg-info", ".pytest_cache", ".mypy_cache")


def layer_cache_key(
    requirements: Path = FUNCTION_REQUIREMENTS,
    platform: str = LAYER_PIP_PLATFORM,
    python_version: str = LAYER_PYTHON_VERSION,
) -> str:
    digest = hashlib.sha256()
    digest.update(requirements.read_bytes())
    digest.update(f"\0{platform}\0cp{python_version}".encode())
    return digest.hexdigest()[:24]


def pip_install_command(requirements: Path, target: Path, platform: str, python_version: str) -> list[str]:
    return [
        sys.executable,  # the venv's interpreter, hence the venv's pinned pip
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # .pyc of the build interpreter would be useless on Python 3.13
        "--platform",
        platform,
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]


@jsii.implements(ILocalBundling)
class PipLayerBundler:
    """Fills a Lambda layer directory (``python/...``) from the cached pip output, building it once."""

    def __init__(
        self,
        requirements: Path = FUNCTION_REQUIREMENTS,
        cache_dir: Path = LAYER_CACHE_DIR,
        platform: str = LAYER_PIP_PLATFORM,
        python_version: str = LAYER_PYTHON_VERSION,
    ) -> None:
        self.requirements = requirements
        self.cache_dir = cache_dir
        self.platform = platform
        self.python_version = python_version

    @property
    def cache_key(self) -> str:
        return layer_cache_key(self.requirements, self.platform, self.python_version)

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        # Keyword-only options: jsii passes the BundlingOptions struct as keywords to this signature.
        shutil.copytree(self.ensure_cached(), output_dir, dirs_exist_ok=True, copy_function=_link_or_copy)
        return True

    def ensure_cached(self) -> Path:
        """The directory holding ``python/<packages>`` for the current requirements; pip runs on a miss."""
        cached = self.cache_dir / self.cache_key
        if cached.is_dir():
            return cached
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # Build next to the cache and rename: concurrent synths never see a half-written layer.
        staging = Path(tempfile.mkdtemp(prefix=f".{self.cache_key}-", dir=self.cache_dir))
        try:
            command = pip_install_command(
                self.requirements, staging / "python", self.platform, self.python_version
            )
            print(
                f"Building the Lambda dependency layer ({self.platform}, cp{self.python_version}) "
                f"from {self.requirements.name} into {cached}",
                file=sys.stderr,
            )
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise RuntimeError(
                    f"pip could not build the Lambda layer (exit {result.returncode}):\n"
                    f"{' '.join(command)}\n{result.stdout}{result.stderr}"
                )
            try:
                os.replace(staging, cached)
            except OSError:
                if not cached.is_dir():  # lost a race to another synth: theirs is as good as ours
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._remove_stale_entries(keep=cached)
        return cached

    def _remove_stale_entries(self, keep: Path) -> None:
        for entry in self.cache_dir.iterdir():
            if entry != keep and entry.is_dir() and not entry.name.startswith("."):
                shutil.rmtree(entry, ignore_errors=True)


def _link_or_copy(source: str, destination: str) -> None:
    """Hard-link cached files into the asset (nothing writes to either side); copy across filesystems."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def function_code() -> lambda_.Code:
    """The shared code asset of every step: ``functions/`` without caches and tests."""
    return lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=list(CODE_EXCLUDES))


def dependency_layer_code(bundler: PipLayerBundler | None = None) -> lambda_.Code:
    """The layer asset, hashed by requirements + platform so CDK re-bundles only when those change."""
    bundler = bundler or PipLayerBundler()
    return lambda_.Code.from_asset(
        str(bundler.requirements.parent),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=bundler.cache_key,
        bundling=BundlingOptions(
            image=DockerImage.from_registry(UNUSED_BUNDLING_IMAGE),
            local=bundler,
        ),
    )
