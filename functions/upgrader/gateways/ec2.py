"""EC2 behind a small interface: the facts the readiness scan reads about a cluster's network and its
node groups' launch templates. The domain talks to :class:`Ec2Gateway`; tests use the fake in
tests/fakes.py, and tests/integration/test_ec2_contract.py proves the two agree."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from upgrader.errors import AwsResourceNotFound
from upgrader.gateways.aws import AlreadyExists, aws_errors, json_safe, translate_client_error

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

# EC2 error codes meaning "no such subnet / launch template (version)".
NOT_FOUND_CODES = frozenset(
    {
        "InvalidSubnetID.NotFound",
        "InvalidLaunchTemplateId.NotFound",
        "InvalidLaunchTemplateName.NotFoundException",
        "InvalidLaunchTemplateId.VersionNotFound",
        "InvalidLaunchTemplateName.VersionNotFound",
    }
)


class Ec2Gateway(Protocol):
    def describe_subnets(self, subnet_ids: Sequence[str]) -> list[dict[str, Any]]:
        """DescribeSubnets' ``Subnets`` (``SubnetId``, ``AvailableIpAddressCount``...) for these ids.
        A subnet that does not exist raises AwsResourceNotFound."""
        ...

    def launch_template_user_data(
        self, *, template_id: str | None, template_name: str | None, version: str | None
    ) -> str | None:
        """The user data of one launch template version as text (base64 decoded), None when it has
        none. ``version`` is a number, ``$Latest`` or ``$Default`` (None: the default version). A template
        or version that does not exist raises AwsResourceNotFound."""
        ...


def decode_user_data(value: str) -> str:
    """Launch templates hold user data base64-encoded; anything that is not base64 is kept as it is."""
    try:
        return base64.b64decode("".join(value.split()), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return value


@dataclass(frozen=True)
class LaunchTemplateInfo:
    id: str
    name: str
    latest_version: str
    tags: Mapping[str, str] = field(default_factory=dict)


class LaunchTemplateGateway(Protocol):
    def launch_template_data(self, template_id: str, version: str) -> dict[str, Any]: ...

    def find_launch_template(self, name: str) -> LaunchTemplateInfo | None: ...

    def create_launch_template(
        self, name: str, data: Mapping[str, Any], tags: Mapping[str, str], client_token: str
    ) -> LaunchTemplateInfo: ...


class NodeImageGateway(Protocol):
    """Launch template versions and AMI facts for updating custom-AMI node groups in place."""

    def image_name(self, image_id: str) -> str | None:
        """DescribeImages' ``Name`` of an AMI (None when the account cannot see it)."""
        ...

    def find_template_version(self, template_id: str, image_id: str) -> str | None:
        """The newest version of the template whose ImageId is ``image_id`` (None when none is)."""
        ...

    def create_template_version(
        self, template_id: str, source_version: str, image_id: str, client_token: str
    ) -> str:
        """A new version of the template: ``source_version`` with ``ImageId`` replaced; returns its number."""
        ...


class Ec2Facts(Ec2Gateway, LaunchTemplateGateway, NodeImageGateway, Protocol):
    """Everything the version step reads and writes in EC2 (BotoEc2Gateway implements it all)."""


# Fields of a launch template version a managed node group's template may not carry.
_NOT_COPIED = frozenset({"IamInstanceProfile"})  # EKS sets the instance profile from the node role


