"""Parse iCalendar (RFC 5545) text into calref's ``CalendarEvent`` occurrences.

Pipeline: read the text into icalendar components that remember their lines and
carry only this calendar's own time zones (``ics_prepare``), make Google's
``X-WR-TIMEZONE`` calendars standard with x-wr-timezone, set aside broken VEVENTs
and refuse series whose expansion would cost more than the limits allow
(``ics_checks``; a skipped event is a warning naming its line, the rest of the
calendar still counts), expand every series in the window with recurring-ical-events
in bounded batches under the parse deadline (``ics_expand``), and map each
occurrence (busy status, response, organizer, privacy, categories) with the helpers
of ``ics_values``. Windows TZIDs (Outlook) are resolved by icalendar itself from the
CLDR windowsZones table; Outlook display names by ``windows_zone_names``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import x_wr_timezone

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.ics import checks as ics_checks
from connectors.calendars.ics import expand as ics_expand
from connectors.calendars.ics import lines as ics_lines
from connectors.calendars.ics import prepare as ics_prepare
from connectors.calendars.ics.prepare import short
from connectors.calendars.ics.values import (
    PARTSTAT,
    address,
    as_list,
    categories,
    component_line,
    drop,
    one,
    plus_duration,
    show_as,
    text_of,
    utc_start,
)
from connectors.calendars.limits import (
    CalendarLimits,
    Deadline,
    LimitExceeded,
)
from connectors.calendars.organizer import classify_organizer
from rules.errors import CalendarError
from rules.model import CalendarEvent, OrganizerKind, Response

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
        self.mailbox = mailbox
        self.email = mailbox.email.strip().lower()
        self.zone = zone
        self.window = window
        self.source = source
        self.limits = limits
        self.deadline = deadline
        self.events: list[CalendarEvent] = []
        self.warnings: list[str] = list(prepared.warnings)
        self.masters: dict[str, Any] = {}
        self.moved: set[tuple[str, datetime | date]] = set()
        self.periods: dict[str, dict[datetime | date, timedelta]] = {}
        # One day of margin each side: floating times and all-day dates are only placed
        # in the mailbox's zone afterwards; the exact overlap test is in _add_occurrence.
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
        self._index(calendar)
        events = list(calendar.walk("VEVENT"))
        series = {
            text_of(c, "UID")
            for c in events
            if c.get("RRULE") is not None
            or c.get("RDATE") is not None
            or c.get("RECURRENCE-ID") is not None
        }
        per_uid: dict[str, int] = {}
        for occurrence in self._expand(calendar, events, steps):
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
                raise LimitExceeded(
                    self.source,
                    "max_occurrences",
                    f"the calendar has more than {self.limits.max_occurrences} "
                    "occurrences in the window",
                )
            try:
                self._add_occurrence(occurrence, series)
            except Exception as err:  # one odd occurrence must not stop the calendar
                log.debug("%s: unexpected occurrence shape", self.source, exc_info=True)
                self.check.warn(occurrence, f"an occurrence cannot be read: {short(err, 100)}")

    def _index(self, calendar: Any) -> None:
        """Masters, their RDATE periods and the moved occurrences; an event whose times
        cannot be placed (out of the representable range) is skipped."""
        self.masters, self.periods, self.moved = {}, {}, set()
        broken: set[int] = set()
        for c in calendar.walk("VEVENT"):
            uid = text_of(c, "UID")
            try:
                rid = one(c, "RECURRENCE-ID")
                if rid is None:
                    self.periods[uid] = self._periods(c)
                    self.masters[uid] = c
                else:
                    self.moved.add((uid, self._normal(rid.dt)))
            except (OverflowError, ValueError, TypeError, AttributeError) as err:
                self.check.warn(c, f"its times cannot be placed: {short(err, 100)}")
                broken.add(id(c))
        drop(calendar, broken)

    # -- expansion --------------------------------------------------------------------------

    def _expand(
        self, calendar: icalendar.Calendar, events: list[Any], steps: dict[int, int]
    ) -> Iterator[Any]:
        def skipped(component: Any, err: Exception) -> None:
            self.check.warn(component, f"its recurrence cannot be expanded: {short(err)}")

        return ics_expand.occurrences(
            calendar, events, steps, self.span, self.limits.max_rule_steps, self.deadline, skipped
        )

    # -- mapping ----------------------------------------------------------------------------

    def _as_utc(self, value: datetime | date) -> datetime:
        return self.check.as_utc(value)

    def _normal(self, value: datetime | date) -> datetime | date:
        return self._as_utc(value) if isinstance(value, datetime) else value

    def _add_occurrence(self, event: Any, series: set[str]) -> None:
        uid = text_of(event, "UID")
        start: datetime | date = one(event, "DTSTART").dt
        end: datetime | date
        if event.get("DTEND") is not None:
            end = one(event, "DTEND").dt
        elif event.get("DURATION") is not None:
            end = plus_duration(self._as_utc, start, one(event, "DURATION").dt)
        elif isinstance(start, datetime):
            end = start
        else:
            end = start + timedelta(days=1)
        end = self._exact_end(event, uid, start, end)
        start_utc, end_utc = self._as_utc(start), self._as_utc(end)
        if not self._overlaps(start_utc, end_utc):
            return
        recurrence_id = None
        if uid in series and event.get("RECURRENCE-ID") is not None:
            rid = one(event, "RECURRENCE-ID").dt
            recurrence_id = (
                self._as_utc(rid).isoformat() if isinstance(rid, datetime) else rid.isoformat()
            )
        organizer = _address(event.get("ORGANIZER"))
        kind = classify_organizer(event.get("ORGANIZER"), self.mailbox)
        status = str(event.get("STATUS", "")).strip().upper()
        if isinstance(event.get("STATUS"), list):  # repeated: the first one counts
            status = text_of(event, "STATUS").strip().upper()
        self.events.append(
            CalendarEvent(
                uid=uid,
                start=self._normal(start),
                end=self._normal(end),
                subject=text_of(event, "SUMMARY"),
                recurrence_id=recurrence_id,
                show_as=show_as(event, status),
                response=self._response(event, kind),
                cancelled=status == "CANCELLED",
                private=text_of(event, "CLASS").strip().upper() in ("PRIVATE", "CONFIDENTIAL"),
                categories=categories(event),
                organizer_kind=kind,
                organizer=organizer,
                source=self.source,
            )
        )

    def _periods(self, master: Any) -> dict[datetime | date, timedelta]:
        """The exact length of each RDATE period of ``master``, by its start (UTC)."""
        out: dict[datetime | date, timedelta] = {}
        for prop in as_list(master.get("RDATE")):
            for item in getattr(prop, "dts", []):
                value = getattr(item, "dt", None)
                if not isinstance(value, tuple) or len(value) != 2:
                    continue
                first, second = value
                if not isinstance(first, datetime):
                    continue
                if isinstance(second, timedelta):
                    end = plus_duration(self._as_utc, first, second)
                else:
                    end = second
                out[self._as_utc(first)] = self._as_utc(end) - self._as_utc(first)
        return out

    def _exact_end(
        self, event: Any, uid: str, start: datetime | date, end: datetime | date
    ) -> datetime | date:
        """The end RFC 5545 means, where the expansion library added wall-clock time instead.

        The library turns DURATION into DTEND and gives generated occurrences the master's
        length as wall-clock time, so across a DST change an hour became two or none.
        An RDATE period keeps its own length; otherwise DURATION: days nominal, hours
        exact; DTEND: the master's exact length (also when DTSTART and DTEND are written
        in different zones).
        """
        if not isinstance(start, datetime) or not isinstance(end, datetime):
            return end
        rid = one(event, "RECURRENCE-ID")
        if rid is not None and (uid, self._normal(rid.dt)) in self.moved:
            return end  # an override: its own DTEND as written (DURATION is rare there)
        master = self.masters.get(uid)
        if master is None or not isinstance(one(master, "DTSTART").dt, datetime):
            return end
        period = self.periods.get(uid, {}).get(self._as_utc(start))
        if period is not None:
            return self._as_utc(start) + period
        if master.get("DURATION") is not None:
            return plus_duration(self._as_utc, start, one(master, "DURATION").dt)
        if master.get("DTEND") is None:
            return end
        first, last = one(master, "DTSTART").dt, one(master, "DTEND").dt
        return self._as_utc(start) + (self._as_utc(last) - self._as_utc(first))

    def _overlaps(self, start: datetime, end: datetime) -> bool:
        if start >= self.window.end:
            return False
        if end == start:
            return start >= self.window.start
        return end > self.window.start

    def _response(self, event: Any, kind: OrganizerKind) -> Response:
        if kind is OrganizerKind.SELF:
            return Response.ACCEPTED
        for attendee in as_list(event.get("ATTENDEE")):
            if address(attendee) == self.email:
                params = getattr(attendee, "params", {})
                partstat = str(params.get("PARTSTAT", "NEEDS-ACTION")).upper()
                return PARTSTAT.get(partstat, Response.NONE)
        return Response.ACCEPTED


def _address(value: Any) -> str | None:
    """The organizer's address; of a repeated ORGANIZER, the first."""
    return address(value[0] if isinstance(value, list) and value else value)
