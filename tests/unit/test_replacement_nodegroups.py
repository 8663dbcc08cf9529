"""Replacement node groups (functions/upgrader/nodegroups.py): the plan, the twin's design, and its
create / adopt / ready / abandon / retire lifecycle, on in-memory fakes."""

from __future__ import annotations

import base64
from email import message_from_string
from typing import Any

import pytest
from upgrader import nodegroups
from upgrader.errors import (
    NodegroupDeletionFailed,
    NodegroupNameTaken,
    NodeImageNotFound,
    ReplacementNodegroupNotReady,
    UnmigratableDockerNodes,
)
from upgrader.gateways.eks import LaunchTemplateRef, NodegroupInfo
from upgrader.migration_models import DeletionProgress, GroupRequest, PlannedGroup
from upgrader.models import ClusterRef, ClusterUpgradeRequest, RunRef
from upgrader.polling import WaitPlan
from upgrader.versions import NODEGROUP_CREATE, NODEGROUP_DELETE

from simulator.clock import VirtualClock
from simulator.kube.world import KubeWorld
from tests.fakes import FakeLaunchTemplates, FakeNodegroups, FakeParameters, WorldClusterNodes

CLUSTER = "payments-prod"
AMI_123 = "ami-0aaaaaaaaaaaaaaaa"
AMI_PARAMETER = "/aws/service/eks/optimized-ami/1.23/amazon-linux-2/recommended/image_id"
RUN = RunRef(
    execution_id="arn:aws:states:us-east-1:123456789012:execution:cluster_upgrade:e1", execution_name="e1"
)
REF = ClusterRef(account_id="111111111111", region="eu-west-1", name=CLUSTER)
CREATE = WaitPlan(NODEGROUP_CREATE)
DELETE = WaitPlan(NODEGROUP_DELETE)


def old_group(**changes: Any) -> NodegroupInfo:
    values: dict[str, Any] = {
        "name": "general",
        "status": "ACTIVE",
        "version": "1.23",
        "ami_type": "AL2_x86_64",
        "capacity_type": "SPOT",
        "instance_types": ("m5.large", "m5a.large"),
        "scaling": {"minSize": 2, "maxSize": 5, "desiredSize": 3},
        "subnets": ("subnet-1", "subnet-2"),
        "node_role": "arn:aws:iam::111111111111:role/eks-node-role",
        "labels": {"team": "payments"},
        "taints": ({"key": "dedicated", "value": "payments", "effect": "NO_SCHEDULE"},),
        "tags": {"cost-center": "42", "aws:cloudformation:stack-name": "infra"},
        "disk_size": 50,
        "remote_access": {"ec2SshKey": "ops", "sourceSecurityGroups": ["sg-bastion"]},
        "update_config": {"maxUnavailablePercentage": 25},
    }
    return NodegroupInfo(**(values | changes))


class Env:
    def __init__(self, version: str = "1.23") -> None:
        self.eks = FakeNodegroups(CLUSTER, version)
        self.ec2 = FakeLaunchTemplates()
        self.ssm = FakeParameters({AMI_PARAMETER: AMI_123})
        self.clock = VirtualClock()
        self.world = KubeWorld(CLUSTER, self.clock, version)
        self.kube = WorldClusterNodes(self.world)

    def nodes(
        self, group: str, count: int, runtime: str, *, ready: bool = True, labels: dict | None = None
    ) -> None:
        self.world.register_nodes(
            group,
            [f"i-{group}-{i}" for i in range(count)],
            kubelet_version="v1.23.17-eks-a59e1f0",
            container_runtime=runtime,
            instance_type="m5.large",
            labels={"eks.amazonaws.com/nodegroup": group, **(labels or {})} if group else dict(labels or {}),
            taints=[],
            pods_per_node=17,
            ready_at=self.clock.now() if ready else None,
        )
        self.world.advance()

    def request(self, **state: Any) -> GroupRequest:
        return GroupRequest(
            run=RunRef(execution_id=RUN.execution_id, execution_name="e1"),
            cluster=REF,
            group=PlannedGroup(old="general", new="general-containerd"),
            **state,
        )


@pytest.fixture
def env() -> Env:
    return Env()


def upgrade_request() -> ClusterUpgradeRequest:
    return ClusterUpgradeRequest(run=RUN, cluster=REF, from_version="1.23", to_version="1.24")


