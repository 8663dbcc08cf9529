"""The workflow definitions in statemachines/*.asl.json, as the stack and the ASL tests see them.

Each file becomes one Step Functions state machine. Its only ``${...}`` substitution variables are Lambda ARN
substitutions named by the step catalog (``<StepName>FunctionArn``); the stack supplies exactly those.
Pure Python (no CDK import), so the ASL tests stay fast.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.catalog import STEPS, StepSpec
from infra.paths import STATEMACHINES_DIR

ASL_SUFFIX = ".asl.json"
SUBSTITUTION = re.compile(r"\$\{([^}]*)\}")

# The substitutions the orchestrator stack supplies, by variable name.
STEP_BY_ARN_VARIABLE: dict[str, StepSpec] = {step.arn_variable: step for step in STEPS}
SUPPLIED_VARIABLES: frozenset[str] = frozenset(STEP_BY_ARN_VARIABLE)


@dataclass(frozen=True)
class AslDefinition:
    path: Path
    text: str  # the file's exact text: inlined into the template, substitutions left to CloudFormation
    document: dict[str, Any]

    @property
    def stem(self) -> str:
        """``cluster_upgrade`` for ``cluster_upgrade.asl.json``."""
        return self.path.name.removesuffix(ASL_SUFFIX)

    @property
    def construct_id(self) -> str:
        """``ClusterUpgrade``: the construct id and output name prefix of this workflow."""
        return "".join(part.capitalize() for part in re.split(r"[_\-]+", self.stem) if part)

    @property
    def substitution_names(self) -> frozenset[str]:
        return frozenset(SUBSTITUTION.findall(self.text))

    @property
    def steps(self) -> tuple[StepSpec, ...]:
        """The catalog steps this workflow invokes, in catalog order."""
        used = self.substitution_names
        return tuple(step for step in STEPS if step.arn_variable in used)


def load_definition(path: Path) -> AslDefinition:
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path.name} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise ValueError(f"{path.name} must hold a JSON object (a state machine definition)")
    return AslDefinition(path=path, text=text, document=document)


def definition_paths(directory: Path = STATEMACHINES_DIR) -> tuple[Path, ...]:
    return tuple(sorted(directory.glob(f"*{ASL_SUFFIX}")))


def load_definitions(directory: Path = STATEMACHINES_DIR) -> tuple[AslDefinition, ...]:
    return tuple(load_definition(path) for path in definition_paths(directory))
