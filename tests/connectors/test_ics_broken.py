"""Broken events are skipped, not the calendar (issue 7 items 2 and 10).

Each case is a shape seen in real calendars (public test corpora, Outlook and
Exchange exports): the event is skipped with a warning naming its line, or read
the way RFC 5545 means, and every other event of the calendar still counts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.ics.parse import parse_ics_report
from connectors.calendars.ics.source import IcsFileSource
from rules.errors import CalendarError

ANNA = Mailbox("anna", "anna.berg@example.se", ("example.se",), "Europe/Stockholm")
WINDOW = SyncWindow(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
FINE = "UID:fine\nDTSTART:20261202T090000Z\nDTEND:20261202T100000Z"


def cal(*events: str, zones: str = "") -> str:
    body = "".join(f"BEGIN:VEVENT\r\n{e.strip()}\r\nEND:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\n{zones}{body}END:VCALENDAR\r\n"


def parse(text: str | bytes, mailbox: Mailbox = ANNA) -> object:
    return parse_ics_report(text, mailbox=mailbox, window=WINDOW, source="t.ics")


def u(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("props", "warning"),
    [
        (
            "DTSTART:20261201T090000Z\nDTSTART:20261201T100000Z\nDTEND:20261201T110000Z",
            "line 4: event 'dup' skipped: DTSTART appears more than once (lines 6 and 7)",
        ),
        (
            "DTSTART:20261201T090000Z\nDTEND:20261201T100000Z\nDTEND:20261201T110000Z",
            "line 4: event 'dup' skipped: DTEND appears more than once (lines 7 and 8)",
        ),
        (
            "DTSTART:20261201T090000Z\nDURATION:PT1H\nDURATION:PT2H",
            "line 4: event 'dup' skipped: DURATION appears more than once (lines 7 and 8)",
        ),
        (
            "UID:again\nDTSTART:20261201T090000Z",
            "line 4: event 'dup' skipped: UID appears more than once (lines 5 and 6)",
        ),
    ],
)
def test_a_repeated_single_property_skips_that_event_only(props: str, warning: str) -> None:
    result = parse(cal(f"UID:dup\n{props}", FINE))
    assert [e.uid for e in result.events] == ["fine"]  # type: ignore[attr-defined]
    assert result.warnings == [warning]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("prop", "shown"),
    [
        ("DTSTART:garbage", "DTSTART is not a valid date-time: 'garbage'"),
        ("DTSTART;VALUE=DATE:2026", "DTSTART is not a valid date-time: '2026'"),
        ("DTSTART:20261201T090000Z\nDTEND:tomorrow", "DTEND is not a valid date-time: 'tomorrow'"),
        ("DTSTART:20261201T090000Z\nDURATION:an hour", "DURATION is not a valid duration"),
        ("DTSTART:20261201T090000Z\nRECURRENCE-ID:x", "RECURRENCE-ID is not a valid date-time"),
        ("DTSTART:20261201T090000Z\nRDATE:soon", "RDATE is not a valid date-time list"),
        ("DTSTART:20261201T090000Z\nEXDATE:never", "EXDATE is not a valid date-time list"),
    ],
)
def test_broken_property_objects_skip_the_event_with_its_line(prop: str, shown: str) -> None:
    result = parse(cal(f"UID:bad\n{prop}", FINE))
    assert [e.uid for e in result.events] == ["fine"]  # type: ignore[attr-defined]
    (warning,) = result.warnings  # type: ignore[attr-defined]
    assert warning.startswith("line ") and f"event 'bad' skipped: {shown}" in warning


def test_a_file_source_serves_the_rest_and_sees_a_later_cancellation(tmp_path: Path) -> None:
    path = tmp_path / "anna.ics"
    meeting = "UID:m\nDTSTART:20261203T090000Z\nDTEND:20261203T100000Z"
    broken = "UID:dup\nDTSTART:20261201T090000Z\nDTSTART:20261201T100000Z"
    path.write_text(cal(broken, meeting))
    source = IcsFileSource(path, ANNA)
    first = source.sync(WINDOW, None)
    assert [(e.uid, e.cancelled) for e in first.events] == [("m", False)]
    assert first.warnings and "DTSTART appears more than once" in first.warnings[0]
    path.write_text(cal(broken, meeting + "\nSTATUS:CANCELLED"))
    later = source.sync(WINDOW, first.state)
    assert later.full and [(e.uid, e.cancelled) for e in later.events] == [("m", True)]


def _zone(tzid: str, offset: str, *, twice: bool = False) -> str:
    extra = f"TZID:{tzid} copy\r\n" if twice else ""
    return (
        f"BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\n{extra}BEGIN:STANDARD\r\nDTSTART:16010101T000000\r\n"
        f"TZOFFSETFROM:{offset}\r\nTZOFFSETTO:{offset}\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    )


def test_a_vtimezone_with_two_tzids_is_ignored_with_a_warning() -> None:
    text = cal(
        "UID:z\nDTSTART;TZID=Odd:20261201T090000\nDURATION:PT1H",
        FINE,
        zones=_zone("Odd", "+0300", twice=True),
    )
    result = parse(text)
    assert [e.uid for e in result.events] == ["z", "fine"]  # type: ignore[attr-defined]
    assert result.events[0].start == u("2026-12-01T08:00")  # type: ignore[attr-defined]
    assert result.warnings[0] == (  # type: ignore[attr-defined]
        "line 4: VTIMEZONE 'Odd' ignored: has 2 TZID lines (exactly one is needed); "
        "events using it are read in the mailbox's zone"
    )


@pytest.mark.parametrize("order", [("east", "west"), ("west", "east")])
def test_each_calendar_is_read_with_its_own_time_zone_definitions(order: tuple[str, str]) -> None:
    # two users' Outlook exports both call their zone "Customized Time Zone"
    offsets = {"east": ("+0300", u("2026-12-01T06:00")), "west": ("-0300", u("2026-12-01T12:00"))}
    for name in order:
        offset, expected = offsets[name]
        text = cal(
            "UID:m\nDTSTART;TZID=Customized Time Zone:20261201T090000\nDURATION:PT1H",
            zones=_zone("Customized Time Zone", offset),
        )
        (event,) = parse(text).events  # type: ignore[attr-defined]
        assert event.start == expected, name
    # and a third calendar that only names the zone does not inherit either definition
    result = parse(cal("UID:n\nDTSTART;TZID=Customized Time Zone:20261201T090000"))
    assert result.events[0].start == u("2026-12-01T08:00")  # type: ignore[attr-defined]
    assert "unknown time zone 'Customized Time Zone'" in result.warnings[0]  # type: ignore[attr-defined]


def test_an_rdate_period_keeps_its_own_length_when_the_series_uses_duration() -> None:
    text = cal(
        "UID:p\nDTSTART:20261201T090000Z\nDURATION:PT1H\nRRULE:FREQ=DAILY;COUNT=2\n"
        "RDATE;VALUE=PERIOD:20261210T130000Z/PT2H,20261211T130000Z/20261211T133000Z"
    )
    events = parse(text).events  # type: ignore[attr-defined]
    assert [(e.start, e.end - e.start) for e in events] == [
        (u("2026-12-01T09:00"), u("2026-12-01T10:00") - u("2026-12-01T09:00")),
        (u("2026-12-02T09:00"), u("2026-12-01T10:00") - u("2026-12-01T09:00")),
        (u("2026-12-10T13:00"), u("2026-12-10T15:00") - u("2026-12-10T13:00")),
        (u("2026-12-11T13:00"), u("2026-12-11T13:30") - u("2026-12-11T13:00")),
    ]


def test_start_and_end_in_different_zones_keep_the_exact_length() -> None:
    # a flight: departs 09:00 Stockholm, lands 11:00 London = 3 real hours, every week
    text = cal(
        "UID:f\nDTSTART;TZID=Europe/Stockholm:20261201T090000\n"
        "DTEND;TZID=Europe/London:20261201T110000\nRRULE:FREQ=WEEKLY;COUNT=3"
    )
    events = parse(text).events  # type: ignore[attr-defined]
    assert [(e.start, e.end) for e in events] == [
        (u("2026-12-01T08:00"), u("2026-12-01T11:00")),
        (u("2026-12-08T08:00"), u("2026-12-08T11:00")),
        (u("2026-12-15T08:00"), u("2026-12-15T11:00")),
    ]


def test_text_after_end_vcalendar_is_ignored_with_a_warning() -> None:
    text = cal(FINE) + "Generated by FeedBurner \x1b[31m\r\nmore text\r\n"
    result = parse(text)
    assert [e.uid for e in result.events] == ["fine"]  # type: ignore[attr-defined]
    assert result.warnings == [  # type: ignore[attr-defined]
        "line 10: text after END:VCALENDAR ignored (starts 'Generated by FeedBurner \\x1b[31m')"
    ]


def test_two_calendars_in_one_file_still_count() -> None:
    result = parse(cal(FINE) + cal("UID:two\nDTSTART:20261203T090000Z"))
    assert [e.uid for e in result.events] == ["fine", "two"]  # type: ignore[attr-defined]


def test_events_without_a_uid_get_a_stable_derived_identity() -> None:
    a = "DTSTART:20261201T090000Z\nDTEND:20261201T100000Z\nSUMMARY:Board"
    b = "DTSTART:20261202T090000Z\nDTEND:20261202T100000Z\nSUMMARY:Board"
    first = parse(cal(a, b, a)).events  # type: ignore[attr-defined]
    again = parse(cal(FINE, a, b, a)).events  # type: ignore[attr-defined]
    uids = [e.uid for e in first]
    assert len(set(uids)) == 3 and all(uid.startswith("calref-noid-") for uid in uids)
    assert uids == [e.uid for e in again if e.uid != "fine"]  # stable across re-reads
    moved = parse(cal(b.replace("Board", "Board (moved)"))).events  # type: ignore[attr-defined]
    assert moved[0].uid not in uids  # an edited subject is a new event


def test_a_warning_for_an_event_without_uid_names_its_line_not_none() -> None:
    result = parse(cal(FINE, "DTSTART:20261201T090000Z\nDTEND:20261201T080000Z"))
    assert result.warnings == [  # type: ignore[attr-defined]
        "line 11: an event skipped: DTEND is before DTSTART"
    ]


def test_a_warning_names_the_override_line_not_the_master_line() -> None:
    master = "UID:s\nDTSTART:20261201T090000Z\nDTEND:20261201T100000Z\nRRULE:FREQ=DAILY;COUNT=5"
    override = (
        "UID:s\nRECURRENCE-ID:20261203T090000Z\nDTSTART:20261203T120000Z\nDTEND:20261203T110000Z"
    )
    result = parse(cal(master, override))
    assert result.warnings == [  # type: ignore[attr-defined]
        "line 14: event 's' skipped: DTEND is before DTSTART"
    ]


@pytest.mark.parametrize(
    ("tzid", "expected"),
    [
        ("(UTC-05:00) Eastern Time (US & Canada)", u("2026-12-01T14:00")),
        ("(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", u("2026-12-01T08:00")),
        ("(UTC+09:00) Osaka, Sapporo, Tokyo", u("2026-12-01T00:00")),
        ("(GMT-08:00) Pacific Time (US & Canada)", u("2026-12-01T17:00")),
    ],
)
def test_outlook_display_name_zones_map_to_their_iana_zone(tzid: str, expected: datetime) -> None:
    helsinki = Mailbox("a", "a@example.fi", (), "Europe/Helsinki")  # not the zone meant
    result = parse(cal(f'UID:o\nDTSTART;TZID="{tzid}":20261201T090000\nDURATION:PT1H'), helsinki)
    assert [e.start for e in result.events] == [expected]  # type: ignore[attr-defined]
    assert result.warnings == []  # type: ignore[attr-defined]


def test_a_display_name_defined_by_its_own_vtimezone_uses_that_definition() -> None:
    tzid = "(UTC-05:00) Eastern Time (US & Canada)"
    text = cal(
        f'UID:o\nDTSTART;TZID="{tzid}":20261201T090000\nDURATION:PT1H',
        zones=_zone(f'"{tzid}"', "-0500").replace(f'TZID:"{tzid}"', f"TZID:{tzid}"),
    )
    assert [e.start for e in parse(text).events] == [u("2026-12-01T14:00")]  # type: ignore[attr-defined]


def test_control_characters_from_the_calendar_are_escaped_in_warnings() -> None:
    result = parse(cal("UID:evil\x1b]0;pwned\x07\nDTSTART:20261201T090000Z\nDTEND:2026"))
    (warning,) = result.warnings  # type: ignore[attr-defined]
    assert "\x1b" not in warning and "\x07" not in warning
    assert "event 'evil\\x1b]0;pwned\\x07' skipped" in warning


def test_control_characters_are_escaped_in_calendar_errors() -> None:
    with pytest.raises(CalendarError) as caught:
        parse("\x1b[2J<html>")
    assert "\x1b" not in str(caught.value) and "\\x1b[2J<html>" in str(caught.value)


@pytest.mark.parametrize(
    "event",
    [
        "UID:a\nRECURRENCE-ID;TZID=Asia/Tokyo:00010101T000000\nDTSTART:20261201T090000Z",
        "UID:a\nDTSTART:20261201T090000Z\nRDATE;VALUE=PERIOD:99991231T235959Z/P9D",
        "UID:a\nDTSTART;TZID=America/New_York:99991231T235959\nRRULE:FREQ=DAILY",
    ],
)
def test_times_at_the_ends_of_the_calendar_skip_the_event_not_the_calendar(event: str) -> None:
    result = parse(cal(event, FINE))
    assert [e.uid for e in result.events] == ["fine"]  # type: ignore[attr-defined]
    (warning,) = result.warnings  # type: ignore[attr-defined]
    assert warning.startswith("line 4: event 'a' skipped: ")


def _custom_zone_calendar(offset: str) -> str:
    return cal(
        "UID:m\nDTSTART;TZID=Customized Time Zone:20261201T090000\nDURATION:PT1H",
        zones=_zone("Customized Time Zone", offset),
    )


def test_file_sources_of_two_users_keep_their_own_zone_definitions(tmp_path: Path) -> None:
    # what `calref run` builds: one source per user's calendar, synced in one process
    (tmp_path / "east.ics").write_text(_custom_zone_calendar("+0300"))
    (tmp_path / "west.ics").write_text(_custom_zone_calendar("-0300"))
    east = IcsFileSource(tmp_path / "east.ics", ANNA)
    west = IcsFileSource(tmp_path / "west.ics", Mailbox("bo", "bo@example.se", (), "UTC"))
    for _ in range(2):
        assert [e.start for e in west.sync(WINDOW, None).events] == [u("2026-12-01T12:00")]
        assert [e.start for e in east.sync(WINDOW, None).events] == [u("2026-12-01T06:00")]


def test_parses_in_parallel_threads_keep_their_own_zone_definitions() -> None:
    import threading

    texts = {"+0300": u("2026-12-01T06:00"), "-0300": u("2026-12-01T12:00")}
    wrong: list[str] = []

    def work(offset: str) -> None:
        for _ in range(15):
            (event,) = parse(_custom_zone_calendar(offset)).events  # type: ignore[attr-defined]
            if event.start != texts[offset]:
                wrong.append(offset)

    threads = [threading.Thread(target=work, args=(o,)) for o in texts for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert wrong == []


def test_other_repeated_properties_use_the_first() -> None:
    text = cal(
        "UID:r\nDTSTART:20261201T090000Z\nDTEND:20261201T100000Z\nSUMMARY:First\nSUMMARY:Second\n"
        "STATUS:CANCELLED\nSTATUS:CONFIRMED\nORGANIZER:mailto:boss@vendor.com\n"
        "ORGANIZER:mailto:anna.berg@example.se"
    )
    (event,) = parse(text).events  # type: ignore[attr-defined]
    assert (event.subject, event.cancelled, event.organizer) == ("First", True, "boss@vendor.com")


def test_warnings_are_capped_per_calendar() -> None:
    broken = [f"UID:b{i}\nDTSTART:20261201T090000Z\nDTEND:2026" for i in range(150)]
    result = parse(cal(*broken, FINE))
    assert [e.uid for e in result.events] == ["fine"]  # type: ignore[attr-defined]
    assert len(result.warnings) == 101  # type: ignore[attr-defined]
    assert result.warnings[-1] == "... and 50 more warnings like these"  # type: ignore[attr-defined]
