"""Checking one VEVENT before it is expanded: is it usable, and what will it cost?

An event is *skipped* (a warning naming its line; the rest of the calendar counts)
when its times are broken, repeated or inconsistent, a line inside it is not
``NAME:value``, or its rule can never occur; a calendar *fails* (``LimitExceeded``)
when an event's recurrence would cost more than ``max_rule_steps`` or it has more
than ``max_rdates`` RDATEs. ``Checker`` also writes the warnings: line first, the
event's UID (escaped) unless calref derived it, never its subject.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from typing import Any
from zoneinfo import ZoneInfo

from connectors.calendars.ics import lines as ics_lines
from connectors.calendars.ics import prepare as ics_prepare
from connectors.calendars.ics.values import (
    as_list,
    component_line,
    existing,
    one,
    raw_value,
    rule_problem,
    text_of,
)
from connectors.calendars.limits import (
    CalendarLimits,
    LimitExceeded,
    escape,
    impossible_rule,
    rule_steps,
)

TIME_PROPS = {
    "DTSTART": "date-time",
    "DTEND": "date-time",
    "DURATION": "duration",
    "RECURRENCE-ID": "date-time",
    "RRULE": "recurrence rule",
    "RDATE": "date-time list",
    "EXDATE": "date-time list",
}
# Properties an event may have at most once (RFC 5545 3.6.1) whose repetition changes
# when it happens or which event it is: such an event is skipped.
ONCE = ("UID", "DTSTART", "DTEND", "DURATION", "RECURRENCE-ID")


class Checker:
    """Validates events of one calendar read and collects the warnings."""

    def __init__(
        self,
        *,
        timezone: str,
        zone: ZoneInfo,
        horizon: datetime,
        source: str,
        prepared: ics_prepare.Prepared,
        limits: CalendarLimits,
        warnings: list[str],
    ) -> None:
        self.timezone = timezone
        self.zone = zone
        self.horizon = horizon  # where expansion stops (UTC)
        self.source = source
        self.blocks = prepared.blocks
        self.derived = prepared.derived
        self.bad = prepared.bad
        self.limits = limits
        self.warnings = warnings

    def as_utc(self, value: datetime | date) -> datetime:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=self.zone)
            return existing(value).astimezone(UTC)
        return datetime.combine(value, day_time(), self.zone).astimezone(UTC)

    def block(self, component: Any) -> ics_lines.Block | None:
        line = component_line(component)
        return self.blocks.get(line) if line is not None else None

    def line_of(self, component: Any, name: str) -> int | None:
        block = self.block(component)
        return block.line_of(name) if block is not None else component_line(component)

    def problem(self, event: Any) -> int | None:
        """The estimated recurrence steps of a usable ``event``; None (and a warning) when
        it cannot be used. Raises ``LimitExceeded`` when it is over a bound."""
        bad = self.bad.get(component_line(event) or 0)
        if bad is not None:
            self.warn(
                event, f"not a content line (NAME:value): '{escape(bad.text, 60)}'", line=bad.line
            )
            return None
        block = self.block(event)
        if block is not None:
            twice = block.repeated(ONCE)
            if twice:
                name, first, second = twice
                self.warn(event, f"{name} appears more than once (lines {first} and {second})")
                return None
        for name, message in event.errors:
            if name in TIME_PROPS:
                raw_text = raw_value(one(event, name))
                self.warn(
                    event,
                    f"{name} is not a valid {TIME_PROPS[name]}: '{escape(raw_text)}' "
                    f"({escape(message, 100)})",
                    line=self.line_of(event, name),
                )
                return None
        if event.get("UID") is None:
            self.warn(event, "a VEVENT has no UID")
            return None
        start_prop = one(event, "DTSTART")
        if start_prop is None:
            self.warn(event, "the event has no DTSTART")
            return None
        start = start_prop.dt
        if not isinstance(start, date):
            self.warn(
                event, "DTSTART is not a date or date-time", line=self.line_of(event, "DTSTART")
            )
            return None
        for name, kind in (("DTEND", date), ("RECURRENCE-ID", date), ("DURATION", timedelta)):
            prop = one(event, name)
            if prop is not None and not isinstance(getattr(prop, "dt", None), kind):
                self.warn(
                    event,
                    f"{name} is not a valid {TIME_PROPS[name]}",
                    line=self.line_of(event, name),
                )
                return None
        bad_rule = rule_problem(event)
        if bad_rule:
            self.warn(event, bad_rule, line=self.line_of(event, "RRULE"))
            return None
        tzid = start_prop.params.get("TZID")
        if tzid and isinstance(start, datetime) and start.tzinfo is None:
            self.warn(
                event,
                f"unknown time zone '{escape(str(tzid))}'; its times are read as {self.timezone}",
                skipped=False,
                line=self.line_of(event, "DTSTART"),
            )
        end_prop = one(event, "DTEND")
        if end_prop is not None:
            end = end_prop.dt
            if isinstance(start, datetime) != isinstance(end, datetime):
                self.warn(
                    event,
                    "DTSTART and DTEND mix a date with a date-time",
                    line=self.line_of(event, "DTEND"),
                )
                return None
            if self.as_utc(end) < self.as_utc(start):
                self.warn(event, "DTEND is before DTSTART", line=self.line_of(event, "DTEND"))
                return None
        return self.rule_cost(event, start)

    def rule_cost(self, event: Any, start: datetime | date) -> int | None:
        """Steps the expansion will take for ``event``; over a bound raises LimitExceeded."""
        rdates = sum(len(getattr(p, "dts", [])) for p in as_list(event.get("RDATE")))
        if rdates > self.limits.max_rdates:
            raise self.over(
                event,
                "max_rdates",
                f"an event has {rdates} RDATEs, more than {self.limits.max_rdates}",
                "RDATE",
            )
        total = 1 + rdates
        for rule in as_list(event.get("RRULE")):
            impossible = impossible_rule(rule)
            if impossible:
                self.warn(
                    event,
                    f"RRULE can never occur: {impossible}",
                    line=self.line_of(event, "RRULE"),
                )
                return None
            total += rule_steps(rule, start, self.horizon, self.zone)
        if total > self.limits.max_rule_steps:
            raise self.over(
                event,
                "max_rule_steps",
                f"an event's RRULE steps through about {total:,} instants from its DTSTART "
                f"to the end of the window, more than {self.limits.max_rule_steps:,}",
                "RRULE",
            )
        return total

    def over(self, event: Any, limit: str, problem: str, prop: str | None = None) -> LimitExceeded:
        line = self.line_of(event, prop) if prop else component_line(event)
        where = f"line {line}: " if line is not None else ""
        return LimitExceeded(self.source, limit, where + problem)

    def warn(
        self, event: Any, message: str, *, skipped: bool = True, line: int | None = None
    ) -> None:
        line = line if line is not None else component_line(event)
        uid = text_of(event, "UID") if event.get("UID") is not None else None
        where = f"line {line}: " if line is not None else ""
        what = f"event '{escape(uid, 60)}'" if uid and uid not in self.derived else "an event"
        verb = " skipped" if skipped else ""
        self.warnings.append(f"{where}{what}{verb}: {message}")
