"""Parse iCalendar (RFC 5545) text into calref's ``CalendarEvent`` occurrences.

Pipeline: read the text into icalendar components that remember their lines and
carry only this calendar's own time zones (``ics_prepare``), make Google's
``X-WR-TIMEZONE`` calendars standard with x-wr-timezone, set aside broken VEVENTs
(reported as warnings naming their line; the rest of the calendar still counts),
refuse series whose expansion would cost more than the limits allow
(``limits``), expand every series in the window with recurring-ical-events in
bounded batches under the parse deadline (``ics_expand``), and map each
occurrence with the helpers of ``ics_values`` (busy status,
response, organizer, privacy, categories). Windows TZIDs (Outlook) are resolved by
icalendar itself from the CLDR windowsZones table; Outlook display names by
``windows_zone_names``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import x_wr_timezone

from connectors.calendars import ics_expand, ics_lines, ics_prepare
from connectors.calendars.base import Mailbox, SyncWindow, classify_organizer
from connectors.calendars.ics_prepare import short
from connectors.calendars.ics_values import (
    PARTSTAT,
    address,
    as_list,
    categories,
    component_line,
    drop,
    existing,
    one,
    plus_duration,
    raw_value,
    rule_problem,
    show_as,
    text_of,
    utc_start,
)
from connectors.calendars.limits import (
    CalendarLimits,
    Deadline,
    LimitExceeded,
    escape,
    impossible_rule,
    rule_steps,
)
from rules.errors import CalendarError
from rules.model import CalendarEvent, OrganizerKind, Response

log = logging.getLogger(__name__)

_TIME_PROPS = {
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
_ONCE = ("UID", "DTSTART", "DTEND", "DURATION", "RECURRENCE-ID")
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
        self.blocks = prepared.blocks
        self.derived = prepared.derived
        self.bad = prepared.bad
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
                cost = self._event_problem(component)
            except LimitExceeded:
                raise
            except Exception as err:  # a value of a shape we did not foresee: skip the event
                log.debug("%s: unexpected event shape", self.source, exc_info=True)
                self._warn(component, f"cannot be read: {short(err, 100)}")
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
                raise self._over(
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
                self._warn(occurrence, f"an occurrence cannot be read: {short(err, 100)}")

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
                self._warn(c, f"its times cannot be placed: {short(err, 100)}")
                broken.add(id(c))
        drop(calendar, broken)

    def _block(self, component: Any) -> ics_lines.Block | None:
        line = component_line(component)
        return self.blocks.get(line) if line is not None else None

    def _line_of(self, component: Any, name: str) -> int | None:
        block = self._block(component)
        return block.line_of(name) if block is not None else component_line(component)

    def _event_problem(self, event: Any) -> int | None:
        """The estimated recurrence steps of a usable ``event``; None (and a warning) when
        it cannot be used. Raises ``LimitExceeded`` when it is over a bound."""
        bad = self.bad.get(component_line(event) or 0)
        if bad is not None:
            self._warn(
                event, f"not a content line (NAME:value): '{escape(bad.text, 60)}'", line=bad.line
            )
            return None
        block = self._block(event)
        if block is not None:
            twice = block.repeated(_ONCE)
            if twice:
                name, first, second = twice
                self._warn(event, f"{name} appears more than once (lines {first} and {second})")
                return None
        for name, message in event.errors:
            if name in _TIME_PROPS:
                raw_text = raw_value(one(event, name))
                self._warn(
                    event,
                    f"{name} is not a valid {_TIME_PROPS[name]}: '{escape(raw_text)}' "
                    f"({escape(message, 100)})",
                    line=self._line_of(event, name),
                )
                return None
        if event.get("UID") is None:
            self._warn(event, "a VEVENT has no UID")
            return None
        start_prop = one(event, "DTSTART")
        if start_prop is None:
            self._warn(event, "the event has no DTSTART")
            return None
        start = start_prop.dt
        if not isinstance(start, date):
            self._warn(
                event, "DTSTART is not a date or date-time", line=self._line_of(event, "DTSTART")
            )
            return None
        for name, kind in (("DTEND", date), ("RECURRENCE-ID", date), ("DURATION", timedelta)):
            prop = one(event, name)
            if prop is not None and not isinstance(getattr(prop, "dt", None), kind):
                self._warn(
                    event,
                    f"{name} is not a valid {_TIME_PROPS[name]}",
                    line=self._line_of(event, name),
                )
                return None
        bad_rule = rule_problem(event)
        if bad_rule:
            self._warn(event, bad_rule, line=self._line_of(event, "RRULE"))
            return None
        tzid = start_prop.params.get("TZID")
        if tzid and isinstance(start, datetime) and start.tzinfo is None:
            self._warn(
                event,
                f"unknown time zone '{escape(str(tzid))}'; "
                f"its times are read as {self.mailbox.timezone}",
                skipped=False,
                line=self._line_of(event, "DTSTART"),
            )
        end_prop = one(event, "DTEND")
        if end_prop is not None:
            end = end_prop.dt
            if isinstance(start, datetime) != isinstance(end, datetime):
                self._warn(
                    event,
                    "DTSTART and DTEND mix a date with a date-time",
                    line=self._line_of(event, "DTEND"),
                )
                return None
            if self._as_utc(end) < self._as_utc(start):
                self._warn(event, "DTEND is before DTSTART", line=self._line_of(event, "DTEND"))
                return None
        return self._rule_cost(event, start)

    def _rule_cost(self, event: Any, start: datetime | date) -> int | None:
        """Steps the expansion will take for ``event``; over a bound raises LimitExceeded."""
        rdates = sum(len(getattr(p, "dts", [])) for p in as_list(event.get("RDATE")))
        if rdates > self.limits.max_rdates:
            raise self._over(
                event,
                "max_rdates",
                f"an event has {rdates} RDATEs, more than {self.limits.max_rdates}",
                "RDATE",
            )
        total = 1 + rdates
        for rule in as_list(event.get("RRULE")):
            impossible = impossible_rule(rule)
            if impossible:
                self._warn(
                    event,
                    f"RRULE can never occur: {impossible}",
                    line=self._line_of(event, "RRULE"),
                )
                return None
            total += rule_steps(rule, start, self.span[1].astimezone(UTC), self.zone)
        if total > self.limits.max_rule_steps:
            raise self._over(
                event,
                "max_rule_steps",
                f"an event's RRULE steps through about {total:,} instants from its DTSTART "
                f"to the end of the window, more than {self.limits.max_rule_steps:,}",
                "RRULE",
            )
        return total

    def _over(self, event: Any, limit: str, problem: str, prop: str | None = None) -> LimitExceeded:
        line = self._line_of(event, prop) if prop else component_line(event)
        where = f"line {line}: " if line is not None else ""
        return LimitExceeded(self.source, limit, where + problem)

    def _warn(
        self, event: Any, message: str, *, skipped: bool = True, line: int | None = None
    ) -> None:
        line = line if line is not None else component_line(event)
        uid = text_of(event, "UID") if event.get("UID") is not None else None
        where = f"line {line}: " if line is not None else ""
        what = f"event '{escape(uid, 60)}'" if uid and uid not in self.derived else "an event"
        verb = " skipped" if skipped else ""
        self.warnings.append(f"{where}{what}{verb}: {message}")

    # -- expansion --------------------------------------------------------------------------

    def _expand(
        self, calendar: icalendar.Calendar, events: list[Any], steps: dict[int, int]
    ) -> Iterator[Any]:
        def skipped(component: Any, err: Exception) -> None:
            self._warn(component, f"its recurrence cannot be expanded: {short(err)}")

        return ics_expand.occurrences(
            calendar, events, steps, self.span, self.limits.max_rule_steps, self.deadline, skipped
        )

    # -- mapping ----------------------------------------------------------------------------

    def _as_utc(self, value: datetime | date) -> datetime:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=self.zone)
            return existing(value).astimezone(UTC)
        return datetime.combine(value, day_time(), self.zone).astimezone(UTC)

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
        kind = classify_organizer(organizer, self.mailbox.email, self.mailbox.org_domains)
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
