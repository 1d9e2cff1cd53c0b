"""Property-based fuzzing of the ICS parser (bounded: it runs in ``make test``).

Arbitrary text, and arbitrary mutations of valid calendars (lines deleted,
duplicated, swapped, truncated, values replaced by hostile ones), must give either
a result or the project's own ``CalendarError`` — never another exception — and
parsing must stay within a time bound.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.ics.parse import parse_ics_report
from rules.errors import CalendarError

ANNA = Mailbox("anna", "anna.berg@example.se", ("example.se",), "Europe/Stockholm")
WINDOW = SyncWindow(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
CORPUS = Path(__file__).parent.parent / "corpus"
SEEDS = [p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.ics"))]
BOUND_SECONDS = 10.0  # per parse; a valid corpus file takes well under a second
FUZZ = settings(
    max_examples=120,
    deadline=None,  # the bound is asserted below, so a slow machine does not flake
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HOSTILE_VALUES = [
    "",
    ":",
    ";",
    "garbage",
    "\x00\x1b[2J",
    "99999999T999999Z",
    "20261301T090000",
    "19000101T000000Z",
    "00010101T000000",
    "99991231T235959Z",
    "99991231T235959Z/P9D",
    "P99999D",
    "FREQ=MINUTELY",
    "FREQ=SECONDLY;COUNT=99999999999",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=DAILY;INTERVAL=0",
    "FREQ=WEEKLY;BYDAY=XX",
    "FREQ=MONTHLY;BYSETPOS=400;BYDAY=MO",
    "FREQ=HOURLY;UNTIL=18000101",
    "PT-1H",
    "P99999999W",
    "20261201T090000Z/PT2H",
    "mailto:",
    '"',
    "\u2028\u0085",
    "x" * 500,
]
PROPS = [
    "DTSTART",
    "DTEND",
    "DURATION",
    "RRULE",
    "RDATE",
    "EXDATE",
    "RECURRENCE-ID",
    "UID",
    "TZID",
    "ORGANIZER",
    "ATTENDEE;PARTSTAT=DECLINED",
    "DTSTART;TZID=W. Europe Standard Time",
    "DTSTART;VALUE=DATE",
    "RDATE;VALUE=PERIOD",
    "BEGIN",
    "END",
    "TZOFFSETTO",
    "X-WR-TIMEZONE",
]


def parse_bounded(text: str | bytes) -> None:
    started = time.perf_counter()
    try:
        result = parse_ics_report(text, mailbox=ANNA, window=WINDOW, source="fuzz.ics")
    except CalendarError as err:
        assert str(err).startswith("fuzz.ics: ")
        assert "\x1b" not in str(err) and "\x00" not in str(err)
    else:
        for warning in result.warnings:
            assert "\x1b" not in warning and "\x00" not in warning
    assert time.perf_counter() - started < BOUND_SECONDS


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(SEEDS)).splitlines()
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["delete", "duplicate", "swap", "value", "insert", "cut"]))
        if how == "delete":
            del lines[i]
        elif how == "duplicate":
            lines.insert(i, lines[i])
        elif how == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif how == "value":
            name = lines[i].split(":", 1)[0]
            lines[i] = f"{name}:{draw(st.sampled_from(HOSTILE_VALUES))}"
        elif how == "insert":
            prop = draw(st.sampled_from(PROPS))
            lines.insert(i, f"{prop}:{draw(st.sampled_from(HOSTILE_VALUES))}")
        else:
            cut = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:cut]
    return "\r\n".join(lines) + draw(st.sampled_from(["\r\n", "", "\n", "\r\ntrailing"]))


@FUZZ
@given(mutated())
def test_mutated_real_calendars_parse_or_fail_cleanly(text: str) -> None:
    parse_bounded(text)


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text_fails_cleanly(text: str) -> None:
    parse_bounded(text)


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_fail_cleanly(data: bytes) -> None:
    parse_bounded(data)


ICAL_TIMES = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
    lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}T{d.hour:02d}{d.minute:02d}{d.second:02d}"
) | st.sampled_from(["Z", ""]).flatmap(
    lambda z: st.dates(min_value=datetime(1, 1, 2).date()).map(
        lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}{'T000000' + z if z else ''}"
    )
)
VALUES = st.sampled_from(HOSTILE_VALUES) | st.text(max_size=30) | ICAL_TIMES


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PROPS), VALUES), max_size=12))
def test_events_built_from_hostile_properties_parse_or_fail_cleanly(
    props: list[tuple[str, str]],
) -> None:
    body = "\r\n".join(f"{name}:{value}" for name, value in props)
    parse_bounded(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:fuzz\r\nBEGIN:VEVENT\r\nUID:f\r\n"
        f"DTSTART:20261201T090000Z\r\n{body}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