# -- names ----------------------------------------------------------------------------------------------
def test_names_are_deterministic_and_fit_eks_limits():
    assert nodegroups.replacement_name("general") == "general-containerd"
    long = "x" * 60
    first, again = nodegroups.replacement_name(long), nodegroups.replacement_name(long)
    assert first == again and len(first) <= 63 and first.endswith("-containerd")
    assert nodegroups.replacement_name(long + "a") != nodegroups.replacement_name(long + "b")
    assert len(nodegroups.launch_template_name("c" * 100, first)) <= 128


# -- plan -----------------------------------------------------------------------------------------------
def test_plan_replaces_docker_groups_and_says_what_it_skips(env):
    env.eks.add(old_group())
    env.eks.add(old_group(name="bottlerocket", ami_type="BOTTLEROCKET_x86_64"))
    env.eks.add(old_group(name="empty", scaling={"minSize": 0, "maxSize": 1, "desiredSize": 0}))
    env.nodes("general", 2, "docker://20.10.25")
    env.nodes("bottlerocket", 1, "containerd://1.6.19")
    env.nodes("", 1, "containerd://1.6.19", labels={"karpenter.sh/nodepool": "default"})
    plan = nodegroups.plan(env.eks, env.kube, upgrade_request())
    assert [(g.old, g.new, g.nodes) for g in plan.groups] == [
        ("empty", "empty-containerd", 0),  # no nodes: AL2 on 1.23 runs Docker
        ("general", "general-containerd", 2),
    ]
    assert {(s.name, s.management, s.severity) for s in plan.skipped} == {
        ("bottlerocket", "managed", "info"),
        ("default", "karpenter", "warning"),
    }
    assert [(d.kind, d.name) for d in plan.planned_deletions] == [
        ("Nodegroup", name) for name in ("empty", "empty-containerd", "general", "general-containerd")
    ]
    assert env.eks.mutating_calls() == []


def test_plan_blocks_on_docker_nodes_it_cannot_replace(env):
    env.eks.add(old_group())
    env.nodes("general", 1, "docker://20.10.25")
    env.nodes("", 2, "docker://20.10.25", labels={"alpha.eksctl.io/nodegroup-name": "legacy-asg"})
    with pytest.raises(UnmigratableDockerNodes) as caught:
        nodegroups.plan(env.eks, env.kube, upgrade_request())
    assert "legacy-asg (self-managed: 2 self-managed node(s) run Docker)" in caught.value.message
    assert caught.value.details["blocking"][0]["nodes"] == ["i--0", "i--1"]


def test_plan_skips_replacements_and_resumes_a_retirement(env):
    twin_tags = nodegroups.our_tags(CLUSTER, "general")
    env.eks.add(old_group(status="DELETING"))
    env.eks.add(old_group(name="general-containerd", tags=twin_tags, ami_type="CUSTOM"))
    env.nodes("general", 1, "docker://20.10.25")
    env.nodes("general-containerd", 1, "containerd://1.6.19")
    plan = nodegroups.plan(env.eks, env.kube, upgrade_request())
    assert [(g.old, g.new, g.phase) for g in plan.groups] == [("general", "general-containerd", "retire")]


# -- design ---------------------------------------------------------------------------------------------
def _user_data(design) -> str:
    return base64.b64decode(design.template_data["UserData"]).decode()


