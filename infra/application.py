"""Composes the whole CDK app from the configuration; app.py and the infra tests share this.

Stacks (top level, what ``cdk deploy --all`` deploys):
    EksFleetUpgraderOrchestrator            central account/region
    EksFleetUpgraderTarget-<accountId>      one per targetAccountIds entry (IAM is global; the stack lives
                                            in orchestratorRegion)
Nested stage ``StackSet`` (never selected by ``--all``):
    StackSet/EksFleetUpgraderTarget         the same target stack without an environment and without the
                                            CDK bootstrap check, for CloudFormation StackSets
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, DefaultStackSynthesizer, Environment, Stage

from infra.compliance import add_compliance_checks, write_acknowledgments_in_nested_stage
from infra.config import FleetUpgraderConfig
from infra.orchestrator_stack import OrchestratorStack
from infra.target_account_stack import TargetAccountStack

ORCHESTRATOR_STACK_ID = "EksFleetUpgraderOrchestrator"
TARGET_STACK_ID = "EksFleetUpgraderTarget"
STACKSET_STAGE_ID = "StackSet"


@dataclass(frozen=True)
class FleetUpgraderApp:
    orchestrator: OrchestratorStack
    targets: dict[str, TargetAccountStack]  # by account id
    stackset_target: TargetAccountStack


def build_app(app: App, config: FleetUpgraderConfig) -> FleetUpgraderApp:
    add_compliance_checks(app)
    orchestrator = OrchestratorStack(
        app,
        ORCHESTRATOR_STACK_ID,
        config=config,
        env=Environment(account=config.orchestrator_account_id, region=config.orchestrator_region),
        description="EKS fleet upgrader: step Lambdas, state machines, run table, reports and notifications",
    )
    targets = {
        account: TargetAccountStack(
            app,
            f"{TARGET_STACK_ID}-{account}",
            config=config,
            env=Environment(account=account, region=config.orchestrator_region),
            description="EKS fleet upgrader: role the orchestrator assumes in this fleet account",
        )
        for account in config.target_account_ids
    }
    for target in targets.values():
        # Deployment order only (no cross-stack reference): IAM rejects a trust policy naming a role that
        # does not exist yet, so `cdk deploy --all` must create the step roles first.
        target.add_stack_dependency(orchestrator, "the target role trusts the orchestrator's step roles")
    stackset_stage = Stage(app, STACKSET_STAGE_ID)
    write_acknowledgments_in_nested_stage(stackset_stage)
    stackset_target = TargetAccountStack(
        stackset_stage,
        TARGET_STACK_ID,
        config=config,
        # StackSet instances run in accounts that are not CDK-bootstrapped: no BootstrapVersion
        # parameter/rule, and no CDK metadata resource.
        synthesizer=DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
        analytics_reporting=False,
        description="EKS fleet upgrader: role the orchestrator assumes in this fleet account (StackSet)",
    )
    return FleetUpgraderApp(orchestrator=orchestrator, targets=targets, stackset_target=stackset_target)
