"""Google connection config and delegated service account credentials (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gcal_doubles import ALICE
from pydantic import ValidationError

from connectors.calendars.google import build_source
from connectors.calendars.google.client import SCOPES, load_credentials
from connectors.calendars.google.config import GoogleCalendarConfig, GoogleConnectionConfig
from rules.errors import CalrefError


def key_file(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "calref-test",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "calref@calref-test.iam.gserviceaccount.com",
        "client_id": "123456789012345678901",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    return path


def test_credentials_act_as_the_user_with_the_read_only_scope(tmp_path: Path) -> None:
    conn = GoogleConnectionConfig(service_account_file=str(key_file(tmp_path)))
    creds = load_credentials(conn, "alice@example.se")
    assert creds._subject == "alice@example.se"
    assert tuple(creds.scopes) == SCOPES
    assert creds.service_account_email == "calref@calref-test.iam.gserviceaccount.com"


def test_build_source_uses_the_key_and_the_shipped_discovery_document(tmp_path: Path) -> None:
    conn = GoogleConnectionConfig(service_account_file=str(key_file(tmp_path)), page_size=500)
    source = build_source(conn, GoogleCalendarConfig(calendar_id="primary"), ALICE)
    assert source.id == "google:alice@example.se"
    request = source.service.events().list(calendarId="primary", singleEvents=True)
    assert request.uri.startswith("https://www.googleapis.com/calendar/v3/calendars/primary/events")


def test_missing_key_variable_is_named_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALREF_GOOGLE_KEY", raising=False)
    conn = GoogleConnectionConfig(service_account_env="CALREF_GOOGLE_KEY")
    with pytest.raises(CalrefError, match="CALREF_GOOGLE_KEY is not set"):
        load_credentials(conn, "alice@example.se")


def test_a_key_that_is_not_a_service_account_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sa.json"
    path.write_text('{"type": "authorized_user"}')
    conn = GoogleConnectionConfig(service_account_file=str(path))
    with pytest.raises(CalrefError, match="not a service account JSON key"):
        load_credentials(conn, "alice@example.se")


def test_connection_needs_exactly_one_key_source_and_no_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        GoogleConnectionConfig()
    with pytest.raises(ValidationError, match="Extra inputs"):
        GoogleConnectionConfig(service_account_env="X", private_key="inline-secret")
    with pytest.raises(ValidationError):
        GoogleCalendarConfig(kind="google", calendar="typo")
