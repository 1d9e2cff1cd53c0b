"""Cross-source contract: the same week of meetings, in each source's wire format, gives the
same normalised events and the same preview.

``EXPECTED`` is the week as calref must see it. Each entry of ``BUILDERS`` takes
that week in its own wire format (an exported .ics file, a Radicale CalDAV
server, Microsoft Graph calendarView delta JSON, Google Calendar events.list
JSON, Exchange EWS FindItem SOAP), runs the real connector's ``sync(WINDOW,
None)`` on it and returns the ``CalendarEvent`` list. Three checks per source:

- the events agree with ``EXPECTED`` on the fields that mean the same on every
  platform (``SHARED_FIELDS``); ids and keys differ per platform, so only what
  must agree is checked: occurrences of one series share a uid, other meetings
  do not, and keys are unique (the two iCalendar sources also match exactly);
- the preview (``plan_user`` with the default rules, Europe/Stockholm) has the
  same referrals and phone actions as the preview of ``EXPECTED``, so all five
  sources give the same preview.

The week (Europe/Stockholm, UTC+1 in early March 2026), owner alice@example.se:
- "Standup" daily 09:00-09:15 Mon-Fri, Wednesday's excluded (EXDATE), Thursday's
  moved to 10:00-10:15;
- "1:1" Tue 13:00-14:00, private, organised by a colleague, accepted;
- "Offsite" all-day Wed-Thu (two days), out of office;
- "Vendor demo" Thu 15:00-16:00 from an external organiser, answered tentative;
- "Cancelled review" Fri 11:00-12:00, organised by a colleague, accepted, then
  cancelled by the organiser (STATUS:CANCELLED);
- "Lunch walk" Fri 12:00-13:00 shown as free.

No categories: Google Calendar has none, so they are not part of the shared week.
What Google cannot express of the rest is in ``_as_google_shows_it`` (the
normalised events differ there; the preview must not).

How each source behaves from one sync to the next (changes, an expired state,
throttling, malformed answers) is ``CalendarSourceContract`` in ``source_contract``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import requests_mock
import respx
from ews_doubles import ENDPOINT, EwsServer, calendar_item
from gcal_doubles import event as gcal_event
from gcal_doubles import events_page, make_source, ok
from graph_doubles import CLIENT_ID, TENANT, FakeGraph, event_json
from radicale_server import CalendarWriter, RadicaleServer

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.caldav.source import CalDAVSource
from connectors.calendars.ews.client import make_client as make_ews_client
from connectors.calendars.ews.config import EwsConnectionConfig
from connectors.calendars.ews.source import EwsCalendarSource
from connectors.calendars.graph.client import make_client as make_graph_client
from connectors.calendars.graph.config import GraphCalendarConfig, GraphConnectionConfig
from connectors.calendars.graph.source import GraphCalendarSource
from rules.actions import ForwardPolicy
from rules.evaluate import EvaluationContext
from rules.model import ActionKind, CalendarEvent, OrganizerKind, Plan, Response, ShowAs, User
from rules.planner import plan_user
from rules.rulefile import default_rules

MAILBOX = Mailbox(user_id="alice", email="alice@example.se", org_domains=("example.se",))
WINDOW = SyncWindow(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))
STOCKHOLM = ZoneInfo("Europe/Stockholm")
ALICE = User(id="alice", name="Alice Andersson", email="alice@example.se", extension="1234")

# ---------------------------------------------------------------------------
# iCalendar (an exported file, and CalDAV resources)

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
        "ORGANIZER:mailto:bob@example.se\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.se\nEND:VEVENT\n"
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
        organizer_kind=OrganizerKind.INTERNAL,
        organizer="bob@example.se",
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
    from connectors.calendars.ics.parse import parse_ics

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


# ---------------------------------------------------------------------------
# Microsoft Graph: calendarView delta (event.md), times in UTC (Prefer: outlook.timezone).
# calendarView expands the series: occurrences and the moved exception carry the
# master's id in seriesMasterId; the excluded Wednesday is simply not there. The
# master itself is never listed; the delta sends its occurrences sparse (the double
# does), so the source reads the master once for their fields.

_BOB = {"name": "Bob Berg", "address": "bob@example.se"}
_VENDOR = {"name": "Vendor Sales", "address": "sales@vendor.example.com"}
_ALICE = {"name": "Alice Andersson", "address": "alice@example.se"}
_ANSWERED = "2026-02-20T12:00:00Z"


def _graph_attendee(who: dict[str, str], response: str) -> dict[str, Any]:
    return {
        "type": "required",
        "status": {"response": response, "time": _ANSWERED},
        "emailAddress": who,
    }


def _graph_invite(organizer: dict[str, str], response: str) -> dict[str, Any]:
    """The fields of a meeting alice was invited to, as it shows in her calendar."""
    return {
        "isOrganizer": False,
        "organizer": {"emailAddress": organizer},
        "responseStatus": {"response": response, "time": _ANSWERED},
        "attendees": [
            _graph_attendee(organizer, "none"),
            _graph_attendee(_ALICE, response),
        ],
    }


def _graph_standup(event_id: str, day: int, start: str, end: str, kind: str) -> dict[str, Any]:
    return event_json(
        event_id,
        "Standup",
        f"2026-03-0{day}T{start}:00.0000000",
        f"2026-03-0{day}T{end}:00.0000000",
        type=kind,
        seriesMasterId="AAMkAGI2TGStandupMaster=",
        originalStart=f"2026-03-0{day}T08:00:00Z",
        iCalUId=f"040000008200E00074C5B7101A82E00807EA030{day}STANDUP",
    )


GRAPH_WEEK: list[dict[str, Any]] = [
    event_json(
        "AAMkAGI2TGStandupMaster=",
        "Standup",
        "2026-03-02T08:00:00.0000000",
        "2026-03-02T08:15:00.0000000",
        type="seriesMaster",
        iCalUId="040000008200E00074C5B7101A82E00807EA0302STANDUP",
    ),
    _graph_standup("AAMkAGI2TGStandup0302=", 2, "08:00", "08:15", "occurrence"),
    _graph_standup("AAMkAGI2TGStandup0303=", 3, "08:00", "08:15", "occurrence"),
    _graph_standup("AAMkAGI2TGStandup0305=", 5, "09:00", "09:15", "exception"),
    _graph_standup("AAMkAGI2TGStandup0306=", 6, "08:00", "08:15", "occurrence"),
    event_json(
        "AAMkAGI2TGOneOnOne=",
        "1:1",
        "2026-03-03T12:00:00.0000000",
        "2026-03-03T13:00:00.0000000",
        sensitivity="private",
        **_graph_invite(_BOB, "accepted"),
    ),
    event_json(
        "AAMkAGI2TGOffsite=",
        "Offsite",
        "2026-03-04T00:00:00.0000000",
        "2026-03-06T00:00:00.0000000",
        isAllDay=True,
        showAs="oof",
        responseRequested=False,
    ),
    event_json(
        "AAMkAGI2TGVendorDemo=",
        "Vendor demo",
        "2026-03-05T14:00:00.0000000",
        "2026-03-05T15:00:00.0000000",
        **_graph_invite(_VENDOR, "tentativelyAccepted"),
    ),
    event_json(
        "AAMkAGI2TGReview=",
        "Cancelled review",
        "2026-03-06T10:00:00.0000000",
        "2026-03-06T11:00:00.0000000",
        isCancelled=True,
        **_graph_invite(_BOB, "accepted"),
    ),
    event_json(
        "AAMkAGI2TGLunch=",
        "Lunch walk",
        "2026-03-06T11:00:00.0000000",
        "2026-03-06T12:00:00.0000000",
        showAs="free",
    ),
]


def _graph() -> list[CalendarEvent]:
    """The week in a mailbox behind the Graph double, read by GraphCalendarSource."""
    with (
        pytest.MonkeyPatch.context() as env,
        respx.mock(assert_all_called=False) as router,
        httpx.Client() as http,
    ):
        env.setenv("CALREF_CONTRACT_GRAPH_SECRET", "contract-client-secret")
        fake = FakeGraph()
        fake.mount(router)
        for item in GRAPH_WEEK:
            fake.put(MAILBOX.email, item)
        connection = GraphConnectionConfig(
            tenant_id=TENANT,
            client_id=CLIENT_ID,
            client_secret_env="CALREF_CONTRACT_GRAPH_SECRET",
            page_size=4,  # three pages: the round must follow nextLinks
        )
        sleeps: list[float] = []
        client = make_graph_client(connection, http=http, sleep=sleeps.append)
        source = GraphCalendarSource(client, GraphCalendarConfig(), MAILBOX)
        result = source.sync(WINDOW, None)
        assert result.full and not result.warnings and not sleeps
        return result.events


# ---------------------------------------------------------------------------
# Google Calendar: events.list with singleEvents=true (instances share the iCalUID and
# carry recurringEventId + originalStartTime; the excluded Wednesday is not listed).


def _gcal_standup(day: int, start: str, end: str) -> dict[str, Any]:
    return gcal_event(
        f"4n1v2k7q0s9c3b8d5e6f_2026030{day}T080000Z",
        f"2026-03-0{day}T{start}:00+01:00",
        f"2026-03-0{day}T{end}:00+01:00",
        summary="Standup",
        recurringEventId="4n1v2k7q0s9c3b8d5e6f",
        originalStartTime={
            "dateTime": f"2026-03-0{day}T09:00:00+01:00",
            "timeZone": "Europe/Stockholm",
        },
        iCalUID="4n1v2k7q0s9c3b8d5e6f@google.com",
    )


def _gcal_invite(organizer: str, response: str) -> dict[str, Any]:
    return {
        "creator": {"email": organizer},
        "organizer": {"email": organizer},
        "attendees": [
            {"email": organizer, "organizer": True, "responseStatus": "accepted"},
            {"email": "alice@example.se", "self": True, "responseStatus": response},
        ],
    }


GOOGLE_WEEK: list[dict[str, Any]] = [
    _gcal_standup(2, "09:00", "09:15"),
    _gcal_standup(3, "09:00", "09:15"),
    _gcal_standup(5, "10:00", "10:15"),
    _gcal_standup(6, "09:00", "09:15"),
    gcal_event(
        "0ne0n0ne1b2c3d4e5f6g",
        "2026-03-03T13:00:00+01:00",
        "2026-03-03T14:00:00+01:00",
        summary="1:1",
        visibility="private",
        **_gcal_invite("bob@example.se", "accepted"),
    ),
    # Google refuses date-based outOfOffice events: an all-day absence is a timed
    # event from local midnight to local midnight.
    gcal_event(
        "0ffs1te1b2c3d4e5f6g7",
        "2026-03-04T00:00:00+01:00",
        "2026-03-06T00:00:00+01:00",
        summary="Offsite",
        eventType="outOfOffice",
        outOfOfficeProperties={
            "autoDeclineMode": "declineOnlyNewConflictingInvitations",
            "declineMessage": "Offsite",
        },
    ),
    gcal_event(
        "vend0rdem01b2c3d4e5f",
        "2026-03-05T15:00:00+01:00",
        "2026-03-05T16:00:00+01:00",
        summary="Vendor demo",
        **_gcal_invite("sales@vendor.example.com", "tentative"),
    ),
    # "Cancelled review" is not here: a cancelled event is a deleted one in Google,
    # and a full listing (no showDeleted) does not return it.
    gcal_event(
        "lunchwalk1b2c3d4e5f6",
        "2026-03-06T12:00:00+01:00",
        "2026-03-06T13:00:00+01:00",
        summary="Lunch walk",
        transparency="transparent",
    ),
]


def _google() -> list[CalendarEvent]:
    """The week as two events.list pages, read by GoogleCalendarSource."""
    pages = [
        ok(events_page(GOOGLE_WEEK[:5], next_page="CigKGjRuMXYyazdxMHM5YzNiOGQ1ZTZm")),
        ok(events_page(GOOGLE_WEEK[5:], next_sync="CPDAlvWDx70CEPDAlvWDx70CGAU=")),
    ]
    source, http, sleeps = make_source(pages)
    result = source.sync(WINDOW, None)
    assert result.full and not sleeps
    assert len(http.request_sequence) == 2
    return result.events


# ---------------------------------------------------------------------------
# Exchange: FindItem with a CalendarView (occurrences share the series UID and carry
# RecurrenceId; all-day boundaries are local midnight sent as UTC instants).

_STANDUP_UID = "040000008200E00074C5B7101A82E00800000000A1B2C3D4E5F6D701000000000000000010"


def _ews_standup(day: int, hour: int, kind: str) -> str:
    return calendar_item(
        f"standup0{day}",
        f"2026-03-0{day}T{hour:02d}:00:00Z",
        f"2026-03-0{day}T{hour:02d}:15:00Z",
        subject="Standup",
        uid=_STANDUP_UID,
        item_type=kind,
        recurrence_id=f"2026-03-0{day}T08:00:00Z",
    )


EWS_WEEK: list[str] = [
    _ews_standup(2, 8, "Occurrence"),
    _ews_standup(3, 8, "Occurrence"),
    _ews_standup(5, 9, "Exception"),
    _ews_standup(6, 8, "Occurrence"),
    calendar_item(
        "oneonone",
        "2026-03-03T12:00:00Z",
        "2026-03-03T13:00:00Z",
        subject="1:1",
        sensitivity="Private",
        response="Accept",
        organizer=("Bob Berg", "bob@example.se", "SMTP"),
    ),
    calendar_item(
        "offsite",
        "2026-03-03T23:00:00Z",
        "2026-03-05T23:00:00Z",
        subject="Offsite",
        all_day=True,
        free_busy="OOF",
    ),
    calendar_item(
        "vendordemo",
        "2026-03-05T14:00:00Z",
        "2026-03-05T15:00:00Z",
        subject="Vendor demo",
        response="Tentative",
        organizer=("Vendor Sales", "sales@vendor.example.com", "SMTP"),
    ),
    calendar_item(
        "review",
        "2026-03-06T10:00:00Z",
        "2026-03-06T11:00:00Z",
        subject="Cancelled review",
        cancelled=True,
        response="Accept",
        organizer=("Bob Berg", "bob@example.se", "SMTP"),
    ),
    calendar_item(
        "lunch",
        "2026-03-06T11:00:00Z",
        "2026-03-06T12:00:00Z",
        subject="Lunch walk",
        free_busy="Free",
    ),
]


def _ews() -> list[CalendarEvent]:
    """The week behind the EWS SOAP double, read by EwsCalendarSource (exchangelib)."""
    with pytest.MonkeyPatch.context() as env, requests_mock.Mocker(real_http=False) as mocker:
        env.setenv("CALREF_CONTRACT_EWS_PASSWORD", "contract-Pa55")
        server = EwsServer(items=list(EWS_WEEK))
        mocker.post(ENDPOINT, text=server)
        connection = EwsConnectionConfig(
            service_endpoint=ENDPOINT,
            username="EXAMPLE\\svc-calref",
            password_env="CALREF_CONTRACT_EWS_PASSWORD",
        )
        sleeps: list[float] = []
        client = make_ews_client(connection, MAILBOX.email, MAILBOX.timezone, sleep=sleeps.append)
        source = EwsCalendarSource(client, MAILBOX)
        result = source.sync(WINDOW, None)
        assert result.full and not sleeps
        assert "FindItem" in server.operations
        return result.events


BUILDERS: dict[str, Callable[[], list[CalendarEvent]]] = {
    "ics-file": _ics_file,
    "caldav-radicale": _caldav,
    "graph": _graph,
    "google": _google,
    "ews": _ews,
}
ICALENDAR_BUILDERS = ("ics-file", "caldav-radicale")


@functools.cache
def _events(builder: str) -> tuple[CalendarEvent, ...]:
    """Each source is read once per test session (the CalDAV one starts a server)."""
    return tuple(BUILDERS[builder]())


# ---------------------------------------------------------------------------
# What each platform can express of the week.


def _as_google_shows_it(events: list[CalendarEvent]) -> list[CalendarEvent]:
    """The week as Google can hold it: no cancelled-but-kept meeting (cancelled means
    deleted there) and the all-day out-of-office as a timed local-midnight span."""
    shown: list[CalendarEvent] = []
    for event in events:
        if event.cancelled:
            continue
        if event.show_as is ShowAs.OOF and event.all_day:
            assert isinstance(event.start, date) and isinstance(event.end, date)
            event = dataclasses.replace(
                event, start=_local_midnight(event.start), end=_local_midnight(event.end)
            )
        shown.append(event)
    return shown


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=STOCKHOLM).astimezone(UTC)


EXPRESSIBLE: dict[str, Callable[[list[CalendarEvent]], list[CalendarEvent]]] = {
    "google": _as_google_shows_it,
}


def _expected_for(builder: str) -> list[CalendarEvent]:
    return EXPRESSIBLE.get(builder, list)(EXPECTED)


# ---------------------------------------------------------------------------
# Comparisons

SHARED_FIELDS = (
    "start",
    "end",
    "all_day",
    "recurrence_id",  # the occurrence's original start in UTC, on every platform
    "show_as",
    "response",
    "cancelled",
    "private",
    "organizer_kind",
    "subject",
)


def _shared(event: CalendarEvent) -> tuple[object, ...]:
    return tuple(getattr(event, name) for name in SHARED_FIELDS)


def _sort_key(row: tuple[object, ...]) -> str:
    return repr(row)


def _shared_rows(
    events: list[CalendarEvent] | tuple[CalendarEvent, ...],
) -> list[tuple[object, ...]]:
    return sorted((_shared(e) for e in events), key=_sort_key)


def _series(
    events: list[CalendarEvent] | tuple[CalendarEvent, ...],
) -> list[list[tuple[object, ...]]]:
    """The events grouped by uid, each group as its shared rows: uids compared by shape only."""
    groups: dict[str, list[tuple[object, ...]]] = {}
    for event in events:
        groups.setdefault(event.uid, []).append(_shared(event))
    return sorted((sorted(g, key=_sort_key) for g in groups.values()), key=_sort_key)


def _normalised(events: list[CalendarEvent] | tuple[CalendarEvent, ...]) -> list[CalendarEvent]:
    return sorted((dataclasses.replace(e, source="") for e in events), key=lambda e: e.key)


def _plan(events: list[CalendarEvent] | tuple[CalendarEvent, ...]) -> Plan:
    rules = default_rules()
    ctx = EvaluationContext(timezone=STOCKHOLM, policy=ForwardPolicy(), rules=rules)
    return plan_user(ALICE, events, ctx)


def _preview(plan: Plan) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Referrals and phone actions without the per-platform event keys they cite."""
    referrals = [
        (r.start, r.end, r.reason, r.message, r.start_action, r.end_action) for r in plan.referrals
    ]
    actions = [(a.at, a.action, a.moment) for a in plan.actions]
    return referrals, actions


