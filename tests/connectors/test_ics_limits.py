"""Every hang class of issue 7 against its bound: each test fails if the bound is removed.

A bound turns a calendar that would hang or eat memory into one ``LimitExceeded``
(a ``CalendarError``) naming the bound and the line; see docs/calendar-limits.md.
"""

from __future__ import annotations

import linecache
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.ics import lines as ics_lines
from connectors.calendars.ics.parse import parse_ics_report
from connectors.calendars.ics.source import IcsFileSource, IcsUrlSource
from connectors.calendars.limits import CalendarLimits, LimitExceeded, rule_steps
from rules.errors import CalendarError, is_retryable

ANNA = Mailbox("anna", "anna.berg@example.se", ("example.se",), "Europe/Stockholm")
WINDOW = SyncWindow(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 15, tzinfo=UTC))


def cal(*events: str) -> str:
    body = "".join(f"BEGIN:VEVENT\r\n{e.strip()}\r\nEND:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\n{body}END:VCALENDAR\r\n"


def parse(text: str | bytes, limits: CalendarLimits | None = None, **kw: Any) -> Any:
    return parse_ics_report(text, mailbox=ANNA, window=WINDOW, source="t.ics", limits=limits, **kw)


FINE = "UID:fine\nDTSTART:20261202T090000Z\nDTEND:20261202T100000Z"


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "rule",
    [
        "DTSTART:19000101T000000Z\nRRULE:FREQ=MINUTELY",
        "DTSTART:19000101T000000Z\nRRULE:FREQ=MINUTELY;COUNT=999999999",
        "DTSTART:20261130T000000Z\nRRULE:FREQ=SECONDLY",
        "DTSTART:19700101T000000Z\nRRULE:FREQ=HOURLY;BYMINUTE=0,15,30,45",
        "DTSTART:19000101T000000Z\nRRULE:FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11",
    ],
)
def test_a_rule_that_steps_through_millions_of_instants_is_refused_at_once(rule: str) -> None:
    started = time.perf_counter()
    with pytest.raises(LimitExceeded) as caught:
        parse(cal(f"UID:storm\n{rule}\nDURATION:PT1M", FINE))
    assert time.perf_counter() - started < 5  # dateutil would step for minutes, GBs of cache
    assert caught.value.limit == "max_rule_steps"
    assert caught.value.problem.startswith("line 7: an event's RRULE steps through about ")
    assert "storm" not in str(caught.value)  # names the line, not the UID or subject


def test_the_estimate_is_generous_for_real_series() -> None:
    # a daily stand-up since 1990 and a monthly review with a huge COUNT are served
    text = cal(
        "UID:daily\nDTSTART:19900101T080000Z\nDURATION:PT15M\nRRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",
        "UID:count\nDTSTART:20260101T080000Z\nDURATION:PT1H\nRRULE:FREQ=MONTHLY;COUNT=100000000",
    )
    result = parse(text)
    assert {e.uid for e in result.events} == {"daily", "count"}


def test_rule_steps_counts_periods_times_expansion() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2026, 1, 2, tzinfo=UTC)
    assert rule_steps({"FREQ": ["MINUTELY"]}, start, end, UTC) == 1441
    assert rule_steps({"FREQ": ["MINUTELY"], "INTERVAL": [15]}, start, end, UTC) == 97
    assert rule_steps({"FREQ": ["DAILY"], "BYHOUR": [8, 12]}, start, end, UTC) == 4
    assert rule_steps({"FREQ": ["SECONDLY"], "COUNT": [10]}, start, end, UTC) == 10
    # a filter makes COUNT no bound on the candidates visited
    assert rule_steps({"FREQ": ["MINUTELY"], "COUNT": [10], "BYHOUR": [9]}, start, end, UTC) == 1441


def test_thousands_of_rdates_are_refused() -> None:
    dates = ",".join(f"2026{m:02d}{d:02d}T090000Z" for m in range(1, 13) for d in range(1, 29))
    text = cal(f"UID:many\nDTSTART:20260101T090000Z\nDURATION:PT1H\nRDATE:{dates}", FINE)
    with pytest.raises(LimitExceeded) as caught:
        parse(text, CalendarLimits(max_rdates=300))
    assert caught.value.limit == "max_rdates"
    assert caught.value.problem.startswith("line 8: an event has 336 RDATEs")


