"""CalDAV source failures over real HTTP: server down, 503, long waits, server errors, bad login.

Throttling with Retry-After and a malformed answer are in ``test_caldav_contract``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from caldav_ics import single
from radicale_server import CalendarWriter, Fault, RadicaleServer, free_port

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.caldav.source import CalDAVSource
from connectors.secrets import Secret
from rules.errors import CalendarError, SyncStateExpired, ThrottledError, is_retryable

WINDOW = SyncWindow(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC))
MAILBOX = Mailbox(user_id="alice", email="alice@example.se")
TOO_MANY = "429 Too Many Requests"
_names = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[RadicaleServer]:
    with RadicaleServer() as srv:
        yield srv


@pytest.fixture
def calendar(server: RadicaleServer) -> CalendarWriter:
    writer = CalendarWriter(server, f"/alice/err{next(_names)}/").create()
    writer.put("a.ics", single("a", "20260303T130000Z", "20260303T140000Z"))
    server.faults.clear()
    return writer


class VirtualSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_server_down_is_a_transient_error_naming_the_source() -> None:
    url = f"http://127.0.0.1:{free_port()}/alice/calendar/"
    source = CalDAVSource(calendar_url=url, mailbox=MAILBOX, timeout_seconds=2)
    with pytest.raises(CalendarError) as info:
        source.sync(WINDOW, None)
    assert is_retryable(info.value)
    assert str(info.value).startswith("caldav:alice@example.se: cannot reach the CalDAV server")


def test_server_gone_during_incremental_sync_is_transient() -> None:
    with RadicaleServer() as other:
        writer = CalendarWriter(other, "/alice/cal/").create()
        source = CalDAVSource(calendar_url=writer.url, mailbox=MAILBOX, timeout_seconds=2)
        state = source.sync(WINDOW, None).state
    with pytest.raises(CalendarError) as info:
        source.sync(WINDOW, state)
    assert is_retryable(info.value) and info.value.source == "caldav:alice@example.se"


def test_503_with_retry_after_is_retried_too(
    server: RadicaleServer, calendar: CalendarWriter
) -> None:
    sleep = VirtualSleep()
    source = CalDAVSource(calendar_url=calendar.url, mailbox=MAILBOX, sleep=sleep)
    state = source.sync(WINDOW, None).state
    server.fail_next(Fault("503 Service Unavailable", [("Retry-After", "12")]))
    result = source.sync(WINDOW, state)
    assert sleep.waits == [12.0] and not result.full


def test_retry_after_longer_than_the_limit_is_not_waited_for(
    server: RadicaleServer, calendar: CalendarWriter
) -> None:
    sleep = VirtualSleep()
    source = CalDAVSource(
        calendar_url=calendar.url, mailbox=MAILBOX, sleep=sleep, max_retry_wait=60
    )
    server.fail_next(Fault(TOO_MANY, [("Retry-After", "600")]))
    with pytest.raises(ThrottledError) as info:
        source.sync(WINDOW, None)
    assert sleep.waits == [] and info.value.retry_after == 600.0


def test_server_error_is_transient(server: RadicaleServer, calendar: CalendarWriter) -> None:
    source = CalDAVSource(calendar_url=calendar.url, mailbox=MAILBOX)
    server.fail_next(Fault("500 Internal Server Error"))
    with pytest.raises(CalendarError) as info:
        source.sync(WINDOW, None)
    assert is_retryable(info.value) and "HTTP 500" in str(info.value)


def test_missing_calendar_is_a_permanent_error(server: RadicaleServer) -> None:
    source = CalDAVSource(calendar_url=server.url + "nobody/nothing/", mailbox=MAILBOX)
    with pytest.raises(CalendarError) as info:
        source.sync(WINDOW, None)
    assert not is_retryable(info.value)
    assert "no calendar at" in str(info.value)


def test_login_with_password_works_and_a_wrong_one_is_reported_without_the_password() -> None:
    with RadicaleServer(users={"alice": "right-pw-123"}) as secured:
        writer = CalendarWriter(secured, "/alice/cal/", login=("alice", "right-pw-123")).create()
        writer.put("a.ics", single("a", "20260303T130000Z", "20260303T140000Z"))
        good = CalDAVSource(
            calendar_url=writer.url,
            mailbox=MAILBOX,
            username="alice",
            password=Secret("right-pw-123"),
        )
        assert [e.key for e in good.sync(WINDOW, None).events] == ["a"]
        bad = CalDAVSource(
            calendar_url=writer.url,
            mailbox=MAILBOX,
            username="alice",
            password=Secret("wrong-pw-456"),
        )
        with pytest.raises(CalendarError) as info:
            bad.sync(WINDOW, None)
        assert not is_retryable(info.value)
        assert "authentication failed" in str(info.value)
        assert "wrong-pw-456" not in str(info.value) and "right-pw" not in str(info.value)
        anonymous = CalDAVSource(calendar_url=writer.url, mailbox=MAILBOX)
        with pytest.raises(CalendarError):
            anonymous.sync(WINDOW, None)


def test_unreadable_resource_is_skipped_and_the_rest_still_syncs(
    server: RadicaleServer, calendar: CalendarWriter
) -> None:
    seen: list[str] = []

    def parser(data: str, **kw: object) -> list:  # type: ignore[type-arg]
        from connectors.calendars.ics.parse import parse_ics

        if "SUMMARY:broken" in data:
            seen.append("broken")
            raise CalendarError("caldav:alice@example.se", "line 3: bad DTSTART")
        return parse_ics(data, **kw)  # type: ignore[arg-type]

    calendar.put("b.ics", single("b", "20260304T130000Z", "20260304T140000Z", "broken"))
    source = CalDAVSource(calendar_url=calendar.url, mailbox=MAILBOX, parser=parser)
    result = source.sync(WINDOW, None)
    assert [e.key for e in result.events] == ["a"] and seen == ["broken"]


VALID_SYNC_TOKEN_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>'
)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("409 Conflict", [("Content-Type", "application/xml")], VALID_SYNC_TOKEN_BODY),
        Fault("412 Precondition Failed"),
    ],
    ids=["409-valid-sync-token", "412-xandikos-style"],
)
def test_other_servers_token_rejections_are_sync_state_expired(
    server: RadicaleServer, calendar: CalendarWriter, fault: Fault
) -> None:
    source = CalDAVSource(calendar_url=calendar.url, mailbox=MAILBOX)
    state = source.sync(WINDOW, None).state
    server.fail_next(fault)
    with pytest.raises(SyncStateExpired):
        source.sync(WINDOW, state)


def test_forcing_a_mode_the_server_lacks_is_a_clear_error(
    server: RadicaleServer, calendar: CalendarWriter
) -> None:
    source = CalDAVSource(calendar_url=calendar.url, mailbox=MAILBOX, mode="sync-token")
    server.fail_next(no_sync_props(calendar))
    with pytest.raises(CalendarError) as info:
        source.sync(WINDOW, None)
    assert "offers no {DAV:}sync-token" in str(info.value) and not is_retryable(info.value)


def no_sync_props(calendar: CalendarWriter) -> Fault:
    """A PROPFIND answer from a server that offers neither sync-token nor ctag."""
    body = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:"><D:response>'
        b"<D:href>" + calendar.path.encode() + b"</D:href><D:propstat><D:prop/>"
        b"<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>"
    )
    return Fault("207 Multi-Status", [("Content-Type", "application/xml")], body)


def test_server_without_token_or_ctag_falls_back_to_window_rereads(
    server: RadicaleServer, calendar: CalendarWriter
) -> None:
    source = CalDAVSource(calendar_url=calendar.url, mailbox=MAILBOX)
    server.fail_next(no_sync_props(calendar))
    first = source.sync(WINDOW, None)
    assert first.full and [e.key for e in first.events] == ["a"]
    calendar.delete("a.ics")
    server.reset_count()
    second = source.sync(WINDOW, first.state)
    assert server.requests == [("REPORT", calendar.path)]
    assert second.full and second.events == []


def test_the_declared_caldav_floor_has_the_error_attributes_the_client_reads() -> None:
    """caldav_client reads DAVError.status (caldav 3.6.0) and .preconditions (3.5.0).

    On 3.5 an expired sync token raised AttributeError instead of resyncing; on 3.4 and
    older every rejected token did. The floor in pyproject.toml must be at least 3.6, and
    the installed version (which CI runs the Radicale tests against) must satisfy it.
    """
    import tomllib
    from importlib.metadata import version
    from pathlib import Path

    from caldav.lib import error as dav_error
    from packaging.requirements import Requirement
    from packaging.version import Version

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    (caldav,) = [Requirement(d) for d in deps if Requirement(d).name == "caldav"]
    floors = [Version(s.version) for s in caldav.specifier if s.operator == ">="]
    assert floors and min(floors) >= Version("3.6")
    assert caldav.specifier.contains(version("caldav"))
    err = dav_error.AuthorizationError(
        url="https://dav.example.se/", preconditions=["{DAV:}valid-sync-token"], status=403
    )
    assert (err.status, err.preconditions) == (403, ["{DAV:}valid-sync-token"])
    assert dav_error.DAVError().status is None and dav_error.DAVError().preconditions == []
