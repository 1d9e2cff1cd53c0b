"""Google ``Event`` resources map field by field onto ``CalendarEvent``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from gcal_doubles import ALICE, event, events_page, make_source, ok

from connectors.calendars.base import Mailbox, SyncWindow
from rules.model import CalendarEvent, OrganizerKind, Response, ShowAs

WINDOW = SyncWindow(datetime(2026, 1, 5, 0, 0, tzinfo=UTC), datetime(2026, 1, 12, 0, 0, tzinfo=UTC))
START, END = "2026-01-05T10:00:00+01:00", "2026-01-05T11:00:00+01:00"


def mapped(item: dict[str, Any]) -> CalendarEvent:
    source, _, _ = make_source([ok(events_page([item], next_sync="t"))])
    (result,) = source.sync(WINDOW, None).events
    return result


def test_times_become_aware_utc_and_identity_fields_are_kept() -> None:
    got = mapped(event("abc123", START, END, summary="Budget"))
    assert got.start == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert got.end == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert got.start.tzinfo is UTC
    assert (got.uid, got.key, got.subject) == ("abc123@google.com", "abc123", "Budget")
    assert got.recurrence_id is None
    assert got.source == "google:alice@example.se"
    assert got.cancelled is False and got.categories == ()


def test_all_day_events_keep_dates_with_exclusive_end() -> None:
    got = mapped(event("day1", "2026-01-07", "2026-01-09", all_day=True))
    assert (got.start, got.end) == (date(2026, 1, 7), date(2026, 1, 9))
    assert got.all_day


def test_recurring_instances_carry_the_original_start_as_recurrence_id() -> None:
    item = event(
        "series_20260106T090000Z",
        "2026-01-06T11:00:00+01:00",
        "2026-01-06T12:00:00+01:00",
        recurringEventId="series",
        originalStartTime={"dateTime": "2026-01-06T10:00:00+01:00", "timeZone": "Europe/Stockholm"},
        iCalUID="series@google.com",
    )
    got = mapped(item)
    assert got.uid == "series@google.com"
    assert got.recurrence_id == "2026-01-06T09:00:00+00:00"
    assert got.key == "series_20260106T090000Z"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, ShowAs.BUSY),
        ({"transparency": "opaque"}, ShowAs.BUSY),
        ({"transparency": "transparent"}, ShowAs.FREE),
        (
            {"eventType": "outOfOffice", "outOfOfficeProperties": {"autoDeclineMode": "x"}},
            ShowAs.OOF,
        ),
        ({"eventType": "outOfOffice", "transparency": "transparent"}, ShowAs.OOF),
        (
            {"eventType": "focusTime", "focusTimeProperties": {"chatStatus": "doNotDisturb"}},
            ShowAs.BUSY,
        ),
        (
            {
                "eventType": "workingLocation",
                "transparency": "transparent",
                "workingLocationProperties": {"type": "homeOffice", "homeOffice": {}},
            },
            ShowAs.WORKING_ELSEWHERE,
        ),
        (
            {
                "eventType": "workingLocation",
                "transparency": "transparent",
                "workingLocationProperties": {
                    "type": "officeLocation",
                    "officeLocation": {"label": "HQ"},
                },
            },
            ShowAs.FREE,
        ),
        ({"eventType": "birthday"}, ShowAs.FREE),
    ],
)
def test_event_type_and_transparency_map_to_show_as(
    fields: dict[str, Any], expected: ShowAs
) -> None:
    assert mapped(event("e", START, END, **fields)).show_as is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("accepted", Response.ACCEPTED),
        ("tentative", Response.TENTATIVE),
        ("declined", Response.DECLINED),
        ("needsAction", Response.NONE),
    ],
)
def test_the_users_own_attendee_entry_gives_the_response(status: str, expected: Response) -> None:
    item = event(
        "e",
        START,
        END,
        organizer={"email": "bob@example.se", "displayName": "Bob"},
        attendees=[
            {"email": "bob@example.se", "organizer": True, "responseStatus": "accepted"},
            {"email": "alice@example.se", "self": True, "responseStatus": status},
        ],
    )
    got = mapped(item)
    assert got.response is expected
    assert got.organizer == "bob@example.se"
    assert got.organizer_kind is OrganizerKind.INTERNAL


def test_own_event_without_guests_counts_as_accepted_and_organised_by_self() -> None:
    got = mapped(event("e", START, END))
    assert got.response is Response.ACCEPTED
    assert got.organizer_kind is OrganizerKind.SELF


def test_external_organizer_is_classified_external() -> None:
    item = event(
        "e",
        START,
        END,
        organizer={"email": "sales@vendor.com"},
        attendees=[{"email": "alice@example.se", "self": True, "responseStatus": "needsAction"}],
    )
    got = mapped(item)
    assert got.organizer_kind is OrganizerKind.EXTERNAL
    assert got.response is Response.NONE


@pytest.mark.parametrize(
    ("visibility", "private"),
    [("default", False), ("public", False), ("private", True), ("confidential", True)],
)
def test_private_and_confidential_visibility_mark_the_event_private(
    visibility: str, private: bool
) -> None:
    assert mapped(event("e", START, END, visibility=visibility)).private is private


def test_private_event_seen_without_details_has_an_empty_subject() -> None:
    item = event("e", START, END, visibility="private")
    del item["summary"]
    got = mapped(item)
    assert got.subject == "" and got.private


def test_all_day_events_are_placed_in_the_mailbox_time_zone_when_filtering() -> None:
    # Local 2026-01-06 begins at 2026-01-05T23:00Z in Stockholm, inside a span ending 01-06T00:00Z;
    # read as UTC midnight it would start exactly at the span's end and be left out.
    window = SyncWindow(
        datetime(2026, 1, 5, 8, 0, tzinfo=UTC), datetime(2026, 1, 5, 23, 30, tzinfo=UTC)
    )
    items = [event("d", "2026-01-06", "2026-01-07", all_day=True)]
    source, _, _ = make_source([ok(events_page(items, next_sync="t"))], mailbox=ALICE)
    assert [e.key for e in source.sync(window, None).events] == ["d"]
    utc_box = Mailbox(user_id="u", email="u@example.se", timezone="UTC")
    source, _, _ = make_source([ok(events_page(items, next_sync="t"))], mailbox=utc_box)
    assert source.sync(window, None).events == []