def test_occurrences_per_event_in_the_window_are_bounded() -> None:
    text = cal("UID:hourly\nDTSTART:20261201T000000Z\nDURATION:PT5M\nRRULE:FREQ=HOURLY", FINE)
    assert len(parse(text).events) > 300  # 14 days of hours is fine by default
    with pytest.raises(LimitExceeded) as caught:
        parse(text, CalendarLimits(max_occurrences_per_event=100))
    assert caught.value.limit == "max_occurrences_per_event"
    assert caught.value.problem.startswith("line 4: an event has more than 100 occurrences")


def test_occurrences_per_calendar_are_bounded() -> None:
    events = [f"UID:e{i}\nDTSTART:20261202T{i % 24:02d}0000Z\nDURATION:PT1H" for i in range(60)]
    assert len(parse(cal(*events)).events) == 60
    with pytest.raises(LimitExceeded) as caught:
        parse(cal(*events), CalendarLimits(max_occurrences=50))
    assert caught.value.limit == "max_occurrences"


def test_the_parse_deadline_is_checked_while_reading() -> None:
    ticks = iter(range(10**6))
    events = [f"UID:e{i}\nDTSTART:20261202T090000Z\nDURATION:PT1H" for i in range(50)]
    with pytest.raises(LimitExceeded) as caught:  # a virtual clock: one second per look
        parse(cal(*events), CalendarLimits(parse_seconds=20), clock=lambda: float(next(ticks)))
    assert caught.value.limit == "parse_seconds"
    assert "reading took longer than 20 s" in caught.value.problem


@pytest.mark.timeout(60)
def test_an_impossible_rule_is_skipped_without_searching_to_the_year_9999() -> None:
    started = time.perf_counter()
    text = cal(
        "UID:feb30\nDTSTART:20260101T090000Z\nRRULE:FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30", FINE
    )
    result = parse(text)
    assert time.perf_counter() - started < 3  # dateutil alone: ~14 s
    assert [e.uid for e in result.events] == ["fine"]
    assert result.warnings == [
        "line 7: event 'feb30' skipped: RRULE can never occur: "
        "BYMONTHDAY 30 exists in none of its months"
    ]


def folded_description(megabytes: int = 4) -> str:
    line = "DESCRIPTION:" + "x" * (megabytes * 1024 * 1024)
    parts = [line[:75]] + [" " + line[i : i + 74] for i in range(75, len(line), 74)]
    return "\r\n".join(parts)


@pytest.mark.timeout(120)
def test_unfolding_a_4_mb_folded_line_is_linear() -> None:
    text = cal(f"{FINE}\n{folded_description()}")
    started = time.perf_counter()
    lines = ics_lines.content_lines(text)
    assert time.perf_counter() - started < 3  # quadratic joining took ~7 s here
    assert max(len(c.text) for c in lines) == 4 * 1024 * 1024 + len("DESCRIPTION:")
    assert [e.uid for e in parse(text).events] == ["fine"]


def test_a_file_over_max_bytes_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.ics"
    path.write_text(cal(FINE, *[f"UID:e{i}\nDTSTART:20261202T090000Z" for i in range(100)]))
    assert IcsFileSource(path, ANNA).sync(WINDOW, None).full
    source = IcsFileSource(path, ANNA, limits=CalendarLimits(max_bytes=1000))
    with pytest.raises(LimitExceeded) as caught:
        source.sync(WINDOW, None)
    assert caught.value.limit == "max_bytes"
    assert caught.value.source == str(path)


def test_a_text_over_max_bytes_is_refused_by_the_parser() -> None:
    with pytest.raises(LimitExceeded) as caught:
        parse(cal(FINE), CalendarLimits(max_bytes=100))
    assert caught.value.limit == "max_bytes"


def test_a_url_entrys_own_max_bytes_wins_over_the_block_for_the_parse_too() -> None:
    body = cal(FINE, *[f"UID:e{i}\nDTSTART:20261202T090000Z" for i in range(20)]).encode()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))

    def source(max_bytes: int) -> IcsUrlSource:
        return IcsUrlSource(
            "https://cal.example.se/anna.ics",
            ANNA,
            client=httpx.Client(transport=transport),
            max_bytes=max_bytes,
            limits=CalendarLimits(max_bytes=100),
        )

    assert len(source(len(body)).sync(WINDOW, None).events) == 21
    with pytest.raises(LimitExceeded) as caught:
        source(len(body) - 1).sync(WINDOW, None)
    assert caught.value.limit == "max_bytes"


