"""Cross-source contract: the same week of meetings, in each source's wire format, gives the
same normalised events.

``EXPECTED`` is the week as calref must see it. Each entry of ``BUILDERS`` takes
that week in its own wire format (an ICS file, a CalDAV server, ... - Graph,
Google and EWS builders are added by their connectors' authors), runs the real
connector on it and returns the ``CalendarEvent`` list for ``WINDOW``. Every
builder must give exactly ``EXPECTED`` (compared without the ``source`` field).

The week (Europe/Stockholm, UTC+1 in early March 2026), owner alice@example.se:
- "Standup" daily 09:00-09:15 Mon-Fri, Wednesday's excluded (EXDATE), Thursday's
  moved to 10:00-10:15;
- "1:1" Tue 13:00-14:00, private, organised by a colleague, accepted;
- "Offsite" all-day Wed-Thu (two days), out of office;
- "Vendor demo" Thu 15:00-16:00 from an external organiser, answered tentative;
- "Cancelled review" Fri 11:00-12:00, STATUS:CANCELLED;
- "Lunch walk" Fri 12:00-13:00 shown as free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from radicale_server import CalendarWriter, RadicaleServer

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.caldav_source import CalDAVSource
from rules.model import CalendarEvent, OrganizerKind, Response, ShowAs

MAILBOX = Mailbox(user_id="alice", email="alice@example.se", org_domains=("example.se",))
WINDOW = SyncWindow(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))

_HEAD = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//calref contract//EN\n"
_TAIL = "END:VCALENDAR\n"
_STAMP = "DTSTAMP:20260220T120000Z\n"
TZ = "TZID=Europe/Stockholm"

# One VEVENT group per resource (a UID with its overrides), in iCalendar wire format.
WEEK_ICS: dict[str, str] = {
    "standup": (
        f"BEGIN:VEVENT\nUID:standup\n{_STAMP}DTSTART;{TZ}:20260302T090000\n"
        f"DTEND;{TZ}:20260302T091500\nRRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;COUNT=10\n"
        f"EXDATE;{TZ}:20260304T090000\nSUMMARY:Standup\n"
        "ORGANIZER:mailto:alice@example.se\nEND:VEVENT\n"
        f"BEGIN:VEVENT\nUID:standup\n{_STAMP}RECURRENCE-ID;{TZ}:20260305T090000\n"
        f"DTSTART;{TZ}:20260305T100000\nDTEND;{TZ}:20260305T101500\nSUMMARY:Standup\n"
        "ORGANIZER:mailto:alice@example.se\nEND:VEVENT\n"
    ),
    "one-on-one": (
        f"BEGIN:VEVENT\nUID:one-on-one\n{_STAMP}DTSTART;{TZ}:20260303T130000\n"
        f"DTEND;{TZ}:20260303T140000\nSUMMARY:1:1\nCLASS:PRIVATE\n"
        "ORGANIZER:mailto:bob@example.se\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.se\nEND:VEVENT\n"
    ),
    "offsite": (
        f"BEGIN:VEVENT\nUID:offsite\n{_STAMP}DTSTART;VALUE=DATE:20260304\n"
        "DTEND;VALUE=DATE:20260306\nSUMMARY:Offsite\nX-MICROSOFT-CDO-BUSYSTATUS:OOF\n"
        "END:VEVENT\n"
    ),
    "vendor-demo": (
        f"BEGIN:VEVENT\nUID:vendor-demo\n{_STAMP}DTSTART;{TZ}:20260305T150000\n"
        f"DTEND;{TZ}:20260305T160000\nSUMMARY:Vendor demo\n"
        "ORGANIZER:mailto:sales@vendor.example.com\n"
        "ATTENDEE;PARTSTAT=TENTATIVE:mailto:alice@example.se\nEND:VEVENT\n"
    ),
    "review": (
        f"BEGIN:VEVENT\nUID:review\n{_STAMP}DTSTART;{TZ}:20260306T110000\n"
        f"DTEND;{TZ}:20260306T120000\nSUMMARY:Cancelled review\nSTATUS:CANCELLED\n"
        "END:VEVENT\n"
    ),
    "lunch": (
        f"BEGIN:VEVENT\nUID:lunch\n{_STAMP}DTSTART;{TZ}:20260306T120000\n"
        f"DTEND;{TZ}:20260306T130000\nSUMMARY:Lunch walk\nTRANSP:TRANSPARENT\nEND:VEVENT\n"
    ),
}


def _utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def _standup(day: int, start: datetime) -> CalendarEvent:
    rid = _utc(day, 8).isoformat()
    return CalendarEvent(
        uid="standup",
        start=start,
        end=start.replace(minute=start.minute + 15),
        subject="Standup",
        recurrence_id=rid,
        response=Response.ACCEPTED,
        organizer="alice@example.se",
    )


EXPECTED: list[CalendarEvent] = [
    _standup(2, _utc(2, 8)),
    _standup(3, _utc(3, 8)),
    _standup(5, _utc(5, 9)),
    _standup(6, _utc(6, 8)),
    CalendarEvent(
        uid="one-on-one",
        start=_utc(3, 12),
        end=_utc(3, 13),
        subject="1:1",
        response=Response.ACCEPTED,
        private=True,
        organizer_kind=OrganizerKind.INTERNAL,
        organizer="bob@example.se",
    ),
    CalendarEvent(
        uid="offsite",
        start=date(2026, 3, 4),
        end=date(2026, 3, 6),
        subject="Offsite",
        show_as=ShowAs.OOF,
        response=Response.ACCEPTED,
    ),
    CalendarEvent(
        uid="vendor-demo",
        start=_utc(5, 14),
        end=_utc(5, 15),
        subject="Vendor demo",
        response=Response.TENTATIVE,
        organizer_kind=OrganizerKind.EXTERNAL,
        organizer="sales@vendor.example.com",
    ),
    CalendarEvent(
        uid="review",
        start=_utc(6, 10),
        end=_utc(6, 11),
        subject="Cancelled review",
        response=Response.ACCEPTED,
        cancelled=True,
    ),
    CalendarEvent(
        uid="lunch",
        start=_utc(6, 11),
        end=_utc(6, 12),
        subject="Lunch walk",
        show_as=ShowAs.FREE,
        response=Response.ACCEPTED,
    ),
]


def _ics_file() -> list[CalendarEvent]:
    """The week as one exported .ics file, read by the shared iCalendar parser."""
    from connectors.calendars.ics_parse import parse_ics

    text = _HEAD + "".join(WEEK_ICS.values()) + _TAIL
    return parse_ics(text, mailbox=MAILBOX, window=WINDOW, source="ics:week")


def _caldav() -> list[CalendarEvent]:
    """The week on a Radicale CalDAV server, one resource per UID, read by CalDAVSource."""
    with RadicaleServer() as server:
        calendar = CalendarWriter(server, "/alice/calendar/").create()
        for uid, vevents in WEEK_ICS.items():
            calendar.put(f"{uid}.ics", _HEAD + vevents + _TAIL)
        source = CalDAVSource(calendar_url=calendar.url, mailbox=MAILBOX)
        result = source.sync(WINDOW, None)
        assert result.full
        return result.events


BUILDERS: dict[str, Callable[[], list[CalendarEvent]]] = {
    "ics-file": _ics_file,
    "caldav-radicale": _caldav,
}


def _normalised(events: list[CalendarEvent]) -> list[CalendarEvent]:
    return sorted((dataclasses.replace(e, source="") for e in events), key=lambda e: e.key)


@pytest.mark.parametrize("builder", list(BUILDERS), ids=list(BUILDERS))
def test_same_week_gives_the_same_normalised_events(builder: str) -> None:
    assert _normalised(BUILDERS[builder]()) == _normalised(EXPECTED)
