"""UpdateNodegroupVersions: one pass of the node version loop (poll the group being updated, or start
the next one on the control plane's version)."""

from __future__ import annotations

from upgrader import version_update
from upgrader.observability import step_handler
from upgrader.polling import WaitPlan
from upgrader.settings import Settings
from upgrader.version_models import NodegroupUpdates, VersionStepState
from upgrader.versions import NODEGROUP_UPDATE
from upgrader.wiring import migration_gateways


@step_handler("UpdateNodegroupVersions", VersionStepState)
def lambda_handler(state: VersionStepState) -> NodegroupUpdates:
    settings = Settings.load()
    gateways = migration_gateways(state.cluster, state.run, settings)
    plan = WaitPlan.for_operation(NODEGROUP_UPDATE, settings)
    return version_update.update_nodegroup_versions(gateways.eks, gateways.ec2, gateways.ssm, state, plan)
