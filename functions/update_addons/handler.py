"""UpdateAddons: one pass of the add-on loop (describe each, start its next hop, or report it done)."""

from __future__ import annotations

from upgrader import version_update
from upgrader.observability import step_handler
from upgrader.polling import WaitPlan
from upgrader.settings import Settings
from upgrader.version_models import AddonUpdates, VersionStepState
from upgrader.versions import ADDON_UPDATE
from upgrader.wiring import eks_for


@step_handler("UpdateAddons", VersionStepState)
def lambda_handler(state: VersionStepState) -> AddonUpdates:
    settings = Settings.load()
    plan = WaitPlan.for_operation(ADDON_UPDATE, settings)
    return version_update.update_addons(eks_for(state.cluster, state.run, settings), state, plan)
