"""EKS calls moto lacks, added as a moto extension that follows EKS's rules on the virtual clock.

moto 5.2.5 answers UpdateClusterVersion, DescribeUpdate, ListUpdates, UpdateNodegroupVersion, the
add-on calls, DescribeAddonVersions and the insight calls with 404 "Not yet implemented", creates
node groups ACTIVE at once (dropping ``updateConfig``) and deletes them at once.
:func:`eks_extension` routes every EKS path to :class:`SimEksResponse`, a subclass of moto's
``EKSResponse`` that adds or overrides them. moto's own cluster and node group objects stay the
single store of what moto models; what it does not (add-ons, updates, nodes, faults) lives in
:class:`EksSimulation`. Versions, AMIs and add-on versions come from ``simulator/eks_catalog.py``.

Lifecycles run on the :class:`~simulator.clock.VirtualClock` and settle lazily: every EKS call first
applies each scheduled transition whose time has come, in time order (:meth:`EksSimulation.settle`;
``settle_all()`` does it for every account and region, e.g. before the Kubernetes side answers).
Durations are :class:`EksTimings`.

Kubernetes hook: ``EksSimulation.worlds(account, region, cluster)`` returns the cluster's
:class:`~simulator.kube.ClusterNodes` (or None); node groups register and remove nodes through it,
and a successful control plane update calls ``set_control_plane_version``.
``EksSimulation.endpoints(...)`` and ``EksSimulation.certificate_authorities(...)`` give
DescribeCluster's ``endpoint`` and ``certificateAuthority.data`` (by default moto's endpoint and a
stable base64 PEM-looking certificate).

SSM public parameters: while the extension is open, every account and region answers
``/aws/service/eks/optimized-ami/<1.23..1.30>/{amazon-linux-2, amazon-linux-2-arm64,
amazon-linux-2-gpu, amazon-linux-2023/x86_64/standard, amazon-linux-2023/arm64/standard}/recommended/
{image_id, image_name, release_version}`` (GetParameter, GetParameters, GetParametersByPath; moto
serves no ``/aws/service/eks`` parameter itself). They are loaded on the first read in an account
and region, which also registers those AMIs as public EC2 images there (owner 602401143452).

Rules enforced (as EKS does):

Control plane (UpdateClusterVersion)
- one minor version per update; one cluster update at a time (``ResourceInUseException``, 409);
  the cluster must be ``ACTIVE``; every managed node group must be on the control plane's version
  (``InvalidRequestException``); ``UPDATING`` during the update, ``ACTIVE`` after it;
  ``clientRequestToken`` makes a repeated request return the same update; 5 free IP addresses
  needed in the cluster's subnets (else the update ends ``Failed`` with ``IpNotAvailable``);
  ``ClusterSim.fail_next_update`` fails the next one with a given errorCode.

Node groups
- CreateNodegroup: ``CREATING`` for ``nodegroup_create``, then ``ACTIVE``; the nodes join
  ``nodes_join_before_active`` seconds before (NotReady) and are Ready when the group is ACTIVE.
  ``clientRequestToken``: the same token returns the same group; the same name otherwise is
  ``ResourceInUseException``. The cluster must be ACTIVE. ``version`` defaults to the control
  plane's and may not be newer (``InvalidParameterException``); ``releaseVersion`` defaults to the
  catalog's and must belong to the version. A launch template whose version has an ``ImageId`` makes
  the group ``CUSTOM`` (another ``amiType`` is refused; so is a ``releaseVersion``, or a ``version``
  that contradicts a catalog AMI's). ``updateConfig`` is kept (default ``maxUnavailable: 1``);
  ``remoteAccess`` only when given, ``diskSize`` not for launch template groups (moto invents both).
- Nodes: ``desiredSize`` instances ``i-`` + 17 hex (stable per cluster, group and launch); kubelet
  ``v<patch>-eks-<build>``; labels ``eks.amazonaws.com/nodegroup``, ``.../nodegroup-image``,
  ``.../capacityType`` (+ ``sourceLaunchTemplateId/Version``) and the group's labels; taints with
  Kubernetes effects; max pods per instance type. Runtime: Kubernetes 1.23 on an Amazon Linux 2 AMI
  (AL2_* types, or CUSTOM with an AL2 AMI) runs ``docker://20.10.25`` unless the CUSTOM launch
  template's user data runs ``/etc/eks/bootstrap.sh ... --container-runtime containerd`` (for an
  EKS-provided AMI, EKS writes the bootstrap call itself, so user data cannot change it); 1.24+,
  AL2023, Bottlerocket and Windows run ``containerd://1.6.19``.
- DeleteNodegroup: ``DELETING`` for ``nodegroup_delete`` (listed and described meanwhile), then gone;
  the nodes leave (``remove_nodes``) when the instances terminate, at the end. Refused while the
  group is UPDATING; a repeated delete returns the group.
- UpdateNodegroupVersion: one update at a time per group and the group ACTIVE or DEGRADED
  (``ResourceInUseException``); the cluster ACTIVE; the target (default: the control plane's version)
  neither newer than the control plane nor older than the group (``InvalidParameterException``);
  ``launchTemplate`` must name the group's template (its version: default the template's default);
  CUSTOM groups take their version from the AMI and refuse ``releaseVersion``. Type
  ``VersionUpdate``, visible in DescribeUpdate/ListUpdates only with ``nodegroupName`` (as EKS).
  With a Kubernetes world, the update rolls as EKS's does: the new nodes (new version, runtime and
  image) join at once and are Ready after ``nodes_join_before_active``; then the old nodes are
  cordoned and drained ``maxUnavailable`` at a time through the Eviction API (budgets hold), each
  terminated once empty; the update is ``Successful`` when the last old node is gone, ``Failed`` with
  ``PodEvictionFailure`` when a budget keeps pods on a node past ``pod_eviction_timeout`` (15 min, old
  nodes left cordoned). Without a world the group is ``UPDATING`` for ``nodegroup_update``.
- Faults, per cluster (``ClusterSim.nodes_never_ready`` / ``capacity_shortage``) or per node group
  name (``ClusterSim.nodegroup_faults[name] = NodegroupFaults(...)``, which wins):
  ``nodes_never_ready``: on create the nodes join but never become Ready and the group stays
  CREATING until ``node_join_timeout`` (20 min), then ``CREATE_FAILED`` with health issue
  ``NodeCreationFailure``; a version update ends ``Failed`` (``NodeCreationFailure``) after that
  timeout and the old nodes stay. ``capacity_shortage=n``: EC2 launches only ``n`` instances; the
  group ends ``DEGRADED`` with ``AsgInstanceLaunchFailures`` (InsufficientInstanceCapacity); a
  version update ends ``Failed`` (``NodeCreationFailure``), the group DEGRADED, the old nodes stay.

Add-ons (vpc-cni, coredns, kube-proxy; versions in the catalog)
- CreateAddon: ``CREATING`` for ``addon_create``, then ``ACTIVE``; the version defaults to the
  catalog's default for the cluster version and must be compatible with it (``InvalidParameterException``);
  unknown add-on names and ``resolveConflicts=PRESERVE`` are refused; an existing add-on is
  ``ResourceInUseException`` unless the ``clientRequestToken`` is the same.
- UpdateAddon: ``UPDATING`` for ``addon_update``, then ``ACTIVE``; an update (type ``AddonUpdate``)
  visible with ``addonName`` in DescribeUpdate/ListUpdates; the version must be compatible with the
  cluster's current version (``InvalidParameterException``); one at a time (``ResourceInUseException``).
  ``configurationValues``: replaced when given, kept when omitted. ``resolveConflicts`` acts on
  fields edited in the cluster (fault ``ClusterSim.addon_conflicts``): ``NONE`` (the default) makes
  the update ``Failed`` with ``ConfigurationConflict`` and the add-on ``UPDATE_FAILED`` (CreateAddon:
  ``CREATE_FAILED``); ``OVERWRITE`` succeeds and clears the edits; ``PRESERVE`` succeeds, keeping them.
- DeleteAddon: ``DELETING`` for ``addon_delete``, then gone. ListAddons paginates.
- DescribeAddonVersions filters by ``addonName``, ``kubernetesVersion``, ``types`` and ``owners``;
  ``addons[].addonVersions[].compatibilities[{clusterVersion, platformVersions, defaultVersion}]``.
  Fault ``EksSimulation.addon_without_compatible_version`` (a set of (add-on, Kubernetes version)):
  the catalog has no version of that add-on for that Kubernetes version.

Insights (ListInsights with category/version/status filters, DescribeInsight), category
``UPGRADE_READINESS``, for the next minor version:
- "Kubelet version skew": ``ERROR`` when a managed node group is not on the control plane's version
  (this simulator, like the guide's EKS, then refuses the control plane update), else ``PASSING``.
- "Amazon EKS add-on version compatibility": ``ERROR`` when an installed add-on has no version
  compatible with the next minor (``addonCompatibilityDetails`` lists what is), ``UNKNOWN`` past
  the catalog, else ``PASSING``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import textwrap
import threading
import urllib.parse
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.eks import urls as eks_urls
from moto.eks.exceptions import (
    InvalidParameterException,
    InvalidRequestException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from moto.eks.responses import EKSResponse
from moto.ssm.models import Parameter, ParameterDict

from simulator import eks_catalog as catalog
from simulator.clock import VirtualClock

if TYPE_CHECKING:
    from simulator.kube import ClusterNodes

NEW_PATHS = {
    "{0}/clusters/(?P<name>[^/]+)/updates$",
    "{0}/clusters/(?P<name>[^/]+)/updates/(?P<updateId>[^/]+)$",
    "{0}/clusters/(?P<name>[^/]+)/node-groups/(?P<nodegroupName>[^/]+)/update-version$",
    "{0}/clusters/(?P<name>[^/]+)/addons$",
    "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)$",
    "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)/update$",
    "{0}/addons/supported-versions$",
    "{0}/clusters/(?P<name>[^/]+)/insights$",
    "{0}/clusters/(?P<name>[^/]+)/insights/(?P<id>[^/]+)$",
}
MIN_FREE_IPS_FOR_UPDATE = 5
KUBELET_SKEW_INSIGHT = "Kubelet version skew"
ADDON_COMPATIBILITY_INSIGHT = "Amazon EKS add-on version compatibility"
TAINT_EFFECTS = {
    "NO_SCHEDULE": "NoSchedule",
    "NO_EXECUTE": "NoExecute",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
}
AL2_BASE = "AL2_x86_64"  # what an unknown custom AMI is taken to be

WorldLookup = Callable[[str, str, str], "ClusterNodes | None"]
TextLookup = Callable[[str, str, str], str | None]


@dataclass(frozen=True)
class EksTimings:
    """Virtual durations of EKS lifecycles, in seconds (defaults: what EKS usually takes)."""

    control_plane_update: float = 480.0
    nodegroup_create: float = 240.0
    nodegroup_delete: float = 180.0
    nodegroup_update: float = 300.0
    addon_create: float = 60.0
    addon_update: float = 60.0
    addon_delete: float = 60.0
    nodes_join_before_active: float = 60.0  # nodes register this long before a create completes
    pod_eviction_timeout: float = 900.0  # EKS gives up a node group update's drain after 15 minutes
    node_join_timeout: float = 1200.0  # how long EKS waits for nodes that never become Ready


@dataclass
class NodegroupFaults:
    nodes_never_ready: bool = False
    capacity_shortage: int | None = None  # instances EC2 can launch, when fewer than desired


@dataclass
class ClusterSim:
    """What the simulator knows of a cluster beyond moto's object, and its fault switches."""

    free_ips: int = 250
    fail_next_update: str | None = None  # an EKS errorCode to fail the next version update with
    nodes_never_ready: bool = False  # every node group of the cluster...
    capacity_shortage: int | None = None
    nodegroup_faults: dict[str, NodegroupFaults] = field(default_factory=dict)  # ...unless named here
    addon_conflicts: set[str] = field(default_factory=set)  # add-ons with fields edited in the cluster

    def faults_for(self, nodegroup: str) -> NodegroupFaults:
        named = self.nodegroup_faults.get(nodegroup)
        return named if named is not None else NodegroupFaults(self.nodes_never_ready, self.capacity_shortage)


