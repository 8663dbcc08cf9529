"""Virtual time. Nothing in the simulator or the local engine sleeps in real time.

Time only moves when the workflow waits (a Wait state or a Retry interval); simulated
lifecycles (a control plane update taking 8 minutes) compare their start time with ``now()``.
The clock is one timeline: the per-cluster workflow is sequential, so waits add up exactly.
"""

from __future__ import annotations

import datetime as dt
import threading

DEFAULT_EPOCH = dt.datetime(2026, 1, 5, 9, 0, 0, tzinfo=dt.UTC)


class VirtualClock:
    def __init__(self, epoch: dt.datetime = DEFAULT_EPOCH) -> None:
        self._epoch = epoch
        self._seconds = 0.0
        self._lock = threading.Lock()
        self.waits: list[tuple[float, float, str]] = []  # (at, seconds, why) for reports

    def now(self) -> float:
        """Seconds since the epoch of this simulation."""
        with self._lock:
            return self._seconds

    def datetime(self) -> dt.datetime:
        return self._epoch + dt.timedelta(seconds=self.now())

    def to_datetime(self, seconds: float) -> dt.datetime:
        return self._epoch + dt.timedelta(seconds=seconds)

    def sleep(self, seconds: float, why: str = "wait") -> None:
        if seconds < 0:
            raise ValueError(f"cannot wait a negative time ({seconds})")
        with self._lock:
            self.waits.append((self._seconds, float(seconds), why))
            self._seconds += float(seconds)
