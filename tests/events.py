"""Loads the sample events in tests/events/ (fresh copies, so tests may modify them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"


def load_event(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text())