@dataclass
class NodeImage:
    """What a node group's instances boot: enough to tell the Kubernetes side what joins."""

    version: str
    ami_type: str  # the flavour (for CUSTOM: the catalog AMI's type, else AL2)
    image_id: str
    user_data: str | None
    instance_type: str
    release_version: str | None
    launch_template_version: str | None


@dataclass
class NodegroupSim:
    image: NodeImage
    launches: int = 0
    instance_ids: list[str] = field(default_factory=list)


@dataclass
class AddonSim:
    name: str
    cluster: str
    arn: str
    version: str
    status: str
    created_at: float
    modified_at: float
    configuration_values: str | None = None
    service_account_role_arn: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    client_request_token: str | None = None


@dataclass
class SimUpdate:
    id: str
    cluster: str
    type: str
    params: dict[str, str]
    created_at: float
    duration: float
    outcome: str  # "Successful" | "Failed" once the duration has elapsed
    errors: list[dict[str, Any]] = field(default_factory=list)
    nodegroup: str | None = None  # set for node group updates
    addon: str | None = None  # set for add-on updates

    def status(self, now: float) -> str:
        return "InProgress" if now < self.created_at + self.duration else self.outcome


@dataclass
class _Event:
    at: float
    seq: int
    account: str
    region: str
    action: Callable[[], None]


def _no_world(account: str, region: str, cluster: str) -> ClusterNodes | None:
    return None


def _no_text(account: str, region: str, cluster: str) -> str | None:
    return None


class EksSimulation:
    """State of the EKS extension for every account and region, shared by all requests."""

    def __init__(self, clock: VirtualClock, timings: EksTimings | None = None) -> None:
        self.clock = clock
        self.timings = timings or EksTimings()
        self.worlds: WorldLookup = _no_world
        self.endpoints: TextLookup = _no_text
        self.certificate_authorities: TextLookup = _no_text  # base64 PEM, as DescribeCluster returns
        self.addon_without_compatible_version: set[tuple[str, str]] = set()
        self.clusters: dict[tuple[str, str, str], ClusterSim] = {}
        self.updates: dict[tuple[str, str, str], list[SimUpdate]] = {}
        self.tokens: dict[tuple[str, str, str, str, str], str] = {}  # (..., scope, token) -> update id
        self.nodegroups: dict[tuple[str, str, str, str], NodegroupSim] = {}
        self.addons: dict[tuple[str, str, str], dict[str, AddonSim]] = defaultdict(dict)
        self.insight_states: dict[tuple[str, str, str, str], tuple[str, float]] = {}
        self.lock = threading.RLock()
        self._events: list[_Event] = []
        self._seq = 0

    def cluster_sim(self, account: str, region: str, name: str) -> ClusterSim:
        return self.clusters.setdefault((account, region, name), ClusterSim())

    def world(self, account: str, region: str, cluster: str) -> ClusterNodes | None:
        return self.worlds(account, region, cluster)

    # -- the virtual-time schedule ---------------------------------------------------------------
    def schedule(self, account: str, region: str, at: float, action: Callable[[], None]) -> None:
        with self.lock:
            self._seq += 1
            self._events.append(_Event(at, self._seq, account, region, action))

    def settle(self, account: str, region: str) -> None:
        """Apply every transition whose virtual time has come (lazily, on the next call)."""
        self._run_due(lambda e: (e.account, e.region) == (account, region))

    def settle_all(self) -> None:
        self._run_due(lambda e: True)

    def _run_due(self, selected: Callable[[_Event], bool]) -> None:
        with self.lock:
            while True:
                now = self.clock.now()
                due = [e for e in self._events if e.at <= now and selected(e)]
                if not due:
                    return
                event = min(due, key=lambda e: (e.at, e.seq))
                self._events.remove(event)
                event.action()

    # -- catalog, with the faults applied --------------------------------------------------------
    def addon_versions(self, addon: str, kubernetes_version: str) -> list[catalog.AddonVersion]:
        """The versions of an add-on compatible with a Kubernetes version, newest first."""
        spec = catalog.ADDONS.get(addon)
        if spec is None or (addon, kubernetes_version) in self.addon_without_compatible_version:
            return []
        return [v for v in spec.versions if kubernetes_version in v.cluster_versions]

    def default_addon_version(self, addon: str, kubernetes_version: str) -> str | None:
        versions = self.addon_versions(addon, kubernetes_version)
        default = next((v for v in versions if kubernetes_version in v.default_for), None)
        chosen = default or (versions[0] if versions else None)
        return chosen.version if chosen else None

    # -- rendering -------------------------------------------------------------------------------
    def render(self, update: SimUpdate) -> dict[str, Any]:
        return {
            "id": update.id,
            "status": update.status(self.clock.now()),
            "type": update.type,
            "params": [{"type": key, "value": value} for key, value in update.params.items()],
            "createdAt": self.clock.to_datetime(update.created_at),
            "errors": update.errors if update.status(self.clock.now()) == "Failed" else [],
        }

    def render_addon(self, addon: AddonSim) -> dict[str, Any]:
        rendered: dict[str, Any] = {
            "addonName": addon.name,
            "clusterName": addon.cluster,
            "status": addon.status,
            "addonVersion": addon.version,
            "health": {"issues": addon.issues},
            "addonArn": addon.arn,
            "createdAt": self.clock.to_datetime(addon.created_at),
            "modifiedAt": self.clock.to_datetime(addon.modified_at),
            "tags": addon.tags,
        }
        if addon.service_account_role_arn:
            rendered["serviceAccountRoleArn"] = addon.service_account_role_arn
        if addon.configuration_values is not None:
            rendered["configurationValues"] = addon.configuration_values
        return rendered


