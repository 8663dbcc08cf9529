"""The catalog of Lambda steps: the one list shared by the CDK app, the ASL and the local engine.

Each step is one Lambda function. The CDK app creates one function per entry (handler, role, log group)
and supplies ``arn_variable`` as a definition substitution; the local engine registers the same
handlers in moto and substitutes the same variables, so both run the identical ``*.asl.json``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepSpec:
    name: str  # PascalCase, used for construct ids and function names
    package: str  # directory under functions/ holding handler.py
    description: str
    assumes_target_role: bool  # needs sts:AssumeRole into fleet accounts
    writes_reports: bool = False  # puts its report under reports/ in the orchestrator's reports bucket
    # Changes the cluster: re-checks the fleet's lease on it first (step_handler; reads the run table).
    holds_cluster_lock: bool = False
    # Changes something once per state entry (a fleet cluster; the run table's locks and wave records; the
    # fleet report's metrics): runs under Powertools idempotency keyed by the state entry, so a retry after
    # a lost response returns the saved result instead of acting again (docs/architecture.md, Idempotency).
    # Every ASL state invoking it wraps its input in the invocation envelope; step_handler refuses it
    # without one. Not for read-only steps, nor for ReadinessCheck/VerifyUpgrade, whose only write
    # overwrites a fixed report key (running them again gives the fresher verdict).
    idempotent: bool = False
    # Runs once per round of one of the cluster workflow's loops (poll, drain, verify): checks first that
    # the execution's history is below its budget (upgrader/gateways/execution_history.py), so however
    # long the loops, the execution stops with a named error before Step Functions' 25,000-event quota.
    looping: bool = False

    @property
    def handler(self) -> str:
        return f"{self.package}.handler.lambda_handler"

    @property
    def arn_variable(self) -> str:
        """Name of the ``${...}`` substitution in the ASL files."""
        return f"{self.name}FunctionArn"


STEPS: tuple[StepSpec, ...] = (
    StepSpec(
        name="ValidateInput",
        package="validate_input",
        description="Validates the execution input against the JSON schema; makes no AWS call.",
        assumes_target_role=False,
    ),
    StepSpec(
        name="Preflight",
        package="preflight",
        description="Assumes the target role and checks the cluster is ACTIVE, on the source version, "
        "with no update in progress.",
        assumes_target_role=True,
    ),
    StepSpec(
        name="ReadinessCheck",
        package="readiness_check",
        description="Scans the cluster (Kubernetes objects, EKS and EC2 facts) with the readiness rules; "
        "blocking findings the input did not acknowledge stop the cluster before any change.",
        assumes_target_role=True,
        writes_reports=True,
    ),
    StepSpec(
        name="PlanNodegroupMigration",
        package="plan_nodegroup_migration",
        description="Finds the managed node groups still on Docker and their containerd twins; lists the nodes "
        "it does not migrate (blocking when they run Docker). Changes nothing.",
        assumes_target_role=True,
    ),
    StepSpec(
        name="CreateReplacementNodegroup",
        package="create_replacement_nodegroup",
        description="Creates (or adopts) the containerd twin of an old node group, with its launch template.",
        assumes_target_role=True,
        holds_cluster_lock=True,
        idempotent=True,
    ),
    StepSpec(
        name="PollReplacementNodegroup",
        package="poll_replacement_nodegroup",
        description="Waits for the twin: ACTIVE with every node Ready on containerd, or not ready by its deadline.",
        assumes_target_role=True,
        looping=True,
    ),
    StepSpec(
        name="AbandonReplacementNodegroup",
        package="abandon_replacement_nodegroup",
        description="Deletes a twin (ours only) that never became ready; the old group stays untouched.",
        assumes_target_role=True,
        idempotent=True,
    ),
    StepSpec(
        name="PrepareDrain",
        package="prepare_drain",
        description="kubectl's refusals and the twin's capacity before any disruption; then cordons the old group.",
        assumes_target_role=True,
        holds_cluster_lock=True,
        idempotent=True,
    ),
    StepSpec(
        name="DrainNodes",
        package="drain_nodes",
        description="One drain round: a batch of the old group's nodes, each pod evicted once (Eviction API).",
        assumes_target_role=True,
        holds_cluster_lock=True,
        idempotent=True,
        looping=True,
    ),
    StepSpec(
        name="RollbackDrain",
        package="rollback_drain",
        description="After a failed drain: uncordons (or keeps cordoned) the old nodes, and says where it stopped.",
        assumes_target_role=True,
        idempotent=True,
    ),
    StepSpec(
        name="RetireNodegroup",
        package="retire_nodegroup",
        description="Deletes the old node group once no node of it runs a non-DaemonSet pod and its twin is up.",
        assumes_target_role=True,
        holds_cluster_lock=True,
        idempotent=True,
    ),
    StepSpec(
        name="PollNodegroupDeletion",
        package="poll_nodegroup_deletion",
        description="Waits until a node group being deleted is gone.",
        assumes_target_role=True,
        looping=True,
    ),
    StepSpec(
        name="StartControlPlaneUpdate",
        package="start_control_plane_update",
        description="Starts (or adopts) the one-minor control plane version update.",
        assumes_target_role=True,
        holds_cluster_lock=True,
        idempotent=True,
    ),
    StepSpec(
        name="PollControlPlaneUpdate",
        package="poll_control_plane_update",
        description="Describes the control plane update and computes the next wait.",
        assumes_target_role=True,
        looping=True,
    ),
    StepSpec(
        name="PlanVersionUpdate",
        package="plan_version_update",
        description="Snapshots the cluster, plans add-on targets and in-place node group updates, estimates "
        "both strategies. Changes nothing.",
        assumes_target_role=True,
    ),
    StepSpec(
        name="UpdateAddons",
        package="update_addons",
        description="One pass of the add-on loop: starts each add-on's next version hop (PRESERVE) or polls it.",
        assumes_target_role=True,
        holds_cluster_lock=True,
        idempotent=True,
        looping=True,
    ),
    StepSpec(
        name="UpdateNodegroupVersions",
        package="update_nodegroup_versions",
        description="One pass of the node version loop: polls the node group being updated or starts the next "
        "one (a new launch template version with the target AMI for custom-AMI groups).",
        assumes_target_role=True,
        holds_cluster_lock=True,
        idempotent=True,
        looping=True,
    ),
    StepSpec(
        name="VerifyUpgrade",
        package="verify_upgrade",
        description="Post-upgrade verification (nodes, workloads, dockershim, add-ons); writes the upgrade report.",
        assumes_target_role=True,
        writes_reports=True,
        looping=True,
    ),
    # Fleet workflow (statemachines/fleet_upgrade.asl.json, docs/fleet.md). The run-table steps are listed
    # in infra/catalog.py (RUN_TABLE_STEPS) for their DynamoDB grants.
    StepSpec(
        name="ValidateFleetInput",
        package="validate_fleet_input",
        description="Validates the fleet input against its JSON schema and rules (errors name the JSON path).",
        assumes_target_role=False,
    ),
    StepSpec(
        name="PlanFleetWaves",
        package="plan_fleet_waves",
        description="Plans the canary and the waves, and each cluster's child execution name and input.",
        assumes_target_role=False,
    ),
    StepSpec(
        name="CheckMaintenanceWindow",
        package="check_maintenance_window",
        description="Says whether a cluster may start now, or how long until its maintenance window opens.",
        assumes_target_role=False,
    ),
    StepSpec(
        name="AcquireClusterLock",
        package="acquire_cluster_lock",
        description="Takes the cluster's lease lock in the run table for this fleet run, or raises ClusterLocked.",
        assumes_target_role=False,
        idempotent=True,
    ),
    StepSpec(
        name="ReleaseClusterLock",
        package="release_cluster_lock",
        description="Releases the cluster's lease lock if this fleet run holds it.",
        assumes_target_role=False,
        idempotent=True,
    ),
    StepSpec(
        name="RequestWaveApproval",
        package="request_wave_approval",
        description="Records a wave's approval task token in the run table for the approver.",
        assumes_target_role=False,
    ),
    StepSpec(
        name="EvaluateWave",
        package="evaluate_wave",
        description="Records a wave's outcome and stops the fleet when its failure tolerance is exceeded.",
        assumes_target_role=False,
        idempotent=True,
    ),
    StepSpec(
        name="WriteFleetReport",
        package="write_fleet_report",
        description="Writes the fleet report (JSON and Markdown) to the reports bucket.",
        assumes_target_role=False,
        writes_reports=True,
        idempotent=True,
    ),
)

STEPS_BY_NAME = {step.name: step for step in STEPS}

# EKS / EC2 actions the steps that assume the target role perform in fleet accounts.
# The target-account role grants exactly these (infra/target_account_stack.py reads this list).
TARGET_READ_ACTIONS: tuple[str, ...] = (
    "eks:DescribeCluster",
    "eks:ListUpdates",
    "eks:DescribeUpdate",
    "eks:ListNodegroups",
    "eks:DescribeNodegroup",
    # ReadinessCheck: add-ons and their versions for the target, upgrade insights, free IPs of the
    # cluster's subnets, node groups' launch template user data.
    "eks:ListAddons",
    "eks:DescribeAddon",
    "eks:DescribeAddonVersions",
    "eks:ListInsights",
    "eks:DescribeInsight",
    "ec2:DescribeSubnets",
    "ec2:DescribeLaunchTemplateVersions",
    # Node group migration: our twin's launch template (found by name), the EKS-optimized AMI id.
    "ec2:DescribeLaunchTemplates",
    "ssm:GetParameter",
    # Node versions: which EKS-optimized AMI a custom-AMI group runs (its name gives family and version).
    "ec2:DescribeImages",
)
TARGET_MUTATING_ACTIONS: tuple[str, ...] = (
    "eks:UpdateClusterVersion",
    # Node group migration: the twin (tagged, so eks:TagResource too), its launch template (tagged at
    # creation: ec2:CreateTags), and the old group's deletion once drained.
    "eks:CreateNodegroup",
    "eks:TagResource",
    "eks:DeleteNodegroup",
    "ec2:CreateLaunchTemplate",
    "ec2:CreateTags",
    # CreateNodegroup with a launch template: EKS checks the caller may launch instances with it.
    "ec2:RunInstances",
    # After the control plane: add-ons and node group versions (a new launch template version with the
    # target's AMI for custom-AMI groups).
    "eks:UpdateAddon",
    "eks:UpdateNodegroupVersion",
    "ec2:CreateLaunchTemplateVersion",
)
