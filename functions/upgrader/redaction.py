"""What the product never keeps: secret values. Standard library only (the gateways and the domain
both import it, and steps that never scan must not pay for more)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Where a Secret carries its values: the data itself, and the copy `kubectl apply` keeps of the manifest.
SECRET_VALUE_FIELDS = ("data", "stringData")
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"


def without_secret_values(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A Secret reduced to its metadata and ``type`` (a copy; other kinds come back as a shallow copy).

    ``data``, ``stringData`` and the last-applied annotation (which holds the whole manifest, values
    included) are dropped before anything else sees the object.
    """
    if obj.get("kind") != "Secret":
        return dict(obj)
    kept = {key: value for key, value in obj.items() if key not in SECRET_VALUE_FIELDS}
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if isinstance(annotations, Mapping) and LAST_APPLIED_ANNOTATION in annotations:
        kept["metadata"] = {
            **meta,
            "annotations": {k: v for k, v in annotations.items() if k != LAST_APPLIED_ANNOTATION},
        }
    return kept