def instance_id(account: str, region: str, cluster: str, nodegroup: str, launch: int, index: int) -> str:
    digest = hashlib.sha256(f"{account}/{region}/{cluster}/{nodegroup}/{launch}/{index}".encode()).hexdigest()
    return "i-" + digest[:17]


def pem_looking_certificate(seed: str) -> str:
    """A base64 PEM block that looks like a cluster CA (stable per seed); not a parseable certificate."""
    body = base64.b64encode(b"".join(hashlib.sha512(f"{seed}/{i}".encode()).digest() for i in range(12)))
    pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(textwrap.wrap(body.decode(), 64))
    pem += "\n-----END CERTIFICATE-----\n"
    return base64.b64encode(pem.encode()).decode()


def _decode_user_data(raw: Any) -> str | None:
    if not raw:
        return None
    try:
        return base64.b64decode(str(raw)).decode("utf-8", "replace")
    except ValueError:
        return str(raw)


class SimEksResponse(EKSResponse):
    simulation: EksSimulation  # set by eks_extension()

    def call_action(self) -> Any:
        self.simulation.settle(self.current_account, self.region)
        # EKS's own work inside the cluster (a node group update's drain) goes on before it answers. The
        # path names the cluster (/clusters/<name>/...); moto parses path parameters only later.
        parts = urllib.parse.urlparse(self.path).path.split("/")
        if len(parts) > 2 and parts[1] == "clusters" and parts[2]:
            world = self.simulation.world(self.current_account, self.region, urllib.parse.unquote(parts[2]))
            if world is not None:
                world.advance()
        return super().call_action()

    # -- lookups ---------------------------------------------------------------------------------
    def _cluster(self, name: str) -> Any:
        cluster = self.eks_backend.clusters.get(name)
        if cluster is None:
            raise ResourceNotFoundException(
                clusterName=name,
                message=f"No cluster found for name: {name}.",
            )
        return cluster

    def _nodegroup(self, cluster: Any, name: str) -> Any:
        nodegroup = cluster.nodegroups.get(name)
        if nodegroup is None:
            raise ResourceNotFoundException(
                clusterName=cluster.name,
                nodegroupName=name,
                message=f"No node group found for name: {name}.",
            )
        return nodegroup

    def _addon(self, cluster: Any, name: str) -> AddonSim:
        addon = self.simulation.addons[self._key(cluster.name)].get(name)
        if addon is None:
            raise ResourceNotFoundException(
                clusterName=cluster.name,
                addonName=name,
                message=f"No addon: {name} found in cluster: {cluster.name}",
            )
        return addon

    def _key(self, name: str) -> tuple[str, str, str]:
        return (self.current_account, self.region, name)

    def _now(self) -> float:
        return self.simulation.clock.now()

    def _known_update(self, name: str, scope: str, token: str, params: dict[str, str]) -> SimUpdate | None:
        """The update an earlier request with this clientRequestToken started, if any."""
        sim = self.simulation
        known = sim.tokens.get((*self._key(name), scope, token))
        if known is None:
            return None
        update = next(u for u in sim.updates[self._key(name)] if u.id == known)
        if any(update.params.get(k) != v for k, v in params.items() if v is not None):
            raise InvalidParameterException(
                clusterName=name,
                message=f"clientRequestToken {token} was already used for a different request",
            )
        return update

    def _in_progress(self, name: str, nodegroup: str | None = None, addon: str | None = None) -> bool:
        now = self._now()
        return any(
            u.status(now) == "InProgress" and u.nodegroup == nodegroup and u.addon == addon
            for u in self.simulation.updates.get(self._key(name), [])
        )

    def _record(self, update: SimUpdate, scope: str, token: str) -> None:
        key = self._key(update.cluster)
        self.simulation.updates.setdefault(key, []).append(update)
        self.simulation.tokens[(*key, scope, token)] = update.id

    # -- clusters --------------------------------------------------------------------------------
    def create_cluster(self) -> ActionResult:
        result = super().create_cluster()
        cluster = self.eks_backend.clusters[self._get_param("name")]
        cluster.created_at = self.simulation.clock.datetime()
        cluster.certificate_authority = {"data": pem_looking_certificate(cluster.arn)}
        return result

    def describe_cluster(self) -> ActionResult:
        cluster = self._cluster(self._get_param("name"))
        key = self._key(cluster.name)
        endpoint = self.simulation.endpoints(*key)
        if endpoint:
            cluster.endpoint = endpoint
        authority = self.simulation.certificate_authorities(*key) or pem_looking_certificate(cluster.arn)
        cluster.certificate_authority = {"data": authority}
        return ActionResult({"cluster": cluster})

    def update_cluster_version(self) -> ActionResult:
        sim = self.simulation
        name = self._get_param("name")
        version = self._get_param("version")
        token = self._get_param("clientRequestToken") or str(uuid.uuid4())
        with sim.lock:
            cluster = self._cluster(name)
            key = self._key(name)
            known = self._known_update(name, "", token, {"Version": version})
            if known is not None:
                return ActionResult({"update": sim.render(known)})
            now = self._now()
            if self._in_progress(name):
                raise ResourceInUseException(
                    clusterName=name,
                    message=f"Cluster {name} has an update in progress; EKS allows one update at a time.",
                )
            if cluster.status != "ACTIVE":
                raise ResourceInUseException(
                    clusterName=name,
                    message=f"Cluster {name} is in {cluster.status} state.",
                )
            if version != catalog.next_minor(cluster.version):
                raise InvalidParameterException(
                    clusterName=name,
                    message=f"Unsupported Kubernetes minor version update from {cluster.version} to {version}",
                )
            behind = [
                ng.nodegroup_name for ng in cluster.nodegroups.values() if ng.version != cluster.version
            ]
            if behind:
                raise InvalidRequestException(
                    message=f"Nodegroups {', '.join(sorted(behind))} must be updated to match cluster "
                    f"version {cluster.version} before updating cluster version",
                )
            state = sim.cluster_sim(*key)
            errors: list[dict[str, Any]] = []
            if state.free_ips < MIN_FREE_IPS_FOR_UPDATE:
                errors.append(
                    {
                        "errorCode": "IpNotAvailable",
                        "errorMessage": f"Subnets of cluster {name} have {state.free_ips} free IP "
                        f"addresses; the update needs {MIN_FREE_IPS_FOR_UPDATE}.",
                        "resourceIds": list(cluster.resources_vpc_config.get("subnetIds", [])),
                    }
                )
            elif state.fail_next_update:
                errors.append(
                    {
                        "errorCode": state.fail_next_update,
                        "errorMessage": "Injected failure of the control plane update.",
                        "resourceIds": [name],
                    }
                )
                state.fail_next_update = None
            update = SimUpdate(
                id=str(uuid.uuid4()),
                cluster=name,
                type="VersionUpdate",
                params={"Version": version, "PlatformVersion": "eks.1"},
                created_at=now,
                duration=sim.timings.control_plane_update,
                outcome="Failed" if errors else "Successful",
                errors=errors,
            )
            self._record(update, "", token)
            cluster.status = "UPDATING"
            account, region = self.current_account, self.region

            def finish() -> None:
                if update.outcome == "Successful":
                    cluster.version = version
                    world = sim.world(account, region, name)
                    if world is not None:
                        world.set_control_plane_version(version)
                cluster.status = "ACTIVE"

            sim.schedule(account, region, now + update.duration, finish)
            return ActionResult({"update": sim.render(update)})

    def describe_update(self) -> ActionResult:
        name = self._get_param("name")
        update_id = self._get_param("updateId")
        for update in self._scoped_updates(name):
            if update.id == update_id:
                return ActionResult({"update": self.simulation.render(update)})
        raise ResourceNotFoundException(
            clusterName=name,
            message=f"No update found for ID: {update_id}.",
        )

    def list_updates(self) -> ActionResult:
        name = self._get_param("name")
        ids = [u.id for u in self._scoped_updates(name)]
        return ActionResult(self._page(name, "updateIds", ids))

    def _scoped_updates(self, name: str) -> list[SimUpdate]:
        """The updates of the cluster, or of the node group or add-on the request names (which must
        exist), oldest first."""
        nodegroup = self._get_param("nodegroupName")
        addon = self._get_param("addonName")
        cluster = self._cluster(name)
        if nodegroup:
            self._nodegroup(cluster, nodegroup)
        if addon:
            self._addon(cluster, addon)
        return [
            u
            for u in self.simulation.updates.get(self._key(name), [])
            if (u.nodegroup, u.addon) == (nodegroup, addon)
        ]

    def _page(self, name: str, field_name: str, items: list[Any]) -> dict[str, Any]:
        max_results = int(self._get_param("maxResults") or 100)
        token = self._get_param("nextToken") or "0"
        if not str(token).isdigit():
            raise InvalidParameterException(clusterName=name, message=f"Invalid nextToken {token}")
        start = int(token)
        result: dict[str, Any] = {field_name: items[start : start + max_results]}
        if start + max_results < len(items):
            result["nextToken"] = str(start + max_results)
        return result

    # -- node groups -----------------------------------------------------------------------------
    def _launch_template(self, spec: dict[str, Any]) -> tuple[Any, Any]:
        """(template, version) of a ``launchTemplate`` parameter, in this account and region."""
        ec2 = ec2_backends[self.current_account][self.region]
        try:
            if spec.get("id"):
                template = ec2.describe_launch_templates(template_ids=[spec["id"]])[0]
            else:
                template = ec2.describe_launch_templates(template_names=[spec.get("name")])[0]
            version = template.get_version(spec.get("version") or "$Default")
        except Exception as error:  # moto raises its EC2 errors; EKS reports a bad parameter
            raise InvalidParameterException(
                message=f"Launch template {spec.get('id') or spec.get('name')} version "
                f"{spec.get('version') or '$Default'} not found: {error}",
            ) from error
        return template, version

    def _image(
        self,
        cluster: Any,
        *,
        ami_type: str,
        version: str | None,
        release: str | None,
        template_version: Any | None,
        instance_types: list[str] | None,
    ) -> NodeImage:
        """What the nodes of a group will boot, checking EKS's rules on version and AMI."""
        lt_image = template_version.image_id if template_version is not None else ""
        user_data = _decode_user_data(template_version.data.get("UserData")) if template_version else None
        if ami_type == "CUSTOM":
            found = catalog.find_ami(self.region, lt_image)
            if release:
                raise InvalidParameterException(
                    clusterName=cluster.name,
                    message="releaseVersion cannot be specified for a node group that uses a custom AMI",
                )
            if found is not None and version and version != found[0]:
                raise InvalidParameterException(
                    clusterName=cluster.name,
                    message=f"Requested version {version} does not match the version {found[0]} of AMI {lt_image}",
                )
            version = found[0] if found else (version or cluster.version)
            base_type = found[1] if found else AL2_BASE
            image_id, release = lt_image, None
        else:
            version = version or cluster.version
            base_type = ami_type
            image_id = catalog.ami_id(self.region, version, ami_type)
            patch = catalog.release_version(version, ami_type).split("-")[0]
            if release and not (release.startswith(f"{version}.") or release.startswith(f"{patch}-")):
                raise InvalidParameterException(
                    clusterName=cluster.name,
                    message=f"Requested release version {release} is not valid for Kubernetes version {version}",
                )
            release = release or catalog.release_version(version, ami_type)
        if catalog.minor(version) > catalog.minor(cluster.version):
            raise InvalidParameterException(
                clusterName=cluster.name,
                message=f"Requested Nodegroup version {version} is newer than cluster {cluster.name} "
                f"version {cluster.version}",
            )
        lt_type = template_version.instance_type if template_version is not None else ""
        instance_type = (instance_types or [None])[0] or lt_type or "t3.medium"
        return NodeImage(
            version=version,
            ami_type=base_type,
            image_id=image_id,
            user_data=user_data,
            instance_type=instance_type,
            release_version=release,
            launch_template_version=str(template_version.number) if template_version is not None else None,
        )

    def create_nodegroup(self) -> ActionResult:
        sim = self.simulation
        name = self._get_param("name")
        nodegroup_name = self._get_param("nodegroupName")
        token = self._get_param("clientRequestToken")
        with sim.lock:
            cluster = self._cluster(name)
            existing = cluster.nodegroups.get(nodegroup_name)
            if existing is not None:
                if token and existing.client_request_token == token:
                    return ActionResult({"nodegroup": existing})
                raise ResourceInUseException(
                    clusterName=name,
                    nodegroupName=nodegroup_name,
                    message=f"NodeGroup already exists with name {nodegroup_name} and cluster name {name}",
                )
            if cluster.status != "ACTIVE":
                raise InvalidRequestException(message=f"Cluster '{name}' is not in ACTIVE status")
            lt_spec = self._get_param("launchTemplate")
            template = template_version = None
            if lt_spec:
                template, template_version = self._launch_template(lt_spec)
            ami_type = self._get_param("amiType")
            if template_version is not None and template_version.image_id:
                if ami_type and ami_type != "CUSTOM":
                    raise InvalidParameterException(
                        clusterName=name,
                        message=f"You cannot specify an AMI Type other than CUSTOM, when specifying an "
                        f"image id in your launch template (amiType {ami_type})",
                    )
                ami_type = "CUSTOM"
            elif ami_type == "CUSTOM":
                raise InvalidParameterException(
                    clusterName=name,
                    message="amiType CUSTOM needs a launch template that specifies an image id",
                )
            ami_type = ami_type or "AL2_x86_64"
            image = self._image(
                cluster,
                ami_type=ami_type,
                version=self._get_param("version"),
                release=self._get_param("releaseVersion"),
                template_version=template_version,
                instance_types=self._get_param("instanceTypes"),
            )
            nodegroup = self.eks_backend.create_nodegroup(
                cluster_name=name,
                nodegroup_name=nodegroup_name,
                scaling_config=self._get_param("scalingConfig"),
                disk_size=self._get_int_param("diskSize"),
                subnets=self._get_param("subnets"),
                instance_types=self._get_param("instanceTypes"),
                ami_type=ami_type,
                remote_access=self._get_param("remoteAccess"),
                node_role=self._get_param("nodeRole"),
                labels=self._get_param("labels"),
                taints=self._get_param("taints"),
                tags=self._get_param("tags"),
                client_request_token=token,
                launch_template=dict(lt_spec) if lt_spec else None,
                capacity_type=self._get_param("capacityType"),
                version=image.version,
                release_version=image.release_version,
            )
            now = self._now()
            nodegroup.release_version = image.release_version
            nodegroup.scaling_config = dict(nodegroup.scaling_config)  # moto shares its default dict
            nodegroup.status = "CREATING"
            nodegroup.health = {"issues": []}
            nodegroup.update_config = self._get_param("updateConfig") or {"maxUnavailable": 1}
            # moto reports an SSH key ("eksKeypair") nobody configured, and a disk size for groups whose
            # disk is the launch template's: EKS reports neither.
            nodegroup.remote_access = self._get_param("remoteAccess")
            if lt_spec:
                nodegroup.disk_size = None
            nodegroup.node_repair_config = self._get_param("nodeRepairConfig")
            nodegroup.created_at = nodegroup.modified_at = sim.clock.to_datetime(now)
            if template is not None:
                nodegroup.launch_template = {
                    "name": template.name,
                    "id": template.id,
                    "version": image.launch_template_version,
                }
            state = NodegroupSim(image)
            sim.nodegroups[(*self._key(name), nodegroup_name)] = state
            self._schedule_create(cluster, nodegroup, state, now)
            return ActionResult({"nodegroup": nodegroup})

    def _schedule_create(self, cluster: Any, nodegroup: Any, state: NodegroupSim, now: float) -> None:
        sim = self.simulation
        timings = sim.timings
        account, region = self.current_account, self.region
        faults = sim.cluster_sim(account, region, cluster.name).faults_for(nodegroup.nodegroup_name)
        desired = int(nodegroup.scaling_config.get("desiredSize", 0))
        active_at = now + timings.nodegroup_create
        join_at = active_at - timings.nodes_join_before_active

        def creating() -> bool:
            return (
                cluster.nodegroups.get(nodegroup.nodegroup_name) is nodegroup
                and nodegroup.status == "CREATING"
            )

        def finish(status: str, issue: dict[str, Any] | None) -> None:
            if creating():
                nodegroup.status = status
                nodegroup.health = {"issues": [issue] if issue else []}
                nodegroup.modified_at = sim.clock.datetime()

        if faults.nodes_never_ready:
            launched, ready_at, end = desired, None, now + timings.node_join_timeout
        elif faults.capacity_shortage is not None and faults.capacity_shortage < desired:
            launched, ready_at, end = max(0, faults.capacity_shortage), active_at, active_at
        else:
            launched, ready_at, end = desired, active_at, active_at

        def join() -> None:
            if creating():
                self._launch(account, region, cluster.name, nodegroup, state, launched, ready_at)

        sim.schedule(account, region, join_at, join)
        if faults.nodes_never_ready:
            sim.schedule(
                account,
                region,
                end,
                lambda: finish(
                    "CREATE_FAILED",
                    {
                        "code": "NodeCreationFailure",
                        "message": "Instances failed to join the kubernetes cluster",
                        "resourceIds": list(state.instance_ids),
                    },
                ),
            )
        elif launched < desired:
            sim.schedule(
                account, region, end, lambda: finish("DEGRADED", self._capacity_issue(nodegroup, state))
            )
        else:
            sim.schedule(account, region, end, lambda: finish("ACTIVE", None))

    @staticmethod
    def _capacity_issue(nodegroup: Any, state: NodegroupSim) -> dict[str, Any]:
        capacity = "Spot" if nodegroup.capacity_type == "SPOT" else "On-Demand"
        return {
            "code": "AsgInstanceLaunchFailures",
            "message": f"Could not launch {capacity} Instances. InsufficientInstanceCapacity - We currently "
            f"do not have sufficient {state.image.instance_type} capacity in the Availability Zone you "
            "requested. Launching EC2 instance failed.",
            "resourceIds": [asg["name"] for asg in nodegroup.resources.get("autoScalingGroups", [])],
        }

    def _launch(
        self,
        account: str,
        region: str,
        cluster: str,
        nodegroup: Any,
        state: NodegroupSim,
        count: int,
        ready_at: float | None,
    ) -> None:
        """``count`` new instances of the group's image join the cluster's Kubernetes world."""
        state.launches += 1
        ids = [
            instance_id(account, region, cluster, nodegroup.nodegroup_name, state.launches, i)
            for i in range(count)
        ]
        state.instance_ids = ids
        world = self.simulation.world(account, region, cluster)
        if world is None or not ids:
            return
        image = state.image
        labels = {
            "eks.amazonaws.com/nodegroup": nodegroup.nodegroup_name,
            "eks.amazonaws.com/nodegroup-image": image.image_id,
            "eks.amazonaws.com/capacityType": nodegroup.capacity_type,
        }
        if nodegroup.launch_template:
            labels["eks.amazonaws.com/sourceLaunchTemplateId"] = nodegroup.launch_template.get("id", "")
            labels["eks.amazonaws.com/sourceLaunchTemplateVersion"] = str(image.launch_template_version)
        labels.update(nodegroup.labels or {})
        taints = [
            {
                k: v
                for k, v in {
                    "key": taint.get("key"),
                    "value": taint.get("value"),
                    "effect": TAINT_EFFECTS.get(taint.get("effect", ""), taint.get("effect")),
                }.items()
                if v is not None
            }
            for taint in nodegroup.taints or []
        ]
        world.register_nodes(
            nodegroup.nodegroup_name,
            ids,
            kubelet_version=catalog.kubelet_version(image.version),
            container_runtime=catalog.container_runtime(image.version, image.ami_type, image.user_data),
            instance_type=image.instance_type,
            labels=labels,
            taints=taints,
            pods_per_node=catalog.pods_per_node(image.instance_type),
            ready_at=ready_at,
        )

    def _terminate(
        self, account: str, region: str, cluster: str, nodegroup: str, state: NodegroupSim
    ) -> None:
        world = self.simulation.world(account, region, cluster)
        if world is not None and state.instance_ids:
            world.remove_nodes(nodegroup)
        state.instance_ids = []

    def delete_nodegroup(self) -> ActionResult:
        sim = self.simulation
        name = self._get_param("name")
        nodegroup_name = self._get_param("nodegroupName")
        with sim.lock:
            cluster = self._cluster(name)
            nodegroup = self._nodegroup(cluster, nodegroup_name)
            if nodegroup.status == "DELETING":
                return ActionResult({"nodegroup": nodegroup})
            if nodegroup.status == "UPDATING":
                raise ResourceInUseException(
                    clusterName=name,
                    nodegroupName=nodegroup_name,
                    message=f"Nodegroup {nodegroup_name} cannot be deleted while it is being updated",
                )
            nodegroup.status = "DELETING"
            nodegroup.modified_at = sim.clock.datetime()
            account, region = self.current_account, self.region
            state = sim.nodegroups.get((*self._key(name), nodegroup_name))

            def gone() -> None:
                if cluster.nodegroups.get(nodegroup_name) is not nodegroup:
                    return
                del cluster.nodegroups[nodegroup_name]
                cluster.nodegroup_count -= 1
                if state is not None:
                    self._terminate(account, region, name, nodegroup_name, state)
                    if sim.nodegroups.get((account, region, name, nodegroup_name)) is state:
                        del sim.nodegroups[(account, region, name, nodegroup_name)]

            sim.schedule(account, region, self._now() + sim.timings.nodegroup_delete, gone)
            return ActionResult({"nodegroup": nodegroup})

    def update_nodegroup_version(self) -> ActionResult:
        sim = self.simulation
        name = self._get_param("name")
        nodegroup_name = self._get_param("nodegroupName")
        token = self._get_param("clientRequestToken") or str(uuid.uuid4())
        scope = f"nodegroup/{nodegroup_name}"
        with sim.lock:
            cluster = self._cluster(name)
            nodegroup = self._nodegroup(cluster, nodegroup_name)
            requested = {
                "Version": self._get_param("version"),
                "ReleaseVersion": self._get_param("releaseVersion"),
            }
            known = self._known_update(name, scope, token, requested)
            if known is not None:
                return ActionResult({"update": sim.render(known)})
            if self._in_progress(name, nodegroup=nodegroup_name) or nodegroup.status not in (
                "ACTIVE",
                "DEGRADED",
            ):
                raise ResourceInUseException(
                    clusterName=name,
                    nodegroupName=nodegroup_name,
                    message=f"Nodegroup {nodegroup_name} is in {nodegroup.status} state; "
                    "it cannot be updated now",
                )
            if cluster.status != "ACTIVE":
                raise ResourceInUseException(
                    clusterName=name,
                    message=f"Cluster {name} is in {cluster.status} state.",
                )
            state = sim.nodegroups[(*self._key(name), nodegroup_name)]
            template_version = None
            lt_spec = self._get_param("launchTemplate")
            if lt_spec or nodegroup.launch_template:
                current = nodegroup.launch_template or {}
                if lt_spec:
                    if not current:
                        raise InvalidParameterException(
                            clusterName=name,
                            nodegroupName=nodegroup_name,
                            message=f"Nodegroup {nodegroup_name} was not created with a launch template",
                        )
                    if (lt_spec.get("id") and lt_spec["id"] != current.get("id")) or (
                        lt_spec.get("name") and lt_spec["name"] != current.get("name")
                    ):
                        raise InvalidParameterException(
                            clusterName=name,
                            nodegroupName=nodegroup_name,
                            message="The launch template of a node group cannot be changed, only its version",
                        )
                spec = {
                    "id": current.get("id"),
                    "version": (lt_spec or {}).get("version") or current.get("version"),
                }
                _, template_version = self._launch_template(spec)
            image = self._image(
                cluster,
                ami_type=nodegroup.ami_type,
                version=self._get_param("version"),
                release=self._get_param("releaseVersion"),
                template_version=template_version,
                instance_types=[state.image.instance_type],
            )
            if catalog.minor(image.version) < catalog.minor(nodegroup.version):
                raise InvalidParameterException(
                    clusterName=name,
                    nodegroupName=nodegroup_name,
                    message=f"Requested Nodegroup version {image.version} is older than its current "
                    f"version {nodegroup.version}",
                )
            faults = sim.cluster_sim(*self._key(name)).faults_for(nodegroup_name)
            desired = int(nodegroup.scaling_config.get("desiredSize", 0))
            now = self._now()
            errors: list[dict[str, Any]] = []
            duration = sim.timings.nodegroup_update
            shortage = faults.capacity_shortage is not None and faults.capacity_shortage < desired
            if faults.nodes_never_ready:
                duration = sim.timings.node_join_timeout
                errors.append(
                    {
                        "errorCode": "NodeCreationFailure",
                        "errorMessage": "Instances failed to join the kubernetes cluster",
                        "resourceIds": [nodegroup_name],
                    }
                )
            elif shortage:
                errors.append(
                    {
                        "errorCode": "NodeCreationFailure",
                        "errorMessage": self._capacity_issue(nodegroup, state)["message"],
                        "resourceIds": [nodegroup_name],
                    }
                )
            params = {"Version": image.version}
            if image.release_version:
                params["ReleaseVersion"] = image.release_version
            if nodegroup.launch_template:
                params["LaunchTemplateName"] = nodegroup.launch_template.get("name", "")
                params["LaunchTemplateVersion"] = str(image.launch_template_version)
            update = SimUpdate(
                id=str(uuid.uuid4()),
                cluster=name,
                type="VersionUpdate",
                params=params,
                created_at=now,
                duration=duration,
                outcome="Failed" if errors else "Successful",
                errors=errors,
                nodegroup=nodegroup_name,
            )
            self._record(update, scope, token)
            previous_status = nodegroup.status
            nodegroup.status = "UPDATING"
            nodegroup.modified_at = sim.clock.to_datetime(now)
            account, region = self.current_account, self.region
            world = sim.world(account, region, name)
            if world is not None and not errors:
                self._roll(world, update, nodegroup, state, image, desired, now)
                return ActionResult({"update": sim.render(update)})
            end = now + duration

            def finish() -> None:
                if cluster.nodegroups.get(nodegroup_name) is not nodegroup:
                    return
                nodegroup.modified_at = sim.clock.to_datetime(end)
                if errors:
                    nodegroup.status = "DEGRADED" if shortage else previous_status
                    if shortage:
                        nodegroup.health = {"issues": [self._capacity_issue(nodegroup, state)]}
                    return
                nodegroup.version = image.version
                nodegroup.release_version = image.release_version
                if nodegroup.launch_template:
                    nodegroup.launch_template["version"] = image.launch_template_version
                nodegroup.status = "ACTIVE"
                nodegroup.health = {"issues": []}
                state.image = image
                self._terminate(account, region, name, nodegroup_name, state)
                self._launch(account, region, name, nodegroup, state, desired, end)

            sim.schedule(account, region, end, finish)
            return ActionResult({"update": sim.render(update)})

    def _roll(
        self,
        world: ClusterNodes,
        update: SimUpdate,
        nodegroup: Any,
        state: NodegroupSim,
        image: NodeImage,
        desired: int,
        now: float,
    ) -> None:
        """UpdateNodegroupVersion as a rolling replacement in the cluster's world (module docstring)."""
        sim = self.simulation
        account, region, cluster = self.current_account, self.region, self._get_param("name")
        old_nodes = world.node_names(nodegroup.nodegroup_name)
        update.duration = float("inf")  # InProgress until the world reports the drain finished
        config = nodegroup.update_config or {}
        unavailable = int(config.get("maxUnavailable") or 0) or max(
            1, desired * int(config.get("maxUnavailablePercentage") or 0) // 100
        )
        ready_at = now + sim.timings.nodes_join_before_active
        previous = state.image
        state.image = image
        self._launch(account, region, cluster, nodegroup, state, desired, ready_at)
        state.image = previous

        def done(succeeded: bool, at: float, error: str | None) -> None:
            update.duration = max(0.0, at - update.created_at)
            nodegroup.modified_at = sim.clock.to_datetime(at)
            nodegroup.status = "ACTIVE"
            if not succeeded:
                update.outcome = "Failed"
                update.errors = [
                    {
                        "errorCode": error,
                        "errorMessage": "Reached max retries while trying to evict pods from nodes in "
                        f"node group {nodegroup.nodegroup_name}",
                        "resourceIds": world.node_names(nodegroup.nodegroup_name),
                    }
                ]
                return
            nodegroup.version = image.version
            nodegroup.release_version = image.release_version
            if nodegroup.launch_template:
                nodegroup.launch_template["version"] = image.launch_template_version
            nodegroup.health = {"issues": []}
            state.image = image

        world.rolling_update(
            nodegroup.nodegroup_name,
            old_nodes,
            max_unavailable=unavailable,
            eviction_timeout=sim.timings.pod_eviction_timeout,
            done=done,
            start_at=ready_at,
        )

    def update_nodegroup_config(self) -> ActionResult:
        """moto applies the change at once; the update is recorded so DescribeUpdate finds it."""
        result = super().update_nodegroup_config()
        moto_update = result.result["update"]  # type: ignore[index]
        update = SimUpdate(
            id=moto_update["id"],
            cluster=self._get_param("name"),
            type="ConfigUpdate",
            params={p["type"]: p["value"] for p in moto_update["params"]},
            created_at=self._now(),
            duration=0.0,
            outcome="Successful",
            nodegroup=self._get_param("nodegroupName"),
        )
        self._record(update, f"nodegroup/{update.nodegroup}", update.id)
        return ActionResult({"update": self.simulation.render(update)})

    # -- add-ons ---------------------------------------------------------------------------------
    def _check_compatible(self, cluster: Any, addon: str, version: str) -> None:
        compatible = [v.version for v in self.simulation.addon_versions(addon, cluster.version)]
        if version not in compatible:
            raise InvalidParameterException(
                clusterName=cluster.name,
                addonName=addon,
                message=f"Addon version {version} of {addon} is not compatible with Kubernetes version "
                f"{cluster.version} of cluster {cluster.name}",
            )

    def _conflict_issue(self, addon: str) -> dict[str, Any]:
        fields = "\n".join(catalog.ADDONS[addon].conflicts)
        return {
            "code": "ConfigurationConflict",
            "message": "Conflicts found when trying to apply. Will not continue due to resolve conflicts "
            f"mode. Conflicts:\n{fields}",
            "resourceIds": [],
        }

    def create_addon(self) -> ActionResult:
        sim = self.simulation
        name = self._get_param("name")
        addon_name = self._get_param("addonName")
        token = self._get_param("clientRequestToken")
        resolve = self._get_param("resolveConflicts") or "NONE"
        with sim.lock:
            cluster = self._cluster(name)
            key = self._key(name)
            existing = sim.addons[key].get(addon_name)
            if existing is not None:
                if token and existing.client_request_token == token:
                    return ActionResult({"addon": sim.render_addon(existing)})
                raise ResourceInUseException(
                    clusterName=name, addonName=addon_name, message=f"Addon {addon_name} already exists."
                )
            if resolve == "PRESERVE":
                raise InvalidParameterException(
                    clusterName=name,
                    addonName=addon_name,
                    message="Resolve conflicts option PRESERVE is not supported for operation CreateAddon",
                )
            if addon_name not in catalog.ADDONS:
                raise InvalidParameterException(
                    clusterName=name,
                    addonName=addon_name,
                    message=f"Addon {addon_name} specified is not supported",
                )
            if cluster.status != "ACTIVE":
                raise InvalidRequestException(message=f"Cluster '{name}' is not in ACTIVE status")
            version = self._get_param("addonVersion") or sim.default_addon_version(
                addon_name, cluster.version
            )
            if version is None:
                raise InvalidParameterException(
                    clusterName=name,
                    addonName=addon_name,
                    message=f"Addon {addon_name} has no version compatible with Kubernetes {cluster.version}",
                )
            self._check_compatible(cluster, addon_name, version)
            now = self._now()
            addon = AddonSim(
                name=addon_name,
                cluster=name,
                arn=f"arn:aws:eks:{self.region}:{self.current_account}:addon/{name}/{addon_name}/{uuid.uuid4()}",
                version=version,
                status="CREATING",
                created_at=now,
                modified_at=now,
                configuration_values=self._get_param("configurationValues"),
                service_account_role_arn=self._get_param("serviceAccountRoleArn"),
                tags=self._get_param("tags") or {},
                client_request_token=token,
            )
            sim.addons[key][addon_name] = addon
            state = sim.cluster_sim(*key)
            conflict = addon_name in state.addon_conflicts and resolve == "NONE"
            end = now + sim.timings.addon_create

            def created() -> None:
                if addon.status != "CREATING":
                    return
                addon.modified_at = end
                if conflict:
                    addon.status, addon.issues = "CREATE_FAILED", [self._conflict_issue(addon_name)]
                    return
                if resolve == "OVERWRITE":
                    state.addon_conflicts.discard(addon_name)
                addon.status = "ACTIVE"

            sim.schedule(self.current_account, self.region, end, created)
            return ActionResult({"addon": sim.render_addon(addon)})

    def describe_addon(self) -> ActionResult:
        cluster = self._cluster(self._get_param("name"))
        return ActionResult(
            {"addon": self.simulation.render_addon(self._addon(cluster, self._get_param("addonName")))}
        )

    def list_addons(self) -> ActionResult:
        name = self._get_param("name")
        self._cluster(name)
        return ActionResult(self._page(name, "addons", sorted(self.simulation.addons[self._key(name)])))

    def update_addon(self) -> ActionResult:
        sim = self.simulation
        name = self._get_param("name")
        addon_name = self._get_param("addonName")
        token = self._get_param("clientRequestToken") or str(uuid.uuid4())
        scope = f"addon/{addon_name}"
        resolve = self._get_param("resolveConflicts")
        values = self._get_param("configurationValues")
        role = self._get_param("serviceAccountRoleArn")
        with sim.lock:
            cluster = self._cluster(name)
            addon = self._addon(cluster, addon_name)
            version = self._get_param("addonVersion") or addon.version
            known = self._known_update(name, scope, token, {"AddonVersion": version})
            if known is not None:
                return ActionResult({"update": sim.render(known)})
            if self._in_progress(name, addon=addon_name) or addon.status in (
                "CREATING",
                "UPDATING",
                "DELETING",
            ):
                raise ResourceInUseException(
                    clusterName=name,
                    addonName=addon_name,
                    message=f"Addon {addon_name} is in {addon.status} state; it cannot be updated now",
                )
            self._check_compatible(cluster, addon_name, version)
            state = sim.cluster_sim(*self._key(name))
            conflict = addon_name in state.addon_conflicts and (resolve or "NONE") == "NONE"
            params = {"AddonVersion": version}
            for key, value in (
                ("ResolveConflicts", resolve),
                ("ConfigurationValues", values),
                ("ServiceAccountRoleArn", role),
            ):
                if value is not None:
                    params[key] = value
            now = self._now()
            issue = self._conflict_issue(addon_name) if conflict else None
            update = SimUpdate(
                id=str(uuid.uuid4()),
                cluster=name,
                type="AddonUpdate",
                params=params,
                created_at=now,
                duration=sim.timings.addon_update,
                outcome="Failed" if conflict else "Successful",
                errors=(
                    [
                        {
                            "errorCode": "ConfigurationConflict",
                            "errorMessage": issue["message"],
                            "resourceIds": [],
                        }
                    ]
                    if issue
                    else []
                ),
                addon=addon_name,
            )
            self._record(update, scope, token)
            addon.status = "UPDATING"
            addon.modified_at = now
            end = now + update.duration

            def finish() -> None:
                if addon.status != "UPDATING":
                    return
                addon.modified_at = end
                if issue is not None:
                    addon.status, addon.issues = "UPDATE_FAILED", [issue]
                    return
                addon.version = version
                if values is not None:
                    addon.configuration_values = values
                if role is not None:
                    addon.service_account_role_arn = role
                if resolve == "OVERWRITE":
                    state.addon_conflicts.discard(addon_name)
                addon.status, addon.issues = "ACTIVE", []

            sim.schedule(self.current_account, self.region, end, finish)
            return ActionResult({"update": sim.render(update)})

    def delete_addon(self) -> ActionResult:
        sim = self.simulation
        name = self._get_param("name")
        addon_name = self._get_param("addonName")
        with sim.lock:
            cluster = self._cluster(name)
            addon = self._addon(cluster, addon_name)
            if addon.status != "DELETING":
                addon.status = "DELETING"
                addon.modified_at = self._now()
                addons = sim.addons[self._key(name)]

                def gone() -> None:
                    if addons.get(addon_name) is addon:
                        del addons[addon_name]

                sim.schedule(self.current_account, self.region, self._now() + sim.timings.addon_delete, gone)
            return ActionResult({"addon": sim.render_addon(addon)})

    def describe_addon_versions(self) -> ActionResult:
        sim = self.simulation
        wanted = self._get_param("addonName")
        kubernetes_version = self._get_param("kubernetesVersion")
        types = self.querystring.get("types") or []
        owners = self.querystring.get("owners") or []
        publishers = self.querystring.get("publishers") or []
        addons = []
        for spec in catalog.ADDONS.values():
            if (wanted and spec.name != wanted) or (types and spec.type not in types):
                continue
            if (owners and "aws" not in owners) or (publishers and "eks" not in publishers):
                continue
            versions = []
            for version in spec.versions:
                clusters = [
                    c
                    for c in version.cluster_versions
                    if (spec.name, c) not in sim.addon_without_compatible_version
                    and (not kubernetes_version or c == kubernetes_version)
                ]
                if not clusters:
                    continue
                versions.append(
                    {
                        "addonVersion": version.version,
                        "architecture": ["amd64", "arm64"],
                        "computeTypes": ["ec2"],
                        "compatibilities": [
                            {
                                "clusterVersion": c,
                                "platformVersions": ["*"],
                                "defaultVersion": c in version.default_for,
                            }
                            for c in clusters
                        ],
                        "requiresConfiguration": False,
                        "requiresIamPermissions": spec.requires_iam_permissions,
                    }
                )
            if versions:
                addons.append(
                    {
                        "addonName": spec.name,
                        "type": spec.type,
                        "addonVersions": versions,
                        "publisher": "eks",
                        "owner": "aws",
                        "defaultNamespace": "kube-system",
                    }
                )
        return ActionResult(self._page("", "addons", addons))

    # -- insights --------------------------------------------------------------------------------
    def _insights(self, cluster: Any) -> list[dict[str, Any]]:
        sim = self.simulation
        key = self._key(cluster.name)
        now = self._now()
        target = catalog.next_minor(cluster.version)
        insights = []

        behind = [
            ng
            for ng in cluster.nodegroups.values()
            if ng.status != "DELETING" and ng.version != cluster.version
        ]
        skew_status = "ERROR" if behind else "PASSING"
        skew_reason = (
            "Node groups run a kubelet older than the control plane: "
            + ", ".join(f"{ng.nodegroup_name} ({ng.version})" for ng in behind)
            if behind
            else "All managed node groups run the control plane's Kubernetes version."
        )
        insights.append(
            {
                "name": KUBELET_SKEW_INSIGHT,
                "description": "Checks for worker nodes whose kubelet version would violate the Kubernetes "
                "version skew policy, or block the update, when the control plane moves to the next version.",
                "status": skew_status,
                "reason": skew_reason,
                "recommendation": f"Update the listed node groups to Kubernetes {cluster.version} before "
                f"upgrading the cluster to {target}.",
                "additionalInfo": {
                    "Kubernetes version skew policy": "https://kubernetes.io/releases/version-skew-policy/"
                },
                "resources": [
                    {
                        "insightStatus": {
                            "status": "ERROR",
                            "reason": f"Kubelet {catalog.kubelet_version(ng.version)} is behind the control "
                            f"plane version {cluster.version}",
                        },
                        "arn": ng.arn,
                    }
                    for ng in behind
                ],
            }
        )

        installed = [a for a in sim.addons[key].values() if a.status != "DELETING"]
        details = [
            {"name": a.name, "compatibleVersions": [v.version for v in sim.addon_versions(a.name, target)]}
            for a in installed
        ]
        missing = [d["name"] for d in details if not d["compatibleVersions"]]
        if target not in catalog.KUBERNETES_VERSIONS:
            addon_status, addon_reason = "UNKNOWN", f"Kubernetes {target} is not available yet."
        elif missing:
            addon_status = "ERROR"
            addon_reason = f"No version compatible with Kubernetes {target}: {', '.join(missing)}"
        else:
            addon_status, addon_reason = (
                "PASSING",
                f"Every installed add-on has a version for Kubernetes {target}.",
            )
        arns = {a.name: a.arn for a in installed}
        insights.append(
            {
                "name": ADDON_COMPATIBILITY_INSIGHT,
                "description": "Checks version of installed EKS add-ons to ensure they are compatible with the "
                "next version of Kubernetes.",
                "status": addon_status,
                "reason": addon_reason,
                "recommendation": "Update the add-ons to a version compatible with the target Kubernetes version.",
                "additionalInfo": {
                    "Amazon EKS add-ons": "https://docs.aws.amazon.com/eks/latest/userguide/eks-add-ons.html"
                },
                "resources": [
                    {
                        "insightStatus": {"status": "ERROR", "reason": f"{name} has no version for {target}"},
                        "arn": arns[name],
                    }
                    for name in missing
                ],
                "categorySpecificSummary": {"addonCompatibilityDetails": details},
            }
        )

        rendered = []
        for insight in insights:
            state_key = (*key, insight["name"])
            previous = sim.insight_states.get(state_key)
            if previous is None or previous[0] != insight["status"]:
                sim.insight_states[state_key] = (insight["status"], now)
            since = sim.insight_states[state_key][1]
            body = {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{cluster.arn}/insights/{insight['name']}")),
                "name": insight["name"],
                "category": "UPGRADE_READINESS",
                "kubernetesVersion": target,
                "lastRefreshTime": sim.clock.to_datetime(now),
                "lastTransitionTime": sim.clock.to_datetime(since),
                "description": insight["description"],
                "insightStatus": {"status": insight["status"], "reason": insight["reason"]},
                "recommendation": insight["recommendation"],
                "additionalInfo": insight["additionalInfo"],
                "resources": insight["resources"],
            }
            if "categorySpecificSummary" in insight:
                body["categorySpecificSummary"] = insight["categorySpecificSummary"]
            rendered.append(body)
        return rendered

    def list_insights(self) -> ActionResult:
        name = self._get_param("name")
        cluster = self._cluster(name)
        wanted = self._get_param("filter") or {}
        summary_fields = (
            "id",
            "name",
            "category",
            "kubernetesVersion",
            "lastRefreshTime",
            "lastTransitionTime",
            "description",
            "insightStatus",
        )
        summaries = [
            {k: insight[k] for k in summary_fields}
            for insight in self._insights(cluster)
            if (not wanted.get("categories") or insight["category"] in wanted["categories"])
            and (
                not wanted.get("kubernetesVersions")
                or insight["kubernetesVersion"] in wanted["kubernetesVersions"]
            )
            and (not wanted.get("statuses") or insight["insightStatus"]["status"] in wanted["statuses"])
        ]
        return ActionResult(self._page(name, "insights", summaries))

    def describe_insight(self) -> ActionResult:
        name = self._get_param("name")
        insight_id = self._get_param("id")
        cluster = self._cluster(name)
        for insight in self._insights(cluster):
            if insight["id"] == insight_id:
                return ActionResult({"insight": insight})
        raise ResourceNotFoundException(clusterName=name, message=f"No insight found for id: {insight_id}.")


