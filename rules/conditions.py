"""The conditions of a rule's ``when:`` and the event facts they are checked against.

Each condition is compiled once, when the rule file is loaded (regexes and
glob patterns precompiled), and checked many times. ``failure`` answers None
when the event satisfies the condition, otherwise a sentence saying why not
("show_as is free; rule wants busy"), which ``explain`` shows to people.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol

from rules.model import OrganizerKind, Response, ShowAs
from rules.patterns import SafePattern

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION_PART = re.compile(r"([0-9]+)\s*([mhd])", re.IGNORECASE)
_DURATION_WHOLE = re.compile(r"\s*([0-9]{1,7}\s*[mhd]\s*){1,3}", re.IGNORECASE)
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})")
MAX_DURATION = timedelta(days=3660)
_UNITS = {"m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What conditions look at: the event's fields, its local start and its length."""

    show_as: ShowAs
    response: Response
    organizer: OrganizerKind
    cancelled: bool
    private: bool
    all_day: bool
    subject: str
    categories: tuple[str, ...]
    local_start: datetime
    duration: timedelta
    reason_tagged: bool = False


class Condition(Protocol):
    """One test in a rule's ``when:``."""

    @property
    def key(self) -> str: ...

    def failure(self, facts: EventFacts) -> str | None: ...


def parse_duration(text: str) -> timedelta:
    """``15m``, ``8h``, ``1d``, ``1h30m`` → timedelta; ValueError naming the text otherwise."""
    if not isinstance(text, str) or not _DURATION_WHOLE.fullmatch(text):
        raise ValueError(
            f"bad duration {text!r} (write a number and a unit m, h or d: 15m, 8h, 1d)"
        )
    seconds = sum(int(n) * _UNITS[u.lower()] for n, u in _DURATION_PART.findall(text))
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {text!r} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """A short human form of ``delta`` (``1h30m``, ``25h``, ``0m``)."""
    minutes = int(delta.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours}h{rest}m"
    return f"{hours}h" if hours else f"{rest}m"


def parse_clock(text: str) -> time:
    """``08:00`` → time(8, 0); ValueError naming the text otherwise."""
    match = _CLOCK.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or int(match[1]) > 24 or int(match[2]) > 59:
        raise ValueError(f"bad time of day {text!r} (write HH:MM, e.g. 08:00)")
    if int(match[1]) == 24:
        if int(match[2]):
            raise ValueError(f"bad time of day {text!r} (24:00 is the latest)")
        return time.max
    return time(int(match[1]), int(match[2]))


def _words(values: Sequence[str]) -> str:
    return ", ".join(values)


@dataclass(frozen=True, slots=True)
class OneOf:
    """``show_as`` / ``response`` / ``organizer``: the field's value is one of the listed."""

    key: str
    values: frozenset[str]
    shown: tuple[str, ...]

    def failure(self, facts: EventFacts) -> str | None:
        actual = str(getattr(facts, self.key))
        if actual in self.values:
            return None
        return f"{self.key} is {actual}; rule wants {_words(self.shown)}"


@dataclass(frozen=True, slots=True)
class Flag:
    """``cancelled`` / ``private`` / ``all_day`` / ``reason_tagged``: the flag has this value."""

    key: str
    wanted: bool

    def failure(self, facts: EventFacts) -> str | None:
        actual = bool(getattr(facts, self.key))
        if actual is self.wanted:
            return None
        return f"{self.key} is {str(actual).lower()}; rule wants {str(self.wanted).lower()}"


@dataclass(frozen=True, slots=True)
class SubjectMatches:
    """``subject``: any of the case-insensitive RE2 patterns is found in the subject (tags
    removed); matching takes time linear in the subject's length (rules.patterns)."""

    patterns: tuple[SafePattern, ...]
    key: str = "subject"

    def failure(self, facts: EventFacts) -> str | None:
        if any(p.search(facts.subject) for p in self.patterns):
            return None
        wanted = _words([p.pattern for p in self.patterns])
        return f"subject matches none of {wanted}"


@dataclass(frozen=True, slots=True)
class CategoryMatches:
    """``category``: some category matches some case-insensitive glob pattern."""

    globs: tuple[str, ...]
    regex: re.Pattern[str]
    key: str = "category"

    def failure(self, facts: EventFacts) -> str | None:
        if any(self.regex.match(c) for c in facts.categories):
            return None
        have = _words(facts.categories) if facts.categories else "no categories"
        return f"categories are {have}; rule wants {_words(self.globs)}"


@dataclass(frozen=True, slots=True)
class DurationWithin:
    """``duration``: min <= length <= max (either bound optional)."""

    minimum: timedelta | None
    maximum: timedelta | None
    key: str = "duration"

    def failure(self, facts: EventFacts) -> str | None:
        d = facts.duration
        if self.minimum is not None and d < self.minimum:
            wanted = f"at least {format_duration(self.minimum)}"
        elif self.maximum is not None and d > self.maximum:
            wanted = f"at most {format_duration(self.maximum)}"
        else:
            return None
        return f"duration is {format_duration(d)}; rule wants {wanted}"


@dataclass(frozen=True, slots=True)
class WeekdayIn:
    """``weekdays``: the local start falls on one of these days."""

    days: frozenset[int]
    key: str = "weekdays"

    def failure(self, facts: EventFacts) -> str | None:
        day = facts.local_start.weekday()
        if day in self.days:
            return None
        wanted = _words([WEEKDAYS[d] for d in sorted(self.days)])
        return f"weekday is {WEEKDAYS[day]}; rule wants {wanted}"


@dataclass(frozen=True, slots=True)
class StartTimeWithin:
    """``time``: the local start time is within [from, to) (a window may wrap past midnight)."""

    start: time
    end: time
    key: str = "time"

    def failure(self, facts: EventFacts) -> str | None:
        at = facts.local_start.time().replace(tzinfo=None)
        if self.start <= self.end:
            inside = self.start <= at < self.end
        else:
            inside = at >= self.start or at < self.end
        if inside:
            return None
        until = "24:00" if self.end == time.max else self.end.strftime("%H:%M")
        return f"starts at {at:%H:%M}; rule wants {self.start:%H:%M}-{until}"
