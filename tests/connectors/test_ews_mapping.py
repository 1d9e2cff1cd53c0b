"""EWS ``CalendarItem`` properties map field by field onto ``CalendarEvent``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from ews_doubles import calendar_item
from ews_fixture import ALICE, Harness, harness
from organizer_tags import tags_of

from connectors.calendars.base import Mailbox, SyncWindow
from rules.model import CalendarEvent, OrganizerKind, PhoneAction, Response, ShowAs


@pytest.fixture
def ews(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    yield from harness(monkeypatch)


WINDOW = SyncWindow(datetime(2026, 1, 5, 0, 0, tzinfo=UTC), datetime(2026, 1, 12, 0, 0, tzinfo=UTC))
START, END = "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z"


def mapped(ews: Harness, mailbox: Mailbox = ALICE, **fields: Any) -> CalendarEvent:
    ews.server.items = [
        calendar_item("i1", fields.pop("start", START), fields.pop("end", END), **fields)
    ]
    (event,) = ews.source(mailbox).sync(WINDOW, None).events
    return event


def test_times_are_aware_utc_and_identity_fields_are_kept(ews: Harness) -> None:
    got = mapped(ews, subject="Budget", uid="040000008200E00074C5B7101A82E008")
    assert got.start == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert got.end == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert got.start.utcoffset() is not None and got.start.tzinfo is UTC
    assert got.subject == "Budget"
    assert got.uid == got.key == "040000008200E00074C5B7101A82E008"
    assert got.source == "ews:alice@example.se"
    assert got.recurrence_id is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Free", ShowAs.FREE),
        ("Tentative", ShowAs.TENTATIVE),
        ("Busy", ShowAs.BUSY),
        ("OOF", ShowAs.OOF),
        ("WorkingElsewhere", ShowAs.WORKING_ELSEWHERE),
        ("NoData", ShowAs.BUSY),
    ],
)
def test_legacy_free_busy_status_maps_to_show_as(
    ews: Harness, status: str, expected: ShowAs
) -> None:
    assert mapped(ews, free_busy=status).show_as is expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("Accept", Response.ACCEPTED),
        ("Tentative", Response.TENTATIVE),
        ("Decline", Response.DECLINED),
        ("NoResponseReceived", Response.NONE),
        ("Unknown", Response.NONE),
        ("Organizer", Response.ACCEPTED),
    ],
)
def test_my_response_type_maps_to_the_users_response(
    ews: Harness, response: str, expected: Response
) -> None:
    organizer = ("Bob", "bob@example.se", "SMTP")
    assert mapped(ews, response=response, organizer=organizer).response is expected


@pytest.mark.parametrize(
    ("sensitivity", "private"),
    [("Normal", False), ("Personal", False), ("Private", True), ("Confidential", True)],
)
def test_private_and_confidential_sensitivity_mark_the_event_private(
    ews: Harness, sensitivity: str, private: bool
) -> None:
    assert mapped(ews, sensitivity=sensitivity).private is private


def test_cancelled_meetings_and_categories_are_kept(ews: Harness) -> None:
    got = mapped(ews, cancelled=True, categories=("Kund", "Resa"))
    assert got.cancelled is True
    assert got.categories == ("Kund", "Resa")


def test_organizer_kinds(ews: Harness) -> None:
    internal = mapped(ews, response="Accept", organizer=("Bob", "bob@example.se", "SMTP"))
    assert (internal.organizer, internal.organizer_kind) == (
        "bob@example.se",
        OrganizerKind.INTERNAL,
    )
    external = mapped(ews, response="Accept", organizer=("Eve", "eve@vendor.com", "SMTP"))
    assert external.organizer_kind is OrganizerKind.EXTERNAL
    own = mapped(ews, response="Organizer", organizer=("Alice", "alice@example.se", "SMTP"))
    assert own.organizer_kind is OrganizerKind.SELF


def test_exchange_directory_organizer_addresses_count_as_internal(ews: Harness) -> None:
    legacy_dn = "/O=EXAMPLE/OU=EXCHANGE ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=BOB"
    got = mapped(ews, response="Tentative", organizer=("Bob", legacy_dn, "EX"))
    assert got.organizer_kind is OrganizerKind.INTERNAL
    shared = mapped(ews, SHARED, response="Tentative", organizer=("Bob", legacy_dn, "EX"))
    assert shared.organizer_kind is OrganizerKind.INTERNAL


SHARED = Mailbox("alice", "alice@example.se", ("example.se",), own_calendar=False)


@pytest.mark.parametrize("response", ["Organizer", "NoResponseReceived", "Unknown"])
def test_an_appointment_without_organizer_is_the_users_own_on_their_own_calendar(
    ews: Harness, response: str
) -> None:
    got = mapped(ews, subject="Dentist #mobile", response=response, organizer=None)
    assert got.organizer_kind is OrganizerKind.SELF
    assert tags_of(got).end_action == PhoneAction.profile_switch("mob")


@pytest.mark.parametrize("response", ["Organizer", "NoResponseReceived", "Unknown"])
def test_without_organizer_on_a_shared_calendar_tags_are_refused(
    ews: Harness, response: str
) -> None:
    got = mapped(
        ews, SHARED, subject="x #fwd:0701234567 #mobile", response=response, organizer=None
    )
    assert got.organizer_kind is OrganizerKind.EXTERNAL
    out = tags_of(got)
    assert (out.start_action, out.end_action) == (None, None)
    assert [r.tag for r in out.refused] == ["#fwd:0701234567", "#mobile"]


def test_on_a_shared_calendar_the_mailbox_owners_own_items_are_judged_by_address(
    ews: Harness,
) -> None:
    # MyResponseType Organizer there means the shared mailbox's owner organised it, not the user
    reception = ("Reception", "reception@example.se", "SMTP")
    got = mapped(ews, SHARED, response="Organizer", organizer=reception)
    assert got.organizer_kind is OrganizerKind.INTERNAL
    vendor = ("Vendor", "booking@vendor.com", "SMTP")
    assert mapped(ews, SHARED, response="Organizer", organizer=vendor).organizer_kind is (
        OrganizerKind.EXTERNAL
    )


@pytest.mark.parametrize(
    "address",
    [
        "evil@vendor.com@example.se",
        "evil@vendor.com?@example.se",
        "bob@example.se.evil.com",
        "bob@evilexample.se",
        "bob",  # an SMTP organizer without @ is not a directory entry
    ],
)
def test_malformed_smtp_organizers_are_external(ews: Harness, address: str) -> None:
    got = mapped(ews, response="Accept", organizer=("Eve", address, "SMTP"))
    assert got.organizer_kind is OrganizerKind.EXTERNAL
    assert mapped(
        ews, SHARED, response="Accept", organizer=("Eve", address, "SMTP")
    ).organizer_kind is (OrganizerKind.EXTERNAL)


def test_all_day_events_become_local_dates_with_exclusive_end(ews: Harness) -> None:
    # Exchange sends all-day boundaries as local (Stockholm) midnight in UTC.
    got = mapped(ews, start="2026-01-06T23:00:00Z", end="2026-01-08T23:00:00Z", all_day=True)
    assert (got.start, got.end) == (date(2026, 1, 7), date(2026, 1, 9))
    assert got.all_day


def test_one_day_all_day_event(ews: Harness) -> None:
    got = mapped(ews, start="2026-01-06T23:00:00Z", end="2026-01-07T23:00:00Z", all_day=True)
    assert (got.start, got.end) == (date(2026, 1, 7), date(2026, 1, 8))


def test_occurrences_of_a_series_get_distinct_keys_from_their_recurrence_id(ews: Harness) -> None:
    ews.server.items = [
        calendar_item(
            f"occ{day}",
            f"2026-01-0{day}T08:00:00Z",
            f"2026-01-0{day}T08:15:00Z",
            uid="SERIES-UID",
            item_type="Occurrence",
            recurrence_id=f"2026-01-0{day}T08:00:00Z",
        )
        for day in (5, 6, 7)
    ]
    events = ews.source().sync(WINDOW, None).events
    assert {e.uid for e in events} == {"SERIES-UID"}
    assert sorted(e.recurrence_id or "" for e in events) == [
        "2026-01-05T08:00:00+00:00",
        "2026-01-06T08:00:00+00:00",
        "2026-01-07T08:00:00+00:00",
    ]
    assert len({e.key for e in events}) == 3


def test_another_mailboxs_calendar_is_shared_even_without_the_key(ews: Harness) -> None:
    from connectors.calendars.ews import build_source
    from connectors.calendars.ews.config import EwsCalendarConfig, EwsConnectionConfig

    conn = EwsConnectionConfig(
        service_endpoint=ews.endpoint,
        username="EXAMPLE\\svc-calref",
        password_env="CALREF_TEST_EWS_PASSWORD",
    )
    ews.server.items = [calendar_item("i1", START, END, response="Organizer", organizer=None)]
    reception = build_source(conn, EwsCalendarConfig(mailbox="reception@example.se"), ALICE)
    (event,) = reception.sync(WINDOW, None).events
    assert event.organizer_kind is OrganizerKind.EXTERNAL
    own = build_source(conn, EwsCalendarConfig(mailbox="Alice@Example.se"), ALICE)
    (event,) = own.sync(WINDOW, None).events
    assert event.organizer_kind is OrganizerKind.SELF
