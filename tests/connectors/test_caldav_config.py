"""CalDAV config models and ``build_source``: validation messages, URLs, passwords from env/file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from caldav_ics import single
from pydantic import ValidationError
from radicale_server import CalendarWriter, RadicaleServer

from connectors.calendars.base import Mailbox, SyncWindow
from connectors.calendars.caldav import build_source
from connectors.calendars.caldav.config import CalDAVCalendarConfig, CalDAVConnectionConfig
from connectors.calendars.caldav.source import calendar_url
from rules.errors import CalrefError

MAILBOX = Mailbox(user_id="u42", email="alice@example.se")
WINDOW = SyncWindow(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC))


def test_connection_block_rejects_unknown_keys_and_inline_passwords() -> None:
    with pytest.raises(ValidationError, match="password"):
        CalDAVConnectionConfig.model_validate({"url": "https://dav.example.se/", "password": "x"})
    with pytest.raises(ValidationError, match="must not contain a login"):
        CalDAVConnectionConfig.model_validate({"url": "https://bob:pw@dav.example.se/"})
    with pytest.raises(ValidationError, match="http:// or https://"):
        CalDAVConnectionConfig.model_validate({"url": "ftp://dav.example.se/"})
    with pytest.raises(ValidationError, match="at most one of password_env or password_file"):
        CalDAVConnectionConfig.model_validate(
            {"url": "https://d/", "username": "s", "password_env": "A", "password_file": "/f"}
        )
    with pytest.raises(ValidationError, match="a password needs a username"):
        CalDAVConnectionConfig.model_validate({"url": "https://d/", "password_env": "A"})


def test_calendar_entry_checks_placeholders_and_kind() -> None:
    with pytest.raises(ValidationError, match="unknown placeholder"):
        CalDAVCalendarConfig.model_validate({"kind": "caldav", "url": "/{mail}/cal/"})
    with pytest.raises(ValidationError):
        CalDAVCalendarConfig.model_validate({"kind": "graph"})
    with pytest.raises(ValidationError):
        CalDAVCalendarConfig.model_validate({"kind": "caldav", "sync": "sometimes"})


def test_calendar_url_fills_placeholders_relative_to_the_server() -> None:
    conn = CalDAVConnectionConfig(url="https://dav.example.se/remote.php/dav")
    assert conn.url == "https://dav.example.se/remote.php/dav/"
    entry = CalDAVCalendarConfig(url="calendars/{local}/work/")
    assert calendar_url(conn, entry, MAILBOX) == (
        "https://dav.example.se/remote.php/dav/calendars/alice/work/"
    )
    default = CalDAVCalendarConfig()
    assert calendar_url(conn, default, MAILBOX).endswith("/dav/alice@example.se/calendar/")
    absolute = CalDAVCalendarConfig(url="https://other.example.se/{user_id}/")
    assert calendar_url(conn, absolute, MAILBOX) == "https://other.example.se/u42/"


def test_missing_password_variable_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALREF_TEST_DAV_PW", raising=False)
    conn = CalDAVConnectionConfig(
        url="https://dav.example.se/", username="svc", password_env="CALREF_TEST_DAV_PW"
    )
    with pytest.raises(CalrefError, match="CALREF_TEST_DAV_PW"):
        build_source(conn, CalDAVCalendarConfig(), MAILBOX)


def test_build_source_logs_in_with_a_password_from_env_or_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with RadicaleServer(users={"svc": "env-pw-1", "alice": "file-pw-2"}) as server:
        writer = CalendarWriter(server, "/alice/calendar/", login=("svc", "env-pw-1")).create()
        writer.put("a.ics", single("a", "20260303T130000Z", "20260303T140000Z"))
        monkeypatch.setenv("CALREF_TEST_DAV_PW", "env-pw-1")
        conn = CalDAVConnectionConfig(
            url=server.url, username="svc", password_env="CALREF_TEST_DAV_PW"
        )
        source = build_source(
            conn, CalDAVCalendarConfig(url="{local}/calendar/", name="work"), MAILBOX
        )
        assert source.id == "caldav:alice@example.se/work"
        assert [e.key for e in source.sync(WINDOW, None).events] == ["a"]
        assert "env-pw-1" not in repr(source.__dict__)

        pw_file = tmp_path / "alice.pw"
        pw_file.write_text("file-pw-2\n", encoding="utf-8")
        own_login = CalDAVCalendarConfig(
            url="{local}/calendar/", username="alice", password_file=str(pw_file)
        )
        source = build_source(conn, own_login, MAILBOX)
        assert source.id == "caldav:alice@example.se"
        assert [e.key for e in source.sync(WINDOW, None).events] == ["a"]
