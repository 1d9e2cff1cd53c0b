"""IcsFileSource and IcsUrlSource (against a real HTTP server on 127.0.0.1).

The cases every source shares are in ``test_ics_contract``; these are the ICS
ones: "nothing changed" states, validators, redirects, limits, time-outs and
credentials. The factory's tests are in ``test_ics_config``.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.ics import build_source
from connectors.calendars.ics.client import redact_url
from connectors.calendars.ics.config import IcsCalendarConfig, IcsConnectionConfig
from connectors.calendars.ics.source import IcsFileSource, IcsUrlSource
from rules.errors import CalendarError, ThrottledError, is_retryable

ANNA = Mailbox("anna", "anna.berg@example.se", ("example.se",), "Europe/Stockholm")
WINDOW = SyncWindow(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
LATER = SyncWindow(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
CAL = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\n"
    b"BEGIN:VEVENT\r\nUID:daily\r\nDTSTART:20261101T080000Z\r\nDURATION:PT1H\r\n"
    b"RRULE:FREQ=DAILY\r\nSUMMARY:Standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
LAST_MODIFIED = "Mon, 02 Nov 2026 08:00:00 GMT"


# -- file source -------------------------------------------------------------------------


def test_file_source_reads_in_full_then_reports_no_change(tmp_path: Path) -> None:
    path = tmp_path / "anna.ics"
    path.write_bytes(CAL)
    source = IcsFileSource(path, ANNA)
    first = source.sync(WINDOW, None)
    assert first.full and len(first.events) == 30 and first.state
    again = source.sync(WINDOW, first.state)
    assert (again.events, again.full) == ([], False)


def test_file_source_rereads_when_content_or_window_changes(tmp_path: Path) -> None:
    path = tmp_path / "anna.ics"
    path.write_bytes(CAL)
    source = IcsFileSource(path, ANNA)
    state = source.sync(WINDOW, None).state
    moved = source.sync(LATER, state)
    assert moved.full and moved.events[-1].start == datetime(2026, 12, 1, 8, tzinfo=UTC)
    path.write_bytes(CAL.replace(b"Standup", b"Daglig avst\xc3\xa4mning"))
    os.utime(path, ns=(1, 1))
    changed = source.sync(LATER, moved.state)
    assert changed.full and changed.events[0].subject == "Daglig avstämning"


def test_an_unchanged_file_costs_a_stat_and_is_not_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "anna.ics"
    path.write_bytes(CAL)
    source = IcsFileSource(path, ANNA)
    state = source.sync(WINDOW, None).state
    assert state is not None

    def no_open(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an unchanged file was opened")

    monkeypatch.setattr(Path, "open", no_open)
    for _ in range(3):
        again = source.sync(WINDOW, state)
        assert (again.events, again.full, again.state) == ([], False, state)
    # a fresh source (a restarted process) knows it from the stored state alone
    assert IcsFileSource(path, ANNA).sync(WINDOW, state).state == state


def test_a_touched_file_with_the_same_content_is_read_and_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "anna.ics"
    path.write_bytes(CAL)
    source = IcsFileSource(path, ANNA)
    state = source.sync(WINDOW, None).state
    os.utime(path, ns=(5, 5))  # a copy or a touch: new mtime, same bytes
    touched = source.sync(WINDOW, state)
    assert (touched.events, touched.full) == ([], False)
    assert touched.state != state and '"mtime_ns": 5' in str(touched.state)
    assert source.sync(WINDOW, touched.state).state == touched.state


def test_missing_file_is_a_calendar_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nobody.ics"
    with pytest.raises(CalendarError) as caught:
        IcsFileSource(path, ANNA).sync(WINDOW, None)
    assert str(caught.value) == f"{path}: the file does not exist"


def test_file_source_passes_broken_event_warnings_on(corpus_dir: Path) -> None:
    result = IcsFileSource(corpus_dir / "broken_event.ics", ANNA).sync(WINDOW, None)
    assert [e.uid for e in result.events] == ["ok-before@example.se"]
    assert [w.split(":")[0] for w in result.warnings] == ["line 14", "line 24"]


# -- a real HTTP server on loopback ---------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []
    release = threading.Event()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send(self, code: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if "Content_Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        Handler.seen.append({"path": self.path, **dict(self.headers.items())})
        path = self.path.split("?")[0]
        if path == "/cal.ics":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send(304, ETag='"v1"')
            else:
                self.send(200, CAL, ETag='"v1"', Content_Type="text/calendar")
        elif path == "/lm.ics":
            if self.headers.get("If-Modified-Since") == LAST_MODIFIED:
                self.send(304)
            else:
                self.send(200, CAL, Last_Modified=LAST_MODIFIED)
        elif path == "/big.ics":
            self.send_response(200)
            self.end_headers()  # no Content-Length: the limit must hold while streaming
            self.wfile.write(CAL * 100)
        elif path == "/loop":
            self.send(302, Location="/loop")
        elif path == "/moved":
            self.send(301, Location="/cal.ics")
        elif path == "/slow":
            Handler.release.wait(5)
            self.send(200, CAL)
        elif path == "/maintenance":
            self.send(503, Retry_After="Mon, 02 Nov 2026 08:01:30 GMT")
        elif path == "/private":
            expected = "Basic " + base64.b64encode(b"anna:s3cret-pw").decode()
            if self.headers.get("Authorization") == expected:
                self.send(200, CAL)
            else:
                self.send(401)
        elif path == "/boom":
            self.send(500)
        else:
            self.send(404)


@pytest.fixture
def server() -> Iterator[str]:
    Handler.seen.clear()
    Handler.release.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    Handler.release.set()
    httpd.shutdown()
    httpd.server_close()


def test_etag_gives_a_conditional_get_and_304_means_no_change(server: str) -> None:
    source = IcsUrlSource(f"{server}/cal.ics", ANNA)
    first = source.sync(WINDOW, None)
    assert first.full and len(first.events) == 30
    again = source.sync(WINDOW, first.state)
    assert (again.events, again.full, again.state) == ([], False, first.state)
    assert Handler.seen[-1]["If-None-Match"] == '"v1"'


def test_last_modified_gives_if_modified_since(server: str) -> None:
    source = IcsUrlSource(f"{server}/lm.ics", ANNA)
    state = source.sync(WINDOW, None).state
    assert not source.sync(WINDOW, state).full
    assert Handler.seen[-1]["If-Modified-Since"] == LAST_MODIFIED


def test_304_with_a_moved_window_reparses_the_cached_body(server: str) -> None:
    source = IcsUrlSource(f"{server}/cal.ics", ANNA)
    state = source.sync(WINDOW, None).state
    moved = source.sync(LATER, state)
    assert moved.full and moved.events[-1].start == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert Handler.seen[-1]["If-None-Match"] == '"v1"'
    # a fresh process has no cached body: it must ask without validators
    fresh = IcsUrlSource(f"{server}/cal.ics", ANNA).sync(LATER, state)
    assert fresh.full and "If-None-Match" not in Handler.seen[-1]


def test_size_limit_is_enforced_while_streaming(server: str) -> None:
    source = IcsUrlSource(f"{server}/big.ics", ANNA, max_bytes=1000)
    with pytest.raises(CalendarError) as caught:
        source.sync(WINDOW, None)
    assert str(caught.value) == (
        f"{server}/big.ics: the calendar is larger than 1,000 bytes "
        "(limit max_bytes; see docs/calendar-limits.md)"
    )


def test_redirects_are_followed_but_a_loop_is_stopped(server: str) -> None:
    assert IcsUrlSource(f"{server}/moved", ANNA).sync(WINDOW, None).full
    with pytest.raises(CalendarError) as caught:
        IcsUrlSource(f"{server}/loop", ANNA, max_redirects=3).sync(WINDOW, None)
    assert caught.value.problem == "more than 3 redirects (a loop?)"
    assert [s["path"] for s in Handler.seen[-4:]] == ["/loop"] * 4


def test_a_slow_server_times_out_as_a_transient_error(server: str) -> None:
    source = IcsUrlSource(f"{server}/slow", ANNA, timeout=0.2)
    with pytest.raises(CalendarError) as caught:
        source.sync(WINDOW, None)
    assert is_retryable(caught.value)
    assert caught.value.problem == "timed out after 0.2 s"


def test_503_with_an_http_date_retry_after_is_throttling(server: str) -> None:
    now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    with pytest.raises(ThrottledError) as maintenance:
        IcsUrlSource(f"{server}/maintenance", ANNA, clock=lambda: now).sync(WINDOW, None)
    assert maintenance.value.retry_after == 90.0


def test_client_errors_are_permanent_and_server_errors_transient(server: str) -> None:
    with pytest.raises(CalendarError) as missing:
        IcsUrlSource(f"{server}/nothing.ics", ANNA).sync(WINDOW, None)
    assert not is_retryable(missing.value)
    assert missing.value.problem == "HTTP 404: no calendar at this address"
    with pytest.raises(CalendarError) as boom:
        IcsUrlSource(f"{server}/boom", ANNA).sync(WINDOW, None)
    assert is_retryable(boom.value)


def test_a_refused_connection_is_transient() -> None:
    with pytest.raises(CalendarError) as caught:
        IcsUrlSource("http://127.0.0.1:9/cal.ics", ANNA, timeout=1).sync(WINDOW, None)
    assert is_retryable(caught.value)


def test_credentials_never_appear_in_errors(server: str) -> None:
    host = server.removeprefix("http://")
    url = f"http://anna:wrong-pw@{host}/private?token=tok-9f8e7d&user=anna"
    with pytest.raises(CalendarError) as caught:
        IcsUrlSource(url, ANNA).sync(WINDOW, None)
    message = str(caught.value)
    assert "wrong-pw" not in message and "tok-9f8e7d" not in message
    assert message == f"http://***@{host}/private?token=***&user=***: " + (
        "HTTP 401: access denied (check the credentials)"
    )


def test_basic_auth_from_a_secret(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNA_ICS_PW", "s3cret-pw")
    entry = {"kind": "ics", "url": f"{server}/private", "username": "anna"}
    calendar = IcsCalendarConfig.model_validate({**entry, "password_env": "ANNA_ICS_PW"})
    source = build_source(IcsConnectionConfig(), calendar, ANNA)
    assert source.sync(WINDOW, None).full


def test_only_http_and_https_urls_are_accepted() -> None:
    with pytest.raises(CalendarError) as caught:
        IcsUrlSource("file:///etc/passwd", ANNA)
    assert caught.value.problem == "only http:// and https:// calendar URLs are supported"
    assert IcsUrlSource("webcal://example.se/a.ics", ANNA).id == "https://example.se/a.ics"


def test_redact_url_hides_google_private_keys() -> None:
    url = "https://calendar.google.com/calendar/ical/anna%40example.se/private-0a1b2c3d/basic.ics"
    assert redact_url(url) == (
        "https://calendar.google.com/calendar/ical/anna%40example.se/private-***/basic.ics"
    )
