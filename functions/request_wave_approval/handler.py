"""RequestWaveApproval: records the wave's task token in the run table, where the approver finds it.

The state machine then waits (``lambda:invoke.waitForTaskToken``) until SendTaskSuccess (approved, output
``{"approvedBy": ..., "reason": ...}``) or SendTaskFailure (error ``FleetApprovalRejected``)."""

from __future__ import annotations

from upgrader.fleet.models import ApprovalRequest, ApprovalRequested
from upgrader.gateways.locks import FleetStepSettings, run_table
from upgrader.observability import step_handler


@step_handler("RequestWaveApproval", ApprovalRequest)
def lambda_handler(request: ApprovalRequest) -> ApprovalRequested:
    key = run_table(FleetStepSettings.load()).put_approval_request(
        request.run.execution_name, request.wave.name, request.task_token, request.requested_at
    )
    return ApprovalRequested(key=key, wave=request.wave.name)