def test_on_1_23_the_twin_is_a_custom_ami_launch_template_that_bootstraps_containerd(env):
    design = nodegroups.design_replacement(
        old_group(), env.eks.access, "general-containerd", old_template_data=None, image_id=AMI_123
    )
    spec, data = design.spec, design.template_data
    # Same shape as the old group
    assert spec.instance_types == ("m5.large", "m5a.large") and spec.capacity_type == "SPOT"
    assert dict(spec.scaling) == {"minSize": 2, "maxSize": 5, "desiredSize": 3}
    assert spec.subnets == ("subnet-1", "subnet-2") and spec.labels == {"team": "payments"}
    assert spec.taints[0]["key"] == "dedicated" and spec.update_config == {"maxUnavailablePercentage": 25}
    assert spec.node_role.endswith("eks-node-role")
    # Tags: the old ones (not aws:*) and ours
    assert spec.tags["cost-center"] == "42" and "aws:cloudformation:stack-name" not in spec.tags
    assert nodegroups.is_ours(spec.tags, CLUSTER, "general")
    # Custom AMI: no amiType/version; disk and SSH key move into the template
    assert (spec.ami_type, spec.version, spec.disk_size, spec.remote_access) == (None, None, None, None)
    assert data["ImageId"] == AMI_123
    assert data["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 50
    assert data["KeyName"] == "ops"
    assert any("sg-bastion" in w for w in design.warnings)
    script = _user_data(design)
    assert script.startswith("#!/bin/bash")
    line = next(li for li in script.splitlines() if "bootstrap.sh" in li)
    assert line.startswith("/etc/eks/bootstrap.sh payments-prod --container-runtime containerd")
    assert "--apiserver-endpoint https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com" in line
    assert "--dns-cluster-ip 10.100.0.10" in line
    assert "eks.amazonaws.com/nodegroup=general-containerd" in line and "team=payments" in line
    assert "--register-with-taints=dedicated=payments:NoSchedule" in line


MIME_USER_DATA = """MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="==BOUNDARY=="

--==BOUNDARY==
Content-Type: text/x-shellscript; charset="us-ascii"

#!/bin/bash
echo "net.core.somaxconn=4096" >> /etc/sysctl.conf
cat > /etc/docker/daemon.json <<EOF
{"registry-mirrors": ["https://mirror.example"]}
EOF

--==BOUNDARY==
Content-Type: text/cloud-config; charset="us-ascii"

#cloud-config
packages: [jq]

--==BOUNDARY==--
"""


def test_old_user_data_that_still_applies_is_kept_and_docker_settings_are_flagged(env):
    old = old_group(
        launch_template=LaunchTemplateRef(id="lt-old", version="3"), disk_size=None, remote_access=None
    )
    old_data = {
        "UserData": base64.b64encode(MIME_USER_DATA.encode()).decode(),
        "SecurityGroupIds": ["sg-nodes"],
        "MetadataOptions": {"HttpTokens": "required"},
        "ImageId": "ami-ignored",
    }
    design = nodegroups.design_replacement(
        old, env.eks.access, "general-containerd", old_template_data=old_data, image_id=AMI_123
    )
    data = design.template_data
    assert data["SecurityGroupIds"] == ["sg-nodes"] and data["MetadataOptions"] == {"HttpTokens": "required"}
    assert data["ImageId"] == AMI_123 and "BlockDeviceMappings" not in data
    parts = [
        (p.get_content_type(), p.get_payload(decode=True).decode())
        for p in message_from_string(_user_data(design)).walk()
        if not p.is_multipart()
    ]
    assert [kind for kind, _ in parts] == ["text/x-shellscript", "text/cloud-config", "text/x-shellscript"]
    assert "somaxconn" in parts[0][1] and "packages: [jq]" in parts[1][1]
    assert "--container-runtime containerd" in parts[2][1]
    assert any("/etc/docker/daemon.json" in w for w in design.warnings)


def test_an_old_bootstrap_call_is_rewritten_for_containerd(env):
    script = (
        "#!/bin/bash\nset -e\n/etc/eks/bootstrap.sh payments-prod --container-runtime dockerd "
        '--enable-docker-bridge true --docker-config-json \'{"bip": "172.18.0.1/16"}\' '
        "--kubelet-extra-args '--node-labels=eks.amazonaws.com/nodegroup=general --max-pods=58'\n"
    )
    old = old_group(ami_type="CUSTOM", launch_template=LaunchTemplateRef(id="lt-old", version="1"))
    design = nodegroups.design_replacement(
        old,
        env.eks.access,
        "general-containerd",
        old_template_data={"UserData": base64.b64encode(script.encode()).decode(), "ImageId": "ami-old"},
        image_id=AMI_123,
    )
    line = next(li for li in _user_data(design).splitlines() if "bootstrap.sh" in li)
    assert "--container-runtime containerd" in line and "dockerd" not in line
    assert "--enable-docker-bridge" not in line and "--docker-config-json" not in line
    assert "eks.amazonaws.com/nodegroup=general-containerd --max-pods=58" in line
    assert _user_data(design).count("bootstrap.sh") == 1
    assert any("Docker-only bootstrap flags" in w for w in design.warnings)


def test_from_1_24_the_twin_uses_the_native_ami_type():
    env = Env("1.24")
    design = nodegroups.design_replacement(
        old_group(), env.eks.access, "general-containerd", old_template_data=None, image_id=None
    )
    assert design.template_data is None
    spec = design.spec
    assert (spec.ami_type, spec.version, spec.disk_size) == ("AL2_x86_64", "1.24", 50)
    assert spec.remote_access == {"ec2SshKey": "ops", "sourceSecurityGroups": ["sg-bastion"]}
    custom = old_group(
        ami_type="CUSTOM", instance_types=("m6g.large",), launch_template=LaunchTemplateRef("lt", "1")
    )
    script = "#!/bin/bash\necho hi\n/etc/eks/bootstrap.sh payments-prod\n"
    design = nodegroups.design_replacement(
        custom,
        env.eks.access,
        "general-containerd",
        old_template_data={"UserData": base64.b64encode(script.encode()).decode(), "ImageId": "ami-old"},
        image_id=None,
    )
    assert design.spec.ami_type == "AL2_ARM_64" and "ImageId" not in design.template_data
    text = _user_data(design)
    assert (
        text.startswith("Content-Type: multipart/mixed") and "echo hi" in text and "bootstrap.sh" not in text
    )


# -- create / adopt --------------------------------------------------------------------------------------
def test_create_makes_a_template_and_the_twin_with_a_deterministic_token(env):
    env.eks.add(old_group())
    status = nodegroups.create_replacement(env.eks, env.ec2, env.ssm, env.request(), CREATE)
    assert (status.status, status.adopted, status.next_wait_seconds) == ("Creating", False, 180)
    assert status.image_id == AMI_123 and env.ssm.calls == [AMI_PARAMETER]
    created = env.eks.created[0]
    assert created.launch_template.id == status.launch_template_id
    template = env.ec2.templates[nodegroups.launch_template_name(CLUSTER, "general-containerd")]
    assert nodegroups.is_ours(template.tags, CLUSTER, "general")
    token = env.eks.calls[-1][1][1]
    assert token == nodegroups.client_token(env.request(), "nodegroup")


def test_a_lost_create_response_retried_adopts_the_same_twin(env):
    env.eks.add(old_group())
    nodegroups.create_replacement(env.eks, env.ec2, env.ssm, env.request(), CREATE)
    again = nodegroups.create_replacement(env.eks, env.ec2, env.ssm, env.request(), CREATE)
    assert again.adopted is True
    assert len(env.eks.created) == 1 and len(env.ec2.templates) == 1


def test_a_name_taken_by_something_else_is_a_named_error_and_nothing_is_changed(env):
    env.eks.add(old_group())
    env.eks.add(old_group(name="general-containerd", tags={"owner": "someone"}))
    with pytest.raises(NodegroupNameTaken) as caught:
        nodegroups.create_replacement(env.eks, env.ec2, env.ssm, env.request(), CREATE)
    assert caught.value.details["name"] == "general-containerd"
    assert env.eks.mutating_calls() == [] and env.ec2.templates == {}


def test_a_foreign_launch_template_with_our_name_is_not_used(env):
    env.eks.add(old_group())
    env.ec2.add(nodegroups.launch_template_name(CLUSTER, "general-containerd"), {}, {"owner": "someone"})
    with pytest.raises(NodegroupNameTaken):
        nodegroups.create_replacement(env.eks, env.ec2, env.ssm, env.request(), CREATE)
    assert env.eks.mutating_calls() == []


def test_a_missing_ami_parameter_is_named(env):
    env.eks.add(old_group())
    env.ssm.values.clear()
    with pytest.raises(NodeImageNotFound):
        nodegroups.create_replacement(env.eks, env.ec2, env.ssm, env.request(), CREATE)


# -- readiness ------------------------------------------------------------------------------------------
def _created(env: Env):
    env.eks.add(old_group())
    return nodegroups.create_replacement(env.eks, env.ec2, env.ssm, env.request(), CREATE)


def test_ready_when_active_and_every_node_is_ready_on_containerd(env):
    status = _created(env)
    status = nodegroups.poll_replacement(env.eks, env.kube, env.request(replacement=status), CREATE)
    assert (status.status, status.next_wait_seconds, status.waited_seconds) == (
        "Creating",
        NODEGROUP_CREATE.poll_seconds,
        180,
    )
    env.eks.set_status("general-containerd", "ACTIVE")
    env.nodes("general-containerd", 3, "containerd://1.6.19")
    status = nodegroups.poll_replacement(env.eks, env.kube, env.request(replacement=status), CREATE)
    assert (status.status, status.ready_nodes, status.summary.status) == ("Ready", 3, "ready")


def test_nodes_that_run_docker_fail_the_twin(env):
    status = _created(env)
    env.eks.set_status("general-containerd", "ACTIVE")
    env.nodes("general-containerd", 3, "docker://20.10.25")
    with pytest.raises(ReplacementNodegroupNotReady, match="not containerd"):
        nodegroups.poll_replacement(env.eks, env.kube, env.request(replacement=status), CREATE)


def test_create_failed_or_a_deadline_fails_the_twin(env):
    status = _created(env)
    env.eks.set_status(
        "general-containerd", "CREATE_FAILED", health_issues=({"code": "NodeCreationFailure"},)
    )
    with pytest.raises(ReplacementNodegroupNotReady) as caught:
        nodegroups.poll_replacement(env.eks, env.kube, env.request(replacement=status), CREATE)
    assert caught.value.details["healthIssues"] == [{"code": "NodeCreationFailure"}]
    env.eks.set_status("general-containerd", "CREATING")
    env.nodes("general-containerd", 3, "containerd://1.6.19", ready=False)
    late = status.model_copy(update={"waited_seconds": 1790, "next_wait_seconds": 20})
    with pytest.raises(ReplacementNodegroupNotReady, match="not ready after 1810s"):
        nodegroups.poll_replacement(env.eks, env.kube, env.request(replacement=late), CREATE)


def test_a_degraded_twin_is_handed_to_the_capacity_check(env):
    status = _created(env)
    env.eks.set_status(
        "general-containerd", "DEGRADED", health_issues=({"message": "InsufficientInstanceCapacity"},)
    )
    env.nodes("general-containerd", 1, "containerd://1.6.19")
    status = nodegroups.poll_replacement(env.eks, env.kube, env.request(replacement=status), CREATE)
    assert status.status == "Ready" and any("DEGRADED" in w for w in status.warnings)


# -- abandon, retire, deletion ------------------------------------------------------------------------------
def test_abandon_deletes_only_our_twin(env):
    _created(env)
    progress = nodegroups.abandon_replacement(env.eks, env.request(), DELETE)
    assert (progress.nodegroup, progress.status) == ("general-containerd", "Deleting")
    assert env.eks.groups["general"].status == "ACTIVE"
    env.eks.groups["general-containerd"] = old_group(name="general-containerd", tags={})
    with pytest.raises(NodegroupNameTaken):
        nodegroups.abandon_replacement(env.eks, env.request(), DELETE)


def test_retire_waits_for_non_daemonset_pods_then_deletes_the_old_group(env):
    _created(env)
    env.eks.set_status("general-containerd", "ACTIVE")
    env.nodes("general", 1, "docker://20.10.25")
    env.world.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "straggler", "namespace": "default"},
            "spec": {"nodeName": "i-general-0", "containers": [{"name": "c", "image": "x"}]},
        }
    )
    progress = nodegroups.retire_old(env.eks, env.kube, env.request(), DELETE)
    assert progress.status == "NotEmpty" and env.eks.mutating_calls()[-1][0] == "create_nodegroup"
    env.world.expect_deletion("Pod", "straggler")
    env.world.delete("Pod", "default", "straggler")
    progress = nodegroups.retire_old(env.eks, env.kube, env.request(), DELETE)
    assert (progress.status, progress.next_wait_seconds) == ("Deleting", 120)
    assert env.eks.groups["general"].status == "DELETING"


