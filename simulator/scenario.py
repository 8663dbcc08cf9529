"""Scenario files: a YAML description of a simulated fleet, validated with clear errors.

The format is documented in docs/scenarios.md. It grows with the simulator; unknown keys are
rejected so a typo never silently changes a scenario.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or invalid; the message names the file and field."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class TaintSpec(_Model):
    key: str
    value: str = ""
    effect: Literal["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"] = "NO_SCHEDULE"


class LaunchTemplateSpec(_Model):
    user_data: str = Field(default="", description="plain text; the simulator base64-encodes it")
    image_id: str | None = Field(default=None, description="a custom AMI (amiType becomes CUSTOM)")


class NodegroupFaultsSpec(_Model):
    nodes_never_ready: bool = Field(default=False, description="nodes join but never become Ready")
    capacity_shortage: int | None = Field(
        default=None, ge=0, description="EC2 launches only this many instances (fewer than desired)"
    )


class NodegroupSpec(_Model):
    """A managed node group (the default), a self-managed Auto Scaling group, or a Fargate profile."""

    name: str = Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,62}$")
    kind: Literal["managed", "self-managed", "fargate"] = "managed"
    ami_type: str = Field(
        default="AL2_x86_64",
        pattern=r"^(AL2_x86_64|AL2_x86_64_GPU|AL2_ARM_64|AL2023_x86_64_STANDARD|AL2023_ARM_64_STANDARD|"
        r"BOTTLEROCKET_x86_64|BOTTLEROCKET_ARM_64|WINDOWS_CORE_2019_x86_64|WINDOWS_FULL_2019_x86_64|CUSTOM)$",
    )
    launch_template: LaunchTemplateSpec | None = None
    instance_types: list[str] = Field(default_factory=lambda: ["m5.large"], min_length=1)
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    desired_size: int = Field(default=2, ge=0, le=450)
    min_size: int | None = Field(default=None, ge=0)
    max_size: int | None = Field(default=None, ge=1)
    disk_size: int = Field(default=20, ge=1)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[TaintSpec] = Field(default_factory=list)
    version: str | None = Field(default=None, pattern=r"^1\.\d{2}$", description="default: the cluster's")
    faults: NodegroupFaultsSpec = Field(default_factory=NodegroupFaultsSpec)


class AddonSpec(_Model):
    name: str
    version: str | None = Field(
        default=None, description="default: the catalog's default for the cluster version"
    )
    configuration_values: str | None = None
    self_managed: bool = Field(default=False, description="installed as plain manifests, not an EKS add-on")


class WorkloadSpec(_Model):
    """Shorthand for the common workload kinds; anything else goes in ``manifests`` verbatim."""

    kind: Literal[
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
        "ReplicationController",
        "Pod",
    ]
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    namespace: str = "default"
    replicas: int = Field(default=1, ge=0)
    image: str = "public.ecr.aws/docker/library/nginx:1.25"
    labels: dict[str, str] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    host_paths: list[str] = Field(
        default_factory=list, description="hostPath volumes, mounted at the same path"
    )
    env: dict[str, str] = Field(default_factory=dict)
    command: list[str] = Field(default_factory=list)
    init_image: str | None = None
    schedule: str = "*/5 * * * *"
    suspend: bool = False
    pdb: dict[str, int | str] | None = Field(
        default=None, description="{minAvailable: N} or {maxUnavailable: N}; N an int or a percentage"
    )

    @model_validator(mode="after")
    def _one_budget(self) -> WorkloadSpec:
        if self.pdb is not None and (
            len(self.pdb) != 1 or set(self.pdb) - {"minAvailable", "maxUnavailable"}
        ):
            raise ValueError("pdb takes exactly one of minAvailable or maxUnavailable")
        return self


class ClusterSpec(_Model):
    name: str = Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    version: str = Field(pattern=r"^1\.\d{2}$")
    free_ips: int | None = Field(
        default=None,
        ge=0,
        description="free IP addresses across the cluster's subnets (default: /24s, plenty)",
    )
    subnets: int = Field(default=3, ge=2, le=16)
    endpoint_access: Literal["public", "private", "public-and-private"] = "public"
    nodegroups: list[NodegroupSpec] = Field(default_factory=list)
    addons: list[AddonSpec] = Field(default_factory=list)
    workloads: list[WorkloadSpec] = Field(default_factory=list)
    manifests: list[dict[str, Any]] = Field(default_factory=list, description="raw Kubernetes objects")
    pods_ready_seconds: float = Field(default=15.0, ge=0)
    expect: str | None = Field(
        default=None,
        pattern="^(SUCCEEDED|FAILED|BLOCKED|SKIPPED|PLANNED)$",
        description="the outcome this scenario is built to produce (checked by `fleetctl demo`)",
    )


class AccountSpec(_Model):
    id: str = Field(pattern=r"^\d{12}$")
    name: str = ""
    clusters: list[ClusterSpec] = Field(default_factory=list)


class ThrottleSpec(_Model):
    service: str = Field(description="boto3 client name, e.g. eks, ec2, sts, autoscaling")
    operation: str | None = Field(default=None, pattern=r"^[A-Z][A-Za-z0-9]+$")
    first: int = Field(default=0, ge=0, description="throttle the first N matching calls")
    rate: float = Field(default=0.0, ge=0.0, le=0.9, description="then each call with this probability")
    error_code: str = Field(
        default="ThrottlingException",
        pattern=r"^(ThrottlingException|ResourceInUseException)$",
        description="what the refused calls get: throttling, or EKS's 'another update is running' (409)",
    )

    @model_validator(mode="after")
    def _known_service(self) -> ThrottleSpec:
        from simulator.faults import event_service_name

        event_service_name(self.service)  # raises ValueError naming the service
        return self


class FailUpdateSpec(_Model):
    cluster: str
    error_code: str = "Unknown"


class LoseResponseSpec(_Model):
    """The call succeeds in AWS but its response never arrives (the client sees a read timeout)."""

    service: str
    operation: str = Field(pattern=r"^[A-Z][A-Za-z0-9]+$")
    times: int = Field(default=1, ge=1)


class CrashStepSpec(_Model):
    """The step's Lambda dies (Runtime.ExitError) when it is about to make its Nth AWS call."""

    step: str
    at_call: int = Field(default=1, ge=1)
    times: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _known_step(self) -> CrashStepSpec:
        from upgrader.catalog import STEPS_BY_NAME

        if self.step not in STEPS_BY_NAME:
            raise ValueError(f"unknown step {self.step!r}; steps: {', '.join(sorted(STEPS_BY_NAME))}")
        return self


