"""The realistic calendar corpus (tests/corpus) parses to exactly the expected occurrences.

Each row: key, start, end (UTC, or dates for all-day), show_as, response, private,
organizer_kind, cancelled. See tests/corpus/README.md for what each file exercises.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.ics.parse import parse_ics, parse_ics_report
from rules.errors import CalendarError
from rules.model import CalendarEvent

MAILBOX = Mailbox("anna", "anna.berg@example.se", ("example.se",), "Europe/Stockholm")
OL = "040000008200E00074C5B7101A82E008000000"


def u(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(start: str, end: str) -> SyncWindow:
    return SyncWindow(u(start), u(end))


def rows(events: list[CalendarEvent]) -> list[tuple[object, ...]]:
    return [
        (
            e.key,
            e.start,
            e.end,
            e.show_as.value,
            e.response.value,
            e.private,
            e.organizer_kind.value,
            e.cancelled,
        )
        for e in events
    ]


def parse(corpus_dir: Path, name: str, win: SyncWindow) -> list[CalendarEvent]:
    return parse_ics((corpus_dir / name).read_bytes(), mailbox=MAILBOX, window=win, source=name)


def test_outlook_export_maps_busy_status_attendance_privacy_and_windows_zone(
    corpus_dir: Path,
) -> None:
    events = parse(corpus_dir, "outlook_exchange.ics", window("2026-03-01", "2027-01-01"))
    assert rows(events) == [
        (OL + "00A3C1E7D5E8A1DC0100000000000000001000000012", u("2026-03-27T08:00"),
         u("2026-03-27T09:00"), "busy", "accepted", False, "internal", False),
        # across the 02:00 -> 03:00 switch: 01:30 CET .. 03:30 CEST is one real hour
        (OL + "00D07A4C2B1FB0DC0100000000000000001000000011", u("2026-03-29T00:30"),
         u("2026-03-29T01:30"), "busy", "accepted", False, "self", False),
        (OL + "00B44F21A6E8A1DC0100000000000000001000000013", u("2026-03-30T08:00"),
         u("2026-03-30T09:00"), "tentative", "tentative", False, "internal", False),
        (OL + "00C8D0915AE9A1DC0100000000000000001000000014", u("2026-03-30T10:00"),
         u("2026-03-30T11:00"), "free", "accepted", False, "self", False),
        # all-day multi-day OOF: dates, end exclusive; OOF wins over TRANSP:TRANSPARENT
        (OL + "00E1F2A3B4C5D6DC0100000000000000001000000015", date(2026, 11, 23),
         date(2026, 11, 28), "oof", "accepted", False, "self", False),
        (OL + "00F0E1D2C3B4A5DC0100000000000000001000000016", u("2026-11-24T13:00"),
         u("2026-11-24T14:00"), "busy", "accepted", True, "self", False),
        (OL + "0011223344556677DC010000000000000001000000017", u("2026-11-25T09:00"),
         u("2026-11-25T10:30"), "busy", "accepted", False, "external", False),
        (OL + "00223344556677889DC01000000000000001000000018", date(2026, 12, 1),
         date(2026, 12, 2), "working_elsewhere", "accepted", False, "self", False),
        (OL + "00334455667788990DC01000000000000001000000019", u("2026-12-02T14:00"),
         u("2026-12-02T15:00"), "tentative", "none", False, "internal", False),
    ]  # fmt: skip
    by_subject = {e.subject: e for e in events}
    assert by_subject["Styrelsemöte"].categories == ("Styrelse", "Viktigt")
    assert by_subject["Styrelsemöte"].organizer == "erik.lund@example.se"
    assert by_subject["Avtalsförhandling Acme #mobil"].organizer == "lena.ek@acme-industries.com"
    assert all(e.recurrence_id is None and e.source == "outlook_exchange.ics" for e in events)


def test_windows_tzids_without_vtimezone_and_a_custom_vtimezone(corpus_dir: Path) -> None:
    events = parse(corpus_dir, "windows_tzids.ics", window("2026-03-01", "2026-04-01"))
    assert [(e.uid, e.start, e.end, e.show_as.value) for e in events] == [
        ("bokning-1004@bokning.example.se", u("2026-03-25T07:00"), u("2026-03-25T16:00"), "oof"),
        # "Customized Time Zone" exists only as a VTIMEZONE block (+03:00)
        ("bokning-1005@bokning.example.se", u("2026-03-26T09:00"), u("2026-03-26T10:00"), "busy"),
        ("bokning-1001@bokning.example.se", u("2026-03-27T13:00"), u("2026-03-27T14:00"), "busy"),
        # London is on BST (+01:00) after 2026-03-29
        ("bokning-1002@bokning.example.se", u("2026-03-30T08:00"), u("2026-03-30T08:30"), "busy"),
        # Los Angeles is on PDT (-07:00) since 2026-03-08
        ("bokning-1003@bokning.example.se", u("2026-03-30T15:00"), u("2026-03-30T16:00"), "busy"),
    ]


G_WEEKLY = "5k2j8v0f1q3e9r7t6y4u2i0oab@google.com"
G_1ON1 = "1on1-anna-jonas-7c9d2e@google.com"


def test_google_export_spring_recurrences_exdate_moved_occurrence_and_declined(
    corpus_dir: Path,
) -> None:
    events = parse(corpus_dir, "google_export.ics", window("2026-03-20", "2026-04-21"))
    assert rows(events) == [
        (f"{G_WEEKLY}/2026-03-23T08:00:00+00:00", u("2026-03-23T08:00"), u("2026-03-23T09:00"),
         "busy", "accepted", False, "self", False),
        ("3f8a1c0e9b7d@google.com", u("2026-03-26T12:00"), u("2026-03-26T14:00"),
         "free", "accepted", False, "self", False),
        ("sommartid-2026@google.com", date(2026, 3, 29), date(2026, 3, 30),
         "free", "accepted", False, "self", False),
        # after the switch 09:00 local is 07:00 UTC
        (f"{G_WEEKLY}/2026-03-30T07:00:00+00:00", u("2026-03-30T07:00"), u("2026-03-30T08:00"),
         "busy", "accepted", False, "self", False),
        ("kickoff-q2-0a1b2c3d@google.com", u("2026-03-31T07:00"), u("2026-03-31T08:00"),
         "busy", "declined", False, "internal", False),
        (f"{G_1ON1}/2026-04-02T08:00:00+00:00", u("2026-04-02T08:00"), u("2026-04-02T08:30"),
         "busy", "accepted", False, "internal", False),
        # 2026-04-06 (Easter Monday) is an EXDATE; 04-13 moved to 04-14 10:00
        (f"{G_WEEKLY}/2026-04-13T07:00:00+00:00", u("2026-04-14T08:00"), u("2026-04-14T09:00"),
         "busy", "accepted", False, "self", False),
        (f"{G_1ON1}/2026-04-16T08:00:00+00:00", u("2026-04-16T08:00"), u("2026-04-16T08:30"),
         "busy", "accepted", False, "internal", False),
        (f"{G_WEEKLY}/2026-04-20T07:00:00+00:00", u("2026-04-20T07:00"), u("2026-04-20T08:00"),
         "busy", "accepted", False, "self", False),
    ]  # fmt: skip
    moved = next(e for e in events if e.recurrence_id == "2026-04-13T07:00:00+00:00")
    assert moved.subject == "Veckomöte säljteamet (flyttat)"


def test_google_export_winter_floating_time_tentative_and_external(corpus_dir: Path) -> None:
    events = parse(corpus_dir, "google_export.ics", window("2026-11-20", "2026-12-10"))
    assert rows(events) == [
        (f"{G_1ON1}/2026-11-26T09:00:00+00:00", u("2026-11-26T09:00"), u("2026-11-26T09:30"),
         "busy", "accepted", False, "internal", False),
        # floating 15:00 read in X-WR-TIMEZONE Europe/Stockholm (CET)
        ("tandlakare-9e8d7c@google.com", u("2026-11-27T14:00"), u("2026-11-27T15:00"),
         "busy", "accepted", False, "self", False),
        ("demo-vendor-44aa@vendor.io", u("2026-12-02T13:00"), u("2026-12-02T14:00"),
         "busy", "accepted", False, "external", False),
        ("konferens-gbg-77@google.com", u("2026-12-03T08:00"), u("2026-12-03T16:00"),
         "tentative", "accepted", False, "self", False),
    ]  # fmt: skip
    # the next 1:1 (2026-12-10 09:00 UTC) lies after the window
    konferens = next(e for e in events if e.uid == "konferens-gbg-77@google.com")
    assert konferens.categories == ("Resa", "Konferens", "Extern")


def test_open_ended_rrule_keeps_producing_occurrences_years_later(corpus_dir: Path) -> None:
    events = parse(corpus_dir, "google_export.ics", window("2031-06-01", "2031-07-01"))
    assert [e.start for e in events] == [
        u("2031-06-05T08:00"),
        u("2031-06-19T08:00"),
    ]
    assert {e.uid for e in events} == {G_1ON1}


ICLOUD_TRAINING = "8F2C6B1E-3A4D-4E5F-9A0B-1C2D3E4F5A6B"
ICLOUD_GYM = "B7E1A2C3-D4E5-4F60-8172-93A4B5C6D7E8"


def test_icloud_rdate_cancelled_override_dst_all_day_and_midnight(corpus_dir: Path) -> None:
    events = parse(corpus_dir, "icloud.ics", window("2026-10-01", "2026-11-15"))
    assert rows(events) == [
        (f"{ICLOUD_GYM}/2026-10-07T05:00:00+00:00", u("2026-10-07T05:00"), u("2026-10-07T06:00"),
         "busy", "accepted", False, "self", False),
        (f"{ICLOUD_GYM}/2026-10-14T05:00:00+00:00", u("2026-10-14T05:00"), u("2026-10-14T06:00"),
         "busy", "accepted", False, "self", False),
        (f"{ICLOUD_GYM}/2026-10-21T05:00:00+00:00", u("2026-10-21T05:00"), u("2026-10-21T06:00"),
         "busy", "accepted", False, "self", True),
        (f"{ICLOUD_TRAINING}/2026-10-22T11:00:00+00:00", u("2026-10-22T11:00"),
         u("2026-10-22T13:00"), "busy", "accepted", False, "self", False),
        # all-day on the October switch day; no DTEND on a DATE means one day
        ("0D1E2F3A-4B5C-4D6E-8F90-A1B2C3D4E5F6", date(2026, 10, 25), date(2026, 10, 26),
         "free", "accepted", False, "self", False),
        # 01:30 CEST .. 03:30 CET is three real hours
        ("C1D2E3F4-A5B6-4C7D-8E9F-0A1B2C3D4E5F", u("2026-10-24T23:30"), u("2026-10-25T02:30"),
         "busy", "accepted", False, "self", False),
        ("6A7B8C9D-0E1F-4A2B-9C3D-4E5F6A7B8C9D", date(2026, 10, 26), date(2026, 10, 31),
         "free", "accepted", False, "self", False),
        (f"{ICLOUD_TRAINING}/2026-10-26T12:00:00+00:00", u("2026-10-26T12:00"),
         u("2026-10-26T14:00"), "busy", "accepted", False, "self", False),
        ("E3F4A5B6-C7D8-4E9F-A0B1-2C3D4E5F6071", u("2026-10-27T08:00"), u("2026-10-27T09:00"),
         "busy", "accepted", True, "internal", False),
        (f"{ICLOUD_GYM}/2026-10-28T06:00:00+00:00", u("2026-10-28T06:00"), u("2026-10-28T07:00"),
         "busy", "accepted", False, "self", False),
        # DURATION:PT45M instead of DTEND
        ("F4A5B6C7-D8E9-4FA0-B1C2-3D4E5F607182", u("2026-10-28T14:00"), u("2026-10-28T14:45"),
         "busy", "accepted", False, "self", False),
        # DATE-TIME without DTEND or DURATION: zero length
        ("A5B6C7D8-E9F0-4A1B-C2D3-4E5F60718293", u("2026-10-29T07:00"), u("2026-10-29T07:00"),
         "busy", "accepted", False, "self", False),
        (f"{ICLOUD_TRAINING}/2026-10-29T12:00:00+00:00", u("2026-10-29T12:00"),
         u("2026-10-29T14:00"), "busy", "accepted", False, "self", False),
        # across midnight
        ("D2E3F4A5-B6C7-4D8E-9F0A-1B2C3D4E5F60", u("2026-10-30T21:00"), u("2026-10-31T00:00"),
         "busy", "accepted", False, "self", False),
        (f"{ICLOUD_GYM}/2026-11-04T06:00:00+00:00", u("2026-11-04T06:00"), u("2026-11-04T07:00"),
         "busy", "accepted", False, "self", False),
        (f"{ICLOUD_GYM}/2026-11-11T06:00:00+00:00", u("2026-11-11T06:00"), u("2026-11-11T07:00"),
         "busy", "accepted", False, "self", False),
    ]  # fmt: skip


def test_truncated_file_is_one_calendar_error_naming_file_and_line(corpus_dir: Path) -> None:
    with pytest.raises(CalendarError) as caught:
        parse(corpus_dir, "malformed_truncated.ics", window("2026-11-01", "2026-12-31"))
    assert caught.value.source == "malformed_truncated.ics"
    assert str(caught.value) == (
        "malformed_truncated.ics: line 12: BEGIN:VEVENT has no matching END:VEVENT "
        "(the file is cut short?)"
    )


def test_broken_events_are_skipped_with_a_warning_and_the_rest_still_count(
    corpus_dir: Path,
) -> None:
    result = parse_ics_report(
        (corpus_dir / "broken_event.ics").read_bytes(),
        mailbox=MAILBOX,
        window=window("2026-11-01", "2026-12-31"),
        source="broken_event.ics",
    )
    assert [e.key for e in result.events] == ["ok-before@example.se", "ok-after@example.se"]
    assert len(result.warnings) == 2
    assert result.warnings[0].startswith(
        "line 14: event 'broken-date@example.se' skipped: "
        "DTSTART is not a valid date-time: '20261301T090000'"
    )
    assert result.warnings[1].startswith(
        "line 24: event 'broken-rule@example.se' skipped: "
        "RRULE is not a valid recurrence rule: 'FREQ=SOMETIMES'"
    )


def test_a_used_vtimezone_with_an_impossible_offset_is_ignored_with_a_warning(
    corpus_dir: Path,
) -> None:
    text = (corpus_dir / "public" / "icalendar_bad_utc_offset.ics").read_text()
    event = "BEGIN:VEVENT\r\nUID:p\r\nDTSTART;TZID=Europe/Prague:20261201T090000\r\nEND:VEVENT\r\n"
    text = text.replace("END:VCALENDAR", event + "END:VCALENDAR")
    result = parse_ics_report(
        text, mailbox=MAILBOX, window=window("2026-11-01", "2026-12-31"), source="x.ics"
    )
    assert [e.start for e in result.events] == [u("2026-12-01T08:00")]
    assert result.warnings == [
        "line 2: VTIMEZONE 'Europe/Prague' ignored: cannot be read: Offset must be less "
        "than 24 hours, was +5744; its name is read as the IANA zone"
    ]


@pytest.mark.parametrize(
    ("name", "uids", "warnings"),
    [
        (
            "icalendar_issue_350_trailing_comment.ics",
            None,
            [
                "line 36: text after END:VCALENDAR ignored "
                "(starts 'X-COMMENT:Cached from 2022-02-20 14:28:2...')"
            ],
        ),
        ("icalendar_bad_utc_offset.ics", [], []),  # no event uses the broken zone: dropped
        (
            "icalendar_issue_168_bad_line.ics",
            [],
            [
                "line 6: event '123' skipped: not a content line (NAME:value): "
                "'X-APPLE-RADIUS=49.91307046514149'"
            ],
        ),
        (
            "icalendar_america_new_york_duplicate_dtstart.ics",
            [],
            ["line 55: event 'noend123' skipped: DTSTART appears more than once (lines 57 and 58)"],
        ),
    ],
)
def test_public_calendars_that_once_failed_whole_are_read_event_by_event(
    corpus_dir: Path, name: str, uids: list[str] | None, warnings: list[str]
) -> None:
    result = parse_ics_report(
        (corpus_dir / "public" / name).read_bytes(),
        mailbox=MAILBOX,
        window=window("2010-01-01", "2030-01-01"),
        source=name,
    )
    if uids is not None:
        assert [e.uid for e in result.events] == uids
    assert result.warnings == warnings
