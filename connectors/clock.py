"""Where the service gets the time from: the only place in ``sync/`` that reads a clock.

Everything else takes a ``Clock`` and calls ``now()``. Production uses
``SystemClock``; tests and the accelerated demo use ``VirtualClock``, which only
moves when told to. Both return aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from threading import Lock
from typing import Protocol


class Clock(Protocol):
    """A source of the current instant."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


def as_utc(moment: datetime, what: str = "time") -> datetime:
    """Return ``moment`` converted to UTC; naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that stands still until ``set`` or ``advance`` moves it (never backwards)."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start, "VirtualClock start")
        self._lock = Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment``; moving backwards is an error (time never runs back)."""
        target = as_utc(moment, "VirtualClock.set")
        with self._lock:
            if target < self._now:
                raise ValueError(
                    f"VirtualClock cannot go back from {self._now.isoformat()} "
                    f"to {target.isoformat()}"
                )
            self._now = target

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` and return the new time."""
        if delta < timedelta(0):
            raise ValueError(f"VirtualClock cannot advance by a negative amount ({delta})")
        with self._lock:
            self._now = self._now + delta
            return self._now