class AddonGapSpec(_Model):
    """The add-on catalog has no version of ``addon`` for Kubernetes ``version``."""

    addon: str
    version: str = Field(pattern=r"^1\.\d{2}$")


class FaultsSpec(_Model):
    throttle: list[ThrottleSpec] = Field(default_factory=list)
    addon_without_compatible_version: list[AddonGapSpec] = Field(default_factory=list)
    fail_control_plane_update: list[FailUpdateSpec] = Field(default_factory=list)
    lose_response: list[LoseResponseSpec] = Field(default_factory=list)
    crash_step: list[CrashStepSpec] = Field(default_factory=list)


class TimingsSpec(_Model):
    """Virtual durations of EKS lifecycles (defaults: what EKS usually takes)."""

    control_plane_update_seconds: float = Field(default=480.0, gt=0)
    nodegroup_create_seconds: float = Field(default=240.0, gt=0)
    nodegroup_delete_seconds: float = Field(default=180.0, gt=0)
    nodegroup_update_seconds: float = Field(default=300.0, gt=0)
    addon_update_seconds: float = Field(default=60.0, gt=0)


class UpgradeSpec(_Model):
    to_version: str = Field(pattern=r"^1\.\d{2}$")
    strategy: Literal["runtime-first", "version-first"] | None = Field(
        default=None, description="the execution input's strategy (default: the workflow's, runtime-first)"
    )
    addons: dict[str, Any] | None = Field(default=None, description="the execution input's addons options")
    nodegroup_migration: dict[str, Any] | None = Field(
        default=None,
        description="the execution input's nodegroupMigration options (docs/nodegroup-migration.md), "
        "given to every cluster; checked by the workflow's input schema",
    )


class FleetSpec(_Model):
    """How ``fleetctl demo`` runs the scenario through the fleet workflow: the fleet input's ``canary``,
    ``waves`` and options (docs/fleet.md), checked by the workflow's own schema (ValidateFleetInput)."""

    execution_name: str = Field(
        default="", pattern=r"^[A-Za-z0-9_-]{0,80}$", description="default: <scenario>-fleet"
    )
    canary: dict[str, Any] | None = None
    waves: list[dict[str, Any]] = Field(default_factory=list)
    outside_window: Literal["wait", "skip"] | None = None
    lock_lease_seconds: int | None = Field(default=None, ge=900, le=604800)

    def input_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"waves": [dict(w) for w in self.waves]}
        if self.canary is not None:
            fields["canary"] = dict(self.canary)
        if self.outside_window:
            fields["outsideWindow"] = self.outside_window
        if self.lock_lease_seconds:
            fields["lockLeaseSeconds"] = self.lock_lease_seconds
        return fields


class Scenario(_Model):
    name: str
    description: str = ""
    external_id: str = Field(default="sim-external-id", min_length=2)
    target_role_name: str = "eks-fleet-upgrader-target"
    upgrade: UpgradeSpec
    accounts: list[AccountSpec] = Field(min_length=1)
    timings: TimingsSpec = Field(default_factory=TimingsSpec)
    faults: FaultsSpec = Field(default_factory=FaultsSpec)
    poll_strategy: str = Field(default="adaptive", pattern="^(adaptive|fixed)$")
    fleet: FleetSpec | None = Field(
        default=None, description="waves for `fleetctl demo` (the fleet workflow)"
    )

    @model_validator(mode="after")
    def _unique_clusters(self) -> Scenario:
        seen: set[tuple[str, str, str]] = set()
        names = set()
        for account in self.accounts:
            for cluster in account.clusters:
                key = (account.id, cluster.region, cluster.name)
                if key in seen:
                    raise ValueError(f"cluster {cluster.name} appears twice in account {account.id}")
                seen.add(key)
                names.add(cluster.name)
        for fault in self.faults.fail_control_plane_update:
            if fault.cluster not in names:
                raise ValueError(f"faults.failControlPlaneUpdate names unknown cluster {fault.cluster}")
        return self

    def clusters(self) -> list[tuple[AccountSpec, ClusterSpec]]:
        return [(account, cluster) for account in self.accounts for cluster in account.clusters]


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read scenario ({error.strerror})") from error
    except UnicodeDecodeError as error:
        raise ScenarioError(f"{path}: not a UTF-8 text file ({error.reason})") from error
    except yaml.YAMLError as error:
        raise ScenarioError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping at the top level")
    try:
        return Scenario.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors()
        )
        raise ScenarioError(f"{path}: invalid scenario: {problems}") from error
