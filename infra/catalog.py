"""The Lambda step catalog, imported from the Lambda asset root so infra and functions share one list.

``functions/`` is not an installed package inside the Lambda asset layout, so it is put on ``sys.path``
here (once). ``upgrader.catalog`` is plain dataclasses: importing it pulls no boto3 and no pydantic.
"""

from __future__ import annotations

import sys

from infra.paths import FUNCTIONS_DIR

if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))

from upgrader.catalog import (
    STEPS,
    TARGET_MUTATING_ACTIONS,
    TARGET_READ_ACTIONS,
    StepSpec,
)

TARGET_ROLE_STEPS: tuple[StepSpec, ...] = tuple(step for step in STEPS if step.assumes_target_role)

__all__ = ["STEPS", "TARGET_MUTATING_ACTIONS", "TARGET_READ_ACTIONS", "TARGET_ROLE_STEPS", "StepSpec"]