def test_retire_never_deletes_the_old_group_without_its_twin(env):
    env.eks.add(old_group())
    with pytest.raises(ReplacementNodegroupNotReady):
        nodegroups.retire_old(env.eks, env.kube, env.request(), DELETE)
    assert env.eks.mutating_calls() == []


def test_deletion_polls_until_gone_and_fails_on_delete_failed(env):
    env.eks.add(old_group(status="DELETING"))
    progress = DeletionProgress(
        nodegroup="general",
        status="Deleting",
        next_wait_seconds=120,
        summary=nodegroups.summary(env.request(), "retiring"),
    )
    progress = nodegroups.poll_deletion(env.eks, env.request(deletion=progress), DELETE)
    assert (progress.status, progress.next_wait_seconds, progress.waited_seconds) == (
        "Deleting",
        NODEGROUP_DELETE.poll_seconds,
        120,
    )
    env.eks.finish_deletion("general")
    done = nodegroups.poll_deletion(env.eks, env.request(deletion=progress), DELETE)
    assert (done.status, done.summary.status) == ("Deleted", "retired")
    env.eks.add(old_group(status="DELETE_FAILED"))
    with pytest.raises(NodegroupDeletionFailed):
        nodegroups.poll_deletion(env.eks, env.request(deletion=progress), DELETE)
