"""parse_ics edge cases: time zones, missing ends, busy-status precedence, window, errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.ics.parse import parse_ics, parse_ics_report
from rules.errors import CalendarError
from rules.model import ShowAs

ANNA = Mailbox("anna", "anna.berg@example.se", ("example.se",), "Europe/Stockholm")
WINDOW = SyncWindow(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))


def cal(*events: str) -> str:
    body = "".join(f"BEGIN:VEVENT\r\n{e.strip()}\r\nEND:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\n{body}END:VCALENDAR\r\n"


def one(text: str, mailbox: Mailbox = ANNA, window: SyncWindow = WINDOW) -> object:
    (event,) = parse_ics(text, mailbox=mailbox, window=window, source="t.ics")
    return event


def u(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_icalendar_itself_maps_the_windows_zone_names_we_rely_on() -> None:
    assert WINDOWS_TO_OLSON["W. Europe Standard Time"] == "Europe/Berlin"
    assert WINDOWS_TO_OLSON["Romance Standard Time"] == "Europe/Paris"
    assert WINDOWS_TO_OLSON["GMT Standard Time"] == "Europe/London"
    assert WINDOWS_TO_OLSON["Pacific Standard Time"] == "America/Los_Angeles"


def test_floating_time_is_read_in_the_mailbox_zone() -> None:
    text = cal("UID:f\nDTSTART:20261130T090000\nDTEND:20261130T100000")
    helsinki = Mailbox("a", "a@example.fi", (), "Europe/Helsinki")
    assert one(text).start == u("2026-11-30T08:00")  # type: ignore[attr-defined]
    assert one(text, helsinki).start == u("2026-11-30T07:00")  # type: ignore[attr-defined]


def test_output_datetimes_are_aware_utc() -> None:
    event = one(cal("UID:z\nDTSTART;TZID=America/New_York:20261130T090000\nDURATION:PT1H"))
    assert event.start == u("2026-11-30T14:00")  # type: ignore[attr-defined]
    assert event.start.utcoffset().total_seconds() == 0  # type: ignore[attr-defined]
    assert event.end == u("2026-11-30T15:00")  # type: ignore[attr-defined]


def test_date_without_dtend_lasts_one_day_and_stays_a_date() -> None:
    event = one(cal("UID:d\nDTSTART;VALUE=DATE:20261204"))
    assert (event.start, event.end) == (date(2026, 12, 4), date(2026, 12, 5))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ("X-MICROSOFT-CDO-BUSYSTATUS:FREE\nTRANSP:OPAQUE", ShowAs.FREE),
        ("X-MICROSOFT-CDO-BUSYSTATUS:OOF\nTRANSP:TRANSPARENT", ShowAs.OOF),
        ("X-MICROSOFT-CDO-BUSYSTATUS:WORKINGELSEWHERE", ShowAs.WORKING_ELSEWHERE),
        ("X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE\nSTATUS:CONFIRMED", ShowAs.TENTATIVE),
        ("X-MICROSOFT-CDO-BUSYSTATUS:BUSY\nSTATUS:TENTATIVE", ShowAs.BUSY),
        ("TRANSP:TRANSPARENT", ShowAs.FREE),
        ("TRANSP:OPAQUE", ShowAs.BUSY),
        ("STATUS:TENTATIVE", ShowAs.TENTATIVE),
        ("", ShowAs.BUSY),
    ],
)
def test_busy_status_wins_over_transp_and_status(props: str, expected: ShowAs) -> None:
    event = one(cal(f"UID:b\nDTSTART:20261130T090000Z\n{props}".rstrip()))
    assert event.show_as is expected  # type: ignore[attr-defined]


def test_response_comes_from_the_users_own_attendee_line() -> None:
    base = "UID:r\nDTSTART:20261130T090000Z\nORGANIZER:mailto:boss@example.se\n"
    declined = "ATTENDEE;PARTSTAT=DECLINED:MAILTO:ANNA.BERG@EXAMPLE.SE"
    other = "ATTENDEE;PARTSTAT=DECLINED:mailto:someone@example.se"
    assert one(cal(base + declined)).response.value == "declined"  # type: ignore[attr-defined]
    # not an attendee at all: the event is in her calendar, so she has it
    assert one(cal(base + other)).response.value == "accepted"  # type: ignore[attr-defined]
    no_partstat = "ATTENDEE:mailto:anna.berg@example.se"
    assert one(cal(base + no_partstat)).response.value == "none"  # type: ignore[attr-defined]


def test_events_outside_the_window_are_left_out_and_overlapping_ones_kept() -> None:
    text = cal(
        "UID:before\nDTSTART:20261031T220000Z\nDTEND:20261031T230000Z",
        "UID:overlap\nDTSTART:20261031T230000Z\nDTEND:20261101T010000Z",
        "UID:at-end\nDTSTART:20261231T000000Z\nDTEND:20261231T010000Z",
        # 2026-10-31 as an all-day local date ends at 2026-10-31T23:00Z: outside
        "UID:allday-before\nDTSTART;VALUE=DATE:20261031\nDTEND;VALUE=DATE:20261101",
        "UID:allday-in\nDTSTART;VALUE=DATE:20261101",
    )
    found = parse_ics(text, mailbox=ANNA, window=WINDOW, source="t.ics")
    assert [e.uid for e in found] == ["allday-in", "overlap"]


def test_unknown_tzid_is_read_in_mailbox_zone_with_a_warning() -> None:
    text = cal("UID:x\nDTSTART;TZID=Mars/Olympus:20261130T090000")
    result = parse_ics_report(text, mailbox=ANNA, window=WINDOW, source="t.ics")
    assert [e.start for e in result.events] == [u("2026-11-30T08:00")]
    assert result.warnings == [
        "line 6: event 'x': unknown time zone 'Mars/Olympus'; "
        "its times are read as Europe/Stockholm"
    ]


def test_end_before_start_and_mixed_date_types_are_skipped_with_warnings() -> None:
    text = cal(
        "UID:backwards\nDTSTART:20261130T090000Z\nDTEND:20261130T080000Z",
        "UID:mixed\nDTSTART;VALUE=DATE:20261130\nDTEND:20261201T080000Z",
        "UID:fine\nDTSTART:20261130T090000Z",
    )
    result = parse_ics_report(text, mailbox=ANNA, window=WINDOW, source="t.ics")
    assert [e.uid for e in result.events] == ["fine"]
    assert result.warnings == [
        "line 7: event 'backwards' skipped: DTEND is before DTSTART",
        "line 12: event 'mixed' skipped: DTSTART and DTEND mix a date with a date-time",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not an iCalendar file (no BEGIN:VCALENDAR at the start): the file is empty"),
        (
            "<html><body>Sign in</body></html>",
            "not an iCalendar file (no BEGIN:VCALENDAR at the start): "
            "starts with '<html><body>Sign in</body></html>'",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nEND:VCALENDAR\n",
            "line 4: END:VCALENDAR found but BEGIN:VEVENT from line 2 is still open",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:x\nthis is not a property\nEND:VTIMEZONE\n"
            "END:VCALENDAR\n",
            "line 4: not a content line (NAME:value): 'this is not a property'",
        ),
    ],
)
def test_a_malformed_calendar_is_one_calendar_error(text: str, problem: str) -> None:
    with pytest.raises(CalendarError) as caught:
        parse_ics(text, mailbox=ANNA, window=WINDOW, source="https://example.se/anna.ics")
    assert caught.value.problem == problem
    assert str(caught.value).startswith("https://example.se/anna.ics: ")


def test_a_line_that_is_not_a_property_inside_an_event_skips_only_that_event() -> None:
    text = cal(
        "UID:a\nthis is not a property\nDTSTART:20261130T090000Z", "UID:b\nDTSTART:20261130T100000Z"
    )
    result = parse_ics_report(text, mailbox=ANNA, window=WINDOW, source="t.ics")
    assert [e.uid for e in result.events] == ["b"]
    assert result.warnings == [
        "line 6: event 'a' skipped: not a content line (NAME:value): 'this is not a property'"
    ]
    loose = text.replace("PRODID:test", "PRODID:test\r\nstray text")
    result = parse_ics_report(loose, mailbox=ANNA, window=WINDOW, source="t.ics")
    assert [e.uid for e in result.events] == ["b"]
    assert result.warnings[0] == "line 4: not a content line in VCALENDAR, ignored: 'stray text'"


def test_non_utf8_bytes_are_read_as_windows_1252_with_a_warning() -> None:
    text = cal("UID:w\nDTSTART:20261130T090000Z\nSUMMARY:M\u00f6te").encode("cp1252")
    result = parse_ics_report(text, mailbox=ANNA, window=WINDOW, source="t.ics")
    assert [e.subject for e in result.events] == ["M\u00f6te"]
    assert result.warnings == ["the file is not UTF-8; it was read as Windows-1252"]


def test_cancelled_master_cancels_every_occurrence() -> None:
    text = cal("UID:c\nDTSTART:20261130T090000Z\nRRULE:FREQ=DAILY;COUNT=3\nSTATUS:CANCELLED")
    events = parse_ics(text, mailbox=ANNA, window=WINDOW, source="t.ics")
    assert [(e.key, e.cancelled) for e in events] == [
        ("c/2026-11-30T09:00:00+00:00", True),
        ("c/2026-12-01T09:00:00+00:00", True),
        ("c/2026-12-02T09:00:00+00:00", True),
    ]


def test_all_day_series_uses_the_date_as_recurrence_id() -> None:
    text = cal("UID:a\nDTSTART;VALUE=DATE:20261130\nRRULE:FREQ=WEEKLY;COUNT=2")
    events = parse_ics(text, mailbox=ANNA, window=WINDOW, source="t.ics")
    assert [e.key for e in events] == ["a/2026-11-30", "a/2026-12-07"]


@pytest.mark.timeout(20)
def test_a_rule_with_interval_zero_is_skipped_instead_of_looping_forever() -> None:
    text = cal(
        "UID:loop\nDTSTART:20261130T090000Z\nRRULE:FREQ=DAILY;INTERVAL=0",
        "UID:fine\nDTSTART:20261130T100000Z",
    )
    result = parse_ics_report(text, mailbox=ANNA, window=WINDOW, source="t.ics")
    assert [e.uid for e in result.events] == ["fine"]
    assert result.warnings == [
        "line 7: event 'loop' skipped: RRULE INTERVAL must be a whole number of at least 1, not 0"
    ]


def test_a_bad_rule_value_is_quoted_as_written() -> None:
    text = cal("UID:r\nDTSTART:20261130T090000Z\nRRULE:FREQ=WEEKLY;BYDAY=XX")
    result = parse_ics_report(text, mailbox=ANNA, window=WINDOW, source="t.ics")
    assert result.events == []
    assert result.warnings[0].startswith(
        "line 7: event 'r' skipped: RRULE is not a valid recurrence rule: 'FREQ=WEEKLY;BYDAY=XX'"
    )


SPRING = SyncWindow(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
_OUTLOOK_ZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n"
    "BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
)


@pytest.mark.parametrize("zone", ["Europe/Stockholm", "W. Europe Standard Time"])
def test_a_time_in_the_spring_dst_gap_uses_the_offset_before_the_gap(zone: str) -> None:
    # RFC 5545 3.3.5: 02:30 on 2026-03-29 does not exist; it means 03:30 CEST (01:30Z),
    # whether the zone is a TZID the library knows or an Outlook VTIMEZONE block.
    event = f"UID:g\nDTSTART;TZID={zone}:20260329T023000\nDTEND;TZID={zone}:20260329T040000"
    text = cal(event).replace("PRODID:test\r\n", "PRODID:test\r\n" + _OUTLOOK_ZONE)
    parsed = one(text, window=SPRING)
    assert (parsed.start, parsed.end) == (u("2026-03-29T01:30"), u("2026-03-29T02:00"))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("start", "duration", "end"),
    [
        ("20261025T023000", "PT1H", "2026-10-25T01:30"),  # autumn overlap: exactly one hour
        ("20260329T013000", "PT2H", "2026-03-29T02:30"),  # across the spring gap: two hours
        ("20260328T100000", "P1D", "2026-03-29T08:00"),  # a day is nominal: 10:00 next day
    ],
)
def test_duration_hours_are_exact_and_days_nominal_across_dst(
    start: str, duration: str, end: str
) -> None:
    parsed = one(
        cal(f"UID:d\nDTSTART;TZID=Europe/Stockholm:{start}\nDURATION:{duration}"), window=SPRING
    )
    assert parsed.end == u(end)  # type: ignore[attr-defined]


def test_each_occurrence_of_a_series_lasts_the_exact_length_of_the_first_across_dst() -> None:
    # RFC 5545 3.8.5.3: with DTEND, every generated occurrence has the same exact duration.
    daily = "DTSTART;TZID=Europe/Stockholm:20261024T023000\nRRULE:FREQ=DAILY;COUNT=3"
    for length in ("DTEND;TZID=Europe/Stockholm:20261024T033000", "DURATION:PT1H"):
        events = parse_ics(
            cal(f"UID:s\n{daily}\n{length}"), mailbox=ANNA, window=SPRING, source="t.ics"
        )
        lengths = [e.end - e.start for e in events]  # type: ignore[operator]
        assert lengths == [timedelta(hours=1)] * 3, length


def test_a_moved_occurrence_keeps_its_own_end() -> None:
    text = cal(
        "UID:m\nDTSTART;TZID=Europe/Stockholm:20261023T090000\n"
        "DTEND;TZID=Europe/Stockholm:20261023T100000\nRRULE:FREQ=DAILY;COUNT=3",
        "UID:m\nRECURRENCE-ID;TZID=Europe/Stockholm:20261024T090000\n"
        "DTSTART;TZID=Europe/Stockholm:20261024T130000\nDTEND;TZID=Europe/Stockholm:20261024T160000",
    )
    events = parse_ics(text, mailbox=ANNA, window=SPRING, source="t.ics")
    assert [(e.start, e.end) for e in events] == [
        (u("2026-10-23T07:00"), u("2026-10-23T08:00")),
        (u("2026-10-24T11:00"), u("2026-10-24T14:00")),
        (u("2026-10-25T08:00"), u("2026-10-25T09:00")),
    ]
