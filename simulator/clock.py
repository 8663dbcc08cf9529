"""Virtual time. Nothing in the simulator or the local engine sleeps in real time.

The clock is a discrete-event clock shared by every workflow the local engine runs at once (a fleet
execution, its Map iterations, the child cluster executions they start).

Flows
    A *flow* is one thread of control of a workflow: an execution, one worker of a Map state, one
    branch of a Parallel state. moto runs each on threads of its own (and hops threads inside one
    flow: a Task runs on a helper thread while the state's thread waits for it); the engine tells the
    clock where a flow forks and where it ends (``flow_started`` / ``flow_finished``), so the clock
    counts *runnable flows*, not threads.

Blocking
    A runnable flow stops counting while it is blocked on something only another flow, virtual time
    or the outside world can release:

    - ``sleep(seconds)`` (a Wait state, a Retry interval): the flow becomes a *sleeper* with a wake-up
      time ``now + seconds``;
    - ``park(gate, wait)`` (a Map or Parallel state waiting for its workers, a task waiting for a
      child execution or a task token): the flow waits on a :class:`Gate`; whoever opens the gate (the
      last Map worker, the child execution ending, SendTaskSuccess) makes it runnable again *before*
      it lets go of its own flow, so there is never a moment when the waiter is neither runnable nor
      blocked (the hand-off that keeps the clock from jumping ahead of a woken flow).

Advancing
    Time moves only when no flow is runnable: then the clock jumps to the earliest wake-up and wakes
    every sleeper due at that instant together (a sleeper whose ``cancelled()`` says its execution was
    stopped is woken at once, without moving time). Two child executions waiting 400 s side by side
    therefore cost 400 s of virtual time, not 800 s; a flow that runs Lambda handlers (serialised by
    the engine's lock) keeps time still until it blocks again. When every live flow is parked on
    something outside (a task token nobody has sent yet), time stands still until it arrives.

Outside any flow
    A thread that is not a flow (seeding the world, a test moving time by hand) may call ``sleep`` when
    no flow is runnable: it joins the timeline as a sleeper for the duration of its sleep, so with no
    workflow live it advances the clock at once, as the clock always did. ``hold()`` makes a thread a
    flow for a while: the test starts several executions inside it so that none gets ahead in virtual
    time before the others have started.

One execution alone behaves exactly as before: it is the only runnable flow, so each of its waits
advances the clock at once by its own length, and waits add up.

Ordering between flows that are runnable at the same virtual instant (which of two iterations calls
its Lambda first) follows the threads and is not fixed; totals and the order of instants are.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

DEFAULT_EPOCH = dt.datetime(2026, 1, 5, 9, 0, 0, tzinfo=dt.UTC)

T = TypeVar("T")


@dataclass(order=True)
class _Sleeper:
    wake_at: float
    seq: int
    cancelled: Callable[[], bool] | None = field(default=None, compare=False)
    woken: bool = field(default=False, compare=False)


class Gate:
    """Something one flow waits for and another flow (or the outside world) opens, once."""

    __slots__ = ("credited", "opened", "parked")

    def __init__(self) -> None:
        self.opened = False  # the awaited thing happened
        self.parked = False  # a flow stopped counting as runnable while it waits here
        self.credited = False  # that flow was made runnable again (by the opener or by itself)


class VirtualClock:
    def __init__(self, epoch: dt.datetime = DEFAULT_EPOCH) -> None:
        self._epoch = epoch
        self._seconds = 0.0
        self._cond = threading.Condition()
        self._runnable = 0
        self._parked = 0
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()
        self.waits: list[tuple[float, float, str]] = []  # (at, seconds, why) for reports

    # -- reading --------------------------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the epoch of this simulation."""
        with self._cond:
            return self._seconds

    def datetime(self) -> dt.datetime:
        return self._epoch + dt.timedelta(seconds=self.now())

    def to_datetime(self, seconds: float) -> dt.datetime:
        return self._epoch + dt.timedelta(seconds=seconds)

    def census(self) -> dict[str, int]:
        """Runnable, sleeping and parked flows (for tests and diagnostics)."""
        with self._cond:
            return {"runnable": self._runnable, "sleeping": len(self._sleepers), "parked": self._parked}

    # -- flows ----------------------------------------------------------------------------------
    def flow_started(self) -> None:
        """A new flow exists and is runnable; call before starting its thread (never after)."""
        with self._cond:
            self._runnable += 1

    def flow_finished(self) -> None:
        with self._cond:
            if self._runnable <= 0:
                raise RuntimeError("flow_finished without a runnable flow: the engine's accounting is off")
            self._runnable -= 1
            self._advance_if_idle()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Be a runnable flow for the duration: virtual time cannot move meanwhile."""
        self.flow_started()
        try:
            yield
        finally:
            self.flow_finished()

    # -- blocking -------------------------------------------------------------------------------
    def sleep(self, seconds: float, why: str = "wait", cancelled: Callable[[], bool] | None = None) -> None:
        """Block the calling flow for ``seconds`` of virtual time (see the module docstring)."""
        if seconds < 0:
            raise ValueError(f"cannot wait a negative time ({seconds})")
        with self._cond:
            self.waits.append((self._seconds, float(seconds), why))
            # Not a flow (every flow counts itself while it runs): join the timeline for this sleep.
            outsider = self._runnable == 0
            if outsider:
                self._runnable += 1
            sleeper = _Sleeper(self._seconds + float(seconds), next(self._seq), cancelled)
            heapq.heappush(self._sleepers, sleeper)
            self._runnable -= 1
            self._advance_if_idle()
            while not sleeper.woken:
                self._cond.wait()
            if outsider:  # woken means runnable again: an outsider leaves the timeline instead
                self._runnable -= 1
                self._advance_if_idle()

    def gate(self) -> Gate:
        return Gate()

    def park(self, gate: Gate, wait: Callable[[], T]) -> T:
        """Block the calling flow in ``wait()`` (a real wait on an event) until ``gate`` opens.

        If the gate is already open the flow never stops counting. If ``wait`` returns without the gate
        opening (a real-time timeout), the flow makes itself runnable again.
        """
        with self._cond:
            if not gate.opened and not gate.parked:
                gate.parked = True
                self._parked += 1
                self._runnable -= 1
                self._advance_if_idle()
        try:
            return wait()
        finally:
            with self._cond:
                self._credit(gate)

    def open(self, gate: Gate) -> None:
        """The awaited thing happened: the parked flow (if any) is runnable again from now on."""
        with self._cond:
            gate.opened = True
            self._credit(gate)

    def _credit(self, gate: Gate) -> None:
        if gate.parked and not gate.credited:
            gate.credited = True
            self._parked -= 1
            self._runnable += 1
            self._cond.notify_all()

    def _advance_if_idle(self) -> None:
        """With the lock held: if no flow can run, wake the next sleepers (moving time if needed)."""
        if self._runnable > 0 or not self._sleepers:
            return
        stopped = [s for s in self._sleepers if s.cancelled is not None and s.cancelled()]
        if stopped:
            due = stopped
            self._sleepers = [s for s in self._sleepers if s not in stopped]
            heapq.heapify(self._sleepers)
        else:
            first = heapq.heappop(self._sleepers)
            due = [first]
            while self._sleepers and self._sleepers[0].wake_at == first.wake_at:
                due.append(heapq.heappop(self._sleepers))
            self._seconds = max(self._seconds, first.wake_at)
        for sleeper in due:
            sleeper.woken = True
            self._runnable += 1
        self._cond.notify_all()
