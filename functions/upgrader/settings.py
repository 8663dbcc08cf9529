"""Environment variables, read in one place into a typed model (handlers call ``Settings.load()``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Configuration of a step function. Field names map to the upper-case environment variables."""

    model_config = ConfigDict(frozen=True)

    target_role_name: str = Field(default="eks-fleet-upgrader-target", min_length=1, max_length=64)
    external_id: str = Field(default="", max_length=1224)
    # botocore retries inside one invocation; anything still failing is raised as a named
    # retryable error and retried by the state machine (with backoff, and visibly in the history).
    aws_max_attempts: int = Field(default=4, ge=1, le=10)
    aws_connect_timeout: float = Field(default=5.0, gt=0)
    # EKS describe/list calls answer in well under a second; 4 attempts x (5 s + 10 s) stays inside
    # the 90 s Lambda timeout.
    aws_read_timeout: float = Field(default=10.0, gt=0)
    # "adaptive": first wait near the expected duration, then short polls. "fixed": the same
    # interval everywhere (the benchmark baseline).
    poll_strategy: Literal["adaptive", "fixed"] = "adaptive"
    fixed_poll_seconds: int = Field(default=30, ge=1)
    # The orchestrator's reports bucket (central account): ReadinessCheck writes its reports there.
    report_bucket_name: str = Field(default="", max_length=63)
    # Retries of a Kubernetes API call inside one invocation of the node group migration (429 with
    # Retry-After, 5xx, connection errors; never an eviction). What is still failing is raised as a
    # named retryable error and retried by the state machine.
    kubernetes_max_retries: int = Field(default=3, ge=0, le=10)
    # The orchestrator's run table (central account): the fleet's locks, wave records and approvals, and
    # the idempotency records of the steps that change something (upgrader/gateways/idempotency.py).
    run_table_name: str = Field(default="", max_length=255)
    # A looping step stops the execution (ExecutionHistoryBudgetExhausted) once its history has this many
    # events: Step Functions fails an execution at 25,000 (a quota no Catch sees, so nothing would be rolled
    # back); the 5,000 left cover the rollback and the states after it. Lowered only by tests.
    history_event_budget: int = Field(default=20_000, ge=50, le=24_000)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {
            name: env[name.upper()] for name in cls.model_fields if env.get(name.upper()) not in (None, "")
        }
        return cls.model_validate(values)
