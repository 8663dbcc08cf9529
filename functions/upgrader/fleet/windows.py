"""Maintenance windows: may a cluster start now, and if not, how long until its window opens."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from upgrader.fleet.models import WEEKDAYS, MaintenanceWindow, WindowDecision


def parse_instant(text: str) -> dt.datetime:
    """``$$.State.EnteredTime`` (ISO 8601, ``Z`` or an offset) as an aware datetime."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def next_opening(window: MaintenanceWindow, now: dt.datetime) -> dt.datetime | None:
    """None when ``now`` is inside the window; otherwise when it next opens (within eight days)."""
    zone = ZoneInfo(window.timezone)
    local = now.astimezone(zone)
    hours, minutes = (int(part) for part in window.start.split(":"))
    length = dt.timedelta(minutes=window.duration_minutes)
    openings = []
    for offset in range(-1, 8):  # yesterday's window may still be open; a week ahead covers every day
        day = local.date() + dt.timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in window.days:
            continue
        opens = dt.datetime(day.year, day.month, day.day, hours, minutes, tzinfo=zone)
        if opens <= local < opens + length:
            return None
        if opens > local:
            openings.append(opens)
    return min(openings).astimezone(dt.UTC)


def decide(window: MaintenanceWindow | None, policy: str, now: dt.datetime) -> WindowDecision:
    if window is None:
        return WindowDecision(action="proceed")
    opens = next_opening(window, now)
    if opens is None:
        return WindowDecision(action="proceed")
    if policy == "skip":
        return WindowDecision(action="skip", opens_at=opens.isoformat())
    return WindowDecision(
        action="wait", wait_seconds=int((opens - now).total_seconds()) + 1, opens_at=opens.isoformat()
    )
