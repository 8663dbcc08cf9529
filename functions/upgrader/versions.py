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


def _supported(source: KubeVersion, target: KubeVersion, from_version: str, to_version: str) -> None:
    for version in (source, target):
        if str(version) not in SUPPORTED_VERSIONS:
            raise UnsupportedVersionStep(
                f"Kubernetes {version} is outside the supported range "
                f"{SUPPORTED_VERSIONS[0]}..{SUPPORTED_VERSIONS[-1]}",
                fromVersion=from_version,
                toVersion=to_version,
            )


def validate_step(from_version: str, to_version: str) -> tuple[KubeVersion, KubeVersion]:
    """A supported step is exactly one minor version up, between supported versions."""
    source, target = KubeVersion.parse(from_version), KubeVersion.parse(to_version)
    _supported(source, target, from_version, to_version)
    if target != source.next_minor():
        raise UnsupportedVersionStep(
            "EKS upgrades the control plane one minor version at a time: "
            f"{source} can only go to {source.next_minor()}",
            fromVersion=from_version,
            toVersion=to_version,
        )
    return source, target


# A run may cross at most this many minor versions (each one a full step with its own checks):
# beyond that, the chance that nothing in the cluster breaks between steps is the operator's call,
# made by running the chain in parts.
MAX_CHAIN_STEPS = 3


def version_chain(from_version: str, to_version: str) -> tuple[str, ...]:
    """The single-minor steps from ``from_version`` to ``to_version``: ``("1.24", "1.25")`` for 1.23 -> 1.25.

    A target more than one minor ahead runs as a chain; each step is validated as if it were asked
    for alone (so a policy that stops supporting a version stops the chain before it starts)."""
    source, target = KubeVersion.parse(from_version), KubeVersion.parse(to_version)
    _supported(source, target, from_version, to_version)
    if not source < target:
        raise UnsupportedVersionStep(
            f"toVersion {target} is not above fromVersion {source}: EKS never downgrades a control plane",
            fromVersion=from_version,
            toVersion=to_version,
        )
    steps: list[str] = []
    current = source
    while current < target:
        validate_step(str(current), str(current.next_minor()))
        current = current.next_minor()
        steps.append(str(current))
    if len(steps) > MAX_CHAIN_STEPS:
        raise UnsupportedVersionStep(
            f"{source} -> {target} is {len(steps)} minor versions; one run chains at most "
            f"{MAX_CHAIN_STEPS}: run it in parts",
            fromVersion=from_version,
            toVersion=to_version,
        )
    return tuple(steps)


# -- node images ------------------------------------------------------------------------------------
# Amazon Linux 2 EKS-optimized AMIs are published up to Kubernetes 1.32; from 1.33 only AL2023
# (nodeadm instead of /etc/eks/bootstrap.sh) and Bottlerocket.
AL2_LAST = KubeVersion(1, 32)
AL2_PARAMETER = "/aws/service/eks/optimized-ami/{version}/{flavour}/recommended/image_id"
AL2023_PARAMETER = (
    "/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/{arch}/{variant}/recommended/image_id"
)
# The AMI names EKS gives its AL2 images, by flavour (SSM path segment): amazon-eks-node-1.24-v20240522.
AL2_IMAGE_NAME_PREFIX = {
    "amazon-linux-2": "amazon-eks-node-",
    "amazon-linux-2-arm64": "amazon-eks-arm64-node-",
    "amazon-linux-2-gpu": "amazon-eks-gpu-node-",
}
EKS_AMI_OWNER = "602401143452"


def ami_family(version: str) -> str:
    """The EKS-optimized Linux family a custom-AMI node group on ``version`` can use: AL2 or AL2023."""
    return "AL2" if KubeVersion.parse(version) <= AL2_LAST else "AL2023"


def al2_image_parameter(version: str, flavour: str) -> str:
    """The public SSM parameter holding the recommended AL2 EKS AMI of ``version`` (flavour: SSM path
    segment, e.g. ``amazon-linux-2-arm64``)."""
    if ami_family(version) != "AL2":
        raise UnsupportedVersionStep(
            f"EKS publishes no Amazon Linux 2 AMI for Kubernetes {version}: a custom-AMI node group "
            "must move to AL2023 (nodeadm user data) or Bottlerocket first",
            version=version,
        )
    return AL2_PARAMETER.format(version=version, flavour=flavour)


