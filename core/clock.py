"""The one clock (时钟) every deadline is checked against.

Server time is authoritative for deadlines and receipts. Tests (and the demo) move it with
``clock.travel(...)`` / ``clock.freeze(...)``; production code only ever calls ``now()``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")


class Clock:
    """A wall clock that can be frozen or shifted, shared by all threads of a process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def freeze(self, at: datetime) -> None:
        """Stop the clock at ``at`` (an aware datetime)."""
        if at.tzinfo is None:
            raise ValueError("freeze() needs an aware datetime")
        with self._lock:
            self._frozen = at.astimezone(UTC)

    def travel(self, delta: timedelta) -> None:
        """Move the clock by ``delta`` (frozen or running)."""
        with self._lock:
            if self._frozen is not None:
                self._frozen += delta
            else:
                self._offset += delta

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta(0)
            self._frozen = None


clock = Clock()


def now() -> datetime:
    """Return the platform's current time, aware, in UTC."""
    return clock.now()


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC; naive values (from SQLite) are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def beijing(value: datetime) -> datetime:
    """Return ``value`` in Beijing time (北京时间) for display."""
    return as_utc(value).astimezone(BEIJING)
