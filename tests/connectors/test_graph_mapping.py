"""Every Graph event field calref reads, mapped to CalendarEvent."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from graph_doubles import event_json

from connectors.calendars.base import Mailbox
from connectors.calendars.graph.mapping import missing_fields, to_event
from rules.errors import CalendarError
from rules.model import OrganizerKind, Response, ShowAs

MAILBOX = Mailbox("alice", "alice@example.se", ("example.se",), "Europe/Stockholm")
SOURCE = "graph:alice@example.se"


def mapped(**fields: Any):
    return to_event(event_json("AAMkX=", **fields), MAILBOX, SOURCE)


@pytest.mark.parametrize(
    ("show_as", "expected"),
    [
        ("free", ShowAs.FREE),
        ("tentative", ShowAs.TENTATIVE),
        ("busy", ShowAs.BUSY),
        ("oof", ShowAs.OOF),
        ("workingElsewhere", ShowAs.WORKING_ELSEWHERE),
        ("unknown", ShowAs.BUSY),
    ],
)
def test_show_as_values_map_and_unknown_counts_as_busy(show_as: str, expected: ShowAs) -> None:
    assert mapped(showAs=show_as).show_as is expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("none", Response.NONE),
        ("organizer", Response.ACCEPTED),
        ("tentativelyAccepted", Response.TENTATIVE),
        ("TentativelyAccepted", Response.TENTATIVE),
        ("accepted", Response.ACCEPTED),
        ("Declined", Response.DECLINED),
        ("notResponded", Response.NONE),
    ],
)
def test_response_status_maps_case_insensitively(response: str, expected: Response) -> None:
    event = mapped(responseStatus={"response": response, "time": "2024-05-01T10:00:00Z"})
    assert event.response is expected


@pytest.mark.parametrize(
    ("sensitivity", "private"),
    [("normal", False), ("personal", False), ("private", True), ("confidential", True)],
)
def test_private_and_confidential_events_are_private(sensitivity: str, private: bool) -> None:
    assert mapped(sensitivity=sensitivity).private is private


def test_times_are_aware_utc_and_seven_digit_fractions_parse() -> None:
    event = mapped(start="2024-05-06T08:30:00.0000000", end="2024-05-06T09:15:00.0000000")
    assert event.start == datetime(2024, 5, 6, 8, 30, tzinfo=UTC)
    assert event.end == datetime(2024, 5, 6, 9, 15, tzinfo=UTC)
    assert event.start.tzinfo is UTC and not event.all_day


def test_times_in_a_windows_zone_are_converted_to_utc() -> None:
    item = event_json("AAMkX=")
    item["start"] = {
        "dateTime": "2024-05-06T10:00:00.0000000",
        "timeZone": "W. Europe Standard Time",
    }
    item["end"] = {"dateTime": "2024-05-06T11:00:00.0000000", "timeZone": "Europe/Stockholm"}
    event = to_event(item, MAILBOX, SOURCE)
    assert event.start == datetime(2024, 5, 6, 8, 0, tzinfo=UTC)
    assert event.end == datetime(2024, 5, 6, 9, 0, tzinfo=UTC)


def test_all_day_events_become_dates_with_exclusive_end() -> None:
    event = mapped(
        isAllDay=True, start="2024-05-06T00:00:00.0000000", end="2024-05-08T00:00:00.0000000"
    )
    assert (event.start, event.end, event.all_day) == (date(2024, 5, 6), date(2024, 5, 8), True)


def test_all_day_event_sent_as_local_midnight_in_utc_keeps_its_local_dates() -> None:
    # midnight Stockholm (UTC+2 in May) is 22:00 UTC the day before
    event = mapped(
        isAllDay=True, start="2024-05-05T22:00:00.0000000", end="2024-05-06T22:00:00.0000000"
    )
    assert (event.start, event.end) == (date(2024, 5, 6), date(2024, 5, 7))


def test_cancelled_categories_subject_and_organizer_map() -> None:
    event = mapped(
        isCancelled=True,
        categories=["Red category", "#mobile"],
        subject="Styrelsemöte",
        organizer={"emailAddress": {"name": "Bo", "address": "Bo@Partner.COM"}},
    )
    assert event.cancelled is True
    assert event.categories == ("Red category", "#mobile")
    assert event.subject == "Styrelsemöte"
    assert (event.organizer, event.organizer_kind) == ("bo@partner.com", OrganizerKind.EXTERNAL)
    assert event.source == SOURCE


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("alice@example.se", OrganizerKind.SELF),
        ("bob@example.se", OrganizerKind.INTERNAL),
        ("eve@other.se", OrganizerKind.EXTERNAL),
    ],
)
def test_organizer_kind_is_classified_against_the_mailbox(
    address: str, kind: OrganizerKind
) -> None:
    organizer = {"emailAddress": {"name": "X", "address": address}}
    assert mapped(organizer=organizer).organizer_kind is kind


def test_single_instance_uses_ical_uid_and_graph_id_as_key() -> None:
    event = mapped(iCalUId="040000008200E00074C5B7101A82E0080000000001")
    assert event.uid == "040000008200E00074C5B7101A82E0080000000001"
    assert event.recurrence_id is None
    assert event.key == "AAMkX="


@pytest.mark.parametrize("kind", ["occurrence", "exception"])
def test_occurrences_share_the_series_uid_and_use_original_start(kind: str) -> None:
    event = mapped(
        type=kind,
        seriesMasterId="AAMkMaster=",
        originalStart="2024-05-06T08:00:00Z",
        iCalUId="per-occurrence-uid",
    )
    assert event.uid == "AAMkMaster="
    assert event.recurrence_id == "2024-05-06T08:00:00+00:00"
    assert event.key == "AAMkX="


def test_missing_fields_lists_what_a_partial_delta_item_lacks() -> None:
    assert missing_fields(event_json("AAMkX=")) == []
    assert "showAs" in missing_fields({"id": "AAMkX=", "subject": "x"})


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"start": "not-a-time"}, "start.dateTime 'not-a-time' is not ISO 8601"),
        ({"start": "2024-05-06T10:00:00", "end": "2024-05-06T09:00:00"}, "ends before it starts"),
        ({"categories": "Red"}, "categories is not a list"),
    ],
)
def test_bad_event_data_names_the_source_event_and_problem(
    fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(CalendarError) as caught:
        mapped(**fields)
    assert str(caught.value).startswith(f"{SOURCE}: event ")
    assert problem in str(caught.value)


def test_unknown_time_zone_is_a_clear_error() -> None:
    item = event_json("AAMkX=")
    item["start"] = {"dateTime": "2024-05-06T10:00:00", "timeZone": "Mars Standard Time"}
    with pytest.raises(CalendarError, match="unknown time zone 'Mars Standard Time'"):
        to_event(item, MAILBOX, SOURCE)