def al2_image_version(image_name: str) -> tuple[str, str] | None:
    """``amazon-eks-node-1.23-v20240522`` -> ``("amazon-linux-2", "1.23")``; None for other images."""
    for flavour, prefix in AL2_IMAGE_NAME_PREFIX.items():
        if image_name.startswith(prefix):
            version = image_name.removeprefix(prefix).split("-v", 1)[0]
            if _VERSION_RE.match(version):
                return flavour, version
    return None


# -- kubelet skew -----------------------------------------------------------------------------------
def max_kubelet_skew(api_server: KubeVersion, kubelet: KubeVersion) -> int:
    """Minor versions a kubelet may trail the API server by (Kubernetes version skew policy).

    From 1.28 a kubelet may be up to three minors older, but a kubelet older than 1.25 only two;
    before 1.28 the window was two.
    """
    if api_server >= KubeVersion(1, 28) and kubelet >= KubeVersion(1, 25):
        return 3
    return 2


def kubelet_minor(kubelet_version: str) -> str | None:
    """``v1.24.17-eks-8cb36c9`` -> ``1.24``."""
    match = re.match(r"^v?(\d+)\.(\d+)\.", kubelet_version or "")
    return f"{match[1]}.{match[2]}" if match else None


# -- add-ons ----------------------------------------------------------------------------------------
# EKS-managed add-ons we update after the control plane, in this order (the CNI first, as the EKS
# user guide does). Any other managed add-on installed on the cluster follows, alphabetically.
ADDON_ORDER: tuple[str, ...] = ("vpc-cni", "kube-proxy", "coredns")
# Add-ons that may move only one minor version per update (the Amazon VPC CNI's documented rule).
ONE_MINOR_AT_A_TIME: frozenset[str] = frozenset({"vpc-cni"})
# resolveConflicts on UpdateAddon: PRESERVE keeps the configuration a user set on the add-on's objects.
DEFAULT_RESOLVE_CONFLICTS = "PRESERVE"
# The Kubernetes objects behind each core add-on, to find self-managed installs (no EKS add-on).
CORE_ADDON_OBJECTS: dict[str, tuple[str, str]] = {
    "vpc-cni": ("DaemonSet", "aws-node"),
    "kube-proxy": ("DaemonSet", "kube-proxy"),
    "coredns": ("Deployment", "coredns"),
}


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
# replacementReadyTimeoutSeconds (this is its default). Polls every 30 s: these lifecycles spread over
# two minutes, so a shorter poll mostly buys invocations (bench-cluster: 9 fewer per cluster than at 20 s,
# for about 2 s more detection latency per operation; docs/benchmarks.md).
NODEGROUP_CREATE = OperationTiming(first_wait_seconds=180, poll_seconds=30, max_wait_seconds=1800)
NODEGROUP_DELETE = OperationTiming(first_wait_seconds=120, poll_seconds=30, max_wait_seconds=1800)
# Drain: an evicted pod's replacement is usually Ready 10 to 30 s later; a budget that says no is asked
# again with backoff (10 s doubling, at most 60 s). The cap is the input's nodeTimeoutSeconds.
DRAIN = OperationTiming(first_wait_seconds=15, poll_seconds=10, max_wait_seconds=900)
DRAIN_MAX_BACKOFF_SECONDS = 60
# Once evicted pods' replacements are overdue, how often the drain looks again at first (the expected start
# time itself comes from DRAIN before any observation, then from the drain's own waves); the longer they are
# overdue, the longer the wait (as long as they are overdue, at most DRAIN_MAX_BACKOFF_SECONDS): replacements
# that do not come (no capacity) cost a few rounds an hour, not one every 5 s.
DRAIN_PACING_POLL_SECONDS = 5
# Observed: an EKS add-on update is ACTIVE again in 1 to 3 minutes.
ADDON_UPDATE = OperationTiming(first_wait_seconds=60, poll_seconds=20, max_wait_seconds=1800)
# A managed node group version update replaces its nodes maxUnavailable at a time: about 4 to 6 minutes
# per round (launch, join, drain); the cap is per node group.
NODEGROUP_UPDATE_ROUND_SECONDS = 240
NODEGROUP_UPDATE = OperationTiming(first_wait_seconds=240, poll_seconds=30, max_wait_seconds=7200)
# After the last change, workloads get this long to reach their desired replicas before the
# post-upgrade verification fails the cluster.
VERIFY_SETTLE = OperationTiming(first_wait_seconds=0, poll_seconds=30, max_wait_seconds=600)
# Kubernetes 1.24 removed dockershim: from there on nodes run containerd without being asked to.
DOCKERSHIM_REMOVED = KubeVersion(1, 24)