# ---------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("builder", list(BUILDERS), ids=list(BUILDERS))
def test_same_week_gives_the_same_events_on_the_fields_every_platform_shares(
    builder: str,
) -> None:
    assert _shared_rows(_events(builder)) == _shared_rows(_expected_for(builder))


@pytest.mark.parametrize("builder", list(BUILDERS), ids=list(BUILDERS))
def test_occurrences_of_one_series_share_a_uid_and_keys_are_unique(builder: str) -> None:
    events = _events(builder)
    assert _series(events) == _series(_expected_for(builder))
    assert len({e.key for e in events}) == len(events)
    assert all(e.source for e in events)


@pytest.mark.parametrize("builder", ICALENDAR_BUILDERS, ids=ICALENDAR_BUILDERS)
def test_icalendar_sources_give_exactly_the_expected_events(builder: str) -> None:
    assert _normalised(_events(builder)) == _normalised(EXPECTED)


@pytest.mark.parametrize("builder", list(BUILDERS), ids=list(BUILDERS))
def test_same_week_gives_the_same_preview(builder: str) -> None:
    assert _preview(_plan(_events(builder))) == _preview(_plan(EXPECTED))


def test_the_weeks_preview_is_what_the_default_rules_make_of_it() -> None:
    """Pins the shared preview, so the comparisons above are not between empty plans."""
    plan = _plan(EXPECTED)
    referrals, actions = _preview(plan)
    assert [(r[0], r[1], r[2], r[3]) for r in referrals] == [
        (_utc(2, 8), _utc(2, 8, 15), "meeting", "Standup"),
        (_utc(3, 8), _utc(3, 8, 15), "meeting", "Standup"),
        (_utc(3, 12), _utc(3, 13), "meeting", "Busy"),  # private: the subject is hidden
        (_utc(3, 23), _utc(5, 23), "out_of_office", "Offsite"),  # swallows Thursday's standup
        (_utc(6, 8), _utc(6, 8, 15), "meeting", "Standup"),
    ]
    assert {a.kind for _, a, _ in actions} == {ActionKind.CLOSE, ActionKind.FOLLOW_PROFILE}
    assert sorted(i.why for i in plan.ignored) == ["cancelled", "free", "tentative"]
