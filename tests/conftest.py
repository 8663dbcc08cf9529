"""Shared by every test: the secret scan of every workflow run (tests/secret_scan.py)."""

from tests.secret_scan import _no_secret_leaks, pytest_configure, secret_scan

__all__ = ["_no_secret_leaks", "pytest_configure", "secret_scan"]
