"""Every tunable of the deployed resources, in one place.

The Lambda runtime and the layer's pip target must agree (both Python 3.13 on arm64); a test checks it.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

# --- Lambda -------------------------------------------------------------------------------------------
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_13
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
LAMBDA_MEMORY_MB = 256
# Below the 120 s TimeoutSeconds of the ASL Task states, so a slow step fails as a Lambda timeout the
# state machine can retry, not as States.Timeout with the function still running.
LAMBDA_TIMEOUT = Duration.seconds(90)

# pip target of the dependency layer (see infra/bundling.py): the same interpreter and CPU as above.
LAYER_PIP_PLATFORM = "manylinux2014_aarch64"
LAYER_PYTHON_VERSION = "3.13"

# Environment every step gets besides the configuration-derived values. Keys are the upper-cased
# fields of upgrader.settings.Settings (a test keeps the two in step) plus the Powertools variables.
POWERTOOLS_ENVIRONMENT: dict[str, str] = {
    "POWERTOOLS_SERVICE_NAME": "eks-fleet-upgrader",
    "POWERTOOLS_METRICS_NAMESPACE": "EksFleetUpgrader",
    "LOG_LEVEL": "INFO",
}
STEP_SETTINGS_DEFAULTS: dict[str, str] = {
    "AWS_MAX_ATTEMPTS": "4",
    "AWS_CONNECT_TIMEOUT": "5",
    "AWS_READ_TIMEOUT": "10",
    "POLL_STRATEGY": "adaptive",
    "FIXED_POLL_SECONDS": "30",
    "KUBERNETES_MAX_RETRIES": "3",
    # Events a cluster execution may reach before its loops stop it (upgrader/gateways/execution_history.py).
    "HISTORY_EVENT_BUDGET": "20000",
}

# --- Step Functions -----------------------------------------------------------------------------------
# How long Step Functions reuses a data key of the state machines' customer-managed key (60-900 s).
STATE_MACHINE_DATA_KEY_REUSE = Duration.seconds(300)

# --- Logs ---------------------------------------------------------------------------------------------
# CloudWatch Logs accepts only these retention periods; config.logRetentionDays must be one of them.
RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
