"""AWS CDK app of the EKS fleet upgrader: the orchestrator stack and the target-account role stack.

Module map (one capability per module):
    config.py                  typed configuration read from the ``eksFleetUpgrader`` cdk context
    constants.py               runtime, architecture, memory, timeouts, log retention, Lambda settings
    paths.py / catalog.py      repository layout and the Lambda step catalog (functions/upgrader/catalog.py)
    asl.py                     statemachines/*.asl.json: discovery and ``${...}`` substitutions (no CDK import)
    bundling.py                offline Lambda packaging: code asset and the pip-built dependency layer
    compliance.py              cdk-nag packs and the helpers that acknowledge a finding with a reason
    target_permissions.py      which EKS resources each target-account action may touch
    constructs/                one Lambda step, one workflow (state machine), the run data stores
    orchestrator_stack.py      central account: Lambdas, state machines, table, bucket, topic
    target_account_stack.py    each fleet account: the role the orchestrator assumes
    application.py             composes the stacks from the configuration (used by app.py and the tests)
"""