# -- SSM public parameters and EC2 images ---------------------------------------------------------
_PARAMETERS_DATE = dt.datetime(2024, 5, 22, 18, 0, tzinfo=dt.UTC)


def _wants_eks_parameters(key: str) -> bool:
    prefix = catalog.SSM_AMI_PREFIX
    return key.startswith(prefix) or (key.startswith("/aws/service") and prefix.startswith(key))


def _load_public_parameters(parameters: ParameterDict) -> None:
    for name, value in catalog.public_parameters(parameters.region_name).items():
        defaultdict.__getitem__(parameters, name).append(
            Parameter(
                account_id=parameters.account_id,
                name=name,
                value=value,
                parameter_type="String",
                description=None,
                allowed_pattern=None,
                keyid=None,
                last_modified_date=_PARAMETERS_DATE,
                version=1,
                data_type="text",
            )
        )
    register_eks_images(parameters.account_id, parameters.region_name)


def register_eks_images(account: str, region: str) -> None:
    """Make the EKS-optimized AMIs the public parameters name exist as public EC2 images."""
    ec2 = ec2_backends[account][region]
    for image_id, version, ami_type in catalog.published_amis(region):
        fl = catalog.flavor(ami_type)
        if fl.ssm_path is None or image_id in ec2.amis:
            continue
        ec2.amis[image_id] = Ami(
            ec2,
            image_id,
            name=catalog.ami_name(version, ami_type),
            description=f"EKS Kubernetes Worker AMI ({fl.os}, k8s: {catalog.kubelet_version(version)})",
            owner_id=catalog.EKS_AMI_OWNER,
            owner_alias="amazon",
            public=True,
            virtualization_type="hvm",
            architecture=fl.architecture,
            creation_date=_PARAMETERS_DATE,
            hypervisor="xen",
            root_device_type="ebs",
            root_device_name="/dev/xvda",
            region_name=f"{region}a",
        )


