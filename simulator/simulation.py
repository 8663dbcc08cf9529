"""One simulated run: the world from a scenario, the local engine, and the cluster workflow per cluster.

Until the fleet workflow lands, the fleet is driven here one cluster at a time, each cluster
its own ``cluster_upgrade`` execution with a deterministic name.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

import boto3
from upgrader.errors import UpgradeError

from simulator.clock import VirtualClock
from simulator.eks import EksSimulation, EksTimings, eks_extension
from simulator.engine import ORCHESTRATOR_REGION, ExecutionResult, LocalEngine
from simulator.faults import AwsFaults, CrashRule, LoseResponseRule, ThrottleRule, aws_faults
from simulator.scenario import AccountSpec, ClusterSpec, Scenario


@dataclass
class ClusterRun:
    account: AccountSpec
    cluster: ClusterSpec
    execution_input: dict[str, Any]
    result: ExecutionResult
    before: dict[str, Any]
    after: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "SUCCEEDED" if self.result.status == "SUCCEEDED" else "FAILED"

    def failure(self) -> dict[str, Any] | None:
        if self.result.status == "SUCCEEDED":
            return None
        message, details = UpgradeError.parse_message(_error_message(self.result.cause))
        return {"error": self.result.error, "message": message, "details": details}


def _error_message(cause: str | None) -> str:
    if not cause:
        return ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    return parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause


def execution_name(scenario: Scenario, account: AccountSpec, cluster: ClusterSpec) -> str:
    """Deterministic: the same run of the same cluster always has the same name (max 80 chars)."""
    raw = f"{scenario.name}-{account.id}-{cluster.region}-{cluster.name}-{scenario.upgrade.to_version}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", raw)[:80]


class Simulation(contextlib.AbstractContextManager["Simulation"]):
    def __init__(self, scenario: Scenario, aws_max_attempts: int = 1) -> None:
        self.scenario = scenario
        self.clock = VirtualClock()
        self.lambda_log = io.StringIO()
        self.eks = EksSimulation(self.clock, EksTimings(scenario.timings.control_plane_update_seconds))
        self.faults = AwsFaults(
            clock=self.clock,
            throttles=[ThrottleRule(**t.model_dump()) for t in scenario.faults.throttle],
            lost_responses=[LoseResponseRule(**r.model_dump()) for r in scenario.faults.lose_response],
            crashes=[CrashRule(**c.model_dump()) for c in scenario.faults.crash_step],
        )
        self.engine = LocalEngine(
            clock=self.clock,
            log=self.lambda_log,
            function_environment={
                "TARGET_ROLE_NAME": scenario.target_role_name,
                "EXTERNAL_ID": scenario.external_id,
                # In the simulator every throttle reaches the state machine's Retry (on the virtual
                # clock) instead of botocore sleeping in real time; in AWS the SDK absorbs bursts first.
                "AWS_MAX_ATTEMPTS": str(aws_max_attempts),
                "POLL_STRATEGY": scenario.poll_strategy,
                "POWERTOOLS_SERVICE_NAME": "eks-fleet-upgrader",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_NAMESPACE": "EksFleetUpgrader",
                "LOG_LEVEL": "INFO",
            },
        )
        self.engine.runtime.around_invoke.append(self.faults.step)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Simulation:
        self._stack.enter_context(self.engine)
        self._stack.enter_context(eks_extension(self.eks))
        self._stack.enter_context(aws_faults(self.faults))
        self._seed()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    # -- the world ------------------------------------------------------------------------------
    def _account_session(self, account_id: str) -> boto3.Session:
        """A session in a fleet account (moto isolates accounts by the assumed role's credentials)."""
        creds = boto3.client("sts", region_name=ORCHESTRATOR_REGION).assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/simulator-admin", RoleSessionName="simulator"
        )["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    def _seed(self) -> None:
        scenario = self.scenario
        for account in scenario.accounts:
            session = self._account_session(account.id)
            session.client("iam").create_role(
                RoleName=scenario.target_role_name, AssumeRolePolicyDocument="{}"
            )
            self.faults.external_ids[(account.id, scenario.target_role_name)] = scenario.external_id
            cluster_role = session.client("iam").create_role(
                RoleName="eks-cluster-role", AssumeRolePolicyDocument="{}"
            )["Role"]["Arn"]
            for cluster in account.clusters:
                ec2 = session.client("ec2", region_name=cluster.region)
                vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
                subnets = [
                    ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"]
                    for i in range(cluster.subnets)
                ]
                session.client("eks", region_name=cluster.region).create_cluster(
                    name=cluster.name,
                    version=cluster.version,
                    roleArn=cluster_role,
                    resourcesVpcConfig={"subnetIds": subnets},
                )
                state = self.eks.cluster_sim(account.id, cluster.region, cluster.name)
                state.free_ips = cluster.free_ips
        for fault in scenario.faults.fail_control_plane_update:
            for account, cluster in scenario.clusters():
                if cluster.name == fault.cluster:
                    self.eks.cluster_sim(
                        account.id, cluster.region, cluster.name
                    ).fail_next_update = fault.error_code

    def cluster_state(self, account: AccountSpec, cluster: ClusterSpec) -> dict[str, Any]:
        self.eks.settle_all()
        described = (
            self._account_session(account.id)
            .client("eks", region_name=cluster.region)
            .describe_cluster(name=cluster.name)["cluster"]
        )
        return {"version": described["version"], "status": described["status"]}

    # -- running --------------------------------------------------------------------------------
    def execution_input(self, account: AccountSpec, cluster: ClusterSpec) -> dict[str, Any]:
        return {
            "cluster": {"accountId": account.id, "region": cluster.region, "name": cluster.name},
            "fromVersion": cluster.version,
            "toVersion": self.scenario.upgrade.to_version,
        }

    def run_cluster(self, account: AccountSpec, cluster: ClusterSpec) -> ClusterRun:
        before = self.cluster_state(account, cluster)
        execution_input = self.execution_input(account, cluster)
        result = self.engine.run(
            "cluster_upgrade", execution_name(self.scenario, account, cluster), execution_input
        )
        run = ClusterRun(account, cluster, execution_input, result, before)
        run.after = self.cluster_state(account, cluster)
        return run

    def run_fleet(self) -> list[ClusterRun]:
        return [self.run_cluster(account, cluster) for account, cluster in self.scenario.clusters()]
