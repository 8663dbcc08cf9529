"""Scenario files: a YAML description of a simulated fleet, validated with clear errors.

The format is documented in docs/scenarios.md. It grows with the simulator; unknown keys are
rejected so a typo never silently changes a scenario.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or invalid; the message names the file and field."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ClusterSpec(_Model):
    name: str = Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    version: str = Field(pattern=r"^1\.\d{2}$")
    free_ips: int = Field(default=250, ge=0, description="free IP addresses in the cluster's subnets")
    subnets: int = Field(default=3, ge=2, le=16)
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

    @model_validator(mode="after")
    def _known_service(self) -> ThrottleSpec:
        from simulator.faults import event_service_name

        event_service_name(self.service)  # raises ValueError naming the service
        return self


class FailUpdateSpec(_Model):
    cluster: str
    error_code: str = "Unknown"


class FaultsSpec(_Model):
    throttle: list[ThrottleSpec] = Field(default_factory=list)
    fail_control_plane_update: list[FailUpdateSpec] = Field(default_factory=list)


class TimingsSpec(_Model):
    control_plane_update_seconds: float = Field(default=480.0, gt=0)


class UpgradeSpec(_Model):
    to_version: str = Field(pattern=r"^1\.\d{2}$")


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
