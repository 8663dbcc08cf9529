"""VerifyUpgrade: the cluster as the step promised (nodes, workloads, dockershim, add-ons); writes the
upgrade report. Settling workloads loop through a Wait; what waiting cannot fix fails the cluster."""

from __future__ import annotations

from upgrader import readiness_check, version_update
from upgrader.observability import step_handler
from upgrader.polling import WaitPlan
from upgrader.settings import Settings
from upgrader.version_models import Verification, VersionStepState
from upgrader.versions import VERIFY_SETTLE
from upgrader.wiring import readiness_gateways


@step_handler("VerifyUpgrade", VersionStepState)
def lambda_handler(state: VersionStepState) -> Verification:
    settings = Settings.load()
    gateways = readiness_gateways(state.cluster, state.run, settings)
    return version_update.verify_upgrade(
        state,
        eks=gateways.eks,
        ec2=gateways.ec2,
        kubernetes=gateways.kubernetes,
        store=gateways.store,
        plan=WaitPlan.for_operation(VERIFY_SETTLE, settings),
        collect=readiness_check.collect_inventory,
        evaluate_dockershim=readiness_check.dockershim_findings,
    )