@contextlib.contextmanager
def eks_public_parameters() -> Iterator[None]:
    """Serve the EKS AMI public parameters in every account and region while open."""
    original = ParameterDict._check_loading_status

    def check_loading_status(self: ParameterDict, key: str) -> None:
        original(self, key)
        if _wants_eks_parameters(str(key or "")) and not getattr(self, "_eks_parameters_loaded", False):
            self._eks_parameters_loaded = True  # type: ignore[attr-defined]
            _load_public_parameters(self)

    ParameterDict._check_loading_status = check_loading_status  # type: ignore[method-assign]
    try:
        yield
    finally:
        ParameterDict._check_loading_status = original  # type: ignore[method-assign]


@contextlib.contextmanager
def eks_extension(simulation: EksSimulation) -> Iterator[EksSimulation]:
    """Route every EKS path to :class:`SimEksResponse`, and serve the EKS public parameters, while open."""
    saved = dict(eks_urls.url_paths)
    SimEksResponse.simulation = simulation
    for path in list(eks_urls.url_paths) + sorted(NEW_PATHS):
        eks_urls.url_paths[path] = SimEksResponse.dispatch
    try:
        with eks_public_parameters():
            yield simulation
    finally:
        eks_urls.url_paths.clear()
        eks_urls.url_paths.update(saved)
