"""What EKS publishes per Kubernetes version, as data: node AMIs, kubelet builds, add-on versions.

Everything here is deterministic (no clock, no randomness) and covers Kubernetes 1.23 to 1.30,
modelled on the EKS-optimized AMI release of May 2024 (``v20240522``) and the add-on versions EKS
listed at that time. The simulator (``simulator/eks.py``) reads it; scenarios can point at it to
know which versions exist.

- AMIs: :func:`ami_id` gives each (region, Kubernetes version, AMI flavour) a stable ``ami-`` id;
  :func:`public_parameters` lists the SSM public parameters EKS publishes for them
  (``/aws/service/eks/optimized-ami/<version>/...``); :func:`find_ami` maps an id back.
- Nodes: :func:`kubelet_version` (``v1.23.17-eks-a59e1f0``), :func:`release_version`
  (``1.23.17-20240522``), :func:`container_runtime` (the 1.23 Docker rule), :func:`pods_per_node`
  (the ENI-based max pods of an instance type).
- Add-ons: :data:`ADDONS` (vpc-cni, coredns, kube-proxy) with the cluster versions each add-on
  version is compatible with and the default version per cluster version.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

KUBERNETES_VERSIONS: tuple[str, ...] = ("1.23", "1.24", "1.25", "1.26", "1.27", "1.28", "1.29", "1.30")

AMI_BUILD_DATE = "20240522"  # the EKS-optimized AMI release every version's "recommended" points at
EKS_AMI_OWNER = "602401143452"  # the AWS account that publishes EKS-optimized AMIs

# Kubernetes version -> (kubelet patch version, EKS build hash) of the AMI release above.
KUBELET_BUILDS: dict[str, tuple[str, str]] = {
    "1.23": ("1.23.17", "a59e1f0"),
    "1.24": ("1.24.17", "8cb36c9"),
    "1.25": ("1.25.16", "8cb36c9"),
    "1.26": ("1.26.15", "1552ad0"),
    "1.27": ("1.27.12", "ae9a62a"),
    "1.28": ("1.28.8", "ae9a62a"),
    "1.29": ("1.29.3", "ae9a62a"),
    "1.30": ("1.30.0", "036c24b"),
}
BOTTLEROCKET_RELEASE = "1.20.0-fcf71a47"

DOCKER_RUNTIME = "docker://20.10.25"
CONTAINERD_RUNTIME = "containerd://1.6.19"


def minor(version: str) -> tuple[int, int]:
    """``"1.23"`` (or ``"1.23.17"``) -> ``(1, 23)``, for comparisons."""
    major, minor_, *_ = version.split(".")
    return int(major), int(minor_)


def next_minor(version: str) -> str:
    major, minor_ = minor(version)
    return f"{major}.{minor_ + 1}"


def _patch(version: str) -> str:
    """The kubelet patch version of a minor; versions outside the catalog get ``.0``."""
    return KUBELET_BUILDS.get(version, (f"{version}.0", "0000000"))[0]


def kubelet_version(version: str) -> str:
    patch, build = KUBELET_BUILDS.get(version, (f"{version}.0", "0000000"))
    return f"v{patch}-eks-{build}"


# -- AMIs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AmiFlavor:
    """How EKS builds nodes for an ``amiType``."""

    os: str  # "al2" | "al2023" | "bottlerocket" | "windows"
    architecture: str  # "x86_64" | "arm64"
    ssm_path: str | None  # the segment after /aws/service/eks/optimized-ami/<version>/, if published
    image_name: str  # the AMI name pattern, {version} and {date} filled in


AMI_FLAVORS: dict[str, AmiFlavor] = {
    "AL2_x86_64": AmiFlavor("al2", "x86_64", "amazon-linux-2", "amazon-eks-node-{version}-v{date}"),
    "AL2_ARM_64": AmiFlavor(
        "al2", "arm64", "amazon-linux-2-arm64", "amazon-eks-arm64-node-{version}-v{date}"
    ),
    "AL2_x86_64_GPU": AmiFlavor(
        "al2", "x86_64", "amazon-linux-2-gpu", "amazon-eks-gpu-node-{version}-v{date}"
    ),
    "AL2023_x86_64_STANDARD": AmiFlavor(
        "al2023",
        "x86_64",
        "amazon-linux-2023/x86_64/standard",
        "amazon-eks-node-al2023-x86_64-standard-{version}-v{date}",
    ),
    "AL2023_ARM_64_STANDARD": AmiFlavor(
        "al2023",
        "arm64",
        "amazon-linux-2023/arm64/standard",
        "amazon-eks-node-al2023-arm64-standard-{version}-v{date}",
    ),
    "BOTTLEROCKET_x86_64": AmiFlavor("bottlerocket", "x86_64", None, "bottlerocket-aws-k8s-{version}-x86_64"),
    "BOTTLEROCKET_ARM_64": AmiFlavor("bottlerocket", "arm64", None, "bottlerocket-aws-k8s-{version}-aarch64"),
    "WINDOWS_CORE_2019_x86_64": AmiFlavor(
        "windows", "x86_64", None, "Windows_Server-2019-English-Core-EKS_Optimized-{version}"
    ),
    "WINDOWS_FULL_2019_x86_64": AmiFlavor(
        "windows", "x86_64", None, "Windows_Server-2019-English-Full-EKS_Optimized-{version}"
    ),
    "WINDOWS_CORE_2022_x86_64": AmiFlavor(
        "windows", "x86_64", None, "Windows_Server-2022-English-Core-EKS_Optimized-{version}"
    ),
    "WINDOWS_FULL_2022_x86_64": AmiFlavor(
        "windows", "x86_64", None, "Windows_Server-2022-English-Full-EKS_Optimized-{version}"
    ),
}
SSM_AMI_PREFIX = "/aws/service/eks/optimized-ami/"


def flavor(ami_type: str) -> AmiFlavor:
    """The flavour of an ``amiType``; other types EKS has (NVIDIA, FIPS...) map to their OS family."""
    if ami_type in AMI_FLAVORS:
        return AMI_FLAVORS[ami_type]
    arch = "arm64" if "ARM" in ami_type else "x86_64"
    if ami_type.startswith("BOTTLEROCKET"):
        return AmiFlavor("bottlerocket", arch, None, "bottlerocket-aws-k8s-{version}-" + arch)
    if ami_type.startswith("WINDOWS"):
        return AmiFlavor("windows", "x86_64", None, ami_type + "-{version}")
    if ami_type.startswith("AL2023"):
        return AmiFlavor("al2023", arch, None, "amazon-eks-node-al2023-{version}-v{date}")
    return AMI_FLAVORS["AL2_x86_64"]


def ami_id(region: str, version: str, ami_type: str) -> str:
    """The id of the EKS-optimized AMI of a flavour in a region (stable; like ``ami-0c2d3f0a1b2c3d4e5``)."""
    digest = hashlib.sha256(f"eks-optimized-ami/{region}/{version}/{ami_type}".encode()).hexdigest()
    return "ami-0" + digest[:16]


def ami_name(version: str, ami_type: str) -> str:
    return flavor(ami_type).image_name.format(version=version, date=AMI_BUILD_DATE)


def release_version(version: str, ami_type: str) -> str:
    """The AMI release version EKS reports for a managed node group (``1.23.17-20240522``)."""
    if flavor(ami_type).os == "bottlerocket":
        return BOTTLEROCKET_RELEASE
    return f"{_patch(version)}-{AMI_BUILD_DATE}"


def public_parameters(region: str) -> dict[str, str]:
    """The SSM public parameters EKS publishes for its AMIs, name -> value, in one region."""
    params: dict[str, str] = {}
    for version in KUBERNETES_VERSIONS:
        for ami_type, fl in AMI_FLAVORS.items():
            if fl.ssm_path is None:
                continue
            base = f"{SSM_AMI_PREFIX}{version}/{fl.ssm_path}/recommended"
            params[f"{base}/image_id"] = ami_id(region, version, ami_type)
            params[f"{base}/image_name"] = ami_name(version, ami_type)
            params[f"{base}/release_version"] = release_version(version, ami_type)
    return params


def published_amis(region: str) -> list[tuple[str, str, str]]:
    """Every AMI the catalog knows in a region: (ami id, Kubernetes version, amiType)."""
    return [
        (ami_id(region, version, ami_type), version, ami_type)
        for version in KUBERNETES_VERSIONS
        for ami_type in AMI_FLAVORS
    ]


def find_ami(region: str, image_id: str) -> tuple[str, str] | None:
    """(Kubernetes version, amiType) of an EKS-optimized AMI id of this catalog, or None."""
    for known, version, ami_type in published_amis(region):
        if known == image_id:
            return version, ami_type
    return None


# -- nodes ----------------------------------------------------------------------------------------

_BOOTSTRAP_CONTAINERD = re.compile(r"/etc/eks/bootstrap\.sh\b[^\n]*--container-runtime[ =]+containerd\b")


def container_runtime(version: str, ami_type: str, user_data: str | None = None) -> str:
    """The runtime a node reports: Docker on Kubernetes <= 1.23 with an Amazon Linux 2 AMI unless its
    user data runs ``/etc/eks/bootstrap.sh ... --container-runtime containerd``; containerd otherwise
    (1.24+, AL2023, Bottlerocket, Windows)."""
    if flavor(ami_type).os != "al2" or minor(version) >= (1, 24):
        return CONTAINERD_RUNTIME
    if user_data and _BOOTSTRAP_CONTAINERD.search(user_data):
        return CONTAINERD_RUNTIME
    return DOCKER_RUNTIME


# ENI-based max pods (the EKS-optimized AMIs' eni-max-pods.txt; managed node groups cap at 110 below
# 30 vCPUs). Unknown types get 29, the value of the most common (large) size.
PODS_PER_NODE: dict[str, int] = {
    "t3.small": 11,
    "t3.medium": 17,
    "t3.large": 35,
    "t3.xlarge": 58,
    "t3.2xlarge": 58,
    "m5.large": 29,
    "m5.xlarge": 58,
    "m5.2xlarge": 58,
    "m5.4xlarge": 110,
    "m6i.large": 29,
    "m6i.xlarge": 58,
    "m6g.large": 29,
    "m6g.xlarge": 58,
    "m7g.large": 29,
    "c5.large": 29,
    "c5.xlarge": 58,
    "c5.2xlarge": 58,
    "r5.large": 29,
    "r5.xlarge": 58,
}
DEFAULT_PODS_PER_NODE = 29


def pods_per_node(instance_type: str) -> int:
    return PODS_PER_NODE.get(instance_type, DEFAULT_PODS_PER_NODE)


# -- add-ons --------------------------------------------------------------------------------------


def _range(first: str, last: str) -> tuple[str, ...]:
    return tuple(v for v in KUBERNETES_VERSIONS if minor(first) <= minor(v) <= minor(last))


@dataclass(frozen=True)
class AddonVersion:
    version: str
    cluster_versions: tuple[str, ...]  # the Kubernetes versions it is compatible with
    default_for: tuple[str, ...] = ()  # the cluster versions where it is EKS's default


@dataclass(frozen=True)
class AddonSpec:
    name: str
    type: str
    requires_iam_permissions: bool
    versions: tuple[AddonVersion, ...]  # newest first, as DescribeAddonVersions lists them
    conflicts: tuple[str, ...]  # what EKS names when fields edited in the cluster conflict

    def version(self, version: str) -> AddonVersion | None:
        return next((v for v in self.versions if v.version == version), None)


_KUBE_PROXY = {  # cluster version -> (latest build, EKS's default build)
    "1.23": ("v1.23.17-eksbuild.9", "v1.23.16-eksbuild.2"),
    "1.24": ("v1.24.17-eksbuild.8", "v1.24.10-eksbuild.2"),
    "1.25": ("v1.25.16-eksbuild.8", "v1.25.11-eksbuild.2"),
    "1.26": ("v1.26.15-eksbuild.5", "v1.26.9-eksbuild.2"),
    "1.27": ("v1.27.12-eksbuild.5", "v1.27.6-eksbuild.2"),
    "1.28": ("v1.28.8-eksbuild.5", "v1.28.2-eksbuild.2"),
    "1.29": ("v1.29.3-eksbuild.5", "v1.29.0-eksbuild.1"),
    "1.30": ("v1.30.0-eksbuild.3", "v1.30.0-eksbuild.2"),
}

ADDONS: dict[str, AddonSpec] = {
    "vpc-cni": AddonSpec(
        name="vpc-cni",
        type="networking",
        requires_iam_permissions=True,
        versions=(
            AddonVersion("v1.18.1-eksbuild.3", _range("1.23", "1.30"), ("1.30",)),
            AddonVersion("v1.17.1-eksbuild.1", _range("1.23", "1.30")),
            AddonVersion("v1.16.4-eksbuild.2", _range("1.23", "1.29"), ("1.29",)),
            AddonVersion("v1.15.5-eksbuild.1", _range("1.23", "1.29"), ("1.28",)),
            AddonVersion("v1.14.1-eksbuild.1", _range("1.23", "1.28"), ("1.26", "1.27")),
            AddonVersion("v1.13.4-eksbuild.1", _range("1.23", "1.27")),
            AddonVersion("v1.12.6-eksbuild.2", _range("1.23", "1.27"), ("1.23", "1.24", "1.25")),
        ),
        conflicts=('DaemonSet.apps aws-node - .spec.template.spec.containers[name="aws-node"].env',),
    ),
    "coredns": AddonSpec(
        name="coredns",
        type="networking",
        requires_iam_permissions=False,
        versions=(
            AddonVersion("v1.11.1-eksbuild.9", _range("1.27", "1.30")),
            AddonVersion("v1.11.1-eksbuild.4", _range("1.27", "1.30"), ("1.29", "1.30")),
            AddonVersion("v1.10.1-eksbuild.11", _range("1.26", "1.29")),
            AddonVersion("v1.10.1-eksbuild.4", _range("1.26", "1.29"), ("1.27", "1.28")),
            AddonVersion("v1.9.3-eksbuild.15", _range("1.23", "1.26")),
            AddonVersion("v1.9.3-eksbuild.3", _range("1.23", "1.26"), ("1.24", "1.25", "1.26")),
            AddonVersion("v1.8.7-eksbuild.10", ("1.23",)),
            AddonVersion("v1.8.7-eksbuild.4", ("1.23",), ("1.23",)),
        ),
        conflicts=("ConfigMap coredns - .data.Corefile",),
    ),
    "kube-proxy": AddonSpec(
        name="kube-proxy",
        type="networking",
        requires_iam_permissions=False,
        versions=tuple(
            AddonVersion(build, (cluster,), (cluster,) if build == _KUBE_PROXY[cluster][1] else ())
            for cluster in reversed(KUBERNETES_VERSIONS)
            for build in dict.fromkeys(_KUBE_PROXY[cluster])
        ),
        conflicts=('DaemonSet.apps kube-proxy - .spec.template.spec.containers[name="kube-proxy"].image',),
    ),
}
