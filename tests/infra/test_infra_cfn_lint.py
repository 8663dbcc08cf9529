"""cfn-lint over every template the app writes (orchestrator, per-account targets, StackSet)."""

from __future__ import annotations

from cfnlint.api import ManualArgs, lint_file

IGNORED_CHECKS = [
    # W3005 "dependency already enforced by a GetAtt": CDK always adds an explicit DependsOn on a
    # function's (and state machine's) role next to the Role GetAtt, so the policy is attached before the
    # first invocation. Redundant but harmless, and emitted by aws-cdk-lib, not by this app.
    "W3005",
]


def test_cfn_lint_passes_on_every_synthesized_template(synthesized, fleet_config):
    # Given every template file of the cloud assembly (nested StackSet stage included)
    files = synthesized.template_files
    assert len(files) == 2 + len(fleet_config.target_account_ids)
    regions = sorted({fleet_config.orchestrator_region, *fleet_config.regions})
    problems = []
    for path in files:
        # When cfn-lint checks it for all regions the app deploys to
        matches = lint_file(path, config=ManualArgs(regions=regions, ignore_checks=IGNORED_CHECKS))
        problems += [f"{path.name}: {match}" for match in matches]
    # Then there is nothing to report
    assert problems == []
