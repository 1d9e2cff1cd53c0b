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
from rules.model import CalendarEvent, OrganizerKind, Response

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

    def index(self, calendar: Any, warn: Warn) -> None:
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
        end = self._exact_end(event, uid, start, end)
        start_utc, end_utc = self._as_utc(start), self._as_utc(end)
        if not self._overlaps(start_utc, end_utc):
            return None
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
        return CalendarEvent(
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
