"""The installed project (``pip install -e .``, what ``fleetctl`` runs from) holds every catalog step."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from upgrader.catalog import STEPS

ROOT = Path(__file__).resolve().parents[2]


def test_every_step_package_is_included_in_the_installed_project():
    # Given the packages pyproject.toml installs
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    # Then each catalog step's handler package is among them (else the local engine cannot import it
    # outside pytest, e.g. in `fleetctl demo`)
    missing = [
        s.package for s in STEPS if not any(fnmatch.fnmatch(s.package, pattern) for pattern in include)
    ]
    assert missing == []
    assert all((ROOT / "functions" / s.package / "handler.py").is_file() for s in STEPS)