# -- the whole-download deadline ---------------------------------------------------------


class VirtualMonotonic:
    """Stands in for ``time.monotonic``: seconds that move only when the test moves them."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_trickling_server_is_cut_off_at_the_download_deadline() -> None:
    clock = VirtualMonotonic()
    sent: list[int] = []

    def trickle() -> Iterator[bytes]:
        yield b"BEGIN:VCALENDAR\r\n"
        while True:  # a byte every ten seconds, forever: per-read timeouts never fire
            clock.now += 10
            sent.append(1)
            yield b"X"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_Stream(trickle()))

    source = IcsUrlSource(
        "https://cal.example.se/anna.ics",
        ANNA,
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        limits=CalendarLimits(download_seconds=60),
        monotonic=clock,
    )
    with pytest.raises(LimitExceeded) as caught:
        source.sync(WINDOW, None)
    assert caught.value.limit == "download_seconds"
    assert is_retryable(caught.value)
    assert len(sent) == 7  # stopped at the first chunk after 60 virtual seconds


class _Stream(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks


class _Stall(BaseHTTPRequestHandler):
    release = threading.Event()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"BEGIN:VCALENDAR\r\n")
        self.wfile.flush()
        _Stall.release.wait(20)  # then stops sending without closing


@pytest.mark.timeout(60)
def test_a_server_that_stops_sending_cannot_hold_the_sync_past_the_deadline() -> None:
    _Stall.release.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stall)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/stall.ics"
        source = IcsUrlSource(url, ANNA, timeout=30, limits=CalendarLimits(download_seconds=0.5))
        started = time.monotonic()
        with pytest.raises(CalendarError) as caught:
            source.sync(WINDOW, None)
        assert time.monotonic() - started < 3  # the read timeout alone would wait 30 s
        assert "the download took longer than 0.5 s" in caught.value.problem
    finally:
        _Stall.release.set()
        httpd.shutdown()
        httpd.server_close()


# -- the config block ---------------------------------------------------------------------


CONFIG = """\
timezone: Europe/Stockholm
calendar_limits:
  max_bytes: 2048
  {extra}
users:
  - id: anna
    name: Anna
    email: anna.berg@example.se
    extension: "2001"
    calendars: [{{kind: ics, path: anna.ics}}, {{kind: ics, url: "https://cal.example.se/a.ics"}}]
"""


def test_the_config_block_reaches_every_ics_source(tmp_path: Path) -> None:
    from sync.config import load_config

    path = tmp_path / "calref.yaml"
    path.write_text(CONFIG.format(extra="download_seconds: 5"))
    sources = load_config(path).sources("anna")
    assert [s.limits.max_bytes for s in sources] == [2048, 2048]  # type: ignore[attr-defined]
    assert sources[1].limits.download_seconds == 5  # type: ignore[attr-defined]
    assert sources[0].limits.parse_seconds == CalendarLimits().parse_seconds  # type: ignore[attr-defined]


def test_a_wrong_key_in_the_config_block_is_reported_with_its_line(tmp_path: Path) -> None:
    from rules.errors import ConfigError
    from sync.config import load_config

    path = tmp_path / "calref.yaml"
    path.write_text(CONFIG.format(extra="max_occurences: 5"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}:4:" in str(caught.value) and "max_occurences" in str(caught.value)


def test_waiting_for_another_parse_does_not_count_against_parse_seconds() -> None:
    from connectors.calendars.ics import prepare as ics_prepare

    clock = VirtualMonotonic()
    result: list[Any] = []

    def work() -> None:
        try:
            result.append(parse(cal(FINE), CalendarLimits(parse_seconds=60), clock=clock))
        except Exception as err:
            result.append(err)

    with ics_prepare._TZ_LOCK:  # another calendar is being parsed
        worker = threading.Thread(target=work)
        worker.start()
        for _ in range(1000):  # until the worker waits at the lock (bounded: 10 s)
            frame = sys._current_frames().get(worker.ident or 0)
            if frame is not None and "_TZ_LOCK" in _source_line(frame):
                break
            time.sleep(0.01)
        else:
            pytest.fail("the parse never reached the time-zone lock")
        clock.now += 120  # the other parse took two minutes
    worker.join(10)
    assert not worker.is_alive()
    assert [len(r.events) for r in result] == [1]


def _source_line(frame: Any) -> str:
    return linecache.getline(frame.f_code.co_filename, frame.f_lineno)
