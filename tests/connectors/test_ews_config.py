"""EWS connection config: validation, secrets from env or file, endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests_mock
from ews_doubles import ENDPOINT, EwsServer, calendar_item
from ews_fixture import ALICE
from pydantic import ValidationError

from connectors.calendars.ews import build_source
from connectors.calendars.ews.config import EwsCalendarConfig, EwsConnectionConfig
from rules.errors import CalrefError


def test_server_name_gives_the_standard_ews_endpoint() -> None:
    conn = EwsConnectionConfig(server="mail.example.se", username="EX\\svc", password_env="P")
    assert conn.endpoint == "https://mail.example.se/EWS/Exchange.asmx"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"username": "EX\\svc", "password_env": "P"}, "exactly one of server"),
        ({"server": "m", "password_env": "P"}, "NTLM needs username"),
        ({"server": "m", "username": "u"}, "password_env or password_file"),
        (
            {
                "service_endpoint": "http://m/EWS/Exchange.asmx",
                "username": "u",
                "password_env": "P",
            },
            "https://",
        ),
        ({"server": "m", "username": "u", "password": "inline"}, "Extra inputs"),
    ],
)
def test_invalid_connections_are_refused(fields: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        EwsConnectionConfig(**fields)


def test_kerberos_needs_no_password() -> None:
    assert EwsConnectionConfig(server="mail.example.se", auth_type="GSSAPI").password_env is None


def test_kerberos_without_requests_gssapi_names_the_package_and_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import exchangelib.transport as transport

    monkeypatch.delitem(transport.AUTH_TYPE_MAP, transport.GSSAPI, raising=False)
    conn = EwsConnectionConfig(server="mail.example.se", auth_type="GSSAPI")
    with pytest.raises(CalrefError, match="requests_gssapi") as caught:
        build_source(conn, EwsCalendarConfig(), ALICE)
    assert "calref[kerberos]" in str(caught.value)


def test_kerberos_with_requests_gssapi_builds_an_account(monkeypatch: pytest.MonkeyPatch) -> None:
    import exchangelib.transport as transport

    class FakeSpnego:  # what requests_gssapi.HTTPSPNEGOAuth is to exchangelib: an auth class
        pass

    monkeypatch.setitem(transport.AUTH_TYPE_MAP, transport.GSSAPI, FakeSpnego)
    conn = EwsConnectionConfig(server="mail.example.se", auth_type="GSSAPI")
    source = build_source(conn, EwsCalendarConfig(), ALICE)
    account = source.client._account_factory()
    assert account.protocol.auth_type == transport.GSSAPI


def test_missing_password_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALREF_EWS_PW", raising=False)
    conn = EwsConnectionConfig(
        server="mail.example.se", username="EX\\svc", password_env="CALREF_EWS_PW"
    )
    with pytest.raises(CalrefError, match="CALREF_EWS_PW is not set"):
        build_source(conn, EwsCalendarConfig(), ALICE)


def test_password_file_and_mailbox_override(tmp_path: Path) -> None:
    secret = tmp_path / "ews.pw"
    secret.write_text("from-a-file\n")
    conn = EwsConnectionConfig(
        service_endpoint=ENDPOINT, username="EXAMPLE\\svc", password_file=str(secret)
    )
    server = EwsServer(items=[calendar_item("a", "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z")])
    with requests_mock.Mocker() as mocker:
        mocker.post(ENDPOINT, text=server)
        source = build_source(conn, EwsCalendarConfig(mailbox="reception@example.se"), ALICE)
        from datetime import UTC, datetime

        from connectors.calendars.base import SyncWindow

        window = SyncWindow(datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC))
        assert len(source.sync(window, None).events) == 1
        assert mocker.last_request is not None
    assert source.id == "ews:reception@example.se"
    assert "<t:PrimarySmtpAddress>reception@example.se</t:PrimarySmtpAddress>" in server.bodies[0]
