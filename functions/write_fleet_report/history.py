"""The child executions' histories, read for the fleet report's timeline (states:GetExecutionHistory).

A small gateway beside its only user: the orchestrator's own Step Functions, with the Lambda's
credentials and the one botocore Config of upgrader.gateways.aws. Only the StateEntered events and the
last event's time are kept (the timeline needs nothing else), so a long history costs memory only per page.
"""

from __future__ import annotations

from typing import Any

import boto3
from upgrader.gateways.aws import AwsSessionFactory, aws_errors
from upgrader.settings import Settings

# A child's history stays far below 25,000 events (docs/fleet.md); 1,000 per page, capped all the same.
MAX_PAGES = 30


class StepFunctionsHistories:
    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> StepFunctionsHistories:
        return cls(boto3.Session().client("stepfunctions", config=AwsSessionFactory(settings).config))

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        last: dict[str, Any] | None = None
        request: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        for _ in range(MAX_PAGES):
            with aws_errors("states:GetExecutionHistory"):
                page = self._client.get_execution_history(**request)
            for event in page["events"]:
                last = event
                if str(event["type"]).endswith("StateEntered"):
                    kept.append(event)
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
        if last is not None and (not kept or kept[-1] is not last):
            kept.append({"type": last["type"], "timestamp": last["timestamp"]})
        return kept
