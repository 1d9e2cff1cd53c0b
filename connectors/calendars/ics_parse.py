"""Parse iCalendar (RFC 5545) text into calref's ``CalendarEvent`` occurrences.

Pipeline: check the structure line by line (so errors can name a line), parse
with icalendar, make Google's ``X-WR-TIMEZONE`` calendars standard with
x-wr-timezone, set aside broken VEVENTs (reported as warnings, the rest of the
calendar still counts), expand every series in the window with
recurring-ical-events, and map each occurrence (busy status, response,
organizer, privacy, categories). Windows TZIDs (Outlook) are resolved by
icalendar itself from the CLDR windowsZones table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import x_wr_timezone

from connectors.calendars import ics_lines
from connectors.calendars.base import Mailbox, SyncWindow, classify_organizer
from rules.errors import CalendarError
from rules.model import CalendarEvent, OrganizerKind, Response, ShowAs

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
_BUSY_STATUS = {
    "FREE": ShowAs.FREE,
    "TENTATIVE": ShowAs.TENTATIVE,
    "BUSY": ShowAs.BUSY,
    "OOF": ShowAs.OOF,
    "WORKINGELSEWHERE": ShowAs.WORKING_ELSEWHERE,
}
_PARTSTAT = {
    "ACCEPTED": Response.ACCEPTED,
    "TENTATIVE": Response.TENTATIVE,
    "DECLINED": Response.DECLINED,
    "NEEDS-ACTION": Response.NONE,
}


@dataclass
class IcsParseResult:
    """The occurrences in the window, and the events that were skipped (one line each)."""

    events: list[CalendarEvent]
    warnings: list[str] = field(default_factory=list)


def parse_ics(
    data: bytes | str, *, mailbox: Mailbox, window: SyncWindow, source: str
) -> list[CalendarEvent]:
    """Every occurrence overlapping ``window``; broken single events are skipped and logged."""
    result = parse_ics_report(data, mailbox=mailbox, window=window, source=source)
    for warning in result.warnings:
        log.warning("%s: %s", source, warning)
    return result.events


def parse_ics_report(
    data: bytes | str, *, mailbox: Mailbox, window: SyncWindow, source: str
) -> IcsParseResult:
    """Like ``parse_ics`` but returns the warnings instead of logging them.

    Raises ``CalendarError(source, problem)`` when the calendar as a whole
    cannot be read (not iCalendar, unbalanced BEGIN/END, unparseable line).
    """
    if window.start.tzinfo is None or window.end.tzinfo is None:
        raise CalendarError(source, "the sync window must use aware datetimes")
    zone = mailbox.zone(source)
    text, was_cp1252 = ics_lines.decode(data)
    lines = ics_lines.content_lines(text)
    problem = ics_lines.structure_problem(lines)
    if problem:
        raise CalendarError(source, problem)
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except (ValueError, TypeError, KeyError) as err:
        raise CalendarError(source, f"not a valid iCalendar file: {_short(err)}") from None
    parser = _Parser(mailbox, zone, window, source, ics_lines.event_blocks(lines))
    if was_cp1252:
        parser.warnings.append("the file is not UTF-8; it was read as Windows-1252")
    for calendar in calendars:
        parser.add_calendar(calendar)
    parser.events.sort(key=lambda e: (_utc_start(e.start, zone), e.key))
    return IcsParseResult(parser.events, parser.warnings)


def _short(err: Exception, limit: int = 160) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _utc_start(value: datetime | date, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(), zone).astimezone(UTC)


class _Parser:
    """Collects events and warnings for one parse call."""

    def __init__(
        self,
        mailbox: Mailbox,
        zone: ZoneInfo,
        window: SyncWindow,
        source: str,
        blocks: list[ics_lines.EventBlock],
    ) -> None:
        self.mailbox = mailbox
        self.email = mailbox.email.strip().lower()
        self.zone = zone
        self.window = window
        self.source = source
        self.blocks = blocks
        self.events: list[CalendarEvent] = []
        self.warnings: list[str] = []
        self.masters: dict[str, Any] = {}
        self.moved: set[tuple[str, datetime | date]] = set()

    # -- validation -------------------------------------------------------------------------

    def add_calendar(self, calendar: icalendar.Calendar) -> None:
        try:
            calendar = x_wr_timezone.to_standard(calendar)
        except (ValueError, TypeError, KeyError) as err:
            raise CalendarError(self.source, f"bad X-WR-TIMEZONE: {_short(err)}") from None
        broken = {id(c) for c in calendar.walk("VEVENT") if self._event_problem(c)}
        calendar.subcomponents = [c for c in calendar.subcomponents if id(c) not in broken]
        series = {
            str(c.get("UID", ""))
            for c in calendar.walk("VEVENT")
            if c.get("RRULE") is not None
            or c.get("RDATE") is not None
            or c.get("RECURRENCE-ID") is not None
        }
        self.masters = {
            str(c.get("UID")): c for c in calendar.walk("VEVENT") if c.get("RECURRENCE-ID") is None
        }
        overrides: list[Any] = [
            c for c in calendar.walk("VEVENT") if c.get("RECURRENCE-ID") is not None
        ]
        self.moved = {(str(c.get("UID")), self._normal(c["RECURRENCE-ID"].dt)) for c in overrides}
        for occurrence in self._expand(calendar):
            self._add_occurrence(occurrence, series)

    def _event_problem(self, event: Any) -> bool:
        """Append a warning and return True when ``event`` cannot be used."""
        uid = str(event.get("UID")) if event.get("UID") is not None else None
        for name, message in event.errors:
            if name in _TIME_PROPS:
                raw = event.get(name)
                raw_text = _raw_value(raw)
                line = ics_lines.find_line(self.blocks, uid, name, raw_text)
                self._warn(
                    line,
                    uid,
                    f"{name} is not a valid {_TIME_PROPS[name]}: {raw_text!r} ({message})",
                )
                return True
        if uid is None:
            self._warn(ics_lines.block_line(self.blocks, None), uid, "a VEVENT has no UID")
            return True
        rule_problem = _rule_problem(event)
        if rule_problem:
            line = ics_lines.find_line(self.blocks, uid, "RRULE")
            self._warn(line, uid, rule_problem)
            return True
        start_prop = event.get("DTSTART")
        if start_prop is None:
            self._warn(ics_lines.block_line(self.blocks, uid), uid, "the event has no DTSTART")
            return True
        start = start_prop.dt
        tzid = start_prop.params.get("TZID")
        if tzid and isinstance(start, datetime) and start.tzinfo is None:
            line = ics_lines.find_line(self.blocks, uid, "DTSTART")
            self._warn(
                line,
                uid,
                f"unknown time zone {tzid!r}; its times are read as {self.mailbox.timezone}",
                skipped=False,
            )
        end_prop = event.get("DTEND")
        if end_prop is not None:
            end = end_prop.dt
            if isinstance(start, datetime) != isinstance(end, datetime):
                line = ics_lines.find_line(self.blocks, uid, "DTEND")
                self._warn(line, uid, "DTSTART and DTEND mix a date with a date-time")
                return True
            if self._as_utc(end) < self._as_utc(start):
                line = ics_lines.find_line(self.blocks, uid, "DTEND")
                self._warn(line, uid, "DTEND is before DTSTART")
                return True
        return False

    def _warn(
        self, line: int | None, uid: str | None, message: str, *, skipped: bool = True
    ) -> None:
        where = f"line {line}: " if line is not None else ""
        what = f"event {uid!r}" if uid is not None else "an event"
        verb = " skipped" if skipped else ""
        self.warnings.append(f"{where}{what}{verb}: {message}")

    # -- expansion --------------------------------------------------------------------------

    def _expand(self, calendar: icalendar.Calendar) -> Iterable[icalendar.Event]:
        # One day of margin each side: floating times and all-day dates are only placed
        # in the mailbox's zone afterwards; the exact overlap test is in _add_occurrence.
        start = self.window.start.astimezone(self.zone) - timedelta(days=1)
        end = self.window.end.astimezone(self.zone) + timedelta(days=1)
        try:
            return list(recurring_ical_events.of(calendar).between(start, end))
        except Exception:
            log.debug("%s: expanding the whole calendar failed; isolating series", self.source)
        found: list[icalendar.Event] = []
        timezones = [c for c in calendar.subcomponents if c.name == "VTIMEZONE"]
        by_uid: dict[str, list[Any]] = {}
        for component in calendar.walk("VEVENT"):
            by_uid.setdefault(str(component.get("UID")), []).append(component)
        for uid, components in by_uid.items():
            single = icalendar.Calendar()
            for key, value in calendar.items():
                single.add(key, value)
            single.subcomponents = [*timezones, *components]
            try:
                found.extend(recurring_ical_events.of(single).between(start, end))
            except Exception as err:
                line = ics_lines.block_line(self.blocks, uid)
                self._warn(line, uid, f"its recurrence cannot be expanded: {_short(err)}")
        return found

    # -- mapping ----------------------------------------------------------------------------

    def _as_utc(self, value: datetime | date) -> datetime:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=self.zone)
            return _existing(value).astimezone(UTC)
        return datetime.combine(value, time(), self.zone).astimezone(UTC)

    def _normal(self, value: datetime | date) -> datetime | date:
        return self._as_utc(value) if isinstance(value, datetime) else value

    def _add_occurrence(self, event: Any, series: set[str]) -> None:
        uid = str(event.get("UID"))
        start: datetime | date = event["DTSTART"].dt
        end: datetime | date
        if event.get("DTEND") is not None:
            end = event["DTEND"].dt
        elif event.get("DURATION") is not None:
            end = _plus_duration(self._as_utc, start, event["DURATION"].dt)
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
            rid = event["RECURRENCE-ID"].dt
            recurrence_id = (
                self._as_utc(rid).isoformat() if isinstance(rid, datetime) else rid.isoformat()
            )
        organizer = _address(event.get("ORGANIZER"))
        kind = classify_organizer(event.get("ORGANIZER"), self.mailbox)
        status = str(event.get("STATUS", "")).strip().upper()
        self.events.append(
            CalendarEvent(
                uid=uid,
                start=self._normal(start),
                end=self._normal(end),
                subject=str(event.get("SUMMARY", "")),
                recurrence_id=recurrence_id,
                show_as=_show_as(event, status),
                response=self._response(event, kind),
                cancelled=status == "CANCELLED",
                private=str(event.get("CLASS", "")).strip().upper() in ("PRIVATE", "CONFIDENTIAL"),
                categories=_categories(event),
                organizer_kind=kind,
                organizer=organizer,
                source=self.source,
            )
        )

    def _exact_end(
        self, event: Any, uid: str, start: datetime | date, end: datetime | date
    ) -> datetime | date:
        """The end RFC 5545 means, where the expansion library added wall-clock time instead.

        The library turns DURATION into DTEND and gives generated occurrences the master's
        length as wall-clock time, so across a DST change an hour became two or none.
        DURATION: days nominal, hours exact; DTEND: the master's exact length.
        """
        if not isinstance(start, datetime) or not isinstance(end, datetime):
            return end
        rid = event.get("RECURRENCE-ID")
        if rid is not None and (uid, self._normal(rid.dt)) in self.moved:
            return end  # an override: its own DTEND as written (DURATION is rare there)
        master = self.masters.get(uid)
        if master is None or not isinstance(master["DTSTART"].dt, datetime):
            return end
        if master.get("DURATION") is not None:
            return _plus_duration(self._as_utc, start, master["DURATION"].dt)
        if master.get("DTEND") is None:
            return end
        first, last = master["DTSTART"].dt, master["DTEND"].dt
        if _wall(end) - _wall(start) != _wall(last) - _wall(first):
            return end  # not the master's length (an RDATE period): keep it
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
        for attendee in _as_list(event.get("ATTENDEE")):
            if _address(attendee) == self.email:
                partstat = str(attendee.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
                return _PARTSTAT.get(partstat, Response.NONE)
        return Response.ACCEPTED


def _wall(value: datetime) -> datetime:
    return value.replace(tzinfo=None, fold=0)


def _existing(value: datetime) -> datetime:
    """``value`` itself, or for a local time skipped by a DST gap the same instant read with
    the offset before the gap (RFC 5545 3.3.5: 02:30 on a spring-forward night is 03:30).

    zoneinfo already does this; the time zones icalendar builds from a VTIMEZONE block
    (Outlook) use the offset after the gap instead, which would start the event an hour early.
    """
    back = value.astimezone(UTC).astimezone(value.tzinfo)
    if back.replace(tzinfo=None, fold=0) == value.replace(tzinfo=None, fold=0):
        return value
    before = (value - timedelta(days=1)).utcoffset()
    after = (value + timedelta(days=1)).utcoffset()
    if before is None or after is None or after <= before:
        return value
    return value + (after - before)


def _plus_duration(
    as_utc: Callable[[datetime | date], datetime], start: datetime | date, duration: timedelta
) -> datetime | date:
    """``start + duration`` as RFC 5545 3.3.6 means it: days and weeks are nominal (same
    local time), hours, minutes and seconds exact (so PT1H is one hour across a DST change)."""
    if not isinstance(start, datetime):
        return start + duration
    days = timedelta(days=duration.days)
    return as_utc(start + days) + (duration - days)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _address(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    return text.strip().lower() or None


def _raw_value(prop: Any) -> str:
    if prop is None:
        return ""
    try:
        raw = prop.to_ical()
    except Exception:
        return str(prop)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text.replace("\\;", ";").replace("\\,", ",")


def _rule_problem(event: Any) -> str | None:
    """Rule values that parse but would make expansion loop forever or fail."""
    for rule in _as_list(event.get("RRULE")):
        for part, least in (("INTERVAL", 1), ("COUNT", 1)):
            for value in rule.get(part, []):
                if not isinstance(value, int) or value < least:
                    return f"RRULE {part} must be a whole number of at least {least}, not {value!r}"
    return None


def _show_as(event: Any, status: str) -> ShowAs:
    busy = str(event.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).strip().upper()
    if busy in _BUSY_STATUS:
        return _BUSY_STATUS[busy]
    if str(event.get("TRANSP", "")).strip().upper() == "TRANSPARENT":
        return ShowAs.FREE
    if status == "TENTATIVE":
        return ShowAs.TENTATIVE
    return ShowAs.BUSY


def _categories(event: Any) -> tuple[str, ...]:
    found: list[str] = []
    for prop in _as_list(event.get("CATEGORIES")):
        names = getattr(prop, "cats", None)
        values = names if names is not None else str(prop).split(",")
        for name in values:
            text = str(name).strip()
            if text and text not in found:
                found.append(text)
    return tuple(found)