class BotoEc2Gateway:
    def __init__(self, client: EC2Client) -> None:
        self._client = client

    def _call(self, operation: str, resource: tuple[str, str], **kwargs: Any) -> dict[str, Any]:
        method = getattr(self._client, operation)
        with aws_errors(f"ec2:{operation}"):
            try:
                return method(**kwargs)  # type: ignore[no-any-return]
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code in NOT_FOUND_CODES:
                    kind, name = resource
                    raise AwsResourceNotFound(
                        f"ec2:{operation}: {kind} {name} not found",
                        resourceType=kind,
                        resourceName=name,
                        awsErrorCode=code,
                    ) from error
                raise translate_client_error(error, f"ec2:{operation}") from error

    def describe_subnets(self, subnet_ids: Sequence[str]) -> list[dict[str, Any]]:
        if not subnet_ids:
            return []
        subnets: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"SubnetIds": list(subnet_ids)}
        while True:
            page = self._call("describe_subnets", ("subnet", ",".join(subnet_ids)), **kwargs)
            subnets.extend(json_safe(subnet) for subnet in page.get("Subnets", []))
            token = page.get("NextToken")
            if not token:
                return subnets
            kwargs["NextToken"] = token

    def launch_template_user_data(
        self, *, template_id: str | None, template_name: str | None, version: str | None
    ) -> str | None:
        version = version or "$Default"
        if template_id:
            data = self._version_data(template_id, version, LaunchTemplateId=template_id)
        elif template_name:
            data = self._version_data(template_name, version, LaunchTemplateName=template_name)
        else:
            raise ValueError("a launch template is named by its id or its name")
        name = template_id or template_name
        if data is None:
            raise AwsResourceNotFound(
                f"ec2:describe_launch_template_versions: version {version} of {name} not found",
                resourceType="launch template",
                resourceName=name,
            )
        user_data = data.get("UserData")
        return decode_user_data(user_data) if user_data else None

    def _version_data(self, name: str, version: str, **template: str) -> dict[str, Any] | None:
        """``LaunchTemplateData`` of one version of the template (by id or name); None when EC2 lists no
        such version."""
        found = self._call(
            "describe_launch_template_versions", ("launch template", name), Versions=[version], **template
        )
        versions = found.get("LaunchTemplateVersions", [])
        return dict(versions[0].get("LaunchTemplateData") or {}) if versions else None

    # -- node group migration: launch templates ------------------------------------------------------
    def launch_template_data(self, template_id: str, version: str) -> dict[str, Any]:
        data = self._version_data(template_id, version, LaunchTemplateId=template_id) or {}
        return {k: v for k, v in data.items() if k not in _NOT_COPIED}

    def find_launch_template(self, name: str) -> LaunchTemplateInfo | None:
        try:
            found = self._call(
                "describe_launch_templates", ("launch template", name), LaunchTemplateNames=[name]
            )
        except AwsResourceNotFound:
            return None
        templates = found.get("LaunchTemplates", [])
        return _template_info(templates[0]) if templates else None

    def create_launch_template(
        self, name: str, data: Mapping[str, Any], tags: Mapping[str, str], client_token: str
    ) -> LaunchTemplateInfo:
        with aws_errors("ec2:CreateLaunchTemplate"):
            try:
                created = self._client.create_launch_template(
                    LaunchTemplateName=name,
                    LaunchTemplateData=dict(data),  # type: ignore[arg-type]
                    ClientToken=client_token,
                    TagSpecifications=[
                        {
                            "ResourceType": "launch-template",
                            "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
                        }
                    ],
                )["LaunchTemplate"]
            except ClientError as error:
                if (
                    error.response.get("Error", {}).get("Code")
                    == "InvalidLaunchTemplateName.AlreadyExistsException"
                ):
                    raise AlreadyExists(f"launch template {name}") from error
                raise translate_client_error(error, "ec2:CreateLaunchTemplate") from error
        info = _template_info(created)  # type: ignore[arg-type]
        # CreateLaunchTemplate's answer omits the tags it was given.
        return info if info.tags else LaunchTemplateInfo(info.id, info.name, info.latest_version, dict(tags))

    # -- node versions: custom AMIs ----------------------------------------------------------------------
    def image_name(self, image_id: str) -> str | None:
        try:
            images = self._call("describe_images", ("image", image_id), ImageIds=[image_id]).get("Images", [])
        except AwsResourceNotFound:
            return None
        if not images:
            return None
        return str(images[0].get("Name") or "") or None

    def find_template_version(self, template_id: str, image_id: str) -> str | None:
        kwargs: dict[str, Any] = {
            "LaunchTemplateId": template_id,
            "Filters": [{"Name": "image-id", "Values": [image_id]}],
        }
        numbers: list[int] = []
        while True:
            page = self._call("describe_launch_template_versions", ("launch template", template_id), **kwargs)
            numbers += [
                int(v["VersionNumber"])
                for v in page.get("LaunchTemplateVersions", [])
                # moto ignores the filter; EC2 honours it: check the image either way.
                if (v.get("LaunchTemplateData") or {}).get("ImageId") == image_id
            ]
            token = page.get("NextToken")
            if not token:
                return str(max(numbers)) if numbers else None
            kwargs["NextToken"] = token

    def create_template_version(
        self, template_id: str, source_version: str, image_id: str, client_token: str
    ) -> str:
        created = self._call(
            "create_launch_template_version",
            ("launch template", template_id),
            LaunchTemplateId=template_id,
            SourceVersion=source_version,
            LaunchTemplateData={"ImageId": image_id},
            ClientToken=client_token,
            VersionDescription=f"EKS-optimized AMI {image_id} (eks-fleet-upgrader)",
        )
        return str(created["LaunchTemplateVersion"]["VersionNumber"])


def _template_info(raw: Mapping[str, Any]) -> LaunchTemplateInfo:
    return LaunchTemplateInfo(
        id=raw["LaunchTemplateId"],
        name=raw["LaunchTemplateName"],
        latest_version=str(raw.get("LatestVersionNumber", 1)),
        tags={t["Key"]: t["Value"] for t in raw.get("Tags") or []},
    )
