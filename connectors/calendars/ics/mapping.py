"""Turning one expanded iCalendar occurrence (a VEVENT) into calref's ``CalendarEvent``.

Used for ICS files and feeds and for CalDAV calendar objects alike, after
``connectors/calendars/ics/parse.py`` has checked and expanded the calendar.
Field choices (see docs/calendars-ics.md):

- ``uid`` is the UID; ``recurrence_id`` the RECURRENCE-ID of an occurrence of a
  series, in UTC (a date for all-day series).
- Times: DTSTART, and DTEND or DTSTART + DURATION (RFC 5545: days nominal, hours
  exact); no end is an instant, or one day for a date. Date-times become UTC
  (floating ones are read in the mailbox's zone); all-day dates stay dates. An
  occurrence generated from a series gets the length the series really has (an RDATE
  period its own), where the expansion library added wall-clock time across a DST
  change. Only occurrences that overlap the window are kept.
- ``show_as``: Outlook's X-MICROSOFT-CDO-BUSYSTATUS, else TRANSP TRANSPARENT is
  free and STATUS TENTATIVE tentative, else busy. STATUS CANCELLED marks it
  cancelled, CLASS PRIVATE or CONFIDENTIAL private; each CATEGORIES name once.
- The organizer's kind from ``classify_organizer``; the user's response is the
  PARTSTAT of the attendee with the user's address (accepted when the user organised
  it or is not listed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.ics.prepare import short
from connectors.calendars.ics.values import (
    PARTSTAT,
    address,
    as_list,
    categories,
    drop,
    one,
    plus_duration,
    show_as,
    text_of,
)
from connectors.calendars.organizer import classify_organizer
from rules.model import CalendarEvent, OrganizerKind, Response, ShowAs


@dataclass(frozen=True, slots=True)
class _Fixed:
    """The fields of a ``CalendarEvent`` that come from its VEVENT, not from its times."""

    uid_prop: Any  # the VEVENT's UID and SUMMARY objects, whose ids are the key
    summary: Any
    uid: str
    series: bool
    subject: str
    show_as: ShowAs
    response: Response
    cancelled: bool
    private: bool
    categories: tuple[str, ...]
    organizer_kind: OrganizerKind
    organizer: str | None


Warn = Callable[[Any, str], None]
"""Records that a component was skipped, and why (``ics.checks.Checker.warn``)."""


class OccurrenceMapper:
    """Maps the occurrences of one calendar, read for ``mailbox`` in ``window``."""

    def __init__(
        self,
        mailbox: Mailbox,
        window: SyncWindow,
        source: str,
        as_utc: Callable[[datetime | date], datetime],
    ) -> None:
        self.mailbox = mailbox
        self.email = mailbox.email.strip().lower()
        self.window = window
        self.source = source
        self._as_utc = as_utc
        self.masters: dict[str, Any] = {}
        self.moved: set[tuple[str, datetime | date]] = set()
        self.periods: dict[str, dict[datetime | date, timedelta]] = {}
        self._by_source: dict[tuple[int, int], _Fixed] = {}
        self._lengths: dict[str, timedelta | str | None] = {}

    def index(self, calendar: Any, warn: Warn) -> None:
        """Masters, their RDATE periods and the moved occurrences; an event whose times
        cannot be placed (out of the representable range) is skipped."""
        self.masters, self.periods, self.moved = {}, {}, set()
        self._by_source, self._lengths = {}, {}
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
                warn(c, f"its times cannot be placed: {short(err, 100)}")
                broken.add(id(c))
        drop(calendar, broken)

    def _normal(self, value: datetime | date) -> datetime | date:
        return self._as_utc(value) if isinstance(value, datetime) else value

    def event(self, event: Any, series: set[str]) -> CalendarEvent | None:
        """The ``CalendarEvent`` of one occurrence; None when it is outside the window.

        ``series`` are the UIDs of the calendar's recurring events (only their
        occurrences have a recurrence id).
        """
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
        start_utc = self._as_utc(start)
        if isinstance(start, datetime) and isinstance(end, datetime):
            end = end_utc = self._exact_end(event, uid, start, start_utc, end)
        else:
            end_utc = self._as_utc(end)
            end = self._normal(end)
        window = self.window
        if start_utc >= window.end:
            return None
        if end_utc == start_utc:
            if start_utc < window.start:
                return None
        elif end_utc <= window.start:
            return None
        fixed = self._fixed(event, uid, series)
        recurrence_id = None
        if fixed.series:
            rid_prop = one(event, "RECURRENCE-ID")
            if rid_prop is not None:
                rid = rid_prop.dt
                if isinstance(rid, datetime):
                    rid_utc = start_utc if rid is start else self._as_utc(rid)
                    recurrence_id = rid_utc.isoformat()
                else:
                    recurrence_id = rid.isoformat()
        return CalendarEvent(
            uid=uid,
            start=start_utc if isinstance(start, datetime) else start,
            end=end,
            subject=fixed.subject,
            recurrence_id=recurrence_id,
            show_as=fixed.show_as,
            response=fixed.response,
            cancelled=fixed.cancelled,
            private=fixed.private,
            categories=fixed.categories,
            organizer_kind=fixed.organizer_kind,
            organizer=fixed.organizer,
            source=self.source,
        )

    def _fixed(self, event: Any, uid: str, series: set[str]) -> _Fixed:
        """What ``event`` shares with every occurrence of the same VEVENT.

        recurring-ical-events makes each occurrence a shallow copy of one VEVENT (the
        master or an override) with new times, so its other property objects are that
        VEVENT's own: these fields are mapped once per VEVENT, found by the identity of
        its UID and SUMMARY objects (kept in the entry, so the ids stay theirs).
        """
        uid_prop, summary = event.get("UID"), event.get("SUMMARY")
        key = (id(uid_prop), id(summary))
        fixed = self._by_source.get(key)
        if fixed is not None and fixed.uid_prop is uid_prop and fixed.summary is summary:
            return fixed
        kind = classify_organizer(event.get("ORGANIZER"), self.mailbox)
        status = str(event.get("STATUS", "")).strip().upper()
        if isinstance(event.get("STATUS"), list):  # repeated: the first one counts
            status = text_of(event, "STATUS").strip().upper()
        fixed = _Fixed(
            uid_prop=uid_prop,
            summary=summary,
            uid=uid,
            series=uid in series,
            subject=text_of(event, "SUMMARY"),
            show_as=show_as(event, status),
            response=self._response(event, kind),
            cancelled=status == "CANCELLED",
            private=text_of(event, "CLASS").strip().upper() in ("PRIVATE", "CONFIDENTIAL"),
            categories=categories(event),
            organizer_kind=kind,
            organizer=_address(event.get("ORGANIZER")),
        )
        self._by_source[key] = fixed
        return fixed

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
        self, event: Any, uid: str, start: datetime, start_utc: datetime, end: datetime
    ) -> datetime:
        """The end RFC 5545 means (UTC), where the expansion library added wall-clock time.

        The library turns DURATION into DTEND and gives generated occurrences the master's
        length as wall-clock time, so across a DST change an hour became two or none.
        An RDATE period keeps its own length; otherwise DURATION: days nominal, hours
        exact; DTEND: the master's exact length (also when DTSTART and DTEND are written
        in different zones).
        """
        if self.moved:
            rid = one(event, "RECURRENCE-ID")
            if rid is not None and (uid, self._normal(rid.dt)) in self.moved:
                return self._as_utc(end)  # an override: its own DTEND as written
        length = self._length(uid)
        if length is None:
            return self._as_utc(end)
        period = self.periods.get(uid, {}).get(start_utc)
        if period is not None:
            return start_utc + period
        if isinstance(length, timedelta):
            return start_utc + length
        if length == "duration":
            duration = one(self.masters[uid], "DURATION").dt
            return self._as_utc(plus_duration(self._as_utc, start, duration))
        return self._as_utc(end)

    def _length(self, uid: str) -> timedelta | str | None:
        """How the occurrences of series ``uid`` get their end, worked out once per UID:
        None (as the library wrote it: no master, or an all-day one), "duration" (the
        master's DURATION from each start), "as written" (the master has no DTEND or
        DURATION), or the master's exact length."""
        if uid in self._lengths:
            return self._lengths[uid]
        master = self.masters.get(uid)
        length: timedelta | str | None
        if master is None or not isinstance(one(master, "DTSTART").dt, datetime):
            length = None
        elif master.get("DURATION") is not None:
            length = "duration"
        elif master.get("DTEND") is None:
            length = "as written"
        else:
            first, last = one(master, "DTSTART").dt, one(master, "DTEND").dt
            length = self._as_utc(last) - self._as_utc(first)
        self._lengths[uid] = length
        return length

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
