"""Repository layout the CDK app relies on. Pure pathlib: importing this never starts jsii."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"  # the Lambda code asset root
FUNCTION_REQUIREMENTS = FUNCTIONS_DIR / "requirements.txt"  # becomes the dependency layer
STATEMACHINES_DIR = REPO_ROOT / "statemachines"
BUILD_DIR = REPO_ROOT / "build"  # cache of the pip-built layer (git-ignored)
CDK_JSON = REPO_ROOT / "cdk.json"
