"""How long the state machine waits between polls (never a sleep inside a Lambda)."""

from __future__ import annotations

from dataclasses import dataclass

from upgrader.settings import Settings
from upgrader.versions import OperationTiming


@dataclass(frozen=True)
class WaitPlan:
    timing: OperationTiming
    strategy: str = "adaptive"
    fixed_seconds: int = 30

    @classmethod
    def for_operation(cls, timing: OperationTiming, settings: Settings) -> WaitPlan:
        return cls(timing=timing, strategy=settings.poll_strategy, fixed_seconds=settings.fixed_poll_seconds)

    def first_wait(self) -> int:
        if self.strategy == "fixed":
            return self.fixed_seconds
        return self.timing.first_wait_seconds

    def next_wait(self, waited_seconds: int) -> int:
        """Short polls after the first wait, never overshooting the cap by more than one poll."""
        interval = self.fixed_seconds if self.strategy == "fixed" else self.timing.poll_seconds
        remaining = self.timing.max_wait_seconds - waited_seconds
        return max(1, min(interval, remaining))

    def max_wait(self) -> int:
        return self.timing.max_wait_seconds
