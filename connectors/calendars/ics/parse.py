"""Parse iCalendar (RFC 5545) text into calref's ``CalendarEvent`` occurrences in a window.

Pipeline: read the text into icalendar components that remember their lines and
carry only this calendar's own time zones (``prepare.py``), make Google's
``X-WR-TIMEZONE`` calendars standard with x-wr-timezone, set aside broken VEVENTs
and refuse series whose expansion would cost more than the limits allow
(``checks.py``; a skipped event is a warning naming its line, the rest of the
calendar still counts), expand every series in the window with recurring-ical-events
in bounded batches under the parse deadline (``expand.py``), and turn each
occurrence into a ``CalendarEvent`` (``mapping.py``). A single VEVENT (no recurrence,
the only one with its UID) needs no expansion: the mapper reads it as it is, which
spares the library's copy of it. Windows TZIDs (Outlook) are
resolved by icalendar itself from the CLDR windowsZones table; Outlook display names
by ``windows_zones.py``. All in ``connectors/calendars/ics/``; used by the ICS and
CalDAV sources.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import x_wr_timezone

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.ics import checks as ics_checks
from connectors.calendars.ics import expand as ics_expand
from connectors.calendars.ics import lines as ics_lines
from connectors.calendars.ics import prepare as ics_prepare
from connectors.calendars.ics.mapping import OccurrenceMapper
from connectors.calendars.ics.prepare import short
from connectors.calendars.ics.values import component_line, drop, text_of, utc_start
from connectors.calendars.limits import (
    CalendarLimits,
    Deadline,
    LimitExceeded,
)
from rules.errors import CalendarError
from rules.model import CalendarEvent

log = logging.getLogger(__name__)

MAX_WARNINGS = 100  # per calendar; the rest are counted


@dataclass
class IcsParseResult:
    """The occurrences in the window, and the events that were skipped (one line each)."""

    events: list[CalendarEvent]
    warnings: list[str] = field(default_factory=list)


def parse_ics(
    data: bytes | str,
    *,
    mailbox: Mailbox,
    window: SyncWindow,
    source: str,
    limits: CalendarLimits | None = None,
) -> list[CalendarEvent]:
    """Every occurrence overlapping ``window``; broken single events are skipped and logged."""
    result = parse_ics_report(data, mailbox=mailbox, window=window, source=source, limits=limits)
    for warning in result.warnings:
        log.warning("%s: %s", source, warning)
    return result.events


def parse_ics_report(
    data: bytes | str,
    *,
    mailbox: Mailbox,
    window: SyncWindow,
    source: str,
    limits: CalendarLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> IcsParseResult:
    """Like ``parse_ics`` but returns the warnings instead of logging them.

    Raises ``CalendarError(source, problem)`` when the calendar as a whole
    cannot be read (not iCalendar, unbalanced BEGIN/END, unparseable line), and
    its subclass ``LimitExceeded`` when it goes over one of ``limits`` (see
    docs/calendar-limits.md).
    """
    limits = limits or CalendarLimits()
    if window.start.tzinfo is None or window.end.tzinfo is None:
        raise CalendarError(source, "the sync window must use aware datetimes")
    zone = mailbox.zone(source)
    size = len(data.encode("utf-8", "replace") if isinstance(data, str) else data)
    if size > limits.max_bytes:
        raise LimitExceeded(
            source, "max_bytes", f"the calendar has {size} bytes, more than {limits.max_bytes}"
        )
    deadline = Deadline(limits.parse_seconds, source, clock=clock)
    text, was_cp1252 = ics_lines.decode(data)
    prepared = ics_prepare.parse_components(text, source, deadline)
    parser = _Parser(mailbox, zone, window, source, prepared, limits, deadline)
    if was_cp1252:
        parser.warnings.append("the file is not UTF-8; it was read as Windows-1252")
    for calendar in prepared.calendars:
        parser.add_calendar(calendar)
    parser.events.sort(key=lambda e: (utc_start(e.start, zone), e.key))
    warnings = parser.warnings
    if len(warnings) > MAX_WARNINGS:  # a generated or hostile file must not flood the log
        more = len(warnings) - MAX_WARNINGS
        warnings = [*warnings[:MAX_WARNINGS], f"... and {more} more warnings like these"]
    return IcsParseResult(parser.events, warnings)


class _Parser:
    """Collects events and warnings for one parse call."""

    def __init__(
        self,
        mailbox: Mailbox,
        zone: ZoneInfo,
        window: SyncWindow,
        source: str,
        prepared: ics_prepare.Prepared,
        limits: CalendarLimits,
        deadline: Deadline,
    ) -> None:
        self.source = source
        self.limits = limits
        self.deadline = deadline
        self.events: list[CalendarEvent] = []
        self.warnings: list[str] = list(prepared.warnings)
        # One day of margin each side: floating times and all-day dates are only placed
        # in the mailbox's zone afterwards; the exact overlap test is in the mapper.
        self.span = (
            window.start.astimezone(zone) - timedelta(days=1),
            window.end.astimezone(zone) + timedelta(days=1),
        )
        self.check = ics_checks.Checker(
            timezone=mailbox.timezone,
            zone=zone,
            horizon=self.span[1].astimezone(UTC),
            source=source,
            prepared=prepared,
            limits=limits,
            warnings=self.warnings,
        )
        self.mapper = OccurrenceMapper(mailbox, window, source, self.check.as_utc)

    # -- validation -------------------------------------------------------------------------

    def add_calendar(self, calendar: icalendar.Calendar) -> None:
        try:
            calendar = x_wr_timezone.to_standard(calendar)
        except Exception as err:  # the library raises what its inputs raise
            raise CalendarError(self.source, f"bad X-WR-TIMEZONE: {short(err)}") from None
        steps: dict[int, int] = {}
        broken: set[int] = set()
        for component in calendar.walk("VEVENT"):
            self.deadline.check(f"line {component_line(component)}")
            try:
                cost = self.check.problem(component)
            except LimitExceeded:
                raise
            except Exception as err:  # a value of a shape we did not foresee: skip the event
                log.debug("%s: unexpected event shape", self.source, exc_info=True)
                self.check.warn(component, f"cannot be read: {short(err, 100)}")
                cost = None
            if cost is None:
                broken.add(id(component))
            else:
                steps[id(component)] = cost
        drop(calendar, broken)
        self.mapper.index(calendar, self.check.warn)
        events = list(calendar.walk("VEVENT"))
        series = {
            text_of(c, "UID")
            for c in events
            if c.get("RRULE") is not None
            or c.get("RDATE") is not None
            or c.get("RECURRENCE-ID") is not None
        }
        singles, recurring = _singles(events)
        for n, single in enumerate(singles):
            if n % 256 == 0:
                self.deadline.check(f"line {component_line(single)}")
            try:
                event = self.mapper.event(single, series)
            except Exception as err:  # one odd event must not stop the calendar
                log.debug("%s: unexpected event shape", self.source, exc_info=True)
                self.check.warn(single, f"an occurrence cannot be read: {short(err, 100)}")
                continue
            if event is not None:
                if len(self.events) >= self.limits.max_occurrences:
                    raise self._too_many()
                self.events.append(event)
        per_uid: dict[str, int] = {}
        for occurrence in self._expand(calendar, recurring, steps):
            uid = text_of(occurrence, "UID")
            per_uid[uid] = per_uid.get(uid, 0) + 1
            if per_uid[uid] > self.limits.max_occurrences_per_event:
                raise self.check.over(
                    occurrence,
                    "max_occurrences_per_event",
                    f"an event has more than {self.limits.max_occurrences_per_event} "
                    "occurrences in the window",
                )
            if len(self.events) >= self.limits.max_occurrences:
                raise self._too_many()
            try:
                event = self.mapper.event(occurrence, series)
            except Exception as err:  # one odd occurrence must not stop the calendar
                log.debug("%s: unexpected occurrence shape", self.source, exc_info=True)
                self.check.warn(occurrence, f"an occurrence cannot be read: {short(err, 100)}")
                continue
            if event is not None:
                self.events.append(event)

    def _too_many(self) -> LimitExceeded:
        return LimitExceeded(
            self.source,
            "max_occurrences",
            f"the calendar has more than {self.limits.max_occurrences} occurrences in the window",
        )

    # -- expansion --------------------------------------------------------------------------

    def _expand(
        self, calendar: icalendar.Calendar, events: list[Any], steps: dict[int, int]
    ) -> Iterator[Any]:
        def skipped(component: Any, err: Exception) -> None:
            self.check.warn(component, f"its recurrence cannot be expanded: {short(err)}")

        return ics_expand.occurrences(
            calendar, events, steps, self.span, self.limits.max_rule_steps, self.deadline, skipped
        )


_RECURRENCE = ("RRULE", "RDATE", "EXDATE", "RECURRENCE-ID")


def _singles(events: list[Any]) -> tuple[list[Any], list[Any]]:
    """``events`` split into single VEVENTs, which need no expansion, and the rest.

    A single VEVENT has no RRULE, RDATE, EXDATE or RECURRENCE-ID, the only VEVENT with its
    UID, and nothing in it but VALARMs: recurring-ical-events would return a copy of it
    with the same times, so the mapper reads it as it is (and tests the window itself).
    """
    count: dict[str, int] = {}
    for component in events:
        uid = text_of(component, "UID")
        count[uid] = count.get(uid, 0) + 1
    nested: set[int] = set()
    for component in events:
        if component.subcomponents:
            inner = [c for c in component.walk() if c is not component]
            if any(c.name != "VALARM" for c in inner):
                nested.add(id(component))
                nested.update(id(c) for c in inner)
    singles: list[Any] = []
    recurring: list[Any] = []
    for component in events:
        if (
            id(component) in nested
            or count[text_of(component, "UID")] > 1
            or any(component.get(name) is not None for name in _RECURRENCE)
        ):
            recurring.append(component)
        else:
            singles.append(component)
    return singles, recurring
