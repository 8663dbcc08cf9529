"""EKS add-ons in the moto EKS extension (simulator/eks.py): the version catalog, the add-on lifecycle
on the virtual clock, resolveConflicts, and the add-on compatibility insight.

moto runs once per module; each test makes its own cluster (unique names) and opens the extension
with a fresh virtual clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from simulator import eks_catalog as catalog
from simulator.clock import VirtualClock
from simulator.eks import ADDON_COMPATIBILITY_INSIGHT, EksSimulation, EksTimings, eks_extension

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
TIMINGS = EksTimings()


@pytest.fixture
def sim(subnets: list[str]) -> Iterator[EksSimulation]:
    with eks_extension(EksSimulation(VirtualClock(), TIMINGS)) as s:
        yield s


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _addon(eks: Any, cluster: str, name: str) -> dict[str, Any]:
    return eks.describe_addon(clusterName=cluster, addonName=name)["addon"]


def _installed(sim: EksSimulation, eks: Any, cluster: str, name: str, **kwargs: Any) -> dict[str, Any]:
    eks.create_addon(clusterName=cluster, addonName=name, **kwargs)
    sim.clock.sleep(TIMINGS.addon_create)
    addon = _addon(eks, cluster, name)
    assert addon["status"] == "ACTIVE"
    return addon


# -- DescribeAddonVersions ----------------------------------------------------------------------


def test_addon_versions_filtered_by_name_and_kubernetes_version(sim, eks):
    # Given the catalog
    # When kube-proxy's versions for Kubernetes 1.24 are asked for
    [addon] = eks.describe_addon_versions(addonName="kube-proxy", kubernetesVersion="1.24")["addons"]

    # Then only the 1.24 builds come back, newest first, in EKS's shape, exactly one of them the default
    assert (addon["addonName"], addon["type"], addon["owner"]) == ("kube-proxy", "networking", "aws")
    assert [v["addonVersion"] for v in addon["addonVersions"]] == [
        "v1.24.17-eksbuild.8",
        "v1.24.10-eksbuild.2",
    ]
    compatibilities = [c for v in addon["addonVersions"] for c in v["compatibilities"]]
    assert {c["clusterVersion"] for c in compatibilities} == {"1.24"}
    defaults = [
        v["addonVersion"] for v in addon["addonVersions"] if v["compatibilities"][0]["defaultVersion"]
    ]
    assert defaults == ["v1.24.10-eksbuild.2"]


def test_every_catalog_version_has_one_default_per_core_addon(sim, eks):
    # Given the catalog, for each Kubernetes version it covers
    for version in catalog.KUBERNETES_VERSIONS:
        # When the add-on versions for it are listed
        addons = eks.describe_addon_versions(kubernetesVersion=version)["addons"]

        # Then vpc-cni, coredns and kube-proxy each have exactly one default version
        assert sorted(a["addonName"] for a in addons) == ["coredns", "kube-proxy", "vpc-cni"], version
        for addon in addons:
            defaults = [
                v for v in addon["addonVersions"] for c in v["compatibilities"] if c["defaultVersion"]
            ]
            assert len(defaults) == 1, (version, addon["addonName"])


def test_coredns_versions_span_the_catalog(sim, eks):
    # Given the catalog
    # When coredns's versions for 1.23 and 1.24 are asked for
    for_123 = eks.describe_addon_versions(addonName="coredns", kubernetesVersion="1.23")["addons"][0]
    for_124 = eks.describe_addon_versions(addonName="coredns", kubernetesVersion="1.24")["addons"][0]

    # Then 1.23 defaults to v1.8.7-eksbuild.4 and 1.24 to v1.9.3-eksbuild.3; 1.8.7 is not for 1.24
    def default(addon: dict[str, Any]) -> str:
        return next(
            v["addonVersion"] for v in addon["addonVersions"] if v["compatibilities"][0]["defaultVersion"]
        )

    assert (default(for_123), default(for_124)) == ("v1.8.7-eksbuild.4", "v1.9.3-eksbuild.3")
    assert not any(v["addonVersion"].startswith("v1.8.7") for v in for_124["addonVersions"])


def test_a_catalog_without_a_version_for_the_target_is_expressible(sim, eks):
    # Given a catalog where coredns has no version for Kubernetes 1.24
    sim.addon_without_compatible_version.add(("coredns", "1.24"))

    # When coredns's versions for 1.24, and for 1.23, are asked for
    for_124 = eks.describe_addon_versions(addonName="coredns", kubernetesVersion="1.24")["addons"]
    for_123 = eks.describe_addon_versions(addonName="coredns", kubernetesVersion="1.23")["addons"]

    # Then there is none for 1.24 (other versions are untouched)
    assert for_124 == []
    assert len(for_123[0]["addonVersions"]) >= 2


# -- the add-on lifecycle -----------------------------------------------------------------------


def test_a_new_addon_is_creating_then_active_on_the_default_version(sim, eks, make_cluster):
    # Given a 1.23 cluster
    cluster = make_cluster("1.23")

    # When coredns is created without a version
    created = eks.create_addon(clusterName=cluster, addonName="coredns")["addon"]

    # Then it is CREATING on the catalog's default for 1.23 until its create time has passed
    assert (created["status"], created["addonVersion"]) == ("CREATING", "v1.8.7-eksbuild.4")
    sim.clock.sleep(TIMINGS.addon_create - 1)
    assert _addon(eks, cluster, "coredns")["status"] == "CREATING"
    sim.clock.sleep(1)
    assert _addon(eks, cluster, "coredns")["status"] == "ACTIVE"
    assert eks.list_addons(clusterName=cluster)["addons"] == ["coredns"]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        (
            {"addonName": "kube-proxy", "addonVersion": "v1.24.10-eksbuild.2"},
            ("InvalidParameterException", 400),
        ),
        ({"addonName": "not-an-addon"}, ("InvalidParameterException", 400)),
        ({"addonName": "coredns", "resolveConflicts": "PRESERVE"}, ("InvalidParameterException", 400)),
    ],
)
def test_create_addon_refuses_incompatible_unknown_or_preserve(sim, eks, make_cluster, kwargs, code):
    # Given a 1.23 cluster
    cluster = make_cluster("1.23")

    # When an add-on of another Kubernetes version, an unknown add-on, or PRESERVE on create is asked for
    with pytest.raises(ClientError) as excinfo:
        eks.create_addon(clusterName=cluster, **kwargs)

    # Then EKS refuses and nothing is installed
    assert _error(excinfo) == code
    assert eks.list_addons(clusterName=cluster)["addons"] == []


def test_create_addon_is_idempotent_on_its_token_only(sim, eks, make_cluster):
    # Given vpc-cni created with a token
    cluster = make_cluster()
    first = eks.create_addon(clusterName=cluster, addonName="vpc-cni", clientRequestToken="a-1")["addon"]

    # When the same request is repeated, and another one is made
    again = eks.create_addon(clusterName=cluster, addonName="vpc-cni", clientRequestToken="a-1")["addon"]
    with pytest.raises(ClientError) as excinfo:
        eks.create_addon(clusterName=cluster, addonName="vpc-cni", clientRequestToken="a-2")

    # Then the repeat returns the same add-on and the other is ResourceInUseException
    assert again["addonArn"] == first["addonArn"]
    assert _error(excinfo) == ("ResourceInUseException", 409)


def test_an_addon_update_is_updating_then_active_and_listed_as_an_addon_update(sim, eks, make_cluster):
    # Given kube-proxy on its 1.23 default, with configuration values
    cluster = make_cluster("1.23")
    _installed(sim, eks, cluster, "kube-proxy", configurationValues='{"mode": "ipvs"}')

    # When it is updated to the latest 1.23 build without configuration values
    update = eks.update_addon(
        clusterName=cluster, addonName="kube-proxy", addonVersion="v1.23.17-eksbuild.9"
    )["update"]

    # Then an AddonUpdate is InProgress, listed with the add-on's name only, and the add-on UPDATING
    assert (update["status"], update["type"]) == ("InProgress", "AddonUpdate")
    assert {"type": "AddonVersion", "value": "v1.23.17-eksbuild.9"} in update["params"]
    assert eks.list_updates(name=cluster, addonName="kube-proxy")["updateIds"] == [update["id"]]
    assert eks.list_updates(name=cluster)["updateIds"] == []
    assert _addon(eks, cluster, "kube-proxy")["status"] == "UPDATING"

    # When its update time has passed
    sim.clock.sleep(TIMINGS.addon_update)

    # Then the update is Successful, the add-on ACTIVE on the new version with its configuration kept
    done = eks.describe_update(name=cluster, updateId=update["id"], addonName="kube-proxy")["update"]
    assert done["status"] == "Successful"
    addon = _addon(eks, cluster, "kube-proxy")
    assert (addon["status"], addon["addonVersion"]) == ("ACTIVE", "v1.23.17-eksbuild.9")
    assert addon["configurationValues"] == '{"mode": "ipvs"}'


def test_new_configuration_values_replace_the_old_ones(sim, eks, make_cluster):
    # Given coredns with configuration values
    cluster = make_cluster("1.23")
    _installed(sim, eks, cluster, "coredns", configurationValues='{"replicaCount": 2}')

    # When it is updated with new values
    eks.update_addon(
        clusterName=cluster,
        addonName="coredns",
        configurationValues='{"replicaCount": 3}',
        resolveConflicts="OVERWRITE",
    )
    sim.clock.sleep(TIMINGS.addon_update)

    # Then the add-on carries the new values, on its unchanged version
    addon = _addon(eks, cluster, "coredns")
    assert (addon["configurationValues"], addon["addonVersion"]) == (
        '{"replicaCount": 3}',
        "v1.8.7-eksbuild.4",
    )


def test_an_update_to_a_version_not_for_the_cluster_is_refused(sim, eks, make_cluster):
    # Given kube-proxy on a 1.23 cluster
    cluster = make_cluster("1.23")
    _installed(sim, eks, cluster, "kube-proxy")

    # When it is asked to move to a 1.24 build while the control plane is on 1.23
    with pytest.raises(ClientError) as excinfo:
        eks.update_addon(clusterName=cluster, addonName="kube-proxy", addonVersion="v1.24.17-eksbuild.8")

    # Then EKS refuses it and the add-on is unchanged
    assert _error(excinfo) == ("InvalidParameterException", 400)
    assert "1.23" in excinfo.value.response["Error"]["Message"]
    assert _addon(eks, cluster, "kube-proxy")["addonVersion"] == "v1.23.16-eksbuild.2"
    assert eks.list_updates(name=cluster, addonName="kube-proxy")["updateIds"] == []


def test_one_addon_update_at_a_time(sim, eks, make_cluster):
    # Given a vpc-cni update in progress
    cluster = make_cluster("1.23")
    _installed(sim, eks, cluster, "vpc-cni")
    eks.update_addon(clusterName=cluster, addonName="vpc-cni", addonVersion="v1.13.4-eksbuild.1")

    # When another update is asked for
    with pytest.raises(ClientError) as excinfo:
        eks.update_addon(clusterName=cluster, addonName="vpc-cni", addonVersion="v1.14.1-eksbuild.1")

    # Then it is refused with 409
    assert _error(excinfo) == ("ResourceInUseException", 409)


@pytest.mark.parametrize(
    ("resolve", "outcome", "status", "edits_left"),
    [
        (None, "Failed", "UPDATE_FAILED", True),
        ("NONE", "Failed", "UPDATE_FAILED", True),
        ("OVERWRITE", "Successful", "ACTIVE", False),
        ("PRESERVE", "Successful", "ACTIVE", True),
    ],
)
def test_resolve_conflicts_decides_what_happens_to_fields_edited_in_the_cluster(
    sim, eks, make_cluster, resolve, outcome, status, edits_left
):
    # Given coredns whose Corefile someone edited in the cluster
    cluster = make_cluster("1.23")
    _installed(sim, eks, cluster, "coredns")
    state = sim.cluster_sim(ACCOUNT, REGION, cluster)
    state.addon_conflicts.add("coredns")

    # When coredns is updated with that resolveConflicts and the update time passes
    kwargs = {"resolveConflicts": resolve} if resolve else {}
    update_id = eks.update_addon(
        clusterName=cluster, addonName="coredns", addonVersion="v1.9.3-eksbuild.15", **kwargs
    )["update"]["id"]
    sim.clock.sleep(TIMINGS.addon_update)

    # Then NONE fails on the conflict; OVERWRITE wins and clears the edits; PRESERVE keeps them
    update = eks.describe_update(name=cluster, updateId=update_id, addonName="coredns")["update"]
    addon = _addon(eks, cluster, "coredns")
    assert (update["status"], addon["status"]) == (outcome, status)
    assert ("coredns" in state.addon_conflicts) is edits_left
    if outcome == "Failed":
        assert [e["errorCode"] for e in update["errors"]] == ["ConfigurationConflict"]
        assert [i["code"] for i in addon["health"]["issues"]] == ["ConfigurationConflict"]
        assert addon["addonVersion"] == "v1.8.7-eksbuild.4"
    else:
        assert addon["addonVersion"] == "v1.9.3-eksbuild.15"


@pytest.mark.parametrize(("resolve", "status"), [("NONE", "CREATE_FAILED"), ("OVERWRITE", "ACTIVE")])
def test_creating_over_an_edited_self_managed_addon_needs_overwrite(sim, eks, make_cluster, resolve, status):
    # Given a cluster whose self-managed coredns was edited in the cluster
    cluster = make_cluster("1.23")
    sim.cluster_sim(ACCOUNT, REGION, cluster).addon_conflicts.add("coredns")

    # When the EKS add-on is created over it with that resolveConflicts
    eks.create_addon(clusterName=cluster, addonName="coredns", resolveConflicts=resolve)
    sim.clock.sleep(TIMINGS.addon_create)

    # Then NONE ends CREATE_FAILED with ConfigurationConflict, OVERWRITE ends ACTIVE
    addon = _addon(eks, cluster, "coredns")
    assert addon["status"] == status
    assert [i["code"] for i in addon["health"]["issues"]] == (
        ["ConfigurationConflict"] if resolve == "NONE" else []
    )


def test_a_deleted_addon_is_deleting_then_gone(sim, eks, make_cluster):
    # Given an ACTIVE add-on
    cluster = make_cluster()
    _installed(sim, eks, cluster, "vpc-cni")

    # When it is deleted
    deleted = eks.delete_addon(clusterName=cluster, addonName="vpc-cni")["addon"]

    # Then it is DELETING until its delete time has passed, then not found
    assert deleted["status"] == "DELETING"
    assert eks.list_addons(clusterName=cluster)["addons"] == ["vpc-cni"]
    sim.clock.sleep(TIMINGS.addon_delete)
    assert eks.list_addons(clusterName=cluster)["addons"] == []
    with pytest.raises(ClientError) as excinfo:
        _addon(eks, cluster, "vpc-cni")
    assert _error(excinfo) == ("ResourceNotFoundException", 404)


def test_list_addons_paginates_in_name_order(sim, eks, make_cluster):
    # Given a cluster with the three core add-ons
    cluster = make_cluster()
    for name in ("vpc-cni", "kube-proxy", "coredns"):
        eks.create_addon(clusterName=cluster, addonName=name)

    # When they are listed two at a time, and by boto3's paginator
    first = eks.list_addons(clusterName=cluster, maxResults=2)
    second = eks.list_addons(clusterName=cluster, maxResults=2, nextToken=first["nextToken"])
    pages = eks.get_paginator("list_addons").paginate(clusterName=cluster, PaginationConfig={"PageSize": 1})

    # Then the names come in order, split over the pages
    assert (first["addons"], second["addons"]) == (["coredns", "kube-proxy"], ["vpc-cni"])
    assert "nextToken" not in second
    assert [p["addons"] for p in pages] == [["coredns"], ["kube-proxy"], ["vpc-cni"]]


# -- the add-on compatibility insight -----------------------------------------------------------


def _addon_insight(eks: Any, cluster: str) -> dict[str, Any]:
    [summary] = [
        i
        for i in eks.list_insights(clusterName=cluster)["insights"]
        if i["name"] == ADDON_COMPATIBILITY_INSIGHT
    ]
    return eks.describe_insight(clusterName=cluster, id=summary["id"])["insight"]


def test_the_addon_insight_errs_when_an_installed_addon_has_no_version_for_the_next_minor(
    sim, eks, make_cluster
):
    # Given a 1.23 cluster with coredns and kube-proxy
    cluster = make_cluster("1.23")
    _installed(sim, eks, cluster, "coredns")
    _installed(sim, eks, cluster, "kube-proxy")

    # When the catalog has versions of both for 1.24
    passing = _addon_insight(eks, cluster)

    # Then the insight for 1.24 passes and lists the versions each can move to
    assert (passing["insightStatus"]["status"], passing["kubernetesVersion"]) == ("PASSING", "1.24")
    details = {
        d["name"]: d["compatibleVersions"]
        for d in passing["categorySpecificSummary"]["addonCompatibilityDetails"]
    }
    assert details["kube-proxy"] == ["v1.24.17-eksbuild.8", "v1.24.10-eksbuild.2"]
    assert "v1.9.3-eksbuild.3" in details["coredns"]

    # When the catalog has no coredns for 1.24
    sim.addon_without_compatible_version.add(("coredns", "1.24"))
    failing = _addon_insight(eks, cluster)

    # Then the insight is ERROR, naming coredns (with no compatible version) as the failing resource
    assert failing["insightStatus"]["status"] == "ERROR"
    assert "coredns" in failing["insightStatus"]["reason"]
    assert [r["arn"] for r in failing["resources"]] == [_addon(eks, cluster, "coredns")["addonArn"]]
    details = {
        d["name"]: d["compatibleVersions"]
        for d in failing["categorySpecificSummary"]["addonCompatibilityDetails"]
    }
    assert details["coredns"] == []


def test_list_insights_filters_by_status(sim, eks, make_cluster):
    # Given a cluster whose add-on insight fails and whose kubelet skew insight passes
    cluster = make_cluster("1.23")
    _installed(sim, eks, cluster, "coredns")
    sim.addon_without_compatible_version.add(("coredns", "1.24"))

    # When only ERROR insights of category UPGRADE_READINESS are listed
    errors = eks.list_insights(
        clusterName=cluster, filter={"statuses": ["ERROR"], "categories": ["UPGRADE_READINESS"]}
    )["insights"]

    # Then only the add-on insight comes back; an unknown insight id is not found
    assert [i["name"] for i in errors] == [ADDON_COMPATIBILITY_INSIGHT]
    with pytest.raises(ClientError) as excinfo:
        eks.describe_insight(clusterName=cluster, id="00000000-0000-0000-0000-000000000000")
    assert _error(excinfo) == ("ResourceNotFoundException", 404)
