"""Version policy as data: which Kubernetes versions and steps the orchestrator supports.

Every version literal the workflow needs lives here. Later packs (rule packs per target, AMI
families, add-on handling) extend this module rather than scattering literals through the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from upgrader.errors import UnsupportedVersionStep

_VERSION_RE = re.compile(r"^(?P<major>1)\.(?P<minor>\d{2})$")


@total_ordering
@dataclass(frozen=True)
class KubeVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> KubeVersion:
        match = _VERSION_RE.match(text or "")
        if not match:
            raise UnsupportedVersionStep(
                f"'{text}' is not a Kubernetes minor version like '1.24'", value=text
            )
        return cls(int(match["major"]), int(match["minor"]))

    def next_minor(self) -> KubeVersion:
        return KubeVersion(self.major, self.minor + 1)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, KubeVersion):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


# EKS minor versions this release can upgrade from/to. 1.23 -> 1.24 (dockershim removal) is the
# flagship step; the rest use the same machinery one minor at a time.
SUPPORTED_VERSIONS: tuple[str, ...] = tuple(f"1.{minor}" for minor in range(23, 35))


def validate_step(from_version: str, to_version: str) -> tuple[KubeVersion, KubeVersion]:
    """A supported step is exactly one minor version up, between supported versions."""
    source, target = KubeVersion.parse(from_version), KubeVersion.parse(to_version)
    for version in (source, target):
        if str(version) not in SUPPORTED_VERSIONS:
            raise UnsupportedVersionStep(
                f"Kubernetes {version} is outside the supported range "
                f"{SUPPORTED_VERSIONS[0]}..{SUPPORTED_VERSIONS[-1]}",
                fromVersion=from_version,
                toVersion=to_version,
            )
    if target != source.next_minor():
        raise UnsupportedVersionStep(
            "EKS upgrades the control plane one minor version at a time: "
            f"{source} can only go to {source.next_minor()}",
            fromVersion=from_version,
            toVersion=to_version,
        )
    return source, target


@dataclass(frozen=True)
class OperationTiming:
    """How long an EKS operation usually takes, and how we poll it.

    The first wait is the low end of the observed duration (no poll can succeed earlier),
    after which short polls keep detection latency small; ``max_wait_seconds`` caps the loop.
    """

    first_wait_seconds: int
    poll_seconds: int
    max_wait_seconds: int


# Observed: a control plane version update takes roughly 7 to 10 minutes.
CONTROL_PLANE_UPDATE = OperationTiming(first_wait_seconds=420, poll_seconds=20, max_wait_seconds=3600)

# Observed: a managed node group is ACTIVE with its nodes Ready 3 to 5 minutes after CreateNodegroup,
# and gone 2 to 4 minutes after DeleteNodegroup. The create cap is the input's
# replacementReadyTimeoutSeconds (this is its default).
NODEGROUP_CREATE = OperationTiming(first_wait_seconds=180, poll_seconds=20, max_wait_seconds=1800)
NODEGROUP_DELETE = OperationTiming(first_wait_seconds=120, poll_seconds=20, max_wait_seconds=1800)
# Drain: an evicted pod's replacement is usually Ready 10 to 30 s later; a budget that says no is asked
# again with backoff (10 s doubling, at most 60 s). The cap is the input's nodeTimeoutSeconds.
DRAIN = OperationTiming(first_wait_seconds=15, poll_seconds=10, max_wait_seconds=900)
DRAIN_MAX_BACKOFF_SECONDS = 60
# Kubernetes 1.24 removed dockershim: from there on nodes run containerd without being asked to.
DOCKERSHIM_REMOVED = KubeVersion(1, 24)
