"""Bounds on what one calendar may cost: bytes, time, recurrence work and occurrences.

A calendar is input from outside (an invitation from anyone lands in it), so every
source reads it within fixed bounds and fails with a ``LimitExceeded`` (a
``CalendarError``) naming the bound and the line of the event, instead of hanging
or growing without end. ``CalendarLimits`` holds the numbers (see
docs/calendar-limits.md for each default and why); ``Deadline`` is the parse-time
bound, checked cooperatively in the parser's loops; ``rule_steps`` estimates,
before anything is expanded, how many candidate instants dateutil will step
through from a series' DTSTART to the end of the window.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rules.errors import CalendarError, Retryable

MiB = 1024 * 1024
DOCS = "docs/calendar-limits.md"


class LimitExceeded(CalendarError):
    """A calendar went over one of its bounds (``limit`` names which)."""

    def __init__(self, source: str, limit: str, problem: str) -> None:
        self.limit = limit
        super().__init__(source, f"{problem} (limit {limit}; see {DOCS})")


class DeadlineExceeded(Retryable, LimitExceeded):
    """A calendar took longer than a time bound; a slow server may be quicker next time."""


@dataclass(frozen=True)
class CalendarLimits:
    """The bounds every calendar source reads within. Defaults suit real calendars."""

    max_bytes: int = 10 * MiB
    parse_seconds: float = 60.0
    download_seconds: float = 60.0
    max_occurrences_per_event: int = 5_000
    max_occurrences: int = 50_000
    max_rule_steps: int = 200_000
    max_rdates: int = 5_000


class CalendarLimitsConfig(BaseModel):
    """The config file's ``calendar_limits:`` block (every key optional)."""

    model_config = ConfigDict(extra="forbid")

    max_bytes: int = Field(default=CalendarLimits.max_bytes, ge=1)
    parse_seconds: float = Field(default=CalendarLimits.parse_seconds, gt=0)
    download_seconds: float = Field(default=CalendarLimits.download_seconds, gt=0)
    max_occurrences_per_event: int = Field(default=CalendarLimits.max_occurrences_per_event, ge=1)
    max_occurrences: int = Field(default=CalendarLimits.max_occurrences, ge=1)
    max_rule_steps: int = Field(default=CalendarLimits.max_rule_steps, ge=1)
    max_rdates: int = Field(default=CalendarLimits.max_rdates, ge=1)

    def limits(self) -> CalendarLimits:
        return CalendarLimits(**self.model_dump())


class Deadline:
    """A point in (monotonic) time after which ``check`` raises ``LimitExceeded``."""

    def __init__(
        self,
        seconds: float,
        source: str,
        limit: str = "parse_seconds",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.source = source
        self.limit = limit
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return self._end - self._clock()

    def extend(self, seconds: float) -> None:
        """Move the end ``seconds`` later (time spent waiting, not working)."""
        self._end += seconds

    def check(self, where: str = "") -> None:
        if self._clock() > self._end:
            at = f"{where}: " if where else ""
            raise LimitExceeded(
                self.source, self.limit, f"{at}reading took longer than {self.seconds:g} s"
            )


# -- recurrence cost -------------------------------------------------------------------------

_ORDER = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_SECONDS = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 28 * 86400,  # the shortest month: an upper bound on the number of periods
    "YEARLY": 365 * 86400,
}
_DAYS_IN_PERIOD = {"WEEKLY": 7, "MONTHLY": 31, "YEARLY": 366}
_DAY_PARTS = ("BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY")
_UNIT = {
    "BYSECOND": 0,
    "BYMINUTE": 1,
    "BYHOUR": 2,
    "BYDAY": 3,
    "BYMONTHDAY": 3,
    "BYYEARDAY": 3,
    "BYWEEKNO": 4,
    "BYMONTH": 5,
}
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _aware(value: datetime | date, zone: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return datetime(value.year, value.month, value.day, tzinfo=zone)


def _first_int(rule: Any, part: str, default: int) -> int:
    values = rule.get(part) or []
    first = values[0] if values else default
    return first if isinstance(first, int) and first >= 1 else default


def rule_steps(rule: Any, start: datetime | date, window_end: datetime, zone: Any) -> int:
    """An upper estimate of the candidate instants dateutil visits from ``start`` to
    ``window_end`` for one RRULE (an icalendar ``vRecur``): periods times what the
    BYxxx parts expand each period into. Filters (BYxxx that only limit) are ignored,
    so the estimate never undercounts the iteration for a rule that can occur.
    """
    freq = str((rule.get("FREQ") or [""])[0]).upper()
    if freq not in _SECONDS:
        return 1
    interval = _first_int(rule, "INTERVAL", 1)
    end = window_end
    until = (rule.get("UNTIL") or [None])[0]
    if isinstance(until, date):
        end = min(end, _aware(until, zone).astimezone(UTC))
    span = (end - _aware(start, zone).astimezone(UTC)).total_seconds()
    if span < 0:
        return 1
    periods = int(span // (_SECONDS[freq] * interval)) + 1
    rank = _ORDER.index(freq)
    per_period = 1
    if freq in _DAYS_IN_PERIOD and any(rule.get(p) for p in _DAY_PARTS):
        per_period = _DAYS_IN_PERIOD[freq]
    for part, expands_from in (
        ("BYHOUR", "DAILY"),
        ("BYMINUTE", "HOURLY"),
        ("BYSECOND", "MINUTELY"),
    ):
        if rank >= _ORDER.index(expands_from):
            per_period *= max(1, len(rule.get(part) or []))
    steps = periods * per_period
    count = _first_int(rule, "COUNT", 0)
    if count and not _filters(rule, rank):
        steps = min(steps, count)  # every candidate is an occurrence: COUNT stops it
    return steps


def _filters(rule: Any, rank: int) -> bool:
    """Whether a BYxxx part of ``rule`` only limits (so candidates can be skipped)."""
    if rule.get("BYSETPOS"):
        return True
    return any(rule.get(part) and rank <= unit for part, unit in _UNIT.items())


def impossible_rule(rule: Any) -> str | None:
    """Why ``rule`` can never occur (dateutil would search until the year 9999), if it is
    one of the shapes we recognise: a BYMONTHDAY that none of its BYMONTHs has."""
    days = [d for d in rule.get("BYMONTHDAY") or [] if isinstance(d, int)]
    if not days:
        return None
    months = [m for m in rule.get("BYMONTH") or [] if isinstance(m, int) and 1 <= m <= 12]
    longest = max((_MONTH_DAYS[m - 1] for m in months), default=31)
    if all(abs(d) > longest for d in days):
        return f"BYMONTHDAY {','.join(map(str, days))} exists in none of its months"
    return None


# -- showing input in messages --------------------------------------------------------------


def escape(text: str, limit: int = 80) -> str:
    """``text`` safe to put in a log line or an error: control and format characters as
    ``\\xNN``/``\\uNNNN`` escapes, and at most ``limit`` characters (then ``...``)."""
    out: list[str] = []
    for char in text[: limit + 1]:
        if char == "\\":
            out.append("\\\\")
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    shown = "".join(out)
    return shown if len(text) <= limit else "".join(out[:limit]) + "..."
