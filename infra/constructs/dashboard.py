"""The CloudWatch dashboard of the fleet upgrader: fleet and cluster executions, the clusters' outcomes,
their durations and the time they spend per phase (the EMF metrics WriteFleetReport publishes,
upgrader.fleet.report.fleet_metrics), and the Lambda steps' errors."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from upgrader.fleet.html import PHASE_COLOURS

from infra import catalog as _catalog  # noqa: F401  (puts functions/ on sys.path)
from infra import constants

NAMESPACE = constants.POWERTOOLS_ENVIRONMENT["POWERTOOLS_METRICS_NAMESPACE"]
SERVICE = constants.POWERTOOLS_ENVIRONMENT["POWERTOOLS_SERVICE_NAME"]
PERIOD = Duration.hours(1)


def fleet_metric(name: str, statistic: str, **dimensions: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE, **dimensions},
        statistic=statistic,
        period=PERIOD,
        label=f"{name} {' '.join(dimensions.values())} ({statistic})".replace("  ", " "),
    )


class FleetDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        workflows: Mapping[str, sfn.StateMachine],
        functions: Mapping[str, lambda_.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name)
        executions = [
            cloudwatch.GraphWidget(
                title=f"{name} executions",
                left=[
                    machine.metric_started(period=PERIOD),
                    machine.metric_succeeded(period=PERIOD),
                    machine.metric_failed(period=PERIOD),
                    machine.metric_timed_out(period=PERIOD),
                ],
                width=12,
            )
            for name, machine in sorted(workflows.items())
        ]
        self.dashboard.add_widgets(*executions)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Clusters upgraded, failed, blocked, skipped (per fleet report)",
                left=[
                    fleet_metric(name, "Sum")
                    for name in ("ClustersUpgraded", "ClustersFailed", "ClustersBlocked", "ClustersSkipped")
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Cluster upgrade and drain time (seconds)",
                left=[
                    fleet_metric("ClusterUpgradeSeconds", "Average"),
                    fleet_metric("ClusterUpgradeSeconds", "Maximum"),
                ],
                right=[fleet_metric("DrainSeconds", "Average"), fleet_metric("DrainSeconds", "Maximum")],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Time per phase of the cluster workflow (seconds, average)",
                left=[fleet_metric("PhaseSeconds", "Average", Phase=phase) for phase in PHASE_COLOURS],
                stacked=True,
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Lambda step errors",
                left=[
                    function.metric_errors(period=PERIOD, label=name)
                    for name, function in sorted(functions.items())
                ],
                width=12,
            ),
        )
