"""Upgrade-readiness rules: one engine, rule packs keyed by target version, shared by both scanners.

Use :func:`evaluate`::

    from upgrader.readiness import Inventory, evaluate

    result = evaluate(Inventory(objects=manifests), "1.23", "1.24")
    result.has_blocking, result.findings, result.not_evaluated

Importing this package registers the packs below; a new pack is a new module imported here.
"""

from __future__ import annotations

from upgrader.readiness import dockershim, general  # noqa: F401  (each module registers its pack)
from upgrader.readiness.engine import (
    REGISTRY,
    SEVERITIES,
    Evidence,
    Finding,
    Inventory,
    NotEvaluated,
    PackRegistry,
    Rule,
    RulePack,
    ScanResult,
    Severity,
    evaluate,
    register_pack,
)

__all__ = [
    "REGISTRY",
    "SEVERITIES",
    "Evidence",
    "Finding",
    "Inventory",
    "NotEvaluated",
    "PackRegistry",
    "Rule",
    "RulePack",
    "ScanResult",
    "Severity",
    "evaluate",
    "register_pack",
]
