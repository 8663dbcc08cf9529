"""Guarantees of issue 9 that need a fault no scenario file can express (real ASL, simulator)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from simulator.kube.world import NODEGROUP_LABEL
from simulator.scenario import Scenario
from simulator.simulation import Simulation

ACCOUNT, REGION, NAME = "111111111111", "eu-west-1", "payments-prod"
TARGET_ROLE_STEPS_EXCLUDED = {"ValidateInput"}


AWS_AUTH = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "aws-auth", "namespace": "kube-system"},
    "data": {
        "mapRoles": "- rolearn: arn:aws:iam::111111111111:role/eks-node-role\n  username: system:node:x\n"
    },
}


def scenario(faults: dict[str, Any] | None = None, **cluster: Any) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "guarantees",
            "faults": faults or {},
            "upgrade": {"toVersion": "1.24"},
            "accounts": [
                {
                    "id": ACCOUNT,
                    "clusters": [
                        {
                            "name": NAME,
                            "region": REGION,
                            "version": "1.23",
                            "nodegroups": [{"name": "general", "desiredSize": 2}],
                            "addons": [{"name": "kube-proxy"}],
                            "workloads": [
                                {"kind": "Deployment", "name": "api", "namespace": "payments", "replicas": 3}
                            ],
                        }
                        | cluster
                    ],
                }
            ],
        }
    )


def test_a_node_left_on_docker_after_the_run_fails_the_cluster_at_verification():
    # Given a run during which a Docker node joins the cluster behind the workflow's back (a
    # self-managed instance someone started) just before the verification
    spec = scenario()
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        world = sim.world(account, cluster)

        @contextlib.contextmanager
        def rogue_node_before_verification(function: str) -> Iterator[None]:
            if function == "VerifyUpgrade" and not world.node_names("rogue"):
                world.register_nodes(
                    "rogue",
                    ["i-0rogue0docker0node"],
                    kubelet_version="v1.24.17-eks-8cb36c9",
                    container_runtime="docker://20.10.25",
                    instance_type="m5.large",
                    labels={NODEGROUP_LABEL: "rogue"},
                    taints=[],
                    pods_per_node=29,
                    ready_at=sim.clock.now(),
                )
            yield

        sim.engine.runtime.around_invoke.append(rogue_node_before_verification)
        run = sim.run_cluster(account, cluster)

        # Then the verification fails the cluster, naming the node and its runtime
        assert (run.result.status, run.result.error) == ("FAILED", "PostUpgradeVerificationFailed")
        problems = run.failure()["details"]["problems"]
        assert "node i-0rogue0docker0node runs docker://20.10.25, not containerd" in problems
        # And the upgrade report says so too (written whether or not the verification passed)
        [report] = run.upgrades
        assert report["outcome"] == "verification-failed"


def test_every_target_account_step_assumes_the_role_afresh_so_expiring_credentials_never_matter():
    # Given a full run (migration, control plane, add-ons, node versions, verification)
    spec = scenario()
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        run = sim.run_cluster(account, cluster)
        assert run.result.status == "SUCCEEDED", run.failure()
        # Then each invocation of a step that works in the fleet account assumed the role itself: no
        # credentials outlive an invocation (a Lambda lives at most 15 minutes; the session lasts 1 hour)
        invocations = [i for i in run.result.invocations if i.function not in TARGET_ROLE_STEPS_EXCLUDED]
        assume = [c for c in sim.faults.calls if c.operation == "AssumeRole"]
        assert len(assume) == len(invocations)
        # And the whole history stays far from Step Functions' 25,000-event limit
        assert len(run.result.history) < 2_000


def test_throttling_from_ec2_sts_and_ssm_is_retried_and_the_run_completes_later():
    # Given EC2, STS and SSM throttling the first calls of the migration and the node version step
    throttles = [
        {"service": "sts", "operation": "AssumeRole", "first": 2},
        {"service": "ec2", "operation": "DescribeLaunchTemplateVersions", "first": 1},
        {"service": "ec2", "operation": "CreateLaunchTemplateVersion", "first": 1},
        {"service": "ec2", "operation": "DescribeImages", "first": 1},
        {"service": "ssm", "operation": "GetParameter", "first": 1},
    ]
    spec = scenario(faults={"throttle": throttles}, manifests=[AWS_AUTH])
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]
        world = sim.world(account, cluster)
        aws_auth = json.dumps(world.get("ConfigMap", "kube-system", "aws-auth"), sort_keys=True)
        run = sim.run_cluster(account, cluster)
        # Then every throttle reached the state machine's Retry and the run still completed
        assert run.result.status == "SUCCEEDED", run.failure()
        throttled = {(c.service, c.operation) for c in sim.faults.calls if c.throttled}
        assert {
            ("sts", "AssumeRole"),
            ("ec2", "CreateLaunchTemplateVersion"),
            ("ssm", "GetParameter"),
        } <= throttled
        assert run.result.retries >= len([c for c in sim.faults.calls if c.throttled])
        # And exactly one launch template version was made for the twin's in-place update
        assert [c.operation for c in sim.faults.mutating_calls()].count("CreateLaunchTemplateVersion") == 1
        # And nothing was lost, and aws-auth is byte-identical
        invariants = run.invariants
        assert (invariants["podsLost"], invariants["pdbViolations"], invariants["unexpectedDeletions"]) == (
            0,
            0,
            0,
        )
        assert json.dumps(world.get("ConfigMap", "kube-system", "aws-auth"), sort_keys=True) == aws_auth


def test_lambda_service_errors_and_timeouts_on_every_step_kind_are_retried_and_the_run_completes():
    # Given every step kind failing its first invocation, alternately with Lambda's service error and a
    # sandbox timeout (the names Step Functions matches in each Task's Retry)
    spec = scenario()
    failed: dict[str, str] = {}
    kinds = ("Lambda.ServiceException", "Sandbox.Timedout")
    with Simulation(spec) as sim:
        account, cluster = spec.clusters()[0]

        @contextlib.contextmanager
        def first_invocation_fails(function: str) -> Iterator[None]:
            if function not in failed and function != "ValidateInput":
                failed[function] = kinds[len(failed) % 2]
                error = RuntimeError(f"{failed[function]} injected before {function} ran")
                error.lambda_error_type = failed[function]  # type: ignore[attr-defined]
                raise error
            yield

        sim.engine.runtime.around_invoke.append(first_invocation_fails)
        run = sim.run_cluster(account, cluster)

    # Then each was retried per its policy and the run completed, with each change made exactly once
    assert run.result.status == "SUCCEEDED", run.failure()
    invoked = {i.function for i in run.result.invocations} - {"ValidateInput"}
    assert set(failed) == invoked and len(invoked) >= 12  # every step kind of the run
    assert run.result.retries >= len(failed)
    changes = [c.operation for c in sim.faults.mutating_calls()]
    for once in ("CreateNodegroup", "DeleteNodegroup", "UpdateClusterVersion", "UpdateNodegroupVersion"):
        assert changes.count(once) == 1, (once, changes)
    assert (run.invariants["podsLost"], run.invariants["pdbViolations"]) == (0, 0)
